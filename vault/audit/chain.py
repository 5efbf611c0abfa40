"""The in-app chain check: the whole log in the database against every signed checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit import merkle
from vault.audit.checkpoints import Checkpoints, LogIdentity, published
from vault.audit.models import AuditEvent
from vault.audit.service import AuditLog
from vault.audit.verify import (
    VerificationFailed,
    check_entry_json,
    open_checkpoints,
    verify_entries,
)


def check_database(session: Session, *, identity: LogIdentity | None, published_path: Path,
                   clock: Callable[[], datetime]) -> str:
    """Verify every stored event against the stored and the published checkpoints.

    Returns a summary; raises ``VerificationFailed`` naming the first bad entry (or the range
    between two checkpoints where an entry was altered together with its recorded hash).
    """
    if identity is None:
        raise VerificationFailed("the log has no signing key; run 'vault init'")
    stored = [c.note for c in Checkpoints(session, identity=identity, clock=clock).all()]
    checkpoints = open_checkpoints(stored + published(published_path), identity.vkey,
                                   identity.origin)

    def leaves() -> Iterator[bytes]:
        rows = session.execute(
            select(AuditEvent.seq, AuditEvent.leaf, AuditEvent.leaf_hash)
            .order_by(AuditEvent.seq).execution_options(yield_per=5000)
        )
        for expected, (seq, leaf, leaf_hash) in enumerate(rows):
            if seq != expected:
                raise VerificationFailed(
                    f"entry {expected}: missing (the next stored entry is {seq})")
            # The full JSON check too: the in-app check can afford it and names the entry.
            check_entry_json(seq, leaf)
            if merkle.leaf_hash(leaf) != leaf_hash:
                raise VerificationFailed(f"entry {seq}: its bytes do not match its recorded hash")
            yield leaf

    report = verify_entries(leaves(), checkpoints)
    if report.size and AuditLog(session, clock=clock).root(report.size) != report.root:
        raise VerificationFailed("the stored tree does not match the entries")
    return f"{report.size} entries, {report.checkpoints} checkpoints verified"
