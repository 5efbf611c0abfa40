"""Checking the log: from the database (the in-app chain check) or from an exported bundle.

Both walk every entry in order and check: sequence numbers contiguous from 0, each entry's
canonical JSON, times never decreasing, and the running Merkle root against every signed
checkpoint at its size (signature and origin checked with the verifier key). Two checkpoints of
one size with different roots are equivocation. The first failure is named by its entry.

This module is the auditor's offline verifier: it needs the bundle and the verifier key only.
It imports neither Flask nor the database layer, reads no settings and writes nothing::

    python -m vault.audit.verify BUNDLE --vkey VKEY [--previous CHECKPOINT] [--skip-csv]

A full bundle proves the log complete up to its checkpoint. A filtered bundle (one
consortium's or one document's events) proves only that each of its entries is in the log:
nothing in it can show that another matching entry was left out, and the verifier says so.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vault.audit import merkle, tlog_proof
from vault.audit.canonical import canonical_json
from vault.crypto import signed_note

#: The spreadsheet view of the entries (``entries.csv``).
CSV_COLUMNS = ("seq", "time", "tag", "actor", "role", "decision", "target", "reasons",
               "client", "request")
#: What a filtered bundle may be narrowed to.
FILTER_KINDS = ("consortium", "document")


class VerificationFailed(Exception):
    """The log or bundle is not intact; the message names the first problem."""


@dataclass
class Report:
    """What a successful check established.

    ``filter`` is set for a filtered bundle (``{"consortium": id}`` or ``{"document": id}``):
    then ``size`` counts its entries and ``log_size`` is the size of the log at its checkpoint.
    """

    size: int
    root: bytes
    checkpoints: int
    notes: list[str] = field(default_factory=list)
    filter: dict[str, str] | None = None
    log_size: int | None = None
    previous_size: int | None = None

    def statement(self) -> str:
        """What the bundle proves, and for a filtered bundle what it cannot, in plain words."""
        if self.filter is not None:
            kind, value = next(iter(self.filter.items()))
            return (f"filtered bundle ({kind} {value}): each of the {self.size} entries is "
                    f"proved included in the log at checkpoint size {self.log_size}; this does "
                    f"NOT prove that no other entries for {kind} {value} exist — only a full "
                    "export proves completeness")
        text = (f"full bundle: the log is complete up to the signed checkpoint of size "
                f"{self.size}: no entry is missing, altered, reordered or inserted")
        if self.previous_size is not None:
            text += (f"; the log grew from the previous checkpoint of size "
                     f"{self.previous_size} without rewriting it")
        return text

    def summary(self) -> str:
        """The verifier's output: the figures, then what they prove."""
        return (f"OK: {self.size} entries, root {self.root.hex()}, {self.checkpoints} "
                f"checkpoints\n{self.statement()}")


def open_checkpoints(notes: Iterable[str], vkey: str, origin: str | None
                     ) -> list[signed_note.Checkpoint]:
    """Verify signed checkpoints; raises ``VerificationFailed`` on a bad one or on equivocation."""
    by_size: dict[int, signed_note.Checkpoint] = {}
    for note in notes:
        try:
            checkpoint = signed_note.verify_checkpoint(note, vkey, expected_origin=origin)
        except ValueError as error:
            raise VerificationFailed(f"checkpoint does not verify: {error}") from None
        seen = by_size.get(checkpoint.size)
        if seen is not None and seen.root != checkpoint.root:
            raise VerificationFailed(
                f"equivocation: two checkpoints of size {checkpoint.size} with different roots"
            )
        by_size[checkpoint.size] = checkpoint
    return [by_size[size] for size in sorted(by_size)]


