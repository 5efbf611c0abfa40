"""Export bundles of the audit log, and their offline verification.

A bundle is a zip file:

- ``entries.jsonl``: line i is exactly the bytes of leaf i (the event's canonical JSON), for the
  whole log;
- ``checkpoint``: a signed checkpoint covering exactly those entries;
- ``checkpoints``: every checkpoint issued before it (signed notes as JSON strings, one per
  line), so a verifier can locate an altered entry between two of them;
- ``consistency/<old size>``: for each checkpoint given with ``--since``, that checkpoint and
  an RFC 6962 consistency proof from it to the new one (one base64 hash per line);
- ``entries.csv``: the same events as a spreadsheet;
- ``MANIFEST.sha256``: ``sha256sum`` lines for every other file.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit import merkle, tlog_proof
from vault.audit.checkpoints import Checkpoints
from vault.audit.models import AuditCheckpoint, AuditEvent
from vault.audit.service import AuditLog
from vault.audit.verify import Report, VerificationFailed, open_checkpoints, verify_entries
from vault.crypto import signed_note

CSV_COLUMNS = ("seq", "time", "tag", "actor", "role", "decision", "target", "reasons",
               "client", "request")
BATCH = 5000


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


def csv_row(leaf: bytes) -> list[str]:
    """One event as a row of the spreadsheet view."""
    event = json.loads(leaf)
    actor = event.get("actor") or {}
    request = event.get("request") or {}
    return [str(event["seq"]), event["time"], event["tag"], actor.get("user") or "",
            actor.get("role") or "", event.get("decision", ""),
            json.dumps(event.get("target") or {}, ensure_ascii=False, sort_keys=True),
            "; ".join(event.get("reasons") or []), request.get("client", ""),
            request.get("id", "")]


def export_filtered(session: Session, checkpoints: Checkpoints, out: Path | BinaryIO, *,
                    consortium_id: uuid.UUID | None = None,
                    document_id: uuid.UUID | None = None) -> Exported:
    """Write a bundle of the events of one consortium or one document, each with a C2SP
    tlog-proof of its inclusion in a fresh signed checkpoint of the whole log.

    A filtered bundle proves that every entry in it is in the log; it cannot prove that no
    other entry matches the filter (only a full export can).
    """
    if (consortium_id is None) == (document_id is None):
        raise ValueError("give exactly one of consortium_id and document_id")
    log = AuditLog(session, clock=checkpoints.clock)
    checkpoint, new = checkpoints.issue()
    column = AuditEvent.consortium_id if consortium_id else AuditEvent.document_id
    wanted = consortium_id or document_id
    selected = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf)
        .where(column == wanted, AuditEvent.seq < checkpoint.size).order_by(AuditEvent.seq)
    ).all()
    filter_json = json.dumps({"consortium": str(consortium_id)} if consortium_id else
                             {"document": str(document_id)}, sort_keys=True)
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


def _verify_filtered(bundle: zipfile.ZipFile, final: signed_note.Checkpoint) -> Report:
    """Every entry of a filtered bundle matches its filter and is proven in the checkpoint."""
    wanted = json.loads(bundle.read("filter"))
    if set(wanted) not in ({"consortium"}, {"document"}):
        raise VerificationFailed("the filter file names neither a consortium nor a document")
    key, value = next(iter(wanted.items()))
    note = bundle.read("checkpoint").decode()
    previous = -1
    count = 0
    for line in bundle.read("entries.jsonl").split(b"\n")[:-1]:
        try:
            event = json.loads(line)
            seq = event["seq"]
        except (ValueError, KeyError, TypeError):
            raise VerificationFailed(f"entry after {previous}: not an event") from None
        if not isinstance(seq, int) or seq <= previous:
            raise VerificationFailed(f"entry {seq}: out of order or repeated")
        if (event.get("target") or {}).get(key) != value:
            raise VerificationFailed(f"entry {seq}: does not match the export's filter")
        name = f"proofs/{seq}.tlog-proof"
        if name not in bundle.namelist():
            raise VerificationFailed(f"entry {seq}: no inclusion proof")
        try:
            proof = tlog_proof.parse_proof(bundle.read(name).decode())
            if proof.index != seq or proof.checkpoint != note:
                raise VerificationFailed(f"entry {seq}: its proof is for another entry or log")
            merkle.verify_inclusion(merkle.leaf_hash(line), seq, final.size,
                                    list(proof.hashes), final.root)
        except (tlog_proof.TlogProofError, merkle.ProofError) as error:
            raise VerificationFailed(f"entry {seq}: inclusion proof fails: {error}") from None
        previous = seq
        count += 1
    return Report(size=count, root=final.root, checkpoints=1)


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


def csv_lines(*groups: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """Rows as CSV lines (bytes), group after group."""
    for rows in groups:
        for row in rows:
            buffer = io.StringIO()
            csv.writer(buffer).writerow(row)
            yield buffer.getvalue().encode()


def verify_bundle(path: Path, vkey: str, previous: str | None = None, *,
                  check_csv: bool = True) -> Report:
    """Verify a bundle offline; raises ``VerificationFailed`` naming the first problem.

    The CSV view is rebuilt from the verified entries and compared (``check_csv``), so a
    spreadsheet cannot show what the signed log does not say.
    """
    origin = vkey.split("+", 1)[0]
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise VerificationFailed(f"{path}: not a readable bundle ({error})") from None
    with bundle:
        names = set(bundle.namelist())
        for required in ("entries.jsonl", "checkpoint", "MANIFEST.sha256"):
            if required not in names:
                raise VerificationFailed(f"bundle has no {required}")
        expected = _check_manifest(bundle)
        final = open_checkpoints([bundle.read("checkpoint").decode()], vkey, origin)[0]
        if "filter" in names:
            if hashlib.sha256(bundle.read("entries.jsonl")).hexdigest() != expected:
                raise VerificationFailed("entries.jsonl does not match MANIFEST.sha256")
            report = _verify_filtered(bundle, final)
            if check_csv and "entries.csv" in names:
                _check_csv(bundle)
            return report
        history_notes = [json.loads(line) for line in
                         bundle.read("checkpoints").decode().splitlines() if line.strip()] \
            if "checkpoints" in names else []
        history = open_checkpoints([*history_notes, bundle.read("checkpoint").decode()], vkey,
                                   origin)
        earlier = open_checkpoints([previous], vkey, origin)[0] if previous is not None else None
        for name in sorted(n for n in names if n.startswith("consistency/")):
            _check_consistency(bundle.read(name).decode(), final, name)
        digest = hashlib.sha256()
        with bundle.open("entries.jsonl") as entries:
            report = verify_entries(_lines(entries, digest), history, final=final,
                                    previous=earlier)
        if digest.hexdigest() != expected:
            raise VerificationFailed("entries.jsonl does not match MANIFEST.sha256")
        if check_csv and "entries.csv" in names:
            _check_csv(bundle)
    return report


def _check_csv(bundle: zipfile.ZipFile) -> None:
    """The CSV must be exactly the view of the (verified) entries."""
    rebuilt = hashlib.sha256()
    with bundle.open("entries.jsonl") as entries:
        rows = (csv_row(line) for line in _lines(entries, hashlib.sha256()))
        for row in csv_lines([CSV_COLUMNS], rows):
            rebuilt.update(row)
    stored = hashlib.sha256()
    with bundle.open("entries.csv") as table:
        for block in iter(lambda: table.read(1 << 20), b""):
            stored.update(block)
    if rebuilt.digest() != stored.digest():
        raise VerificationFailed("entries.csv does not show the entries (it was altered)")


def _lines(stream: IO[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    """The entries' lines without their newlines, hashing the file on the way (one pass)."""
    pending = b""
    count = 0
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        count += len(lines)
        yield from lines
    if pending:
        raise VerificationFailed(
            f"entry {count}: cut off (entries.jsonl does not end with a newline: truncated)")


