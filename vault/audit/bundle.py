"""Export bundles of the audit log (their offline verification is ``vault.audit.verify``).

A full bundle is a zip file:

- ``entries.jsonl``: line i is exactly the bytes of leaf i (the event's canonical JSON), for the
  whole log;
- ``checkpoint``: a signed checkpoint covering exactly those entries;
- ``checkpoints``: every checkpoint issued before it (signed notes as JSON strings, one per
  line), so a verifier can locate an altered entry between two of them;
- ``consistency/<old size>``: for each checkpoint given with ``--since``, that checkpoint and
  an RFC 6962 consistency proof from it to the new one (one base64 hash per line);
- ``entries.csv``: the same events as a spreadsheet;
- ``MANIFEST.sha256``: ``sha256sum`` lines for every other file.

A filtered bundle (one consortium's or one document's events) holds instead ``filter`` (what it
was narrowed to, how many entries it holds and the size of the log at its checkpoint), those
entries, the checkpoint of the whole log and ``proofs/<seq>.tlog-proof``, a C2SP tlog-proof of
each entry's inclusion. It proves each entry is in the log, never that none was left out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit import tlog_proof
from vault.audit.checkpoints import Checkpoints
from vault.audit.errors import InvalidExportFilter, UnknownExportFilter
from vault.audit.models import AuditCheckpoint, AuditEvent
from vault.audit.service import AuditLog
from vault.audit.verify import (
    CSV_COLUMNS,
    VerificationFailed,
    csv_lines,
    csv_row,
    open_checkpoints,
)
from vault.consortia.models import Consortium
from vault.crypto import signed_note
from vault.documents.models import Document

BATCH = 5000


@dataclass(frozen=True)
class ExportFilter:
    """What a filtered export is narrowed to: one consortium or one document."""

    kind: str  # "consortium" or "document", the key of the events' target it matches
    id: uuid.UUID

    def as_target(self) -> dict[str, str]:
        """The filter as the events' targets (and the bundle's ``filter`` file) name it."""
        return {self.kind: str(self.id)}


def parse_export_filter(consortium: Sequence[str], document: Sequence[str]
                        ) -> ExportFilter | None:
    """The filter from a request's values (each given at most once; ``None`` for a full
    export). Raises ``InvalidExportFilter`` on a malformed or repeated id, or both kinds."""
    if consortium and document:
        raise InvalidExportFilter("Export one consortium or one document, not both.")
    if len(consortium) > 1:
        raise InvalidExportFilter("Give the consortium to export once.")
    if len(document) > 1:
        raise InvalidExportFilter("Give the document to export once.")
    if consortium:
        try:
            return ExportFilter("consortium", uuid.UUID(consortium[0]))
        except ValueError:
            raise InvalidExportFilter("The consortium to export is not a valid id.") from None
    if document:
        try:
            return ExportFilter("document", uuid.UUID(document[0]))
        except ValueError:
            raise InvalidExportFilter("The document to export is not a valid id.") from None
    return None


def check_export_filter(session: Session, wanted: ExportFilter) -> None:
    """Raises ``UnknownExportFilter`` unless the consortium or document exists in this vault
    (an id nobody ever used would give an empty bundle that looks like a clean record)."""
    if wanted.kind == "consortium":
        if session.get(Consortium, wanted.id) is None:
            raise UnknownExportFilter("There is no such consortium to export.")
    elif session.get(Document, wanted.id) is None:
        raise UnknownExportFilter("There is no such document to export.")


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    size: int
    checkpoint: str
    #: A checkpoint the export issued: publish it once the transaction has committed.
    to_publish: AuditCheckpoint | None = None


def _entries(session: Session, size: int) -> Iterator[bytes]:
    start = 0
    while start < size:
        rows = session.scalars(
            select(AuditEvent.leaf).where(AuditEvent.seq >= start, AuditEvent.seq < size)
            .order_by(AuditEvent.seq).limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        start += len(rows)


def export_filtered(session: Session, checkpoints: Checkpoints, out: Path | BinaryIO,
                    wanted: ExportFilter) -> Exported:
    """Write a bundle of the events of one consortium or one document, each with a C2SP
    tlog-proof of its inclusion in a fresh signed checkpoint of the whole log.

    A filtered bundle proves that every entry in it is in the log; it cannot prove that no
    other entry matches the filter (only a full export can). Its ``filter`` file records the
    count and the checkpoint's size, which catches a careless removal, not a forger (they are
    not signed).
    """
    log = AuditLog(session, clock=checkpoints.clock)
    checkpoint, new = checkpoints.issue()
    column = AuditEvent.consortium_id if wanted.kind == "consortium" else AuditEvent.document_id
    selected = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf)
        .where(column == wanted.id, AuditEvent.seq < checkpoint.size).order_by(AuditEvent.seq)
    ).all()
    filter_json = json.dumps({**wanted.as_target(), "count": len(selected),
                              "size": checkpoint.size}, sort_keys=True)
    digests: dict[str, str] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        def add(name: str, data: bytes) -> None:
            bundle.writestr(name, data)
            digests[name] = hashlib.sha256(data).hexdigest()

        add("filter", (filter_json + "\n").encode())
        add("checkpoint", checkpoint.note.encode())
        add("entries.jsonl", b"".join(leaf + b"\n" for _seq, leaf in selected))
        add("entries.csv", b"".join(csv_lines([CSV_COLUMNS],
                                              (csv_row(leaf) for _seq, leaf in selected))))
        for seq, _leaf in selected:
            proof = log.inclusion_proof(seq, checkpoint.size)
            add(f"proofs/{seq}.tlog-proof",
                tlog_proof.format_proof(seq, proof, checkpoint.note).encode())
        bundle.writestr("MANIFEST.sha256",
                        "".join(f"{digests[n]}  {n}\n" for n in sorted(digests)))
    return Exported(size=len(selected), checkpoint=checkpoint.note,
                    to_publish=checkpoint if new else None)


def export_bundle(session: Session, checkpoints: Checkpoints, out: Path | BinaryIO,
                  since: list[str], vkey: str) -> Exported:
    """Write a bundle of the whole log with a fresh checkpoint to ``out``.

    ``since`` are signed checkpoints the recipient already holds; each gets a consistency
    proof to the new checkpoint. Raises ``VerificationFailed`` if one of them does not verify
    or is not a prefix of this log.
    """
    log = AuditLog(session, clock=checkpoints.clock)
    checkpoint, new = checkpoints.issue()
    size = checkpoint.size
    previous = open_checkpoints(since, vkey, checkpoints.identity.origin if
                                checkpoints.identity else None)
    history = [c.note for c in checkpoints.all() if c.size <= size and c.id != checkpoint.id]
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        digests: dict[str, str] = {}

        def add(name: str, data: bytes) -> None:
            bundle.writestr(name, data)
            digests[name] = hashlib.sha256(data).hexdigest()

        # entries.jsonl is written first, on its own, streamed: the log may hold millions of
        # events. The CSV view follows in a second pass (a zip member is written at once).
        entries_hash = hashlib.sha256()
        with bundle.open("entries.jsonl", "w") as entries:
            for leaf in _entries(session, size):
                entries.write(leaf + b"\n")
                entries_hash.update(leaf + b"\n")
        digests["entries.jsonl"] = entries_hash.hexdigest()
        csv_hash = hashlib.sha256()
        with bundle.open("entries.csv", "w") as table:
            for row in csv_lines([CSV_COLUMNS], (csv_row(leaf) for leaf in
                                                  _entries(session, size))):
                table.write(row)
                csv_hash.update(row)
        digests["entries.csv"] = csv_hash.hexdigest()
        add("checkpoint", checkpoint.note.encode())
        add("checkpoints", "".join(json.dumps(n) + "\n" for n in history).encode())
        for old in previous:
            if old.size > size:
                raise VerificationFailed(f"checkpoint of size {old.size} is newer than the log")
            if old.root != log.root(old.size):
                raise VerificationFailed(
                    f"checkpoint of size {old.size} is not a prefix of this log (equivocation)")
            proof = log.consistency_proof(old.size, size) if 0 < old.size < size else []
            files[f"consistency/{old.size}"] = (
                signed_note.format_checkpoint(old.origin, old.size, old.root)
                + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            ).encode()
        for name, data in files.items():
            add(name, data)
        manifest = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
        bundle.writestr("MANIFEST.sha256", manifest)
    return Exported(size=size, checkpoint=checkpoint.note, to_publish=checkpoint if new else None)
