"""Checking the log: from the database (the in-app chain check) or from an exported bundle.

Both walk every entry in order and check: sequence numbers contiguous from 0, each entry's
canonical JSON, times never decreasing, and the running Merkle root against every signed
checkpoint at its size (signature and origin checked with the verifier key). Two checkpoints of
one size with different roots are equivocation. The first failure is named by its entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vault.audit import merkle
from vault.audit.service import canonical_json
from vault.crypto import signed_note


class VerificationFailed(Exception):
    """The log or bundle is not intact; the message names the first problem."""


@dataclass
class Report:
    """What a successful check established."""

    size: int
    root: bytes
    checkpoints: int
    notes: list[str] = field(default_factory=list)


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
