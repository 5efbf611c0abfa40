"""The identity service: password rules and hashing, throttling, TOTP and recovery codes."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from vault import crypto
from vault.db import unit_of_work
from vault.identity.errors import (
    AccountLocked,
    DuplicateEmail,
    InvalidCode,
    InvalidCredentials,
    InvalidEmail,
    WeakPassword,
)
from vault.identity.models import RecoveryCode, Role, User
from vault.identity.service import check_password_rules, email_key


@pytest.mark.parametrize(
    "password",
    ["", "elevenchars", "x" * 129, "password1234", "PASSWORD1234", "aaaaaaaaaaaaaaaa",
     "abababababababab", "qwerty123456"],
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(WeakPassword):
        check_password_rules(password)


@pytest.mark.parametrize(
    "password",
    ["twelve chars", "seoul-busan-daegu", "no composition rules at all",
     "한국어 비밀번호도 괜찮습니다", "long passphrase " * 8],
)
def test_long_passwords_need_no_composition(password):
    check_password_rules(password)


def test_password_may_not_be_the_email_address():
    with pytest.raises(WeakPassword, match="e-mail"):
        check_password_rules("someone.long@example.org", email="Someone.Long@example.org")


def test_passwords_are_hashed_with_argon2id_at_least_the_asvs_minimum(
        real_password_hashing, runtime, make_user):
    account = make_user(Role.APPLICANT)
    with unit_of_work(runtime.sessions) as session:
        stored = session.get(User, account.id).password_hash
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


def test_email_uniqueness_ignores_case(runtime, make_user):
    make_user(Role.APPLICANT, email="Dup@Test.Example")
    with unit_of_work(runtime.sessions) as session, pytest.raises(DuplicateEmail):
        runtime.identity(session).create_user(email="dup@test.EXAMPLE", display_name="Dup",
                                              role=Role.OFFICER, password=PASSWORD)


def test_email_key_folds_case_and_width():
    assert email_key(" Ａlice@Example.ORG ") == "alice@example.org"


@pytest.mark.parametrize(
    "email", ["not-an-address", "a@b", "two@@signs.example", "sp ace@x.example"]
)
def test_malformed_addresses_are_refused(runtime, email):
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidEmail):
        runtime.identity(session).create_user(email=email, display_name="X", role=Role.APPLICANT,
                                              password=PASSWORD)


def test_unknown_account_costs_a_password_verification(runtime, monkeypatch):
    """Unknown addresses are verified against a dummy hash, so they take as long as real ones."""
    calls = []
    original = crypto.verify_password

    def spy(password_hash, password):
        calls.append(password_hash)
        return original(password_hash, password)

    monkeypatch.setattr(crypto, "verify_password", spy)
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidCredentials):
        runtime.identity(session).authenticate("nobody@test.example", PASSWORD)
    assert calls == [None]


def test_inactive_accounts_cannot_authenticate(runtime, make_user):
    account = make_user(Role.APPLICANT)
    with unit_of_work(runtime.sessions) as session:
        runtime.identity(session).deactivate(account.email)
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidCredentials):
        runtime.identity(session).authenticate(account.email, PASSWORD)


def test_lockout_counts_failures_and_expires(runtime, make_user, clock):
    account = make_user(Role.APPLICANT)
    for _ in range(5):
        with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidCredentials):
            runtime.identity(session).authenticate(account.email, "insecure-wrong-pw")
    with unit_of_work(runtime.sessions) as session, pytest.raises(AccountLocked) as locked:
        runtime.identity(session).authenticate(account.email, PASSWORD)
    assert timedelta(minutes=14) < locked.value.retry_after <= timedelta(minutes=15)
    clock.advance(minutes=15, seconds=1)
    with unit_of_work(runtime.sessions) as session:
        assert runtime.identity(session).authenticate(account.email, PASSWORD).id == account.id


def test_success_resets_the_failure_count(runtime, make_user):
    account = make_user(Role.APPLICANT)
    for _round in range(3):
        for _ in range(4):
            with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidCredentials):
                runtime.identity(session).authenticate(account.email, "insecure-wrong-pw")
        with unit_of_work(runtime.sessions) as session:
            identity = runtime.identity(session)
            identity.complete_sign_in(identity.authenticate(account.email, PASSWORD))


def test_totp_codes_from_adjacent_steps_are_accepted_once(runtime, make_user, clock):
    account = make_user(Role.REVIEWER, mfa=True)
    totp = pyotp.TOTP(account.totp_secret)
    with unit_of_work(runtime.sessions) as session:
        identity = runtime.identity(session)
        user = session.get(User, account.id)
        assert identity.verify_second_factor(user, totp.at(clock() + timedelta(seconds=30))) \
            == "totp"
        # The current step is older than the one just used: refused as a replay.
        with pytest.raises(InvalidCode):
            identity.verify_second_factor(user, totp.at(clock()))


def test_totp_codes_outside_the_window_are_refused(runtime, make_user, clock):
    account = make_user(Role.REVIEWER, mfa=True)
    code = pyotp.TOTP(account.totp_secret).at(clock() + timedelta(minutes=3))
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidCode):
        runtime.identity(session).verify_second_factor(session.get(User, account.id), code)


def test_recovery_codes_are_stored_as_digests_and_work_once(runtime, make_user):
    account = make_user(Role.OFFICER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        codes = runtime.identity(session).regenerate_recovery_codes(session.get(User, account.id))
    assert len(set(codes)) == 10
    with unit_of_work(runtime.sessions) as session:
        digests = set(session.scalars(select(RecoveryCode.code_digest)))
        assert not any(code in digests or code.replace("-", "") in digests for code in codes)
        identity = runtime.identity(session)
        user = session.get(User, account.id)
        assert identity.verify_second_factor(user, codes[3].replace("-", " ")) == "recovery"
        assert identity.remaining_recovery_codes(user) == 9
        with pytest.raises(InvalidCode):
            identity.verify_second_factor(user, codes[3])


def test_regenerating_recovery_codes_voids_the_old_ones(runtime, make_user):
    account = make_user(Role.OFFICER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        identity = runtime.identity(session)
        user = session.get(User, account.id)
        old = identity.regenerate_recovery_codes(user)
        identity.regenerate_recovery_codes(user)
        with pytest.raises(InvalidCode):
            identity.verify_second_factor(user, old[0])


def test_sealed_totp_seed_does_not_open_in_another_row(runtime, make_user):
    first = make_user(Role.OFFICER, mfa=True)
    second = make_user(Role.OFFICER)
    with unit_of_work(runtime.sessions) as session:
        sealed = session.get(User, first.id).totp_secret_sealed
        with pytest.raises(crypto.DecryptionError):
            runtime.cipher.open("users", "totp_secret", second.id, sealed)
        assert runtime.cipher.open("users", "totp_secret", first.id, sealed) == first.totp_secret
