"""The ``pkcs11`` key provider against a real SoftHSM2 token (``tests/softhsm.py``)."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from tests.softhsm import SoftHsmToken, softhsm_token
from vault.keys import (
    KeyDestroyed,
    KeyInUse,
    KeyProviderError,
    UnknownKey,
    UnwrapError,
)
from vault.keys.pkcs11 import Pkcs11KeyProvider

AAD = b"vault/v1|programme|consortium|document|1|content"


@pytest.fixture(scope="module")
def token() -> Iterator[SoftHsmToken]:
    """One SoftHSM2 token for the module (initialising a token takes a moment)."""
    with softhsm_token() as created:
        yield created


@pytest.fixture(scope="module")
def lock_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The file processes lock around each operation: SoftHSM2's store needs it (see provider)."""
    return str(tmp_path_factory.mktemp("softhsm-lock") / "token.lock")


@pytest.fixture
def provider(token: SoftHsmToken, lock_path: str) -> Pkcs11KeyProvider:
    """A provider on the module's token."""
    return Pkcs11KeyProvider(token.module_path, token.label, token.pin, lock_path=lock_path)


@pytest.fixture
def key_id() -> str:
    """A fresh consortium key id, so tests sharing the token do not see each other's keys."""
    return f"consortium-{uuid.uuid4()}"


@contextmanager
def raw_session(token: SoftHsmToken, *, rw: bool = False) -> Iterator[Any]:
    """A session straight on the token, to inspect what the provider left there.

    Closed before the provider runs again: the login state of a token is per process, and the
    provider logs in for each operation.
    """
    library = pkcs11.lib(token.module_path)
    with library.get_token(token_label=token.label).open(rw=rw, user_pin=token.pin) as session:
        yield session


def version_keys(session: Any, key_id: str, version: int) -> list[Any]:
    """The secret key objects labelled as one version of a key."""
    return list(session.get_objects({
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.LABEL: f"vault:{key_id}:v{version}",
    }))


def test_ensure_creates_version_one_and_is_idempotent(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    assert provider.versions(key_id) == []
    assert provider.ensure(key_id) == 1
    assert provider.ensure(key_id) == 1
    assert provider.versions(key_id) == [1]
    assert provider.current_version(key_id) == 1


def test_wrap_unwrap_round_trip(provider: Pkcs11KeyProvider, key_id: str) -> None:
    version = provider.ensure(key_id)
    data_key = os.urandom(32)
    wrapped = provider.wrap(key_id, version, data_key, AAD)
    assert len(wrapped) == 12 + 32 + 16
    assert data_key not in wrapped
    assert provider.unwrap(key_id, version, wrapped, AAD) == data_key


def test_wrap_uses_a_fresh_nonce_each_time(provider: Pkcs11KeyProvider, key_id: str) -> None:
    provider.ensure(key_id)
    data_key = os.urandom(32)
    first = provider.wrap(key_id, 1, data_key, AAD)
    second = provider.wrap(key_id, 1, data_key, AAD)
    assert first[:12] != second[:12]
    assert first != second


def test_wrap_refuses_a_data_key_of_the_wrong_size(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    provider.ensure(key_id)
    with pytest.raises(ValueError, match="32 bytes"):
        provider.wrap(key_id, 1, os.urandom(16), AAD)


def flip(data: bytes, index: int) -> bytes:
    """``data`` with one bit of one byte flipped."""
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda w: (w, b"other-aad", 1), id="wrong-aad"),
        pytest.param(lambda w: (w, b"", 1), id="empty-aad"),
        pytest.param(lambda w: (flip(w, 0), AAD, 1), id="flipped-nonce"),
        pytest.param(lambda w: (flip(w, 20), AAD, 1), id="flipped-ciphertext"),
        pytest.param(lambda w: (flip(w, len(w) - 1), AAD, 1), id="flipped-tag"),
        pytest.param(lambda w: (w[:-1], AAD, 1), id="truncated"),
        pytest.param(lambda w: (w + b"\0", AAD, 1), id="extended"),
        pytest.param(lambda w: (w, AAD, 2), id="wrong-version"),
    ],
)
def test_unwrap_rejects_what_does_not_authenticate(
    provider: Pkcs11KeyProvider, key_id: str, tamper: Any
) -> None:
    provider.ensure(key_id)
    wrapped = provider.wrap(key_id, 1, os.urandom(32), AAD)
    provider.rotate(key_id)
    bad, aad, version = tamper(wrapped)
    with pytest.raises(UnwrapError):
        provider.unwrap(key_id, version, bad, aad)