def verify_entries(entries: Iterable[bytes], checkpoints: Sequence[signed_note.Checkpoint],
                   *, final: signed_note.Checkpoint | None = None,
                   previous: signed_note.Checkpoint | None = None) -> Report:
    """Walk the entries (leaf bytes, in order) against the checkpoints.

    ``final`` must cover exactly all entries (the checkpoint of an export bundle). The loop is
    written for speed — a log holds millions of events: the sequence number and the time are
    read straight from the canonical bytes (sorted keys put ``time`` last), and the tree is
    folded with plain ``hashlib`` calls.
    """
    pending = sorted(checkpoints, key=lambda c: c.size)
    # The empty log: a checkpoint of size 0 must carry the empty root.
    while pending and pending[0].size == 0:
        if pending.pop(0).root != merkle.EMPTY_ROOT:
            raise VerificationFailed("a checkpoint of size 0 does not carry the empty root")
    if previous is not None and previous.size == 0 and previous.root != merkle.EMPTY_ROOT:
        raise VerificationFailed("the previous checkpoint (size 0) is not of an empty log")
    previous_root: bytes | None = None
    position = 0
    next_size = pending[0].size if pending else -1
    matched = 0
    stack: list[bytes] = []  # complete subtrees, left to right (sizes follow from the count)
    sha = hashlib.sha256
    last_time = b""
    size = 0
    for seq, leaf in enumerate(entries):
        # Sorted keys put "time" last: the entry ends with ,"time":"<27 characters>"}
        if leaf[-38:-29] != b',"time":"' or leaf[-3:] != b'Z"}' or leaf[:1] != b"{":
            _entry_time(seq, leaf)  # raises, naming the problem
        moment = leaf[-29:-2]
        if moment < last_time:
            raise VerificationFailed(
                f"entry {seq}: time {moment.decode()} is earlier than the entry before")
        last_time = moment
        # A quote inside a JSON string is escaped, so this can only be the top-level key.
        if b',"seq":%d,' % seq not in leaf:
            _wrong_seq(seq, leaf)
        value = sha(b"\x00" + leaf).digest()
        count = seq
        while count & 1:
            value = sha(b"\x01" + stack.pop() + value).digest()
            count >>= 1
        stack.append(value)
        size = seq + 1
        if previous is not None and size == previous.size:
            previous_root = _fold(stack)
        if size == next_size:
            while position < len(pending) and pending[position].size == size:
                if _fold(stack) != pending[position].root:
                    raise VerificationFailed(
                        f"entries {matched}..{size - 1}: the root at size {size} does not match "
                        "the signed checkpoint; an entry in that range was altered, removed or "
                        "inserted")
                position += 1
            matched = size
            next_size = pending[position].size if position < len(pending) else -1
    if position < len(pending):
        raise VerificationFailed(
            f"the log has {size} entries but a checkpoint covers {pending[position].size}: "
            "entries were removed (truncated log)"
        )
    root = _fold(stack)
    if previous is not None and previous.size > 0:
        if previous.size > size:
            raise VerificationFailed(
                f"the previous checkpoint covers {previous.size} entries, more than the "
                f"{size} here: the log was truncated")
        if previous_root != previous.root:
            raise VerificationFailed(
                f"equivocation: the previous checkpoint of size {previous.size} is not a prefix "
                "of this log (the log was forked or rewritten)")
    if final is not None:
        if final.size != size:
            raise VerificationFailed(
                f"the checkpoint covers {final.size} entries, the bundle holds {size}")
        if final.root != root:
            raise VerificationFailed(
                f"entries {matched}..{size - 1}: the root of the bundle does not match its "
                "checkpoint")
    return Report(size=size, root=root, checkpoints=len(checkpoints))


def _entry_time(seq: int, leaf: bytes) -> bytes:
    """The RFC 3339 time of a canonical entry (its last field), checked for shape."""
    if not (leaf.startswith(b"{") and leaf.endswith(b'Z"}')
            and leaf[-37:-29] == b',"time":"'[1:] and leaf[-38:-37] == b","):
        raise VerificationFailed(f"entry {seq}: not a canonical event (no time at its end)")
    moment = leaf[-29:-2]
    if moment[4:5] != b"-" or moment[10:11] != b"T" or moment[19:20] != b".":
        raise VerificationFailed(f"entry {seq}: malformed time {moment.decode(errors='replace')}")
    return moment


def _wrong_seq(seq: int, leaf: bytes) -> None:
    marker = leaf.find(b',"seq":')
    found = leaf[marker + 7:leaf.find(b",", marker + 7)].decode(errors="replace") \
        if marker >= 0 else "none"
    raise VerificationFailed(f"entry {seq}: carries sequence number {found} "
                             "(entries reordered, removed or duplicated)")