def _check_manifest(bundle: zipfile.ZipFile) -> str:
    """Check every member but ``entries.jsonl`` (checked while it is walked); return the
    digest the manifest gives for ``entries.jsonl``."""
    entries = ""
    for line in bundle.read("MANIFEST.sha256").decode().splitlines():
        digest, _, name = line.partition("  ")
        if name == "entries.jsonl":
            entries = digest
            continue
        if name not in bundle.namelist():
            raise VerificationFailed(f"MANIFEST.sha256 names {name!r}, which is missing")
        sha = hashlib.sha256()
        with bundle.open(name) as member:
            for block in iter(lambda member=member: member.read(1 << 20), b""):
                sha.update(block)
        actual = sha.hexdigest()
        if actual != digest:
            raise VerificationFailed(f"{name} does not match MANIFEST.sha256")
    if not entries:
        raise VerificationFailed("MANIFEST.sha256 does not list entries.jsonl")
    return entries


def _check_consistency(text: str, final: signed_note.Checkpoint, name: str) -> None:
    lines = text.splitlines()
    try:
        old = signed_note.parse_checkpoint("\n".join(lines[:3]) + "\n")
        proof = [base64.b64decode(line, validate=True) for line in lines[3:]]
        if 0 < old.size < final.size:
            merkle.verify_consistency(old.size, final.size, old.root, final.root, proof)
    except (ValueError, merkle.ProofError) as error:
        raise VerificationFailed(f"{name}: consistency proof does not verify: {error}") from None
