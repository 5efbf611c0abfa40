"""Score sheet models: one reviewer's scores and comments on one submission in one stage, and
the append-only history of sheets an officer reopened."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow


class SheetState(StrEnum):
    """Where a score sheet is: being written, or handed in (immutable until reopened)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"


class ScoreSheet(Base):
    """Reviewer ``reviewer_id``'s scores and comments on a submission in stage ``stage``.

    Scores and comments are confidential: each column holds canonical JSON sealed with the
    field cipher (associated data = table, column and sheet id). ``scores_sealed`` maps a
    criterion id to its score; ``comments_sealed`` holds ``{"criteria": {id: comment},
    "overall": comment}``.
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
    #: Sealed JSON: criterion id → whole-number score (a draft may leave criteria out).
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
