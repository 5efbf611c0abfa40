"""NDA pages: reviewers read and accept the programme NDA; officers see the acceptance report."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("nda", __name__, url_prefix="/nda")
