"""The C2SP tlog-proof format (c2sp.org/tlog-proof): an entry's index, its RFC 6962 inclusion
proof and the signed checkpoint it is included in, as one offline-verifiable text."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from vault.audit import merkle

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"^index (0|[1-9][0-9]*)$")


class TlogProofError(ValueError):
    """A proof that is malformed."""


@dataclass(frozen=True)
class TlogProof:
    """A parsed proof: the entry's index, the inclusion proof, and the checkpoint note."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


def format_proof(index: int, hashes: list[bytes], checkpoint: str,
                 extra: bytes | None = None) -> str:
    """The proof as text (the checkpoint, a signed note, is included verbatim)."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode() for h in hashes)
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_proof(text: str) -> TlogProof:
    """Parse a proof; raises ``TlogProofError`` naming what is wrong."""
    head, separator, checkpoint = text.partition("\n\n")
    if not separator or not checkpoint:
        raise TlogProofError("no checkpoint after the proof lines")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"the first line must be {HEADER!r}")
    position, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = _b64(lines[1][len("extra "):], "extra data")
        position = 2
    if position >= len(lines) or not (match := _INDEX.match(lines[position])):
        raise TlogProofError("missing or malformed 'index' line")
    hashes = tuple(_b64(line, "proof hash") for line in lines[position + 1:])
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise TlogProofError("every proof hash must be 32 bytes")
    return TlogProof(int(match.group(1)), hashes, checkpoint, extra)


def _b64(value: str, what: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TlogProofError(f"malformed base64 in {what}") from None
    if base64.b64encode(decoded).decode() != value:
        raise TlogProofError(f"non-canonical base64 in {what}")
    return decoded
