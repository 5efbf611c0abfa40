"""The in-app chain check: the whole log in the database against every signed checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from vault.audit import merkle
from vault.audit.checkpoints import Checkpoints, LogIdentity, published
from vault.audit.models import AuditEvent, AuditNode
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
    AuditLog(session, clock=clock).sequence()  # check every committed event
    stored = [c.note for c in Checkpoints(session, identity=identity, clock=clock).all()]
    checkpoints = open_checkpoints(stored + published(published_path), identity.vkey,
                                   identity.origin)

    # Each event is compared with its level-0 tree node too: that node was written with the
    # event and survives an edit that recomputes the event's own hash.
    query = (
        select(AuditEvent.seq, AuditEvent.leaf, AuditEvent.leaf_hash, AuditNode.hash)
        .outerjoin(AuditNode, and_(AuditNode.level == 0, AuditNode.index == AuditEvent.seq))
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=5000)
    )

    def leaves(rows: Iterable[tuple[int, bytes, bytes, bytes | None]]) -> Iterator[bytes]:
        for expected, (seq, leaf, leaf_hash, node) in enumerate(rows):
            if seq != expected:
                raise VerificationFailed(
                    f"entry {expected}: missing (the next stored entry is {seq})")
            # The full JSON check too: the in-app check can afford it and names the entry.
            check_entry_json(seq, leaf)
            digest = merkle.leaf_hash(leaf)
            if digest != leaf_hash:
                raise VerificationFailed(f"entry {seq}: its bytes do not match its recorded hash")
            if node != digest:
                raise VerificationFailed(
                    f"entry {seq}: does not match the tree node recorded when it was appended")
            yield leaf

    rows = session.execute(query)
    try:
        report = verify_entries(leaves(rows), checkpoints)
    finally:
        rows.close()  # a server-side cursor on PostgreSQL: close it on failure too
    try:
        stored_root = AuditLog(session, clock=clock).root(report.size)
    except LookupError as error:
        raise VerificationFailed(f"the stored tree is incomplete: {error}") from None
    if report.size and stored_root != report.root:
        raise VerificationFailed("the stored tree does not match the entries")
    return f"{report.size} entries, {report.checkpoints} checkpoints verified"
