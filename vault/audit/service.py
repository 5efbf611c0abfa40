"""Appending to the audit log, and reading roots and proofs from it.

Every event is canonical JSON (sorted keys, no spaces, UTF-8, UTC timestamps with microseconds)
and becomes the next leaf of an RFC 6962 Merkle tree. Appends are serialised across workers and
processes (a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer at a time)
and happen in the transaction of the change they record. Values from users are JSON strings:
they cannot forge a line or a field.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text
from sqlalchemy.orm import Session

from vault.audit import merkle
from vault.audit.canonical import canonical_json, rfc3339
from vault.audit.models import AuditEvent, AuditNode, AuditPending
from vault.db import take_write_lock
from vault.policy.actions import Actor

#: The advisory lock that serialises appends on PostgreSQL (an arbitrary, fixed number).
APPEND_LOCK = 0x7661756C74  # "vault"


class Tag(StrEnum):
    """Event types, ``resource:verb`` or ``resource:sub:verb``."""

    LOGIN_SUCCEEDED = "auth:login:succeeded"
    LOGIN_FAILED = "auth:login:failed"
    LOGOUT = "auth:logout"
    MFA_ENROLLED = "auth:mfa:enrolled"
    MFA_FAILED = "auth:mfa:failed"
    MFA_RESET = "auth:mfa:reset"
    REAUTHENTICATED = "auth:reauthenticated"
    PASSWORD_CHANGED = "auth:password:changed"
    TOKEN_CREATED = "token:created"
    TOKEN_REVOKED = "token:revoked"
    ACCESS_DECIDED = "access:decided"
    ACCESS_FILTERED = "access:filtered"
    DOCUMENT_UPLOADED = "document:version:uploaded"
    DOCUMENT_DOWNLOADED = "document:version:downloaded"
    DOCUMENT_INTEGRITY_FAILED = "document:version:integrity-failed"
    DOCUMENT_WATERMARK_FAILED = "document:version:watermark-failed"
    PARTNER_LIST_CHANGED = "partner-list:changed"
    KEY_ROTATED = "key:rotated"
    KEY_REWRAPPED = "key:rewrapped"
    KEY_RETIRED = "key:retired"
    KEY_SHREDDED = "key:shredded"
    USER_CREATED = "user:created"
    USER_DEACTIVATED = "user:deactivated"
    AUDIT_EXPORTED = "audit:exported"
    NDA_ACCEPTED = "nda:accepted"
    NDA_REPORT_EXPORTED = "nda:report:exported"
    CONFLICT_DECLARED = "conflict:declared"
    CONFLICT_DETECTED = "conflict:detected"
    CONFLICT_CHALLENGED = "conflict:challenged"
    CONFLICT_DECIDED = "conflict:decided"
    SANCTION_RECORDED = "sanction:recorded"
    AFFILIATION_CHANGED = "affiliation:changed"
    ASSIGNMENT_ADDED = "assignment:added"
    ASSIGNMENT_REMOVED = "assignment:removed"
    ASSIGNMENT_REFUSED = "assignment:refused"
    GRANT_REQUESTED = "grant:requested"
    GRANT_APPROVED = "grant:approved"
    GRANT_REVOKED = "grant:revoked"
    WATERMARK_LOOKED_UP = "watermark:looked-up"
    SUBMISSION_SUBMITTED = "submission:submitted"
    SUBMISSION_RECALLED = "submission:recalled"
    SUBMISSION_RESUBMITTED = "submission:resubmitted"
    SUBMISSION_WITHDRAWN = "submission:withdrawn"
    #: A submission entered an evaluation stage (only eligible ones may).
    SUBMISSION_STAGE_ENTERED = "submission:stage-entered"
    SCREENING_RAN = "screening:ran"
    SCREENING_DECIDED = "screening:decided"
    SCREENING_REPORT_EXPORTED = "screening:report-exported"
    RESOURCE_REQUEST_SAVED = "resource-request:saved"
    RESOURCE_TOTALS_EXPORTED = "resource-request:totals-exported"
    #: A reviewer saved a draft score sheet (the event names the sheet, never a score).
    SCORE_SHEET_SAVED = "score-sheet:saved"
    SCORE_SHEET_SUBMITTED = "score-sheet:submitted"
    #: An officer reopened a submitted score sheet with a reason.
    SCORE_SHEET_REOPENED = "score-sheet:reopened"
    #: A resumable upload began (the event names the upload, its kind and declared length).
    UPLOAD_CREATED = "upload:created"
    #: A resumable upload's last byte arrived and became a document version.
    UPLOAD_COMPLETED = "upload:completed"
    #: A resumable upload was ended by its uploader or removed after it expired.
    UPLOAD_TERMINATED = "upload:terminated"
    #: A stage's panel was closed (no more sheet writes; reviewers lose access), or reopened.
    STAGE_CLOSED = "stage:closed"
    STAGE_REOPENED = "stage:reopened"
    #: A stage's ranking was confirmed (the event holds the snapshot's SHA-256, no score).
    STAGE_CONFIRMED = "stage:confirmed"
    #: A stage's result was published and its outcomes applied (with the SHA-256).
    STAGE_PUBLISHED = "stage:published"
    #: An imported score component's CSV (file name, SHA-256, rows; never a value).
    STAGE_COMPONENT_IMPORTED = "stage:component-imported"
    STAGE_DISQUALIFIED = "stage:disqualified"
    STAGE_DISQUALIFICATION_LIFTED = "stage:disqualification-lifted"
    #: A submission that was out entered a stage decided by a panel majority.
    STAGE_CANDIDATE_ENTERED = "stage:candidate-entered"
    STAGE_EXPORTED = "stage:exported"
    #: A submission's outcome in a published stage (never its scores).
    SUBMISSION_OUTCOME = "submission:outcome"
    #: A consortium was told when its material will be crypto-shredded.
    RETENTION_NOTICE = "retention:notice"
    #: A pending retention schedule was cancelled (the submission re-entered a stage).
    RETENTION_CANCELLED = "retention:cancelled"


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from: recorded with every event it causes."""

    request_id: str = ""
    client: str = ""
    user_agent: str = ""


