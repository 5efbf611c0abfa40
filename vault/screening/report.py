"""Screening results as officers read them: the overview of a programme and the report rows.

The overview has one row per submission (consortium, state, fails and warnings of the latest
run, when it ran, the officer's decision). The report has one row per submission, document and
check of the latest run, with the message and the evidence in English and Korean, exported as
CSV for a spreadsheet or as JSON. Partners appear as "partner 2" with their entry id, never by
name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.display import iso_kst
from vault.documents.models import DocumentVersion, Submission, SubmissionState
from vault.programmes.models import Programme
from vault.screening.analysis import PdfFacts
from vault.screening.checks import Finding
from vault.screening.models import CheckResult, PdfAnalysis, ScreeningFinding, ScreeningRun
from vault.spreadsheets import spreadsheet_csv

if TYPE_CHECKING:
    from vault.screening.workflow import EventView, SubmissionWorkflow

#: Korea Standard Time, the programme office's time, for exported times.
#: The result column of a submission no run has screened yet.
NOT_SCREENED = "not screened"
REPORT_COLUMNS = ("programme", "consortium", "submission", "state", "screened_at", "kind",
                  "partner", "entry", "version", "filename", "check", "result", "message_en",
                  "message_ko", "evidence_en", "evidence_ko", "page_count", "encrypted")
_CHUNK = 500


@dataclass(frozen=True)
class OverviewRow:
    """One submission in the programme's screening overview."""

    submission: Submission
    consortium: str
    state: SubmissionState
    #: When the latest run that screened it started (``None``: never screened).
    run_at: datetime | None
    counts: dict[CheckResult, int] = field(default_factory=dict)
    #: The officer's latest decision (eligible, returned, ineligible), with its reason.
    decision: EventView | None = None

    @property
    def fails(self) -> int:
        """Failed checks in the latest run."""
        return self.counts.get(CheckResult.FAIL, 0)

    @property
    def warnings(self) -> int:
        """Checks with a warning in the latest run."""
        return self.counts.get(CheckResult.WARNING, 0)

    @property
    def result(self) -> CheckResult | None:
        """The worst result of the latest run; ``None`` if never screened."""
        if self.run_at is None:
            return None
        return (CheckResult.FAIL if self.fails else CheckResult.WARNING if self.warnings
                else CheckResult.PASS)


def finding_of(row: ScreeningFinding) -> Finding:
    """A stored finding as a :class:`Finding`."""
    return Finding(check_id=row.check_id, result=row.result, kind=row.kind, slot=row.slot,
                   document_id=row.document_id, version_id=row.version_id,
                   values=json.loads(row.values or "{}"))


def overview(session: Session, workflow: SubmissionWorkflow,
             submissions: Sequence[Submission]) -> list[OverviewRow]:
    """The overview rows of the submissions, in the given order."""
    latest: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    counts: dict[tuple[uuid.UUID, uuid.UUID], dict[CheckResult, int]] = {}
    ids = [s.id for s in submissions]
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(ScreeningFinding.submission_id, ScreeningRun.id, ScreeningRun.started_at,
                   ScreeningFinding.result, func.count())
            .join(ScreeningRun, ScreeningRun.id == ScreeningFinding.run_id)
            .where(ScreeningFinding.submission_id.in_(ids[start:start + _CHUNK]))
            .group_by(ScreeningFinding.submission_id, ScreeningRun.id, ScreeningRun.started_at,
                      ScreeningFinding.result))
        for submission_id, run_id, started_at, result, count in rows:
            if submission_id not in latest or latest[submission_id][0] < started_at:
                latest[submission_id] = (started_at, run_id)
            counts.setdefault((submission_id, run_id), {})[result] = count
    out = []
    for submission in submissions:
        run_at, run_id = latest.get(submission.id, (None, None))
        out.append(OverviewRow(
            submission=submission, consortium=submission.consortium.name,
            state=submission.state, run_at=run_at,
            counts=counts.get((submission.id, run_id), {}) if run_id else {},
            decision=workflow.decision(submission)))
    return out


