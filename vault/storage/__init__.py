"""Blob storage: where ciphertext lives. Backends are chosen by ``VAULT_BLOB_URL``.

A blob store holds opaque ciphertext under random names it chooses itself; it never sees a
user's filename or a byte of plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Protocol


class BlobError(Exception):
    """A blob could not be stored or read."""


class BlobNotFound(BlobError):
    """No blob has this name."""


class BlobWriter(Protocol):
    """A blob being written. Nothing is visible under any name until ``commit`` returns."""

    def write(self, data: bytes) -> None:
        """Append ciphertext."""

    def commit(self) -> str:
        """Make the blob durable and visible; returns its name."""

    def abort(self) -> None:
        """Discard everything written; safe to call more than once and after a failure."""


class BlobStore(Protocol):
    """Where ciphertext lives."""

    def writer(self) -> BlobWriter:
        """Start a new blob under a fresh random name."""

    def read(self, name: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The blob's bytes, in chunks; raises ``BlobNotFound``."""

    def size(self, name: str) -> int:
        """The blob's size in bytes; raises ``BlobNotFound``."""

    def delete(self, name: str) -> None:
        """Remove the blob if it exists."""

    def exists(self, name: str) -> bool:
        """Whether a committed blob has this name."""

    def sweep(self, older_than: timedelta) -> int:
        """Discard writes abandoned by a crash (never visible as blobs) older than
        ``older_than``; returns how many. Choose it well above the longest upload."""
