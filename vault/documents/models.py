"""Submission and document models (contents are stored encrypted by the document store)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.consortia.models import Consortium
from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow


class SubmissionState(StrEnum):
    """Where a submission is in the call's workflow."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    SCREENING = "screening"
    ELIGIBLE = "eligible"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    INELIGIBLE = "ineligible"
    WITHDRAWN = "withdrawn"


class Submission(Base):
    """A consortium's application to a programme: one per consortium and programme."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint(
            "consortium_id", "programme_id", name="uq_submissions_consortium_programme"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    consortium_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consortia.id", ondelete="RESTRICT"), index=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[SubmissionState] = mapped_column(
        enum_type(SubmissionState, "submission_state"), default=SubmissionState.DRAFT
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    consortium: Mapped[Consortium] = relationship(lazy="joined")


class Document(Base):
    """One version of one kind of document in a submission; versions are never overwritten."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("submission_id", "kind", "version", name="uq_documents_kind_version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("size_bytes >= 0", name="size_not_negative"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True
    )
    #: A document kind id of the programme definition, e.g. ``proposal``.
    kind: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    #: The name the uploader gave, shown to people only; blobs are stored under random names.
    original_filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Hex SHA-256 of the plaintext, as printed on the receipt.
    sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    submission: Mapped[Submission] = relationship()
