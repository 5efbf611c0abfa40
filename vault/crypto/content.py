"""Document content encryption: the blob format (see ``docs/FORMAT.md``).

A blob is a 5-byte header (magic ``VLTB`` and the format version) followed by the
Cobblestone-256 ciphertext (C2SP chunked-encryption: 16 KiB chunks of AES-256-GCM, key-committing,
truncation- and reordering-proof) of the document under a fresh 32-byte data key (DEK). The
encryption context binds the blob to its programme, consortium, document, version and purpose, so
a blob moved to another document or rolled back to an older version does not decrypt.
"""

from __future__ import annotations

import json
import uuid

from cryptography.cobblestone import Cobblestone256Decryptor, Cobblestone256Encryptor
from cryptography.exceptions import InvalidTag

MAGIC = b"VLTB"
FORMAT_VERSION = 1
HEADER = MAGIC + bytes([FORMAT_VERSION])
DATA_KEY_BYTES = 32
#: Cobblestone-256 chunk size (plaintext bytes per chunk); for documentation and tests.
CHUNK_SIZE = 16 * 1024
PURPOSE_DOCUMENT = "document-content"


class IntegrityError(Exception):
    """Ciphertext failed authentication: tampered, truncated, reordered, swapped or wrong key."""


def content_context(
    *,
    programme: str,
    consortium_id: uuid.UUID,
    document_id: uuid.UUID,
    version: int,
    purpose: str = PURPOSE_DOCUMENT,
    format_version: int = FORMAT_VERSION,
) -> bytes:
    """The canonical encryption context of one document version (also the DEK's wrap AAD).

    Canonical JSON: sorted keys, no whitespace, UTF-8, UUIDs in lowercase hyphenated form.
    """
    return json.dumps(
        {
            "consortium": str(consortium_id),
            "document": str(document_id),
            "format": format_version,
            "programme": programme,
            "purpose": purpose,
            "version": version,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one document version."""
    return Cobblestone256Encryptor.generate_key()


class ContentEncryptor:
    """Streams plaintext into a blob: ``header()``, ``update()`` chunks, then ``finalize()``."""

    def __init__(self, data_key: bytes, context: bytes) -> None:
        self._encryptor = Cobblestone256Encryptor(data_key, context)

    @staticmethod
    def header() -> bytes:
        """The blob header that precedes the ciphertext."""
        return HEADER

    def update(self, plaintext: bytes) -> bytes:
        """Encrypt more plaintext; returns the ciphertext ready so far (may be empty)."""
        return self._encryptor.update(plaintext)

    def finalize(self) -> bytes:
        """The last ciphertext chunk; the blob is complete after it."""
        return self._encryptor.finalize()


class ContentDecryptor:
    """Streams a blob back to plaintext. Output is verified chunk by chunk, and the last byte
    comes only from ``finalize()``: the document is complete and authentic only once
    ``finalize()`` returns without raising."""

    def __init__(self, data_key: bytes, context: bytes) -> None:
        self._decryptor = Cobblestone256Decryptor(data_key, context)
        self._header = b""
        # The last plaintext byte released so far is held back until ``finalize`` succeeds:
        # a document of exactly k x 16 KiB ends in an empty chunk, and without this every byte
        # would be out before a tampered ending (that chunk dropped or altered) is detected.
        self._held = b""

    def update(self, blob_bytes: bytes) -> bytes:
        """Feed blob bytes (header included); returns verified plaintext so far.

        Raises ``IntegrityError`` on a bad header or a chunk that fails authentication.
        """
        if len(self._header) < len(HEADER):
            needed = len(HEADER) - len(self._header)
            self._header += blob_bytes[:needed]
            blob_bytes = blob_bytes[needed:]
            if not HEADER.startswith(self._header):
                raise IntegrityError("not a vault blob of a known format version")
            if not blob_bytes:
                return b""
        try:
            plain = self._decryptor.update(blob_bytes)
        except InvalidTag:
            raise IntegrityError("ciphertext chunk failed authentication") from None
        if not plain:
            return b""
        # One copy: the byte held from before, then all but the last byte of this output.
        released = b"".join((self._held, memoryview(plain)[:-1]))
        self._held = plain[-1:]
        return released

    def finalize(self) -> bytes:
        """The last plaintext; raises ``IntegrityError`` if the blob is truncated or extended."""
        if self._header != HEADER:
            raise IntegrityError("blob ends inside its header")
        try:
            last = self._decryptor.finalize()
        except InvalidTag:
            raise IntegrityError("blob is truncated, extended or was altered") from None
        held, self._held = self._held, b""
        return held + last


def encrypted_size(plaintext_size: int) -> int:
    """The size of the blob for a plaintext of this size (header + Cobblestone-256 overhead)."""
    # The last chunk is always shorter than a full chunk (possibly empty), so there are
    # size // 16 KiB + 1 chunks, each with a 16-byte tag; 56 bytes are the fixed overhead.
    chunks = plaintext_size // CHUNK_SIZE + 1
    return len(HEADER) + 56 + plaintext_size + 16 * chunks
