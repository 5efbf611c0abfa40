"""The default key provider: consortium keys in a keyring file, sealed under a master key.

The file (mode 0600) holds every key version sealed with AES-256-GCM under a key derived from
the master key (``VAULT_MASTER_KEY``, or ``VAULT_MASTER_KEY_FILE``); the associated data binds
each sealed key to its key id and version. Changes are made under an exclusive file lock and
written temp → fsync → rename → fsync(dir), so concurrent workers never lose an update and a
crash never leaves a half-written keyring. Destroying a key deletes its material from the file:
database backups can never bring it back (old copies of the keyring file could, so they must
not be kept longer than the retention rule allows).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vault import crypto
from vault.keys import KeyDestroyed, KeyInUse, KeyProviderError, UnknownKey, UnwrapError

FORMAT = 1
CANARY = b"vault-keyring-canary"


class KeyringProvider:
    """Versioned consortium keys in a local keyring file."""

    name = "keyring"

    def __init__(self, path: Path, master_secret: str) -> None:
        self.path = path
        self._master = crypto.derive_key(master_secret, "keyring-master")
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    # -- file handling ----------------------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._thread_lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _load(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {"format": FORMAT, "keys": {}}
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        with self.path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("format") != FORMAT:
            raise ValueError(f"{self.path}: unknown keyring format {data.get('format')!r}")
        self._cache = (stamp, data)
        return data

    def _save(self, data: dict[str, Any]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._cache = None

    @staticmethod
    def _context(key_id: str, version: int) -> bytes:
        return f"vault-keyring/v1\x00{key_id}\x00{version}".encode()

    def _entry(self, data: dict[str, Any], key_id: str) -> dict[str, Any]:
        entry = data["keys"].get(key_id)
        if entry is None:
            raise UnknownKey(f"no key {key_id}")
        if entry.get("destroyed"):
            raise KeyDestroyed(f"key {key_id} was destroyed")
        return entry

    def _key(self, key_id: str, version: int) -> bytes:
        with self._locked(exclusive=False):
            entry = self._entry(self._load(), key_id)
        sealed = entry["versions"].get(str(version))
        if sealed is None:
            raise UnknownKey(f"no version {version} of key {key_id}")
        try:
            return crypto.open_field(
                self._master, base64.b64decode(sealed), self._context(key_id, version)
            )
        except crypto.DecryptionError:
            raise UnwrapError(f"the master key (VAULT_MASTER_KEY) does not open {key_id} "
                              f"v{version} in {self.path}") from None

    def _new_version(self, data: dict[str, Any], key_id: str) -> int:
        entry = data["keys"].setdefault(key_id, {"destroyed": False, "versions": {}})
        version = max((int(v) for v in entry["versions"]), default=entry.get("last", 0)) + 1
        key = crypto.random_key()
        sealed = crypto.seal_field(self._master, key, self._context(key_id, version))
        entry["versions"][str(version)] = base64.b64encode(sealed).decode()
        entry["last"] = version
        return version

    # -- the provider protocol --------------------------------------------------------------

    def check(self) -> None:
        """Create the keyring (with a canary) if missing; prove the master key opens it."""
        with self._locked(exclusive=True):
            self._cache = None
            data = self._load()
            canary = data.get("canary")
            if canary is None:
                data["canary"] = base64.b64encode(crypto.seal_field(
                    self._master, CANARY, self._context("canary", 0))).decode()
                self._save(data)
                return
        self._open_canary(canary)

    def verify(self) -> None:
        """Prove the master key opens the keyring's canary, if there is a keyring; writes
        nothing (start-up must not create a keyring beside a database that needs another)."""
        if not self.path.exists():
            return
        with self._locked(exclusive=False):
            canary = self._load().get("canary")
        if canary is not None:
            self._open_canary(canary)

    def _open_canary(self, canary: str) -> None:
        try:
            crypto.open_field(self._master, base64.b64decode(canary),
                              self._context("canary", 0))
        except crypto.DecryptionError:
            raise KeyProviderError(
                f"The master key (VAULT_MASTER_KEY) does not open {self.path}."
            ) from None

    def ensure(self, key_id: str) -> int:
        """Create the key (version 1) if it is new; return its current version."""
        with self._locked(exclusive=False):
            data = self._load()
            entry = data["keys"].get(key_id)
            if entry is not None:
                return self._current(self._entry(data, key_id), key_id)
        with self._locked(exclusive=True):
            self._cache = None
            data = self._load()
            if key_id in data["keys"]:
                return self._current(self._entry(data, key_id), key_id)
            version = self._new_version(data, key_id)
            self._save(data)
            return version

    @staticmethod
    def _current(entry: dict[str, Any], key_id: str) -> int:
        if not entry["versions"]:
            raise UnknownKey(f"key {key_id} has no versions")
        return max(int(v) for v in entry["versions"])

    def rotate(self, key_id: str) -> int:
        """Add a new version and make it current."""
        with self._locked(exclusive=True):
            self._cache = None
            data = self._load()
            self._entry(data, key_id)
            version = self._new_version(data, key_id)
            self._save(data)
            return version

    def current_version(self, key_id: str) -> int:
        """The version new wraps use."""
        with self._locked(exclusive=False):
            data = self._load()
            return self._current(self._entry(data, key_id), key_id)

    def versions(self, key_id: str) -> list[int]:
        """The versions that still exist, ascending."""
        with self._locked(exclusive=False):
            entry = self._load()["keys"].get(key_id)
        if entry is None or entry.get("destroyed"):
            return []
        return sorted(int(v) for v in entry["versions"])

    def wrap(self, key_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        """AES-256-GCM-encrypt a data key under a key version."""
        return crypto.seal_raw(self._key(key_id, version), data_key, aad)

    def unwrap(self, key_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a wrapped data key; raises ``UnwrapError`` if it does not authenticate."""
        try:
            return crypto.open_raw(self._key(key_id, version), wrapped, aad)
        except crypto.DecryptionError:
            raise UnwrapError(f"wrapped key under {key_id} v{version} does not open") from None

    def retire(self, key_id: str, below: int) -> list[int]:
        """Delete the versions below ``below``; the current version is never deleted."""
        with self._locked(exclusive=True):
            self._cache = None
            data = self._load()
            entry = self._entry(data, key_id)
            current = self._current(entry, key_id)
            if below > current:
                raise KeyInUse(f"version {current} of {key_id} is current and cannot be retired")
            removed = sorted(int(v) for v in entry["versions"] if int(v) < below)
            for version in removed:
                del entry["versions"][str(version)]
            if removed:
                self._save(data)
            return removed

    def destroy(self, key_id: str) -> None:
        """Delete every version of the key from the keyring, irrecoverably."""
        with self._locked(exclusive=True):
            self._cache = None
            data = self._load()
            entry = data["keys"].get(key_id)
            if entry is None:
                raise UnknownKey(f"no key {key_id}")
            data["keys"][key_id] = {"destroyed": True, "versions": {}, "last": entry.get("last")}
            self._save(data)

    def is_destroyed(self, key_id: str) -> bool:
        """Whether the key existed and was destroyed."""
        with self._locked(exclusive=False):
            entry = self._load()["keys"].get(key_id)
        return bool(entry and entry.get("destroyed"))

    def key_ids(self) -> list[str]:
        """Every key id in the keyring."""
        with self._locked(exclusive=False):
            return sorted(self._load()["keys"])
