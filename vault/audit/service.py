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
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import and_, func, insert, or_, select, text
from sqlalchemy.orm import Session

from vault.access import Actor
from vault.audit import merkle
from vault.audit.models import AuditEvent, AuditNode

#: The advisory lock that serialises appends on PostgreSQL (an arbitrary, fixed number).
APPEND_LOCK = 0x7661756C74  # "vault"


class Tag(StrEnum):
    """Event types, ``resource:verb`` or ``resource:sub:verb``."""

    LOGIN_SUCCEEDED = "auth:login:succeeded"
    LOGIN_FAILED = "auth:login:failed"
    LOGOUT = "auth:logout"
    MFA_ENROLLED = "auth:mfa:enrolled"
    MFA_FAILED = "auth:mfa:failed"
    PASSWORD_CHANGED = "auth:password:changed"
    TOKEN_CREATED = "token:created"
    TOKEN_REVOKED = "token:revoked"
    ACCESS_DECIDED = "access:decided"
    DOCUMENT_UPLOADED = "document:version:uploaded"
    DOCUMENT_DOWNLOADED = "document:version:downloaded"
    DOCUMENT_INTEGRITY_FAILED = "document:version:integrity-failed"
    PARTNER_LIST_CHANGED = "partner-list:changed"
    KEY_ROTATED = "key:rotated"
    KEY_REWRAPPED = "key:rewrapped"
    KEY_RETIRED = "key:retired"
    KEY_SHREDDED = "key:shredded"
    USER_CREATED = "user:created"
    USER_DEACTIVATED = "user:deactivated"
    AUDIT_EXPORTED = "audit:exported"


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from: recorded with every event it causes."""

    request_id: str = ""
    client: str = ""
    user_agent: str = ""


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one byte form of an event."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: e.g. ``2026-12-01T01:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _actor_json(actor: Actor | None) -> dict[str, str] | None:
    if actor is None:
        return None
    return {"role": actor.role.value, "user": str(actor.user_id)}


class DatabaseSubtrees:
    """Complete-subtree hashes read from ``audit_nodes`` (with a small per-use cache)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def prefetch(self, keys: list[tuple[int, int]]) -> None:
        """Load several subtrees with one query."""
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

    def lock(self) -> None:
        """Serialise with every other appender until this transaction ends."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})

    def size(self) -> int:
        """How many events the log holds."""
        last = self.session.scalar(select(func.max(AuditEvent.seq)))
        return 0 if last is None else last + 1

    def append(
        self,
        tag: Tag,
        *,
        actor: Actor | None = None,
        real_actor: Actor | None = None,
        target: Mapping[str, object] | None = None,
        decision: str = "",
        reasons: Iterable[str] = (),
        request: RequestInfo | None = None,
    ) -> AuditEvent:
        """Append one event in the current transaction; it commits with the change it records."""
        tag = Tag(tag)
        if decision not in ("", "allow", "deny"):
            raise ValueError(f"unknown decision {decision!r}")
        self.lock()
        last = self.session.execute(
            select(AuditEvent.seq, AuditEvent.time).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        seq, last_time = (last[0] + 1, last[1]) if last else (0, None)
        now = self.clock()
        # Times never go backwards in the log, even if workers' clocks disagree slightly.
        moment = max(now, last_time) if last_time else now
        target = {key: (None if value is None else str(value))
                  for key, value in (target or {}).items()}
        request = request or RequestInfo()
        leaf = canonical_json({
            "actor": _actor_json(actor),
            "decision": decision,
            "reasons": list(reasons),
            "real_actor": _actor_json(real_actor),
            "request": {"client": request.client, "id": request.request_id,
                        "user_agent": request.user_agent},
            "seq": seq,
            "tag": tag.value,
            "target": target,
            "time": rfc3339(moment),
        })
        leaf_hash = merkle.leaf_hash(leaf)
        event = AuditEvent(
            seq=seq, leaf=leaf, leaf_hash=leaf_hash, time=moment, tag=tag.value,
            actor_id=actor.user_id if actor else None,
            consortium_id=_uuid(target.get("consortium")),
            document_id=_uuid(target.get("document")), decision=decision,
        )
        self.session.add(event)
        # The left siblings this leaf completes, fetched in one query.
        source = DatabaseSubtrees(self.session)
        source.prefetch([(level, (seq >> level) - 1) for level in range(_trailing_ones(seq))])
        nodes = merkle.parents_to_add(seq, leaf_hash, source)
        self.session.flush()
        self.session.execute(insert(AuditNode), [
            {"level": level, "index": index, "hash": digest} for level, index, digest in nodes
        ])
        return event

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
