"""Sign-in, second factor, enrolment, sign-out and session revocation through the web forms."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, csrf_from, get_user, sign_in
from vault.db import unit_of_work
from vault.identity.models import LoginThrottle, RecoveryCode, Role, User
from vault.settings import DEMO_MARKER


def test_applicant_without_mfa_signs_in_with_password_only(client, make_user):
    account = make_user(Role.APPLICANT)
    response = sign_in(client, account)
    assert response.status_code == 302 and response.location == "/"
    assert client.get("/").status_code == 200


def test_unknown_user_and_wrong_password_get_the_same_answer(client, make_user):
    account = make_user(Role.APPLICANT)
    token = csrf_from(client)
    wrong = client.post("/login", data={"email": account.email, "password": "insecure-wrong-pw",
                                        "csrf_token": token})
    unknown = client.post("/login", data={"email": "nobody@test.example",
                                          "password": "insecure-wrong-pw", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    message = "Invalid e-mail address or password."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_email_is_case_insensitive_at_sign_in(client, make_user):
    account = make_user(Role.APPLICANT, email="Mixed.Case@Test.Example")
    account.email = "mixed.case@test.example"
    assert sign_in(client, account).status_code == 302


def test_login_without_csrf_token_is_refused_and_changes_nothing(client, make_user, runtime):
    account = make_user(Role.APPLICANT)
    response = client.post("/login", data={"email": account.email, "password": "insecure-wrong"})
    assert response.status_code == 400
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(LoginThrottle)) == 0
    assert client.get("/").status_code == 302  # still signed out


def test_repeated_failures_lock_only_that_account(client, make_user, clock):
    victim = make_user(Role.APPLICANT)
    other = make_user(Role.APPLICANT)
    token = csrf_from(client)
    for _ in range(5):
        client.post("/login", data={"email": victim.email, "password": "insecure-wrong-pw",
                                    "csrf_token": token})
    locked = sign_in(client, victim)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.get_data(as_text=True)
    # Throttling is per account, not global.
    other_client = client.application.test_client()
    assert sign_in(other_client, other).status_code == 302
    clock.advance(minutes=16)
    assert sign_in(client, victim).status_code == 302


def test_unknown_addresses_are_throttled_like_real_ones(client):
    token = csrf_from(client)
    statuses = [
        client.post("/login", data={"email": "ghost@test.example", "password": "insecure-x-pw",
                                    "csrf_token": token}).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_session_identity_is_renewed_at_sign_in(client, make_user):
    account = make_user(Role.APPLICANT)
    client.get("/login")
    before = client.get_cookie("vault_session")
    sign_in(client, account)
    after = client.get_cookie("vault_session")
    assert before is not None and after is not None and before.value != after.value


def test_session_cookie_flags(client, make_user):
    account = make_user(Role.APPLICANT)
    response = sign_in(client, account)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app, make_user):
    client = app.test_client()
    account = make_user(Role.APPLICANT)
    token = csrf_from(client)  # token issued over http, cookie then renewed over https
    response = client.post("/login", base_url="https://localhost",
                           data={"email": account.email, "password": account.password,
                                 "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_cookies_are_secure_behind_a_trusted_tls_proxy(environ, clock, make_user):
    from vault.app import create_app
    from vault.settings import Settings

    proxied = create_app(Settings.from_env({**environ, "VAULT_TRUSTED_PROXIES": "1"},
                                           testing=True), clock=clock)
    client = proxied.test_client()
    account = make_user(Role.APPLICANT)
    token = csrf_from(client)
    response = client.post("/login", headers={"X-Forwarded-Proto": "https"},
                           data={"email": account.email, "password": account.password,
                                 "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers
    proxied.extensions["vault"].engine.dispose()


def test_logout_ends_every_session_of_the_user(app, make_user):
    account = make_user(Role.APPLICANT)
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, account)
    sign_in(phone, account)
    assert phone.get("/").status_code == 200
    laptop.post("/logout", data={"csrf_token": csrf_from(laptop, "/")})
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 302


def test_logout_needs_post_with_csrf(client, make_user):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_deactivation_ends_sessions(client, make_user, runtime):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    with unit_of_work(runtime.sessions) as session:
        runtime.identity(session).deactivate(account.email)
    assert client.get("/").status_code == 302
    assert sign_in(client, account).status_code == 401


def test_password_change_ends_every_session_and_takes_the_new_password(app, make_user):
    account = make_user(Role.APPLICANT)
    browser, other = app.test_client(), app.test_client()
    sign_in(browser, account)
    sign_in(other, account)
    new = "insecure-a-much-longer-passphrase"
    response = browser.post("/account/password", data={
        "csrf_token": csrf_from(browser, "/account/"), "current_password": PASSWORD,
        "new_password": new, "confirm_password": new})
    assert response.status_code == 302
    assert other.get("/").status_code == 302
    assert browser.get("/").status_code == 302
    assert sign_in(browser, account).status_code == 401
    account.password = new
    assert sign_in(browser, account).status_code == 302


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("short-pass", "at least 12 characters"),
        ("x" * 129, "at most 128 characters"),
        ("password1234", "too common"),
    ],
)
def test_weak_new_passwords_are_refused(client, make_user, new, message):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    response = client.post("/account/password", data={
        "csrf_token": csrf_from(client, "/account/"), "current_password": PASSWORD,
        "new_password": new, "confirm_password": new})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_session_expires_after_its_lifetime(client, make_user, clock):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    clock.advance(hours=8, minutes=1)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example",
     "/%0a/evil", "/\n/evil.example", "javascript:alert(1)", "evil.example"],
)
def test_open_redirects_are_refused(client, make_user, target):
    account = make_user(Role.APPLICANT)
    token = csrf_from(client)
    response = client.post("/login", data={"email": account.email, "password": PASSWORD,
                                           "csrf_token": token, "next": target})
    assert response.location in ("/", "/%0a/evil")


def test_next_page_is_kept_through_sign_in(client, make_user):
    account = make_user(Role.OFFICER, mfa=True)
    assert client.get("/programmes/").location == "/login?next=/programmes/"
    token = csrf_from(client, "/login?next=/programmes/")
    client.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": token, "next": "/programmes/"})
    code = account.totp(client.application.extensions["vault"].clock)
    return_to = client.post("/login/code", data={"csrf_token": csrf_from(client, "/login/code"),
                                                 "code": code})
    assert return_to.location == "/programmes/"


# -- MFA -------------------------------------------------------------------------------------

_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')


def _enrol(client, clock):
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "<svg" in page  # the QR code, inline
    secret = _SECRET.search(page).group(1).replace(" ", "")
    token = csrf_from(client, "/login/enrol")
    response = client.post("/login/enrol", data={"csrf_token": token,
                                                 "code": pyotp.TOTP(secret).at(clock())})
    return secret, response


def test_officer_first_sign_in_requires_enrolment(client, make_user, clock, runtime):
    account = make_user(Role.OFFICER)
    response = sign_in(client, account)
    assert response.location == "/login/enrol"
    assert client.get("/").status_code == 302  # not signed in before enrolment
    secret, confirmed = _enrol(client, clock)
    assert confirmed.status_code == 200
    codes = re.findall(r"<code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code>",
                       confirmed.get_data(as_text=True))
    assert len(codes) == 10
    assert client.get("/").status_code == 200
    user = get_user(runtime, account.id)
    assert user.mfa_enabled and user.totp_pending_sealed is None
    assert secret.encode() not in user.totp_secret_sealed  # stored sealed
    with unit_of_work(runtime.sessions) as session:
        stored = session.scalars(select(RecoveryCode.code_digest)).all()
    assert all(code not in stored and code.replace("-", "") not in stored for code in codes)


def test_wrong_enrolment_code_keeps_mfa_off(client, make_user, runtime):
    account = make_user(Role.REVIEWER)
    sign_in(client, account)
    client.get("/login/enrol")
    response = client.post("/login/enrol", data={"csrf_token": csrf_from(client, "/login/enrol"),
                                                 "code": "000000"})
    assert response.status_code == 400
    assert not get_user(runtime, account.id).mfa_enabled


def test_totp_code_is_single_use(app, make_user, clock):
    account = make_user(Role.AUDITOR, mfa=True)
    first = app.test_client()
    assert sign_in(first, account, clock).location == "/"
    second = app.test_client()
    token = csrf_from(second)
    second.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": token})
    replay = second.post("/login/code", data={"csrf_token": csrf_from(second, "/login/code"),
                                              "code": account.totp(clock)})
    assert replay.status_code == 401
    assert "already used" in replay.get_data(as_text=True)
    clock.advance(seconds=30)
    fresh = second.post("/login/code", data={"csrf_token": csrf_from(second, "/login/code"),
                                             "code": account.totp(clock)})
    assert fresh.location == "/"


def test_wrong_codes_count_toward_throttling(client, make_user, clock):
    account = make_user(Role.ADMIN, mfa=True)
    token = csrf_from(client)
    client.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": token})
    token = csrf_from(client, "/login/code")
    statuses = [client.post("/login/code", data={"csrf_token": token, "code": "123456"})
                .status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # Even the right code is refused while locked.
    right = client.post("/login/code", data={"csrf_token": token, "code": account.totp(clock)})
    assert right.status_code == 429


def test_recovery_code_works_once(app, make_user, runtime, clock):
    account = make_user(Role.OFFICER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        user = session.get(User, account.id)
        codes = runtime.identity(session).regenerate_recovery_codes(user)
    client = app.test_client()
    client.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": csrf_from(client)})
    used = client.post("/login/code", data={"csrf_token": csrf_from(client, "/login/code"),
                                            "code": codes[0].lower()})
    assert used.location == "/"
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    client.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": csrf_from(client)})
    again = client.post("/login/code", data={"csrf_token": csrf_from(client, "/login/code"),
                                             "code": codes[0]})
    assert again.status_code == 401


def test_pending_sign_in_grants_nothing_and_expires(client, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    client.post("/login", data={"email": account.email, "password": PASSWORD,
                                "csrf_token": csrf_from(client)})
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/me").status_code == 401
    clock.advance(minutes=11)
    assert client.get("/login/code").location == "/login"


def test_demo_accounts_may_skip_enrolment_only_in_demo_mode(client, make_user, settings):
    account = make_user(Role.REVIEWER, demo=True)
    sign_in(client, account)
    assert "Skip for now" not in client.get("/login/enrol").get_data(as_text=True)
    token = csrf_from(client, "/login/enrol")
    assert client.post("/login/enrol/skip", data={"csrf_token": token}).status_code == 403
    (settings.data_dir / DEMO_MARKER).touch()
    assert "Skip for now" in client.get("/login/enrol").get_data(as_text=True)
    assert client.post("/login/enrol/skip", data={"csrf_token": token}).location == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Demo mode" in page


def test_real_accounts_cannot_skip_enrolment_even_in_demo_mode(client, make_user, settings):
    (settings.data_dir / DEMO_MARKER).touch()
    account = make_user(Role.OFFICER)
    sign_in(client, account)
    token = csrf_from(client, "/login/enrol")
    assert client.post("/login/enrol/skip", data={"csrf_token": token}).status_code == 403
    assert client.get("/").status_code == 302


def test_applicant_can_opt_in_to_mfa(client, make_user, clock, runtime):
    account = make_user(Role.APPLICANT)
    sign_in(client, account)
    page = client.get("/account/mfa").get_data(as_text=True)
    secret = _SECRET.search(page).group(1).replace(" ", "")
    response = client.post("/account/mfa", data={"csrf_token": csrf_from(client, "/account/mfa"),
                                                 "code": pyotp.TOTP(secret).at(clock())})
    assert response.status_code == 200 and "Recovery codes" in response.get_data(as_text=True)
    assert get_user(runtime, account.id).mfa_enabled
