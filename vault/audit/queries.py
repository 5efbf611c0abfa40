"""Reading the audit log for people: filtered, keyset-paged listings and access reports."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from vault.audit.service import Tag

PAGE_SIZE = 100


@dataclass(frozen=True)
class EventFilter:
    """What an auditor narrows the log to; every field optional."""

    tag: str | None = None
    actor_id: uuid.UUID | None = None
    consortium_id: uuid.UUID | None = None
    document_id: uuid.UUID | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Row:
    """One event as a listing shows it."""

    seq: int
    time: datetime
    tag: str
    actor_id: str | None
    role: str | None
    decision: str
    target: dict[str, str]
    reasons: list[str]
    client: str


def events(session: Session, flt: EventFilter, *, before: int | None = None,
           limit: int = PAGE_SIZE) -> list[Row]:
    """Newest first, ``limit`` at a time: pages continue below the last ``seq`` shown, so every
    page costs one index range scan however long the log is."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if flt.tag:
        query = query.where(AuditEvent.tag == flt.tag)
    if flt.actor_id:
        query = query.where(AuditEvent.actor_id == flt.actor_id)
    if flt.consortium_id:
        query = query.where(AuditEvent.consortium_id == flt.consortium_id)
    if flt.document_id:
        query = query.where(AuditEvent.document_id == flt.document_id)
    if flt.decision:
        query = query.where(AuditEvent.decision == flt.decision)
    if flt.since:
        query = query.where(AuditEvent.time >= flt.since)
    if flt.until:
        query = query.where(AuditEvent.time < flt.until)
    return [_row(event) for event in session.scalars(query)]


def _row(event: AuditEvent) -> Row:
    data = json.loads(event.leaf)
    actor = data.get("actor") or {}
    return Row(seq=event.seq, time=event.time, tag=event.tag, actor_id=actor.get("user"),
               role=actor.get("role"), decision=event.decision,
               target={k: v for k, v in (data.get("target") or {}).items() if v is not None},
               reasons=list(data.get("reasons") or []),
               client=(data.get("request") or {}).get("client", ""))


def document_access(session: Session, document_id: uuid.UUID) -> list[Row]:
    """Who uploaded, opened or was refused a document, newest first."""
    tags = (Tag.DOCUMENT_UPLOADED.value, Tag.DOCUMENT_DOWNLOADED.value,
            Tag.ACCESS_DECIDED.value, Tag.DOCUMENT_INTEGRITY_FAILED.value)
    return [_row(event) for event in session.scalars(
        select(AuditEvent).where(AuditEvent.document_id == document_id,
                                 AuditEvent.tag.in_(tags))
        .order_by(AuditEvent.seq.desc()).limit(1000))]


def chain_status(session: Session) -> tuple[AuditCheckpoint | None, AuditVerification | None]:
    """The latest checkpoint and the latest run of the chain check."""
    checkpoint = session.scalar(select(AuditCheckpoint).order_by(
        AuditCheckpoint.size.desc()).limit(1))
    verification = session.scalar(select(AuditVerification).order_by(
        AuditVerification.checked_at.desc()).limit(1))
    return checkpoint, verification
