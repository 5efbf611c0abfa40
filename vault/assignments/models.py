"""Assignment model: a reviewer on a submission's panel for one stage."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.db import Base, UTCDateTime, new_id, utcnow
from vault.documents.models import Submission
from vault.identity.models import User


class Assignment(Base):
    """Reviewer ``reviewer`` evaluates ``submission`` in stage ``stage``.

    Panel membership is confidential while the stage runs: only officers list assignments.
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("stage", "submission_id", "reviewer_id",
                         name="uq_assignments_stage_submission_reviewer"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    #: A stage id of the programme definition.
    stage: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True
    )
    reviewer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    submission: Mapped[Submission] = relationship(lazy="joined")
    reviewer: Mapped[User] = relationship(foreign_keys=[reviewer_id], lazy="joined")
