"""Watermarked copies: the inline PDF viewer and the officers' code lookup."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("watermarks", __name__)
