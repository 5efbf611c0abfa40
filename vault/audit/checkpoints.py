"""Signed checkpoints of the audit log (C2SP tlog-checkpoint in a C2SP signed note, Ed25519).

A checkpoint commits to the log's size and root. Each one is stored in the database and, once
committed, appended to a plain append-only file outside it (``checkpoints.log``, one JSON line
each), so that rewriting the database cannot also rewrite the history already published.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vault.audit.models import AuditCheckpoint
from vault.audit.service import AuditLog
from vault.crypto import signed_note
from vault.db import unit_of_work
from vault.settings import Settings


class CheckpointUnavailable(Exception):
    """The log has no signing key yet (run ``vault init``)."""


@dataclass(frozen=True)
class LogIdentity:
    """The log's origin line and its signing key."""

    origin: str
    signing_key: str = field(repr=False)

    @property
    def vkey(self) -> str:
        """The verifier key in signed-note form (``<name>+<id>+<key>``)."""
        return signed_note.vkey_from_skey(self.signing_key)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def create_log_identity(settings: Settings) -> LogIdentity:
    """Create the instance id and the log's Ed25519 key in the data dir if they are missing."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not settings.instance_file.exists():
        _write_private(settings.instance_file, secrets.token_hex(8) + "\n")
    identity = load_log_identity(settings, create=True)
    assert identity is not None
    return identity


def load_log_identity(settings: Settings, *, create: bool = False) -> LogIdentity | None:
    """The configured origin and key, or ``None`` when the vault was never initialised."""
    origin = settings.log_origin
    if origin is None:
        try:
            origin = "vault.localhost/" + settings.instance_file.read_text("utf-8").strip()
        except FileNotFoundError:
            return None
    key = settings.log_signing_key
    if key is None:
        try:
            key = settings.log_key_file.read_text("utf-8").strip()
        except FileNotFoundError:
            if not create:
                return None
            key, _vkey = signed_note.generate_signer(origin)
            _write_private(settings.log_key_file, key + "\n")
    return LogIdentity(origin, key)


class Checkpoints:
    """Issuing and reading checkpoints on one database session."""

    def __init__(self, session: Session, *, identity: LogIdentity | None,
                 clock: Callable[[], datetime]) -> None:
        self.session = session
        self.identity = identity
        self.clock = clock

    def latest(self) -> AuditCheckpoint | None:
        """The newest checkpoint, if any."""
        return self.session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc(),
                                             AuditCheckpoint.created_at.desc()).limit(1)
        )

    def all(self) -> list[AuditCheckpoint]:
        """Every checkpoint, oldest first."""
        return list(self.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)))

    def due(self, every: int, seconds: int) -> bool:
        """Whether enough events or time have passed since the last checkpoint."""
        size = AuditLog(self.session, clock=self.clock).size()
        latest = self.latest()
        if latest is None:
            return size > 0
        if size <= latest.size:
            return False
        return (size - latest.size >= every
                or self.clock() - latest.created_at >= timedelta(seconds=seconds))

    def issue(self) -> tuple[AuditCheckpoint, bool]:
        """Sign the log's current size and root; returns it and whether it is new (the latest
        is reused when nothing changed)."""
        if self.identity is None:
            raise CheckpointUnavailable("The audit log has no signing key; run 'vault init'.")
        log = AuditLog(self.session, clock=self.clock)
        log.sequence()  # takes the lock: nothing slips in between the size and the root
        size = log.size()
        root = log.root(size)
        latest = self.latest()
        if latest is not None and latest.size == size and latest.root == root:
            return latest, False
        text = signed_note.format_checkpoint(self.identity.origin, size, root)
        checkpoint = AuditCheckpoint(
            size=size, root=root, note=signed_note.sign_note(text, self.identity.signing_key),
            created_at=self.clock(),
        )
        self.session.add(checkpoint)
        self.session.flush()
        return checkpoint, True


def publish(path: Path, checkpoint: AuditCheckpoint) -> None:
    """Append a committed checkpoint to the published history file (fsync'd)."""
    line = json.dumps({"size": checkpoint.size, "note": checkpoint.note},
                      sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def issue_and_publish(sessions: sessionmaker[Session], *, identity: LogIdentity | None,
                      clock: Callable[[], datetime], path: Path) -> AuditCheckpoint:
    """Issue a checkpoint in its own transaction and publish it once committed."""
    with unit_of_work(sessions) as session:
        checkpoint, new = Checkpoints(session, identity=identity, clock=clock).issue()
    if new:
        publish(path, checkpoint)
    return checkpoint


def published(path: Path) -> list[str]:
    """The signed notes in the published history file, oldest first."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line)["note"] for line in lines if line.strip()]
