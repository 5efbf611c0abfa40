"""Dual-control pages: a conflicted officer asks, a second officer approves for a time."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("grants", __name__, url_prefix="/dual-control")
