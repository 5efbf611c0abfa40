"""Signed notes and transparency-log checkpoints: the audit log's signed tree heads.

Two C2SP formats, with Ed25519 keys only (signature type ``0x01``):

* c2sp.org/signed-note — a UTF-8 text ending in a newline, a blank line, then one or more lines
  ``— <key name> base64(4-byte key ID || signature)``. Key IDs are
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``, as in the reference implementation
  ``golang.org/x/mod/sumdb/note``, whose key strings this module reads and writes:
  a verifier key ``<name>+<8 hex id>+base64(0x01 || public key)`` and a signer key
  ``PRIVATE+KEY+<name>+<8 hex id>+base64(0x01 || 32-byte seed)``.
* c2sp.org/tlog-checkpoint — the note text ``<origin>\\n<tree size>\\n<base64 root hash>\\n``
  followed by optional non-empty extension lines.

Parsing is strict and fails closed: anything the reference implementation or the specs would
reject is rejected here too, and on a few points (listed where they are decided) we are stricter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Signature type identifier byte for Ed25519 (c2sp.org/signed-note, "Signature types").
ALG_ED25519 = 0x01
#: Every line of a signature block starts with an em dash and a space.
SIGNATURE_PREFIX = "\u2014 "
#: The spec asks verifiers to cap the signatures per note (and to accept at least 16); 100 is the
#: reference implementation's cap, so a note it accepts is never refused here for its length.
MAX_SIGNATURES = 100
#: Largest tree size written or read: checkpoints are read as unsigned 64-bit by other
#: implementations, so a larger one would not verify elsewhere.
MAX_TREE_SIZE = 2**64 - 1
ROOT_HASH_BYTES = 32

_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64
_KEY_ID_BYTES = 4
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A signed note, key or checkpoint was refused; the subclass says why."""


class MalformedNoteError(NoteError):
    """The note is not a well-formed signed note (encoding, layout or a signature line)."""


class MalformedKeyError(NoteError):
    """A signer or verifier key string is not a valid Ed25519 note key."""


class UntrustedNoteError(NoteError):
    """No signature in the note comes from any of the trusted keys."""


class InvalidSignatureError(NoteError):
    """A signature from a trusted key does not verify over the note text."""


class MalformedCheckpointError(NoteError):
    """The note text is not a well-formed tlog checkpoint."""


class OriginMismatchError(NoteError):
    """The checkpoint is signed correctly but names a different log than expected."""


@dataclass(frozen=True)
class _Verifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, RFC 6962 root hash and opaque extension lines.

    Construction validates every field, so an instance always formats to a valid checkpoint.
    Raises ``MalformedCheckpointError``.
    """

    #: Unique identifier of the log; conventionally a schema-less URL such as ``example.com/log``.
    origin: str
    #: Number of leaves in the tree.
    size: int
    #: Root hash of the RFC 6962 Merkle tree at ``size``.
    root: bytes
    #: Opaque, non-empty lines after the root hash; NOT RECOMMENDED by the spec, kept for parsing.
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        _check_checkpoint_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise MalformedCheckpointError("checkpoint tree size must be an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpointError(
                f"checkpoint tree size must be between 0 and {MAX_TREE_SIZE}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_HASH_BYTES:
            raise MalformedCheckpointError(
                f"checkpoint root hash must be exactly {ROOT_HASH_BYTES} bytes")
        for extension in self.extensions:
            _check_checkpoint_line(extension, "extension line")

    @property
    def text(self) -> str:
        """The checkpoint as note text (ready to be signed)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))


def generate_signer(name: str) -> tuple[str, str]:
    """A fresh Ed25519 note key for ``name`` as ``(skey, vkey)``. Raises ``MalformedKeyError``."""
    _check_key_name(name, MalformedKeyError)
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return _encode_skey(name, seed), _encode_vkey(name, _public_bytes_from_seed(seed))


def vkey_from_skey(skey: str) -> str:
    """The verifier key that checks signatures made with ``skey``. Raises ``MalformedKeyError``."""
    name, _, seed = _parse_skey(skey)
    return _encode_vkey(name, _public_bytes_from_seed(seed))


def sign_note(text: str, skey: str) -> str:
    """``text`` signed with ``skey`` as a signed note.

    Raises ``MalformedNoteError`` (text not valid note text) and ``MalformedKeyError``.
    """
    message = _note_text_bytes(text)
    name, key_id, seed = _parse_skey(skey)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    encoded = base64.b64encode(key_id + signature).decode("ascii")
    return f"{text}\n{SIGNATURE_PREFIX}{name} {encoded}\n"