def latest_findings(session: Session, submission: Submission
                    ) -> tuple[ScreeningRun | None, list[Finding]]:
    """The latest run that screened the submission, and its findings in checklist order."""
    run = session.scalar(
        select(ScreeningRun).join(ScreeningFinding, ScreeningFinding.run_id == ScreeningRun.id)
        .where(ScreeningFinding.submission_id == submission.id)
        .order_by(ScreeningRun.started_at.desc()).limit(1))
    if run is None:
        return None, []
    rows = session.scalars(
        select(ScreeningFinding)
        .where(ScreeningFinding.run_id == run.id,
               ScreeningFinding.submission_id == submission.id)
        .order_by(ScreeningFinding.position))
    return run, [finding_of(row) for row in rows]


def report_rows(session: Session, programme: Programme,
                submissions: Sequence[Submission]) -> list[dict[str, str]]:
    """One row per submission, document and check of the latest run (columns
    ``REPORT_COLUMNS``, every value text); a submission never screened has one row saying so."""
    screened = [(submission, *latest_findings(session, submission)) for submission in submissions]
    version_ids = [f.version_id for _, _, findings in screened for f in findings if f.version_id]
    versions = _versions(session, version_ids)
    facts = _facts(session, version_ids)
    rows: list[dict[str, str]] = []
    for submission, run, findings in screened:
        base = {"programme": programme.code, "consortium": submission.consortium.name,
                "submission": str(submission.id), "state": submission.state.value,
                "screened_at": iso_kst(run.started_at) if run else ""}
        if run is None:
            rows.append({column: "" for column in REPORT_COLUMNS} | base
                        | {"result": NOT_SCREENED})
            continue
        for finding in findings:
            version = versions.get(finding.version_id) if finding.version_id else None
            pdf = facts.get(finding.version_id) if finding.version_id else None
            partner = finding.values.get("partner")
            rows.append(base | {
                "kind": finding.kind,
                "partner": f"partner {partner}" if partner is not None else "",
                "entry": finding.slot,
                "version": str(version.version) if version else "",
                "filename": version.original_filename if version else "",
                "check": finding.check_id,
                "result": finding.result.value,
                "message_en": finding.message("en"),
                "message_ko": finding.message("ko"),
                "evidence_en": finding.evidence("en"),
                "evidence_ko": finding.evidence("ko"),
                "page_count": str(pdf.page_count) if pdf and pdf.page_count is not None else "",
                "encrypted": ("yes" if pdf.encrypted else "no") if pdf and not pdf.unreadable
                else "",
            })
    return rows


def to_csv(rows: Sequence[dict[str, str]]) -> str:
    """The report as CSV text for a spreadsheet (``vault.spreadsheets``)."""
    return spreadsheet_csv(REPORT_COLUMNS,
                           ([row.get(column, "") for column in REPORT_COLUMNS] for row in rows))


def to_json(programme: Programme, rows: Sequence[dict[str, str]]) -> str:
    """The report as JSON: the programme and its rows."""
    return json.dumps({"programme": programme.code, "columns": list(REPORT_COLUMNS),
                       "rows": list(rows)}, ensure_ascii=False, indent=2)


def _versions(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, DocumentVersion]:
    found: dict[uuid.UUID, DocumentVersion] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        for version in session.scalars(select(DocumentVersion).where(
                DocumentVersion.id.in_(unique[start:start + _CHUNK]))):
            found[version.id] = version
    return found


def _facts(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PdfFacts]:
    """The newest cached analysis of each version (page count and encryption do not depend on
    the rules it was made under)."""
    found: dict[uuid.UUID, tuple[datetime, PdfFacts]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        for row in session.scalars(select(PdfAnalysis).where(
                PdfAnalysis.version_id.in_(unique[start:start + _CHUNK]))):
            try:
                facts = PdfFacts.from_json(row.facts)
            except ValueError:
                continue
            if row.version_id not in found or found[row.version_id][0] < row.analysed_at:
                found[row.version_id] = (row.analysed_at, facts)
    return {version_id: facts for version_id, (_, facts) in found.items()}

