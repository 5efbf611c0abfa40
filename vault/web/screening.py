"""Screening pages: the applicant's checklist, submit and receipts; the officers' overview,
reports and decisions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("screening", __name__)


# The officers' overview and reports, registered on ``bp`` by importing their module.
from vault.web import screening_reports  # noqa: E402, F401
