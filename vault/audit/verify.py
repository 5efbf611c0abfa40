"""Checking the log: from the database (the in-app chain check) or from an exported bundle.

Both walk every entry in order and check: sequence numbers contiguous from 0, each entry's
canonical JSON, times never decreasing, and the running Merkle root against every signed
checkpoint at its size (signature and origin checked with the verifier key). Two checkpoints of
one size with different roots are equivocation. The first failure is named by its entry.
"""

from __future__ import annotations

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
                   *, final: signed_note.Checkpoint | None = None) -> Report:
    """Walk the entries (leaf bytes, in order) against the checkpoints.

    ``final`` must cover exactly all entries (the checkpoint of an export bundle).
    """
    pending = sorted(checkpoints, key=lambda c: c.size)
    matched = 0
    stack: list[tuple[int, bytes]] = []  # complete subtrees: (size, hash), left to right
    last_time = ""
    size = 0
    for seq, leaf in enumerate(entries):
        _check_entry(seq, leaf, last_time)
        last_time = json.loads(leaf)["time"]
        _push(stack, merkle.leaf_hash(leaf))
        size = seq + 1
        while pending and pending[0].size == size:
            checkpoint = pending.pop(0)
            if _root(stack) != checkpoint.root:
                start = 0 if matched == 0 else matched
                raise VerificationFailed(
                    f"entries {start}..{size - 1}: the root at size {size} does not match the "
                    f"signed checkpoint; an entry in that range was altered, removed or inserted"
                )
            matched = size
    if pending:
        raise VerificationFailed(
            f"the log has {size} entries but a checkpoint covers {pending[0].size}: "
            "entries were removed (truncated log)"
        )
    root = _root(stack)
    if final is not None:
        if final.size != size:
            raise VerificationFailed(
                f"the checkpoint covers {final.size} entries, the bundle holds {size}")
        if final.root != root:
            raise VerificationFailed(
                f"entries {matched}..{size - 1}: the root of the bundle does not match its "
                "checkpoint")
    return Report(size=size, root=root, checkpoints=len(checkpoints))


def _check_entry(seq: int, leaf: bytes, last_time: str) -> None:
    try:
        event = json.loads(leaf)
    except ValueError:
        raise VerificationFailed(f"entry {seq}: not JSON") from None
    if not isinstance(event, dict) or canonical_json(event) != leaf:
        raise VerificationFailed(f"entry {seq}: not canonical JSON")
    if event.get("seq") != seq:
        raise VerificationFailed(
            f"entry {seq}: carries sequence number {event.get('seq')!r} "
            "(entries reordered, removed or duplicated)")
    moment = event.get("time")
    if not isinstance(moment, str) or len(moment) != 27 or not moment.endswith("Z"):
        raise VerificationFailed(f"entry {seq}: malformed time {moment!r}")
    # RFC 3339 with fixed width and 'Z' compares correctly as text.
    if moment < last_time:
        raise VerificationFailed(f"entry {seq}: time {moment} is earlier than the entry before")


def _push(stack: list[tuple[int, bytes]], leaf_hash: bytes) -> None:
    size, value = 1, leaf_hash
    while stack and stack[-1][0] == size:
        left_size, left = stack.pop()
        value = merkle.node_hash(left, value)
        size += left_size
    stack.append((size, value))


def _root(stack: list[tuple[int, bytes]]) -> bytes:
    if not stack:
        return merkle.EMPTY_ROOT
    value = stack[-1][1]
    for _size, left in reversed(stack[:-1]):
        value = merkle.node_hash(left, value)
    return value