def open_note(note: str, vkeys: Sequence[str]) -> str:
    """The text of ``note`` once a signature from one of ``vkeys`` verifies.

    Signatures whose (name, key ID) pair matches no trusted key are ignored, as the spec
    requires; every signature line of a trusted key must verify. Raises ``MalformedKeyError``,
    ``MalformedNoteError``, ``InvalidSignatureError`` and ``UntrustedNoteError``.
    """
    if isinstance(vkeys, str):
        # A lone string is a Sequence of characters; refusing it beats trusting nothing.
        raise TypeError("vkeys must be a sequence of verifier keys, not a single string")
    verifiers = _verifier_map(vkeys)
    text, signatures = _split_note(note)
    message = text.encode("utf-8")
    verified = False
    for name, key_id, signature in signatures:
        verifier = verifiers.get((name, key_id))
        if verifier is None:
            continue  # unknown key, or a known name with another key's ID: MUST be ignored
        # Stricter than the reference implementation, which checks only the first line per key
        # and skips the rest: the spec says a known key's signature MUST be verified, so a
        # forged extra line is a tampered note, not noise.
        try:
            verifier.public_key.verify(signature, message)
        except InvalidSignature:
            raise InvalidSignatureError(
                f"invalid signature for key {name}+{key_id.hex()}") from None
        verified = True
    if not verified:
        raise UntrustedNoteError("note has no signature from a trusted key")
    return text


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """The checkpoint note text for a tree head. Raises ``MalformedCheckpointError``."""
    return Checkpoint(origin, size, root, tuple(extensions)).text


def parse_checkpoint(text: str) -> Checkpoint:
    """The tree head in checkpoint note text. Raises ``MalformedCheckpointError``."""
    if not isinstance(text, str):
        raise MalformedCheckpointError("checkpoint text must be a string")
    if "\r" in text:
        raise MalformedCheckpointError("checkpoint lines must end in LF, not CRLF")
    if not text.endswith("\n"):
        raise MalformedCheckpointError("checkpoint text must end with a newline")
    # split("\n"), never splitlines(): U+2028 and friends are ordinary characters here.
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(
            "checkpoint needs an origin, a tree size and a root hash line")
    origin, size_line, root_line, *extensions = lines
    if not _TREE_SIZE.fullmatch(size_line):
        raise MalformedCheckpointError(
            "checkpoint tree size must be decimal digits without leading zeros")
    root = _decode_base64(root_line)
    if root is None:
        raise MalformedCheckpointError("checkpoint root hash is not canonical standard base64")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    extensions: Sequence[str] = (),
    *,
    skey: str,
) -> str:
    """A checkpoint for the tree head, signed with ``skey`` (keyword-only: both are strings).

    Raises ``MalformedCheckpointError`` and ``MalformedKeyError``.
    """
    return sign_note(format_checkpoint(origin, size, root, extensions), skey)


def verify_checkpoint(note: str, vkey: str, expected_origin: str | None = None) -> Checkpoint:
    """The checkpoint in ``note`` once ``vkey``'s signature verifies (and the origin matches).

    Raises the ``open_note`` errors, ``MalformedCheckpointError`` and ``OriginMismatchError``.
    """
    checkpoint = parse_checkpoint(open_note(note, [vkey]))
    if expected_origin is not None and checkpoint.origin != expected_origin:
        raise OriginMismatchError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {expected_origin!r}")
    return checkpoint


# --- keys ---------------------------------------------------------------------------------------


def _key_id(name: str, public_key: bytes) -> bytes:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return digest.digest()[:_KEY_ID_BYTES]


