"""The resource request form and the programme totals for the budget deliberation."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("resources", __name__)
