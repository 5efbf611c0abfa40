"""Audit log tables. All are append-only: database triggers refuse UPDATE and DELETE.

``audit_events`` holds each event's exact leaf bytes (canonical JSON) — the leaf bytes are the
record; the other columns are copies of fields inside them, kept for filtering. ``audit_nodes``
holds the hash of every complete subtree of the Merkle tree, so that appending costs O(1)
amortised and any root or proof needs O(log n) lookups.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, new_id


class AuditEvent(Base):
    """One event: leaf ``seq`` of the log's Merkle tree."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tag_seq", "tag", "seq"),
        Index("ix_audit_events_actor_seq", "actor_id", "seq"),
        Index("ix_audit_events_consortium_seq", "consortium_id", "seq"),
        Index("ix_audit_events_document_seq", "document_id", "seq"),
        Index("ix_audit_events_time", "time"),
    )

    #: The leaf index, from 0, without gaps.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The event's canonical JSON, exactly the bytes that are hashed into the tree.
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256(0x00 || leaf).
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    tag: Mapped[str] = mapped_column(String(80))
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    consortium_id: Mapped[uuid.UUID | None] = mapped_column()
    document_id: Mapped[uuid.UUID | None] = mapped_column()
    #: ``allow`` / ``deny`` for authorisation decisions, else empty.
    decision: Mapped[str] = mapped_column(String(8), default="")


class AuditPending(Base):
    """An event recorded by a request, committed with the change it records, waiting for the
    sequencer to give it its place in the tree (moments later, in commit order)."""

    __tablename__ = "audit_pending"

    #: Increasing in the order events were recorded (within a transaction too).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The event's canonical JSON without ``seq`` and ``time`` (the sequencer adds them).
    body: Mapped[bytes] = mapped_column(LargeBinary)


class AuditNode(Base):
    """The hash of one complete, aligned subtree: leaves [index·2^level, (index+1)·2^level)."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of the log at ``size``."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The signed note, exactly as published.
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditVerification(Base):
    """A run of the in-app chain check: who checked, when, up to which size, and the outcome."""

    __tablename__ = "audit_verifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"))
    size: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text)