def _public_bytes_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _encode_vkey(name: str, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode("ascii")
    return f"{name}+{_key_id(name, public_key).hex()}+{encoded}"


def _encode_skey(name: str, seed: bytes) -> str:
    encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
    key_id = _key_id(name, _public_bytes_from_seed(seed)).hex()
    return f"PRIVATE+KEY+{name}+{key_id}+{encoded}"


def _decode_key_fields(name: str, hex_id: str, encoded: str, what: str) -> tuple[bytes, bytes]:
    """The key ID and raw 32-byte key of a key string's fields, or ``MalformedKeyError``."""
    _check_key_name(name, MalformedKeyError)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise MalformedKeyError(f"{what} ID must be 8 hexadecimal digits")
    raw = _decode_base64(encoded)
    if not raw:
        raise MalformedKeyError(f"{what} material is not canonical standard base64")
    if raw[0] != ALG_ED25519:
        raise MalformedKeyError(
            f"{what} uses unsupported signature algorithm 0x{raw[0]:02x} (only Ed25519, 0x01)")
    if len(raw) != 1 + _ED25519_KEY_BYTES:
        raise MalformedKeyError(f"{what} must hold a {_ED25519_KEY_BYTES}-byte Ed25519 key")
    return bytes.fromhex(hex_id), raw[1:]


def _parse_skey(skey: str) -> tuple[str, bytes, bytes]:
    """``(name, key ID, seed)`` of a signer key; messages never echo the secret."""
    if not isinstance(skey, str):
        raise MalformedKeyError("signer key must be a string")
    # maxsplit: names never contain '+', but base64 key material can.
    fields = skey.split("+", 4)
    if len(fields) != 5 or fields[:2] != ["PRIVATE", "KEY"]:
        raise MalformedKeyError("signer key must look like PRIVATE+KEY+<name>+<id>+<key>")
    name = fields[2]
    key_id, seed = _decode_key_fields(name, fields[3], fields[4], "signer key")
    # The ID names the public key, so it can only be checked after deriving that key.
    if key_id != _key_id(name, _public_bytes_from_seed(seed)):
        raise MalformedKeyError("signer key ID does not match its key")
    return name, key_id, seed


def _parse_vkey(vkey: str) -> _Verifier:
    if not isinstance(vkey, str):
        raise MalformedKeyError("verifier key must be a string")
    # Messages never echo the string: a signer key pasted where a verifier key belongs would
    # otherwise end up in logs.
    fields = vkey.split("+", 2)
    if len(fields) != 3:
        raise MalformedKeyError("verifier key must look like <name>+<id>+<key>")
    name = fields[0]
    key_id, public_key = _decode_key_fields(name, fields[1], fields[2], "verifier key")
    if key_id != _key_id(name, public_key):
        raise MalformedKeyError(f"verifier key ID does not match its key ({name})")
    return _Verifier(name, key_id, Ed25519PublicKey.from_public_bytes(public_key))


def _verifier_map(vkeys: Sequence[str]) -> dict[tuple[str, bytes], _Verifier]:
    verifiers: dict[tuple[str, bytes], _Verifier] = {}
    for vkey in vkeys:
        verifier = _parse_vkey(vkey)
        known = verifiers.setdefault((verifier.name, verifier.key_id), verifier)
        if known.public_key.public_bytes_raw() != verifier.public_key.public_bytes_raw():
            # Two keys with one name and ID (a 32-bit collision someone computed on purpose):
            # which one a signature is meant for is ambiguous, so trust neither.
            raise MalformedKeyError(
                f"ambiguous verifier keys: two keys share {verifier.name}+{verifier.key_id.hex()}")
    return verifiers


# --- note text ----------------------------------------------------------------------------------


def _check_key_name(name: str, error: type[NoteError]) -> None:
    # The spec forbids Unicode spaces and '+'; control characters could never appear in a
    # note's signature line either, so a name containing one could never verify.
    if (not isinstance(name, str) or not name or "+" in name
            or any(ch.isspace() or ch < " " for ch in name) or not _is_utf8(name)):
        raise error("key name must be non-empty, without spaces, '+' or control characters")


def _is_utf8(text: str) -> bool:
    """False for strings holding lone surrogates, which have no UTF-8 encoding."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_note_characters(note: str, error: type[NoteError], what: str) -> None:
    if not isinstance(note, str):
        raise error(f"{what} must be a string")
    if not _is_utf8(note):
        raise error(f"{what} is not valid UTF-8")
    if any(ch < " " and ch != "\n" for ch in note):
        raise error(f"{what} contains a control character other than newline")


def _note_text_bytes(text: str) -> bytes:
    _check_note_characters(text, MalformedNoteError, "note text")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    return text.encode("utf-8")


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The text of a note and its signatures as ``(name, key ID, signature)``."""
    _check_note_characters(note, MalformedNoteError, "note")
    # The text may contain blank lines; the last one separates it from the signatures.
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNoteError("note signature line must start with an em dash and a space")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    _check_key_name(name, MalformedNoteError)
    raw = _decode_base64(encoded)
    if raw is None or len(raw) <= _KEY_ID_BYTES:
        raise MalformedNoteError(
            "note signature must be canonical base64 of a key ID and signature")
    return name, raw[:_KEY_ID_BYTES], raw[_KEY_ID_BYTES:]


def _check_checkpoint_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise MalformedCheckpointError(f"checkpoint {what} must be a non-empty string")
    if "\r" in line:
        raise MalformedCheckpointError("checkpoint lines must end in LF, not CRLF")
    if "\n" in line:
        raise MalformedCheckpointError(f"checkpoint {what} must be a single line")
    _check_note_characters(line, MalformedCheckpointError, f"checkpoint {what}")


def _decode_base64(encoded: str) -> bytes | None:
    """Bytes of canonical, padded RFC 4648 standard base64, else ``None``.

    Stricter than Go's decoder: non-zero padding bits are refused too, so each value has exactly
    one spelling and a signed checkpoint cannot be re-encoded into a different-looking one.
    """
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == encoded else None
