"""Screening pages: the applicant's checklist, submit and receipts; the officers' overview,
reports and decisions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("screening", __name__)
