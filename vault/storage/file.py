"""Blob store on a local (or mounted) filesystem.

Layout under ``root``::

    root/ab/cd/abcd…   committed blobs, fanned out by the first four hex characters
    root/.tmp/         writes in progress (same filesystem, so the final rename is atomic)

A write goes temp file → fsync → rename into place → fsync(directory), so a crash at any
moment leaves either the whole blob or nothing visible — at worst a stray temp file, which
``sweep`` removes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from vault.storage import BlobError, BlobNotFound

log = logging.getLogger(__name__)

#: Names are 128 random bits in lowercase hex; anything else is rejected before it can
#: reach a path (no traversal, no separators, no case-folding aliases).
NAME_PATTERN = re.compile(r"[0-9a-f]{32}")
TEMP_DIR = ".tmp"
TEMP_SUFFIX = ".part"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new subdirectory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir(path: Path) -> None:
    """Create one directory, 0700, and make its entry in the parent durable."""
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        return
    _fsync_dir(path.parent)


def _discard(file: IO[bytes], path: Path) -> None:
    """Close and remove a temp file; leftovers are logged for ``sweep``."""
    try:
        file.close()
        path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove temporary blob file %s", path, exc_info=True)


class FileBlobWriter:
    """A blob being written to a temp file; nothing is visible until ``commit`` returns.

    Also a context manager: leaving the ``with`` block without a successful ``commit`` (by an
    exception or otherwise) aborts. A writer that is dropped without commit removes its temp
    file when it is garbage-collected; a crashed process leaves it for ``sweep``.
    """

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store
        self._temp_path = store.root / TEMP_DIR / f"{secrets.token_hex(16)}{TEMP_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self._temp_path, flags, _FILE_MODE)
        try:
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(self._temp_path)
            raise
        # Not a method of self, so the writer itself can still be collected.
        self._cleanup = weakref.finalize(self, _discard, self._file, self._temp_path)
        self._state = "open"

    def write(self, data: bytes) -> None:
        """Append ciphertext; raises ``BlobError`` (and aborts) if the disk refuses it."""
        self._require_open()
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise BlobError("could not write blob") from exc

    def commit(self) -> str:
        """Make the blob durable, then visible; returns its name. Raises ``BlobError``."""
        self._require_open()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            name, destination = self._store._new_destination()
            os.rename(self._temp_path, destination)
        except OSError as exc:
            self.abort()
            raise BlobError("could not store blob") from exc
        try:
            _fsync_dir(destination.parent)
        except OSError as exc:
            # Visible but not known to be durable: withdraw it rather than report success.
            destination.unlink(missing_ok=True)
            self.abort()
            raise BlobError("could not store blob durably") from exc
        self._cleanup.detach()
        self._state = "committed"
        return name

    def abort(self) -> None:
        """Discard the temp file; idempotent, and a no-op after a successful commit."""
        if self._state == "committed":
            return
        self._state = "aborted"
        self._cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _require_open(self) -> None:
        if self._state != "open":
            raise BlobError(f"blob writer is {self._state}")


class FileBlobStore:
    """Ciphertext blobs in a directory tree under ``root`` (directories 0700, files 0600)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def writer(self) -> FileBlobWriter:
        """Start a new blob; raises ``BlobError`` if the store directory is unusable."""
        try:
            self.root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            _make_dir(self.root / TEMP_DIR)
            return FileBlobWriter(self)
        except OSError as exc:
            raise BlobError(f"cannot write blobs under {self.root}") from exc

    def read(self, name: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The blob's bytes, in chunks; raises ``BlobNotFound``."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        path = self._path(name)
        if not path.is_file():
            raise BlobNotFound(name)
        # Opened lazily so an iterator that is never consumed holds no file descriptor.
        return self._chunks(name, path, chunk_size)

    def size(self, name: str) -> int:
        """The blob's size in bytes; raises ``BlobNotFound``."""
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(name) from None

    def delete(self, name: str) -> None:
        """Remove the blob if it exists; raises ``BlobNotFound`` only for a malformed name."""
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        """Whether a committed blob has this name; raises ``BlobNotFound`` for a malformed name."""
        return self._path(name).is_file()

    def sweep(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Remove temp files (crash leftovers) not modified for ``older_than``; returns a count.

        Choose ``older_than`` well above the longest upload, since a slow write in progress
        only touches its file when its buffer is flushed.
        """
        cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
        removed = 0
        try:
            entries = list(os.scandir(self.root / TEMP_DIR))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # removed concurrently (e.g. its writer aborted)
            removed += 1
        return removed

    def _path(self, name: str) -> Path:
        """Where a blob lives; raises ``BlobNotFound`` unless ``name`` is a store-made name."""
        if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
            raise BlobNotFound(name)
        return self.root / name[:2] / name[2:4] / name

    def _new_destination(self) -> tuple[str, Path]:
        """A fresh random name and its path, with fan-out directories created."""
        while True:
            name = secrets.token_hex(16)
            path = self._path(name)
            # 128 random bits make a collision implausible; never overwrite one regardless.
            if not path.exists():
                break
        _make_dir(path.parent.parent)
        _make_dir(path.parent)
        return name, path

    @staticmethod
    def _chunks(name: str, path: Path, chunk_size: int) -> Iterator[bytes]:
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(name) from None
        with file:
            while chunk := file.read(chunk_size):
                yield chunk