def test_rotate_makes_a_new_current_version_and_old_wraps_still_unwrap(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    provider.ensure(key_id)
    old_key = os.urandom(32)
    old = provider.wrap(key_id, 1, old_key, AAD)
    assert provider.rotate(key_id) == 2
    assert provider.current_version(key_id) == 2
    assert provider.ensure(key_id) == 2
    assert provider.versions(key_id) == [1, 2]
    assert provider.unwrap(key_id, 1, old, AAD) == old_key
    new_key = os.urandom(32)
    assert provider.unwrap(key_id, 2, provider.wrap(key_id, 2, new_key, AAD), AAD) == new_key


def test_rotate_and_current_version_of_an_unknown_key_raise_unknown_key(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    with pytest.raises(UnknownKey):
        provider.rotate(key_id)
    with pytest.raises(UnknownKey):
        provider.current_version(key_id)
    with pytest.raises(UnknownKey):
        provider.wrap(key_id, 1, os.urandom(32), AAD)


def test_retire_removes_old_versions(provider: Pkcs11KeyProvider, key_id: str) -> None:
    provider.ensure(key_id)
    wrapped = provider.wrap(key_id, 1, os.urandom(32), AAD)
    provider.rotate(key_id)
    assert provider.retire(key_id, 2) == [1]
    assert provider.versions(key_id) == [2]
    with pytest.raises(UnknownKey):
        provider.unwrap(key_id, 1, wrapped, AAD)
    assert provider.retire(key_id, 2) == []


def test_retire_never_removes_the_current_version(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    provider.ensure(key_id)
    provider.rotate(key_id)
    with pytest.raises(KeyInUse):
        provider.retire(key_id, 3)
    assert provider.versions(key_id) == [1, 2]


def test_destroy_shreds_the_key(
    provider: Pkcs11KeyProvider, token: SoftHsmToken, key_id: str
) -> None:
    provider.ensure(key_id)
    wrapped = provider.wrap(key_id, 1, os.urandom(32), AAD)
    provider.rotate(key_id)
    assert not provider.is_destroyed(key_id)

    provider.destroy(key_id)

    assert provider.is_destroyed(key_id)
    assert provider.versions(key_id) == []
    with pytest.raises(KeyDestroyed):
        provider.unwrap(key_id, 1, wrapped, AAD)
    with pytest.raises(KeyDestroyed):
        provider.ensure(key_id)
    with pytest.raises(KeyDestroyed):
        provider.rotate(key_id)
    with pytest.raises(KeyDestroyed):
        provider.current_version(key_id)
    with pytest.raises(KeyDestroyed):
        provider.wrap(key_id, 2, os.urandom(32), AAD)
    provider.destroy(key_id)  # idempotent
    assert key_id in provider.key_ids()
    with raw_session(token) as session:
        # The key material itself is gone from the token, not merely hidden by the tombstone.
        assert version_keys(session, key_id, 1) == []
        assert version_keys(session, key_id, 2) == []


def test_destroying_a_key_that_never_existed_raises_unknown_key(
    provider: Pkcs11KeyProvider, key_id: str
) -> None:
    with pytest.raises(UnknownKey):
        provider.destroy(key_id)
    assert not provider.is_destroyed(key_id)


def test_key_ids_lists_every_key(provider: Pkcs11KeyProvider) -> None:
    live, rotated, destroyed = (f"consortium-{uuid.uuid4()}" for _ in range(3))
    provider.ensure(live)
    provider.ensure(rotated)
    provider.rotate(rotated)
    provider.ensure(destroyed)
    provider.destroy(destroyed)
    ids = provider.key_ids()
    assert {live, rotated, destroyed} <= set(ids)
    assert ids == sorted(set(ids))


def test_keys_are_generated_in_the_token_and_cannot_leave_it(
    provider: Pkcs11KeyProvider, token: SoftHsmToken, key_id: str
) -> None:
    provider.ensure(key_id)
    with raw_session(token) as session:
        [key] = version_keys(session, key_id, 1)
        assert key.key_type == KeyType.AES
        assert key.key_length == 256
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.PRIVATE] is True
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        # Generated on the token and never, at any time, extractable or readable.
        assert key[Attribute.LOCAL] is True
        assert key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.ENCRYPT] is True
        assert key[Attribute.DECRYPT] is True
        assert key[Attribute.WRAP] is False
        assert key[Attribute.UNWRAP] is False
        assert key[Attribute.MODIFIABLE] is False
        assert key.id == key_id.encode()
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]


def test_keys_cannot_be_made_extractable_afterwards(
    provider: Pkcs11KeyProvider, token: SoftHsmToken, key_id: str
) -> None:
    provider.ensure(key_id)
    with raw_session(token, rw=True) as session:
        [key] = version_keys(session, key_id, 1)
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[Attribute.EXTRACTABLE] = True
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[Attribute.SENSITIVE] = False
        assert key[Attribute.EXTRACTABLE] is False


