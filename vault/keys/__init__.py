"""Key providers: the key-encryption keys that wrap every document's data key.

Each consortium has one key, identified by a ``key_id`` such as ``consortium-<uuid>``, with
numbered versions. The provider holds the key material (a keyring file, or an HSM where the keys
never leave it); the database only ever stores data keys *wrapped* under a key version.
"""

from __future__ import annotations

from typing import Protocol


class KeyProviderError(Exception):
    """Base class of key provider errors."""


class UnknownKey(KeyProviderError):
    """No key (or no such version) exists under this id."""


class KeyDestroyed(KeyProviderError):
    """The key was destroyed (crypto-shredded); what it wrapped can never be read again."""


class UnwrapError(KeyProviderError):
    """A wrapped key did not authenticate: wrong key, wrong associated data, or tampering."""


class KeyInUse(KeyProviderError):
    """A key version cannot be retired while data keys still depend on it."""


class KeyProvider(Protocol):
    """Versioned AES-256 keys that wrap and unwrap data keys (AES-256-GCM)."""

    #: ``keyring`` or ``pkcs11``.
    name: str

    def check(self) -> None:
        """Prove the provider works with its configuration (creating an empty keyring on first
        use); raises ``KeyProviderError`` naming what is wrong."""

    def verify(self) -> None:
        """Prove the configuration opens what already exists, writing nothing (the keyring's
        canary, an HSM log-in); raises ``KeyProviderError`` naming what is wrong."""

    def ensure(self, key_id: str) -> int:
        """Create the key with version 1 if it does not exist; return its current version.

        Raises ``KeyDestroyed`` if the key was destroyed.
        """

    def rotate(self, key_id: str) -> int:
        """Add a new version and make it current; returns it."""

    def current_version(self, key_id: str) -> int:
        """The version new wraps use; raises ``UnknownKey`` or ``KeyDestroyed``."""

    def versions(self, key_id: str) -> list[int]:
        """The versions that still exist, ascending (empty when destroyed or unknown)."""

    def wrap(self, key_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        """AES-256-GCM-encrypt a data key under a version: ``nonce (12) || ciphertext || tag``."""

    def unwrap(self, key_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Reverse ``wrap``; raises ``UnknownKey``, ``KeyDestroyed`` or ``UnwrapError``."""

    def retire(self, key_id: str, below: int) -> list[int]:
        """Delete the versions lower than ``below`` (never the current one); returns them."""

    def destroy(self, key_id: str) -> None:
        """Destroy every version of the key, irrecoverably (crypto-shredding)."""

    def is_destroyed(self, key_id: str) -> bool:
        """Whether the key existed and was destroyed."""

    def key_ids(self) -> list[str]:
        """Every key id the provider knows, destroyed ones included."""