def _actor_json(actor: Actor | None) -> dict[str, str] | None:
    if actor is None:
        return None
    return {"role": actor.role_name, "user": str(actor.user_id) if actor.user_id else ""}


class DatabaseSubtrees:
    """Complete-subtree hashes read from ``audit_nodes`` (with a small per-use cache)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def remember(self, level: int, index: int, digest: bytes) -> None:
        """A subtree computed but not yet stored (same batch)."""
        self._cache[(level, index)] = digest

    def prefetch(self, keys: list[tuple[int, int]]) -> None:
        """Load several subtrees with one query (those not already known)."""
        keys = [key for key in keys if key not in self._cache]
        if not keys:
            return
        rows = self.session.execute(
            select(AuditNode.level, AuditNode.index, AuditNode.hash).where(
                or_(*(and_(AuditNode.level == level, AuditNode.index == index)
                      for level, index in keys)))
        )
        for level, index, digest in rows:
            self._cache[(level, index)] = digest

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of a complete subtree; raises ``LookupError`` if it is not stored."""
        key = (level, index)
        if key not in self._cache:
            found = self.session.scalar(
                select(AuditNode.hash).where(AuditNode.level == level, AuditNode.index == index)
            )
            if found is None:
                raise LookupError(f"audit tree node {level}/{index} is missing")
            self._cache[key] = found
        return self._cache[key]


