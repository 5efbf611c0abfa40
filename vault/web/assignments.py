"""Assignment pages: officers assign reviewers to submissions per stage."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("assignments", __name__, url_prefix="/assignments")
