"""The officers' screening pages: the programme overview, its exports and a submission's report."""

from __future__ import annotations

from vault.web.screening import bp  # noqa: F401