class AuditLog:
    """The audit log on one database session."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime]) -> None:
        self.session = session
        self.clock = clock

    def lock(self, *, wait: bool = True) -> bool:
        """Serialise with every other appender until this transaction ends; with ``wait``
        false, return False at once if another holds the lock."""
        if self.session.get_bind().dialect.name != "postgresql":
            # SQLite: holding the write lock makes this the only writer; a deferred session
            # takes it now, before the tail of the log is read.
            take_write_lock(self.session)
            return True
        if wait:
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
            return True
        return bool(self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                         {"key": APPEND_LOCK}))

    def size(self) -> int:
        """How many events the log holds."""
        last = self.session.scalar(select(func.max(AuditEvent.seq)))
        return 0 if last is None else last + 1

    def record(
        self,
        tag: Tag,
        *,
        actor: Actor | None = None,
        real_actor: Actor | None = None,
        target: Mapping[str, object] | None = None,
        decision: str = "",
        reasons: Iterable[str] = (),
        request: RequestInfo | None = None,
    ) -> None:
        """Record an event in the current transaction, without waiting for the log's lock.

        It commits (or rolls back) with the change it records; ``sequence`` then gives it its
        place in the tree. Requests use this, so concurrent requests never queue on the log.
        """
        body = _body(tag, actor, real_actor, target, decision, reasons, request)
        self.session.execute(insert(AuditPending).values(
            recorded_at=self.clock(), body=canonical_json(body)))

    def sequence(self, limit: int = 10_000, *, wait: bool = True) -> int:
        """Move committed pending events into the log, oldest first; returns how many.

        Holds the log's lock until the caller's transaction ends; one commit covers the batch.
        With ``wait`` false it returns 0 at once when another sequencer is at work (that one,
        or the next, places the events).
        """
        if not self.lock(wait=wait):
            return 0
        pending = self.session.execute(
            select(AuditPending.id, AuditPending.recorded_at, AuditPending.body)
            .order_by(AuditPending.id).limit(limit)
        ).all()
        if not pending:
            return 0
        writer = _Writer(self)
        for _id, recorded_at, body in pending:
            writer.write(json.loads(body), recorded_at)
        writer.flush()
        self.session.execute(delete(AuditPending).where(
            AuditPending.id.in_([row[0] for row in pending])))
        return len(pending)

    def append(self, tag: Tag, **fields: Any) -> AuditEvent:
        """Record an event and place it in the log now, after any waiting ones (for commands
        and other callers that want the event itself); takes ``record``'s keywords."""
        self.record(tag, **fields)
        self.sequence()
        return self.session.scalars(
            select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root of the first ``size`` events (all when None)."""
        size = self.size() if size is None else size
        return merkle.root(size, DatabaseSubtrees(self.session))

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        """The RFC 6962 inclusion proof of event ``seq`` in the tree of ``size`` events."""
        return merkle.inclusion_proof(seq, size, DatabaseSubtrees(self.session))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 6962 consistency proof between two sizes of the log."""
        return merkle.consistency_proof(old_size, new_size, DatabaseSubtrees(self.session))


def _body(tag: Tag, actor: Actor | None, real_actor: Actor | None,
          target: Mapping[str, object] | None, decision: str, reasons: Iterable[str],
          request: RequestInfo | None) -> dict[str, object]:
    """An event without its place (``seq``) and time: what a request records."""
    tag = Tag(tag)
    if decision not in ("", "allow", "deny"):
        raise ValueError(f"unknown decision {decision!r}")
    request = request or RequestInfo()
    return {
        "actor": _actor_json(actor),
        "decision": decision,
        "reasons": list(reasons),
        "real_actor": _actor_json(real_actor),
        "request": {"client": request.client, "id": request.request_id,
                    "user_agent": request.user_agent},
        "tag": tag.value,
        "target": {key: (None if value is None else str(value))
                   for key, value in (target or {}).items()},
    }


class _Writer:
    """Writes events at the tail of the log (under the lock), batching the tree nodes."""

    def __init__(self, log: AuditLog) -> None:
        self.session = log.session
        last = self.session.execute(
            select(AuditEvent.seq, AuditEvent.time).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        self.next_seq, self.last_time = (last[0] + 1, last[1]) if last else (0, None)
        self.source = DatabaseSubtrees(self.session)
        self.nodes: list[dict[str, object]] = []
        self.events: list[AuditEvent] = []

    def write(self, body: dict[str, object], when: datetime) -> AuditEvent:
        """Place one event at the tail."""
        seq = self.next_seq
        # Times never go backwards in the log, even if workers' clocks disagree slightly.
        moment = max(when, self.last_time) if self.last_time else when
        leaf = canonical_json({**body, "seq": seq, "time": rfc3339(moment)})
        leaf_hash = merkle.leaf_hash(leaf)
        target = body["target"]
        actor = body["actor"]
        event = AuditEvent(
            seq=seq, leaf=leaf, leaf_hash=leaf_hash, time=moment, tag=body["tag"],
            actor_id=_uuid(actor["user"]) if actor else None,
            consortium_id=_uuid(target.get("consortium")),
            document_id=_uuid(target.get("document")), decision=body["decision"],
        )
        self.events.append(event)
        # The left siblings this leaf completes: from this batch, or fetched in one query.
        self.source.prefetch([(level, (seq >> level) - 1)
                              for level in range(_trailing_ones(seq))])
        for level, index, digest in merkle.parents_to_add(seq, leaf_hash, self.source):
            self.source.remember(level, index, digest)
            self.nodes.append({"level": level, "index": index, "hash": digest})
        self.next_seq, self.last_time = seq + 1, moment
        return event

    def flush(self) -> None:
        """Insert what was written."""
        self.session.add_all(self.events)
        self.session.flush()
        if self.nodes:
            self.session.execute(insert(AuditNode), self.nodes)
        self.events, self.nodes = [], []


def _trailing_ones(value: int) -> int:
    count = 0
    while value & 1:
        count += 1
        value >>= 1
    return count


def _uuid(value: object) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
