"""Evaluation models: one reviewer's scores and comments on one submission in one stage, and
the append-only history of sheets an officer reopened; stage rounds (closed, confirmed,
published), imported score components, disqualifications, published outcomes and retention
schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow

#: The key of the vote in ``scores_sealed`` (its value is ``"accept"`` or ``"reject"``).
VOTE_KEY = "vote"


class SheetState(StrEnum):
    """Where a score sheet is: being written, or handed in (immutable until reopened)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"


class ScoreSheet(Base):
    """Reviewer ``reviewer_id``'s scores and comments on a submission in stage ``stage``.

    Scores, votes and comments are confidential: each column holds canonical JSON sealed with
    the field cipher (associated data = table, column and sheet id). ``scores_sealed`` maps a
    criterion id to its score and, on a stage decided by a panel majority, holds the vote as
    ``{"vote": "accept"}`` or ``{"vote": "reject"}``; ``comments_sealed`` holds
    ``{"criteria": {id: comment}, "overall": comment}``.
    """

    __tablename__ = "score_sheets"
    __table_args__ = (
        UniqueConstraint("stage", "submission_id", "reviewer_id",
                         name="uq_score_sheets_stage_submission_reviewer"),
        CheckConstraint("revision >= 0", name="revision_not_negative"),
        CheckConstraint(
            "(state = 'draft' AND submitted_at IS NULL)"
            " OR (state = 'submitted' AND submitted_at IS NOT NULL)",
            name="submitted_at_iff_submitted"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    #: A stage id of the programme definition.
    stage: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    reviewer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    state: Mapped[SheetState] = mapped_column(
        enum_type(SheetState, "score_sheet_state"), default=SheetState.DRAFT)
    #: Sealed JSON: criterion id → whole-number score (a draft may leave criteria out); on a
    #: majority stage also ``"vote"`` → ``"accept"`` or ``"reject"`` (a text, where scores are
    #: numbers; absent while the vote is not cast). Revisions keep the same shape.
    scores_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed JSON: ``{"criteria": {criterion id: comment}, "overall": comment}``.
    comments_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: How many times an officer reopened the sheet (0: never).
    revision: Mapped[int] = mapped_column(Integer, default=0)


class ScoreSheetRevision(Base):
    """What a submitted sheet held when an officer reopened it, who did and why (append-only).

    ``revision`` is the sheet's revision number the values belong to; the values and the
    reason are sealed like the sheet's (associated data = this table, column and row id).
    """

    __tablename__ = "score_sheet_revisions"
    __table_args__ = (
        UniqueConstraint("sheet_id", "revision", name="uq_score_sheet_revisions_sheet_revision"),
        CheckConstraint("revision >= 0", name="revision_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    sheet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("score_sheets.id", ondelete="RESTRICT"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    #: The previous scores and comments, sealed as in ``score_sheets``.
    scores_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    comments_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: When the reopened sheet had been submitted.
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``None`` for the host operator (the command line).
    reopened_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    reopened_by_role: Mapped[str] = mapped_column(String(20))
    reopened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The officer's reason, sealed.
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)


# -- stage rounds: closing, confirming and publishing a stage's evaluation ----------------------

class RoundState(StrEnum):
    """Where a stage's round is: open → closed → confirmed → published (closed may reopen)."""

    OPEN = "open"
    CLOSED = "closed"
    CONFIRMED = "confirmed"
    PUBLISHED = "published"


class StageOutcomeKind(StrEnum):
    """What a published stage decided for a submission (the ranking's outcomes)."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    NOT_SELECTED = "not_selected"
    ELIMINATED = "eliminated"
    SELECTED = "selected"
    DISQUALIFIED = "disqualified"


class StageRound(Base):
    """The round of one stage of a programme. No row means the round is open.

    Once confirmed, ``snapshot_sealed`` holds the ranking and its inputs' digests as canonical
    JSON (sealed: it holds scores) and ``result_sha256`` the SHA-256 of that JSON, in the clear,
    so the published result can be checked against the audit log.
    """

    __tablename__ = "stage_rounds"
    __table_args__ = (
        UniqueConstraint("programme_id", "stage", name="uq_stage_rounds_programme_stage"),
        CheckConstraint("state = 'open' OR closed_at IS NOT NULL", name="closed_at_once_closed"),
        CheckConstraint(
            "(state IN ('confirmed', 'published')) = (confirmed_at IS NOT NULL"
            " AND result_sha256 IS NOT NULL AND snapshot_sealed IS NOT NULL)",
            name="snapshot_iff_confirmed"),
        CheckConstraint("(state = 'published') = (published_at IS NOT NULL)",
                        name="published_at_iff_published"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    #: A stage id of the programme definition.
    stage: Mapped[str] = mapped_column(String(64))
    state: Mapped[RoundState] = mapped_column(
        enum_type(RoundState, "stage_round_state"), default=RoundState.OPEN)
    #: When the panel was (last) closed; ``None`` while open.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Who closed, confirmed, published (``None`` for the host operator).
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    #: SHA-256 (hex) of the snapshot's canonical JSON, in the clear.
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    #: The confirmed ranking with its inputs' digests, canonical JSON, sealed.
    snapshot_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StageRoundReopening(Base):
    """A closed round an officer opened again, who did, when and the sealed reason
    (append-only)."""

    __tablename__ = "stage_round_reopenings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stage_rounds.id", ondelete="RESTRICT"), index=True)
    #: ``None`` for the host operator.
    reopened_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    reopened_by_role: Mapped[str] = mapped_column(String(20))
    reopened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The reason, sealed.
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ComponentImport(Base):
    """One CSV file of an imported score component (e.g. the benchmark agency's scores).

    A newer import of the same component supersedes this one (``superseded_at``); the history
    stays. The values are sealed; the file's name, SHA-256 and row count are in the clear.
    """

    __tablename__ = "component_imports"
    __table_args__ = (
        CheckConstraint("rows >= 1", name="rows_positive"),
        Index("uq_component_imports_current", "programme_id", "stage", "component",
              unique=True, sqlite_where=text("superseded_at IS NULL"),
              postgresql_where=text("superseded_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(64))
    #: A component id of the stage (source "import").
    component: Mapped[str] = mapped_column(String(64))
    #: The uploaded file's name as given (shown to officers, never used as a path).
    filename: Mapped[str] = mapped_column(String(255))
    #: SHA-256 (hex) of the file's bytes.
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    #: Sealed canonical JSON: submission id → the score as a decimal string.
    values_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: ``None`` for the host operator.
    imported_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    imported_by_role: Mapped[str] = mapped_column(String(20))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When a newer import of the component replaced this one; ``None``: the current one.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StageDisqualification(Base):
    """A disqualification rule applied to a submission in a stage, with the sealed reason;
    lifting it keeps the row (``lifted_at``, sealed reason)."""

    __tablename__ = "stage_disqualifications"
    __table_args__ = (
        Index("uq_stage_disqualifications_active", "stage", "submission_id", unique=True,
              sqlite_where=text("lifted_at IS NULL"), postgresql_where=text("lifted_at IS NULL")),
        CheckConstraint("(lifted_at IS NULL) = (lift_reason_sealed IS NULL)",
                        name="lift_reason_iff_lifted"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    #: A disqualification rule id of the stage.
    rule: Mapped[str] = mapped_column(String(64))
    #: The officer's reason, sealed.
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: ``None`` for the host operator.
    disqualified_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    disqualified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    #: Why it was lifted, sealed.
    lift_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class StageOutcome(Base):
    """What a published stage decided for one submission, with the figures its applicant may
    see (sealed: score, criterion means, component scores)."""

    __tablename__ = "stage_outcomes"
    __table_args__ = (
        UniqueConstraint("stage", "submission_id", name="uq_stage_outcomes_stage_submission"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stage_rounds.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    outcome: Mapped[StageOutcomeKind] = mapped_column(
        enum_type(StageOutcomeKind, "stage_outcome_kind"))
    #: The place in the stage's ranking.
    rank: Mapped[int | None] = mapped_column(Integer)
    #: Sealed canonical JSON: ``{"score", "composite", "criteria": {id: mean},
    #: "components": {id: score}}`` (decimal strings or null).
    figures_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RetentionSchedule(Base):
    """When the material of a consortium that is out is crypto-shredded, and when it is told.

    Cancelled when the submission re-enters a stage (a candidate of an additional call);
    ``shredded_at`` once the consortium's key was destroyed.
    """

    __tablename__ = "retention_schedules"
    __table_args__ = (
        CheckConstraint("notice_at <= shred_due", name="notice_before_shred"),
        CheckConstraint("cancelled_at IS NULL OR shredded_at IS NULL",
                        name="cancelled_or_shredded"),
        Index("uq_retention_schedules_pending", "submission_id", unique=True,
              sqlite_where=text("cancelled_at IS NULL"),
              postgresql_where=text("cancelled_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True)
    consortium_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consortia.id", ondelete="RESTRICT"), index=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True)
    #: The stage whose publication ended the submission's part.
    stage: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    notice_at: Mapped[datetime] = mapped_column(UTCDateTime())
    shred_due: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
