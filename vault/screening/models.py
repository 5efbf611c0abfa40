"""Screening models: the submission's state history and receipts, screening runs with their
findings, and the cache of sandboxed PDF analyses (facts only, never document text)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow
from vault.documents.models import SubmissionState


class CheckResult(StrEnum):
    """The outcome of one screening check."""

    PASS = "pass"  # noqa: S105 - a check result, not a password
    FAIL = "fail"
    WARNING = "warning"


class SubmissionEvent(Base):
    """One change of a submission's state: who, when, why (append-only history)."""

    __tablename__ = "submission_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    #: ``None`` for the first event of a submission created before the history was kept.
    from_state: Mapped[SubmissionState | None] = mapped_column(
        enum_type(SubmissionState, "submission_event_from_state"))
    to_state: Mapped[SubmissionState] = mapped_column(
        enum_type(SubmissionState, "submission_event_to_state"))
    #: ``None`` for the host operator (the command line).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The officer's or applicant's reason, sealed (it may name partners or weaknesses).
    reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Set when the submission is returned: corrections are accepted until then.
    correction_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SubmissionReceipt(Base):
    """What was submitted: every document version with its SHA-256, as canonical JSON."""

    __tablename__ = "submission_receipts"
    __table_args__ = (CheckConstraint("length(manifest_sha256) = 64", name="sha256_length"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submission_events.id", ondelete="RESTRICT"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Canonical JSON (sorted keys, no spaces): submission, state, time and the documents.
    manifest: Mapped[str] = mapped_column(Text)
    #: Hex SHA-256 of ``manifest``'s UTF-8 bytes, printed on the receipt.
    manifest_sha256: Mapped[str] = mapped_column(String(64))


class ScreeningRun(Base):
    """One screening of a programme's submissions (by an officer or the command line)."""

    __tablename__ = "screening_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    #: The definition the checks came from.
    definition_sha256: Mapped[str] = mapped_column(String(64))
    submission_count: Mapped[int] = mapped_column(Integer, default=0)


class ScreeningFinding(Base):
    """One check's result for one submission (and document, where it is about one)."""

    __tablename__ = "screening_findings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("screening_runs.id", ondelete="RESTRICT"), index=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("documents.id", ondelete="RESTRICT"))
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("document_versions.id", ondelete="RESTRICT"))
    #: The document kind the finding is about ("" for the submission as a whole).
    kind: Mapped[str] = mapped_column(String(64), default="")
    #: The partner-list entry id for per-partner kinds, else "".
    slot: Mapped[str] = mapped_column(String(36), default="")
    #: Stable id of the check, e.g. ``pdf.pages``.
    check_id: Mapped[str] = mapped_column(String(64))
    result: Mapped[CheckResult] = mapped_column(enum_type(CheckResult, "check_result"))
    #: JSON of the values the message and the evidence are written from (never partner names
    #: or document text: partners are referred to by their entry id).
    values: Mapped[str] = mapped_column(Text, default="{}")
    #: Order of the finding within its submission's checklist.
    position: Mapped[int] = mapped_column(Integer)


class PdfAnalysis(Base):
    """The facts the sandboxed analysis found in one PDF version under one set of rules."""

    __tablename__ = "pdf_analyses"

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("document_versions.id", ondelete="RESTRICT"), primary_key=True)
    #: SHA-256 of the rules (and analyser version) the facts answer.
    rules_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: JSON of ``PdfFacts``: counts, flags and reasons, no document text.
    facts: Mapped[str] = mapped_column(Text)


class PdfAnalysisClaim(Base):
    """A worker's claim on analysing one PDF version under one set of rules.

    Taken atomically (the primary key lets only one row exist; a stale claim is retaken by a
    conditional UPDATE), so two workers never analyse the same version at once. Deleted in
    the transaction that stores the facts; a worker killed mid-analysis leaves its claim to
    go stale (``claimed_at`` older than the analysis limit allows) and be retaken.
    """

    __tablename__ = "pdf_analysis_claims"

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("document_versions.id", ondelete="RESTRICT"), primary_key=True)
    rules_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Random per claim: only the claimant's own claim is released by its store.
    token: Mapped[str] = mapped_column(String(32))
