"""Conflict-of-interest pages: declarations, challenges, detection, sanctions and decisions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("conflicts", __name__, url_prefix="/conflicts")