def check_entry_json(seq: int, leaf: bytes) -> None:
    """The full check of one entry: canonical JSON with the right sequence number (used where
    speed does not matter, e.g. when naming a bad entry)."""
    try:
        event = json.loads(leaf)
    except ValueError:
        raise VerificationFailed(f"entry {seq}: not JSON") from None
    if not isinstance(event, dict) or canonical_json(event) != leaf:
        raise VerificationFailed(f"entry {seq}: not canonical JSON")
    if event.get("seq") != seq:
        raise VerificationFailed(f"entry {seq}: carries sequence number {event.get('seq')!r}")


def _fold(stack: list[bytes]) -> bytes:
    if not stack:
        return merkle.EMPTY_ROOT
    sha = hashlib.sha256
    value = stack[-1]
    for left in reversed(stack[:-1]):
        value = sha(b"\x01" + left + value).digest()
    return value


# -- bundles ------------------------------------------------------------------------------------


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
            if previous is not None:
                # A filtered bundle carries no consistency proof: saying nothing would let an
                # auditor believe the growth was checked.
                raise VerificationFailed(
                    "a filtered bundle cannot show that the log grew from a previous "
                    "checkpoint; verify a full export with --previous")
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
    report.log_size = report.size
    report.previous_size = earlier.size if earlier is not None else None
    return report


def _verify_filtered(bundle: zipfile.ZipFile, final: signed_note.Checkpoint) -> Report:
    """Every entry of a filtered bundle matches its filter and is proven in the checkpoint;
    the count and checkpoint size the filter file records agree with what the bundle holds."""
    try:
        recorded = json.loads(bundle.read("filter"))
    except ValueError:
        raise VerificationFailed("the filter file is not JSON") from None
    if not isinstance(recorded, dict):
        raise VerificationFailed("the filter file names neither a consortium nor a document")
    kinds = [kind for kind in FILTER_KINDS if kind in recorded]
    if len(kinds) != 1 or set(recorded) - {kinds[0], "count", "size"} \
            or not isinstance(recorded[kinds[0]], str):
        raise VerificationFailed("the filter file names neither a consortium nor a document")
    key = kinds[0]
    value = recorded[key]
    if "size" in recorded and recorded["size"] != final.size:
        raise VerificationFailed(
            f"the filter records a checkpoint of size {recorded['size']}, the bundle's "
            f"checkpoint covers {final.size}")
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
    # The count is not signed: it catches a careless removal, not a forger who rewrites the
    # filter file too (the statement printed with the result says so).
    if "count" in recorded and recorded["count"] != count:
        raise VerificationFailed(
            f"the filter records {recorded['count']} entries, the bundle holds {count}: an "
            "entry was removed or added")
    return Report(size=count, root=final.root, checkpoints=1, filter={key: value},
                  log_size=final.size)


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


# -- the auditor's entry point ------------------------------------------------------------------


def verify_files(bundle: Path, vkey: str, previous: Path | None = None, *,
                 check_csv: bool = True) -> Report:
    """Verify ``bundle`` with a verifier key given inline or as a file, and an optional
    previous checkpoint file; raises ``VerificationFailed`` (also for unreadable inputs)."""
    try:
        key = Path(vkey).read_text("utf-8").strip() if Path(vkey).is_file() else vkey.strip()
        earlier = previous.read_text("utf-8") if previous is not None else None
    except (OSError, UnicodeDecodeError) as error:
        raise VerificationFailed(f"cannot read {error.filename or 'an input'}: "
                                 f"{error.strerror or error}") from None
    return verify_bundle(bundle, key, earlier, check_csv=check_csv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vault.audit.verify``: 0 and what the bundle proves, or 2 and the problem."""
    parser = argparse.ArgumentParser(
        prog="python -m vault.audit.verify",
        description="Verify an exported audit bundle offline, with the log's verifier key only.")
    parser.add_argument("bundle", type=Path, help="the bundle (zip) from 'vault audit export'")
    parser.add_argument("--vkey", required=True,
                        help="the log's verifier key, or a file holding it")
    parser.add_argument("--previous", type=Path,
                        help="a checkpoint from an earlier export: the log must have grown "
                             "from it")
    parser.add_argument("--skip-csv", action="store_true",
                        help="do not rebuild and compare the CSV view (faster on huge bundles)")
    args = parser.parse_args(argv)
    try:
        report = verify_files(args.bundle, args.vkey, args.previous,
                              check_csv=not args.skip_csv)
    except VerificationFailed as failure:
        print(f"verification FAILED: {failure}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