def test_keys_persist_across_provider_instances_and_module_reloads(
    token: SoftHsmToken, key_id: str
) -> None:
    first = Pkcs11KeyProvider(token.module_path, token.label, token.pin)
    first.ensure(key_id)
    first.rotate(key_id)
    data_key = os.urandom(32)
    wrapped = first.wrap(key_id, 2, data_key, AAD)
    # C_Finalize and unload: the next provider starts from what the token stored on disk.
    pkcs11.unload(token.module_path)

    second = Pkcs11KeyProvider(token.module_path, token.label, token.pin)
    assert second.ensure(key_id) == 2
    assert second.versions(key_id) == [1, 2]
    assert second.unwrap(key_id, 2, wrapped, AAD) == data_key


def test_a_version_duplicated_by_a_race_still_unwraps_every_wrap(
    provider: Pkcs11KeyProvider, token: SoftHsmToken, key_id: str
) -> None:
    provider.ensure(key_id)
    # Another process generating v1 at the same moment leaves a second key under the label.
    with raw_session(token, rw=True) as session:
        session.generate_key(
            KeyType.AES, 256, id=key_id.encode(), label=f"vault:{key_id}:v1", store=True,
            template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
    data_keys = [os.urandom(32) for _ in range(8)]
    wraps = [provider.wrap(key_id, 1, data_key, AAD) for data_key in data_keys]
    assert [provider.unwrap(key_id, 1, w, AAD) for w in wraps] == data_keys
    assert provider.versions(key_id) == [1]
    with pytest.raises(UnwrapError):
        provider.unwrap(key_id, 1, wraps[0], b"other-aad")


def test_wrong_pin_fails_with_a_provider_error(token: SoftHsmToken, key_id: str) -> None:
    provider = Pkcs11KeyProvider(token.module_path, token.label, "insecure-wrong-pin")
    with pytest.raises(KeyProviderError, match="PinIncorrect") as excinfo:
        provider.check()
    assert "insecure-wrong-pin" not in str(excinfo.value)
    assert "insecure-wrong-pin" not in repr(provider)


def test_unknown_token_fails_with_a_provider_error(token: SoftHsmToken) -> None:
    provider = Pkcs11KeyProvider(token.module_path, "no-such-token", token.pin)
    with pytest.raises(KeyProviderError, match="no-such-token"):
        provider.check()


def test_check_succeeds_on_the_right_token(provider: Pkcs11KeyProvider) -> None:
    provider.check()


def test_malformed_key_ids_are_refused(provider: Pkcs11KeyProvider) -> None:
    for bad in ["", "a:b", "vault:x:v1", "x" * 200, "consortium/../x"]:
        with pytest.raises(ValueError, match="malformed key id"):
            provider.ensure(bad)


def test_concurrent_threads_share_the_provider(provider: Pkcs11KeyProvider, key_id: str) -> None:
    provider.ensure(key_id)

    def round_trip(index: int) -> bool:
        data_key = os.urandom(32)
        aad = AAD + str(index).encode()
        return provider.unwrap(key_id, 1, provider.wrap(key_id, 1, data_key, aad), aad) == data_key

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(round_trip, range(64)))


def _worker(
    token: SoftHsmToken, lock_path: str, key_id: str, wrapped: bytes
) -> tuple[bytes, list[int]]:
    """In another process: unwrap the parent's wrap, and ensure and use a shared key, repeatedly."""
    provider = Pkcs11KeyProvider(token.module_path, token.label, token.pin, lock_path=lock_path)
    data_key = provider.unwrap(key_id, 1, wrapped, AAD)
    shared = f"{key_id}-shared"
    for _ in range(10):
        version = provider.ensure(shared)
        rewrapped = provider.wrap(shared, version, data_key, AAD)
        assert provider.unwrap(shared, version, rewrapped, AAD) == data_key
    return data_key, provider.versions(shared)


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_processes_share_the_token(
    provider: Pkcs11KeyProvider,
    token: SoftHsmToken,
    lock_path: str,
    key_id: str,
    start_method: str,
) -> None:
    # "fork" after the parent has used the module: the child must re-initialise it (as gunicorn
    # workers forked from a --preload master do); "spawn" starts from a clean interpreter.
    provider.ensure(key_id)
    data_key = os.urandom(32)
    wrapped = provider.wrap(key_id, 1, data_key, AAD)
    context = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        futures = [pool.submit(_worker, token, lock_path, key_id, wrapped) for _ in range(12)]
        results = [future.result() for future in futures]
    assert all(result == (data_key, [1]) for result in results)
    # The parent still works after its children used the token.
    assert provider.unwrap(key_id, 1, wrapped, AAD) == data_key
    assert provider.versions(f"{key_id}-shared") == [1]
