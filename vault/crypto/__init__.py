"""All of the vault's cryptography, behind functions named for what the vault does with them.

This package is the only importer of ``cryptography`` and ``argon2``. Secrets are compared with
``hmac.compare_digest``; keys are derived per purpose with HKDF so that one leaked derived key
never unlocks another purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: argon2id above the OWASP ASVS 5.0 minimum (t=2, m=19 MiB, p=1).
_PASSWORD_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
#: Verified against when the account does not exist, so that unknown e-mail addresses take as
#: long as wrong passwords.
_DUMMY_HASH = _PASSWORD_HASHER.hash("insecure-dummy-password-for-timing")

_FIELD_FORMAT = b"\x01"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A sealed value did not authenticate: wrong key, wrong context or tampered bytes."""


def hash_password(password: str) -> str:
    """An argon2id hash of the password in PHC string form."""
    return _PASSWORD_HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; costs the same when there is no hash (unknown account)."""
    try:
        return _PASSWORD_HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(
            password_hash
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash uses weaker parameters than the current ones."""
    return _PASSWORD_HASHER.check_needs_rehash(password_hash)


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from a configured secret with HKDF-SHA256."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault/" + purpose.encode()
    ).derive(secret.encode())


def field_context(table: str, column: str, row_id: object) -> bytes:
    """Associated data binding a sealed value to its table, column and row."""
    return f"vault-field/v1\x00{table}\x00{column}\x00{row_id}".encode()


def seal_field(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt a confidential column value with AES-256-GCM; ``context`` is authenticated."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _FIELD_FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def open_field(key: bytes, sealed: bytes, context: bytes) -> bytes:
    """Decrypt a value sealed by ``seal_field``; raises ``DecryptionError`` if it was altered."""
    if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _FIELD_FORMAT:
        raise DecryptionError("sealed value has an unknown format")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, context)
    except InvalidTag:
        raise DecryptionError("sealed value does not authenticate in this context") from None


def random_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(32)


def seal_raw(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM: ``nonce (12) || ciphertext || tag (16)``; used to wrap data keys."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_raw(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Reverse ``seal_raw``; raises ``DecryptionError`` if the bytes do not authenticate."""
    if len(sealed) < _NONCE_BYTES + 16:
        raise DecryptionError("sealed value is too short")
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionError("sealed value does not authenticate") from None


def lookup_digest(key: bytes, value: str) -> str:
    """A keyed digest for looking a value up without storing it (hex HMAC-SHA256)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def digest_secret(value: str) -> str:
    """SHA-256 of a high-entropy secret (recovery codes, tokens) for storage."""
    return hashlib.sha256(value.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


#: Crockford's base32: no I, L, O or U, so a code read off a printed page is not misread.
SHORT_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_short_code() -> str:
    """A short code printed on paper: 50 random bits as ``XXXXX-XXXXX``."""
    chars = "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def random_recovery_code() -> str:
    """A one-time recovery code: 80 random bits as four groups of base32 (e.g. ``ABCD-EFGH-…``)."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def random_password() -> str:
    """A random password for generated (demo) accounts."""
    return secrets.token_urlsafe(12)


class FieldCipher:
    """Seals and opens confidential column values under one field key.

    The associated data is the table, column and row id, so a sealed value copied to another
    row or column fails to open.
    """

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "field-encryption")
        # Its own key (one per purpose): the digests that stand in for sealed links.
        self._link_key = derive_key(secret, "link-digest")

    def link_digest(self, kind: str, *ids: object) -> str:
        """A keyed digest (hex HMAC-SHA256) of a link between rows — e.g. a person and the
        consortium of their conflict — stored next to the sealed link so that "is there one
        for this pair" is an indexed lookup. Without the field secret nobody can compute the
        digest of a candidate pair, so the column joins nothing. ``kind`` keeps digests of
        different links apart."""
        return lookup_digest(self._link_key, "\x00".join([kind, *(str(i) for i in ids)]))

    def seal(self, table: str, column: str, row_id: object, value: str) -> bytes:
        """Encrypt a text value for ``table.column`` of row ``row_id``."""
        return seal_field(self._key, value.encode(), field_context(table, column, row_id))

    def open(self, table: str, column: str, row_id: object, sealed: bytes) -> str:
        """Decrypt a value sealed by ``seal`` for the same table, column and row."""
        return open_field(self._key, sealed, field_context(table, column, row_id)).decode()


class LookupKey:
    """Keyed digests for looking values up without storing them."""

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "lookup")

    def digest(self, value: str) -> str:
        """The hex HMAC-SHA256 of ``value``."""
        return lookup_digest(self._key, value)
