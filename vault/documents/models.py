"""Submission and document models (contents are stored encrypted by the document store)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.consortia.models import Consortium
from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow
from vault.identity.models import User


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
    #: The stage the submission is in: ``call`` while the call runs, then a stage id of the
    #: programme definition. Reviewers assigned to that stage may read it during its window.
    stage: Mapped[str] = mapped_column(String(64), default="call", server_default="call")
    #: While returned: corrections are accepted until then (``None`` otherwise).
    correction_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    consortium: Mapped[Consortium] = relationship(lazy="joined")


class Document(Base):
    """One required document of a submission (a kind, for the consortium or for one partner).

    Its content lives in numbered ``DocumentVersion`` rows; an upload never overwrites, it adds
    the next version.
    """

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("submission_id", "kind", "slot", name="uq_documents_submission_kind_slot"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True
    )
    #: A document kind id of the programme definition, e.g. ``proposal``.
    kind: Mapped[str] = mapped_column(String(64))
    #: ``""`` for a document of the whole consortium; the partner-list entry id for kinds
    #: required once per partner.
    slot: Mapped[str] = mapped_column(String(36), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    submission: Mapped[Submission] = relationship()
    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.version"
    )


class DocumentVersion(Base):
    """One uploaded version of a document: its metadata and how to decrypt its blob."""

    __tablename__ = "document_versions"
    __table_args__ = (
        UniqueConstraint("document_id", "version", name="uq_document_versions_version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("size_bytes >= 0", name="size_not_negative"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
        CheckConstraint("key_version >= 1", name="key_version_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="RESTRICT"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    #: The name the uploader gave, shown to people only; blobs are stored under random names.
    original_filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(127))
    #: Plaintext size in bytes.
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Hex SHA-256 of the plaintext, as printed on the receipt.
    sha256: Mapped[str] = mapped_column(String(64))
    #: Random name of the ciphertext in the blob store.
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
    #: Hex SHA-256 of the stored blob (header and ciphertext), for the audit log.
    blob_sha256: Mapped[str] = mapped_column(String(64))
    #: Blob format version (docs/FORMAT.md).
    format_version: Mapped[int] = mapped_column(Integer)
    #: The key provider's key (``consortium-<uuid>``) and version that wrap the data key.
    key_id: Mapped[str] = mapped_column(String(100), index=True)
    key_version: Mapped[int] = mapped_column(Integer)
    #: The data key, AES-256-GCM-wrapped under ``key_id``/``key_version`` with the encryption
    #: context as associated data. The only copy of the data key; never stored unwrapped.
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    document: Mapped[Document] = relationship(back_populates="versions")


class WatermarkCopy(Base):
    """One stamped copy of a PDF handed to a person: the code printed on its pages says who
    received it, when, and which version, so a leaked copy can be traced."""

    __tablename__ = "watermark_copies"

    #: The short code printed on every page.
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("document_versions.id", ondelete="RESTRICT"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The request that received the copy; its audit events carry the same request id.
    request_id: Mapped[str] = mapped_column(String(32))

    version: Mapped[DocumentVersion] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")


class WatermarkRefusal(Base):
    """A version the stamper refused for a reason of the file itself: it needs more than a
    limit (time, CPU, memory), or the stamper cannot read it. Kept so that the next reader is
    told at once instead of tying up a server thread for the whole limit again; a refusal made
    by an older stamper (``stamper``) is tried again."""

    __tablename__ = "watermark_refusals"

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("document_versions.id", ondelete="CASCADE"), primary_key=True
    )
    #: ``vault.documents.watermark.STAMPER_VERSION`` of the stamper that refused it.
    stamper: Mapped[str] = mapped_column(String(16))
    #: Why, as the stamper said it ("timed out after 30 s", "The PDF has no pages.").
    reason: Mapped[str] = mapped_column(String(300))
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UploadState(StrEnum):
    """Where a resumable upload session is."""

    #: Accepting bytes (PATCH) until ``offset_bytes`` reaches ``length_bytes``.
    OPEN = "open"
    #: All bytes arrived and became a document version (``version_id``).
    COMPLETED = "completed"


class UploadSession(Base):
    """A resumable (tus) upload in progress: what it will become and how much has arrived.

    The bytes live only in sealed ``UploadSegment`` blobs until the last one arrives; then
    they become an ordinary document version and the segments are deleted.
    """

    __tablename__ = "upload_sessions"
    __table_args__ = (
        CheckConstraint("length_bytes >= 1", name="length_positive"),
        CheckConstraint("offset_bytes >= 0 AND offset_bytes <= length_bytes",
                        name="offset_within_length"),
        CheckConstraint("(state = 'completed') = (version_id IS NOT NULL)",
                        name="version_iff_completed"),
        CheckConstraint("key_version >= 1", name="key_version_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True
    )
    #: The document kind id of the programme definition the upload will become.
    kind: Mapped[str] = mapped_column(String(64))
    #: ``""`` or the partner-list entry id, as for ``Document.slot``.
    slot: Mapped[str] = mapped_column(String(36), default="")
    #: The cleaned display filename (blobs never carry it).
    filename: Mapped[str] = mapped_column(String(255))
    #: The media type the uploader declared (checked against the magic bytes on completion).
    declared_type: Mapped[str] = mapped_column(String(127), default="")
    #: The whole upload's size in bytes (tus ``Upload-Length``).
    length_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Bytes durably stored so far (tus ``Upload-Offset``); only advanced after a segment
    #: blob is committed.
    offset_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[UploadState] = mapped_column(
        enum_type(UploadState, "upload_state"), default=UploadState.OPEN
    )
    #: The consortium key and version that wrap the upload's segment data key.
    key_id: Mapped[str] = mapped_column(String(100))
    key_version: Mapped[int] = mapped_column(Integer)
    #: The segments' data key, wrapped with the upload's context as associated data.
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    #: Only this user may continue, inspect or terminate the upload.
    created_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: After this the upload is refused (410) and removed by the purge.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: A PATCH in progress holds the upload until ``lease_expires_at``; a second one gets 409.
    #: No database transaction stays open while a body streams in.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The document version the completed upload became (the receipt).
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("document_versions.id", ondelete="RESTRICT")
    )

    submission: Mapped[Submission] = relationship()


class UploadSegment(Base):
    """The sealed bytes of one PATCH of a resumable upload, in order."""

    __tablename__ = "upload_segments"
    __table_args__ = (
        CheckConstraint("seq >= 0", name="seq_not_negative"),
        CheckConstraint("offset_bytes >= 0", name="offset_not_negative"),
        CheckConstraint("length_bytes >= 1", name="length_positive"),
    )

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="RESTRICT"), primary_key=True
    )
    #: 0, 1, 2, … in upload order; bound into the segment's encryption context.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Where the segment's plaintext starts in the upload; also bound into the context.
    offset_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Plaintext bytes in the segment.
    length_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Random name of the segment's ciphertext in the blob store.
    blob_name: Mapped[str] = mapped_column(String(64), unique=True)
    blob_size: Mapped[int] = mapped_column(BigInteger)
