"""API tokens end with the credentials that made them, are made only after a fresh
re-authentication, live at most ``VAULT_TOKEN_MAX_DAYS``, and carry the second factor of the
session that made them (a token from the command line carries none)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import (
    PASSWORD,
    audit_events,
    csrf_from,
    running_app,
    sign_in,
    user_factory,
)
from tests.reviewing import text_pdf
from vault.audit.service import Tag
from vault.cli import cli
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.identity.models import ApiToken, Role, User
from vault.settings import DEMO_MARKER, Settings

#: How long a re-authentication lets the session create tokens (the README says five minutes).
REAUTH_WINDOW = timedelta(minutes=5)
_SECRET = re.compile(r'<code class="secret">(vault_[^<]+)</code>')


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed_in(app, account, clock):
    client = app.test_client()
    assert sign_in(client, account, clock).status_code == 302
    return client


def _create(client, name="script", days=7):
    """Post the token form; returns the response."""
    return client.post("/account/tokens", data={
        "csrf_token": csrf_from(client, "/account/"), "name": name, "days": str(days)})


def _token_from(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    match = _SECRET.search(response.get_data(as_text=True))
    assert match, "the new token is shown on the page"
    return match.group(1)


def _cli_token(app, email: str, *args: str) -> str:
    result = app.test_cli_runner().invoke(
        cli, ["token", "create", "--email", email, "--name", "cli", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def _works(app, token: str) -> bool:
    status = app.test_client().get("/api/v1/me", headers=_bearer(token)).status_code
    assert status in (200, 401)
    return status == 200


def _revocations(runtime) -> list[dict]:
    return audit_events(runtime, Tag.TOKEN_REVOKED)


# -- tokens end with the credentials that made them ------------------------------------------

def test_a_password_change_revokes_every_token_of_the_account(app, runtime, make_user, clock):
    account = make_user(Role.APPLICANT)
    other = make_user(Role.APPLICANT)
    browser = _signed_in(app, account, clock)
    web = _token_from(_create(browser))
    script = _cli_token(app, account.email)
    bystander = _cli_token(app, other.email)
    assert _works(app, web) and _works(app, script)

    response = browser.post("/account/password", data={
        "csrf_token": csrf_from(browser, "/account/"), "current_password": PASSWORD,
        "new_password": "insecure-another-long-passphrase",
        "confirm_password": "insecure-another-long-passphrase"})
    assert response.status_code == 302
    assert not _works(app, web) and not _works(app, script)
    assert _works(app, bystander)
    revoked = _revocations(runtime)
    assert len(revoked) == 2
    assert {event["reasons"][0] for event in revoked} == {"password changed"}
    assert {event["target"]["account"] for event in revoked} == {str(account.id)}


def test_signing_out_everywhere_revokes_every_token(app, runtime, make_user, clock):
    account = make_user(Role.REVIEWER, mfa=True)
    browser = _signed_in(app, account, clock)
    token = _token_from(_create(browser))
    assert _works(app, token)
    response = browser.post("/logout", data={"csrf_token": csrf_from(browser, "/account/")})
    assert response.status_code == 302
    assert not _works(app, token)
    [revoked] = _revocations(runtime)
    assert revoked["reasons"] == ["signed out everywhere"]


def test_deactivation_revokes_every_token(app, runtime, make_user):
    account = make_user(Role.APPLICANT)
    token = _cli_token(app, account.email)
    result = app.test_cli_runner().invoke(cli, ["user", "deactivate", "--email", account.email])
    assert result.exit_code == 0, result.output
    assert not _works(app, token)
    with unit_of_work(runtime.sessions) as session:
        # Revoked, not merely unusable while the account is off: reactivating the account
        # must not bring the token back.
        assert session.scalar(select(ApiToken.revoked_at)) is not None
    [revoked] = _revocations(runtime)
    assert revoked["reasons"] == ["command line", "account deactivated"]


def test_replacing_the_recovery_codes_revokes_every_token(app, runtime, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    browser = _signed_in(app, account, clock)
    token = _token_from(_create(browser))
    clock.advance(seconds=60)  # the next TOTP step, unused
    page = browser.post("/account/recovery-codes", data={
        "csrf_token": csrf_from(browser, "/account/"), "code": account.totp(clock)})
    assert page.status_code == 200
    assert "Your API tokens were revoked" in page.get_data(as_text=True)
    assert not _works(app, token)
    [revoked] = _revocations(runtime)
    assert revoked["reasons"] == ["recovery codes replaced"]


def test_signing_in_with_a_recovery_code_revokes_every_token(app, runtime, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        codes = runtime.identity(session).regenerate_recovery_codes(
            session.get(User, account.id))
    browser = _signed_in(app, account, clock)
    token = _token_from(_create(browser))
    # The device is lost: a recovery code stands in for it, and whatever was made with the
    # old factor ends.
    other = app.test_client()
    other.post("/login", data={"csrf_token": csrf_from(other, "/login"),
                               "email": account.email, "password": PASSWORD})
    response = other.post("/login/code", data={"csrf_token": csrf_from(other, "/login/code"),
                                               "code": codes[0]})
    assert response.status_code == 302
    assert not _works(app, token)
    [revoked] = _revocations(runtime)
    assert revoked["reasons"] == ["recovery code used"]


def test_an_operator_reset_of_the_second_factor_revokes_tokens_and_asks_for_enrolment(
        app, runtime, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    browser = _signed_in(app, account, clock)
    token = _token_from(_create(browser))
    result = app.test_cli_runner().invoke(cli, ["user", "reset-mfa", "--email", account.email])
    assert result.exit_code == 0, result.output
    assert not _works(app, token)
    assert browser.get("/account/").status_code == 302  # the session ended too
    with unit_of_work(runtime.sessions) as session:
        user = session.get(User, account.id)
        assert user.totp_secret_sealed is None
        assert runtime.identity(session).remaining_recovery_codes(user) == 0
    [revoked] = _revocations(runtime)
    assert revoked["reasons"] == ["command line", "second factor reset"]
    assert [e["target"]["account"] for e in audit_events(runtime, Tag.MFA_RESET)] == [
        str(account.id)]
    again = app.test_client()
    response = again.post("/login", data={"csrf_token": csrf_from(again, "/login"),
                                          "email": account.email, "password": PASSWORD})
    assert response.location == "/login/enrol"
    unknown = app.test_cli_runner().invoke(cli, ["user", "reset-mfa", "--email",
                                                 "nobody@test.example"])
    assert unknown.exit_code == 2


# -- creation needs a fresh re-authentication ------------------------------------------------

def test_creating_a_token_needs_a_recent_reauthentication(app, runtime, make_user, clock):
    account = make_user(Role.APPLICANT)
    browser = _signed_in(app, account, clock)
    clock.advance(seconds=REAUTH_WINDOW.total_seconds() + 1)
    refused = _create(browser)
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "Confirm your password" in page and _SECRET.search(page) is None
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(ApiToken)) is None

    wrong = browser.post("/account/reauth", data={
        "csrf_token": csrf_from(browser, "/account/"), "password": "insecure-wrong-password"})
    assert wrong.status_code == 401
    assert _create(browser).status_code == 403

    confirmed = browser.post("/account/reauth", data={
        "csrf_token": csrf_from(browser, "/account/"), "password": PASSWORD})
    assert confirmed.status_code == 302 and confirmed.location.endswith("/account/#tokens")
    assert _works(app, _token_from(_create(browser)))
    clock.advance(seconds=REAUTH_WINDOW.total_seconds() + 1)
    assert _create(browser).status_code == 403


def test_reauthentication_of_a_role_with_a_second_factor_needs_the_code(
        app, runtime, make_user, clock):
    account = make_user(Role.OFFICER, mfa=True)
    browser = _signed_in(app, account, clock)
    clock.advance(minutes=10)
    without = browser.post("/account/reauth", data={
        "csrf_token": csrf_from(browser, "/account/"), "password": PASSWORD})
    assert without.status_code == 401
    assert _create(browser).status_code == 403
    with_code = browser.post("/account/reauth", data={
        "csrf_token": csrf_from(browser, "/account/"), "password": PASSWORD,
        "code": account.totp(clock)})
    assert with_code.status_code == 302
    token = _token_from(_create(browser))
    assert app.test_client().get("/api/v1/me", headers=_bearer(token)).json["mfa"] is True


# -- lifetime ----------------------------------------------------------------------------------

def test_the_web_refuses_a_lifetime_beyond_the_maximum(app, runtime, make_user, clock):
    browser = _signed_in(app, make_user(Role.APPLICANT), clock)
    refused = _create(browser, days=91)
    assert refused.status_code == 400
    assert "A token lives 1 to 90 days." in refused.get_data(as_text=True)
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(ApiToken)) is None
    _token_from(_create(browser, days=90))


def test_the_maximum_lifetime_is_configurable(environ, clock, make_user):
    settings = Settings.from_env({**environ, "VAULT_TOKEN_MAX_DAYS": "14"}, testing=True)
    with running_app(settings, clock) as app:
        runtime = app.extensions["vault"]
        account = user_factory(runtime, clock)(Role.APPLICANT)
        browser = _signed_in(app, account, clock)
        assert _create(browser, days=15).status_code == 400
        _token_from(_create(browser, days=14))
        result = app.test_cli_runner().invoke(
            cli, ["token", "create", "--email", account.email, "--name", "n"])
        assert result.exit_code == 0, result.output  # the default shrinks to the maximum
        with unit_of_work(runtime.sessions) as session:
            lifetimes = {row.expires_at - row.created_at
                         for row in session.scalars(select(ApiToken))}
        assert lifetimes == {timedelta(days=14)}


def test_the_command_line_refuses_a_lifetime_beyond_the_maximum(app, runtime, make_user):
    account = make_user(Role.APPLICANT)
    result = app.test_cli_runner().invoke(
        cli, ["token", "create", "--email", account.email, "--name", "n", "--days", "91"])
    assert result.exit_code == 2
    assert "A token lives 1 to 90 days." in result.output
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(ApiToken)) is None
    _cli_token(app, account.email, "--days", "90")


# -- the account page lists tokens; each is revoked on its own ------------------------------

def test_the_account_page_lists_tokens_with_creation_expiry_and_last_use(
        app, runtime, make_user, clock):
    account = make_user(Role.APPLICANT)
    browser = _signed_in(app, account, clock)
    token = _token_from(_create(browser, name="nightly upload", days=10))
    created = clock()
    page = browser.get("/account/").get_data(as_text=True)
    assert "nightly upload" in page and token[:12] in page and "never used" in page

    def last_used():
        with unit_of_work(runtime.sessions) as session:
            return session.scalar(select(ApiToken.last_used_at))

    clock.advance(minutes=5)
    assert _works(app, token)
    first_use = clock()
    assert last_used() == first_use
    clock.advance(seconds=30)
    assert _works(app, token)
    assert last_used() == first_use  # at most one write a minute per token
    clock.advance(seconds=31)
    assert _works(app, token)
    assert last_used() == clock()
    page = browser.get("/account/").get_data(as_text=True)
    assert "never used" not in page
    # Created, expires and last used, in KST as every date of the UI.
    for moment in (created, created + timedelta(days=10), clock()):
        assert (moment + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M") in page


def test_each_token_is_revoked_on_its_own_and_only_by_its_owner(app, runtime, make_user, clock):
    owner = make_user(Role.APPLICANT)
    browser = _signed_in(app, owner, clock)
    kept = _token_from(_create(browser, name="kept"))
    dropped = _token_from(_create(browser, name="dropped"))
    with unit_of_work(runtime.sessions) as session:
        ids = {row.name: row.id for row in session.scalars(select(ApiToken))}
    intruder = _signed_in(app, make_user(Role.APPLICANT), clock)
    response = intruder.post(f"/account/tokens/{ids['dropped']}/revoke",
                             data={"csrf_token": csrf_from(intruder, "/account/")})
    assert response.status_code == 404
    assert _works(app, dropped)
    # Without the CSRF token nothing happens either.
    assert browser.post(f"/account/tokens/{ids['dropped']}/revoke").status_code == 400
    assert _works(app, dropped)
    response = browser.post(f"/account/tokens/{ids['dropped']}/revoke",
                            data={"csrf_token": csrf_from(browser, "/account/")})
    assert response.status_code == 302
    assert not _works(app, dropped) and _works(app, kept)
    [revoked] = _revocations(runtime)
    assert revoked["target"]["account"] == str(owner.id)


# -- a second factor means a second factor ---------------------------------------------------

@pytest.fixture
def document(runtime, make_team) -> str:
    """A document of a submitted consortium, as its applicant uploaded it."""
    team = make_team("Team Token")
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        version = runtime.documents(session).upload(
            submission=submission,
            kind=runtime.definitions["sovereign-ai-2025"].document_kind("proposal"),
            slot="", filename="p.pdf", declared_type="application/pdf",
            body=[text_pdf(2)], uploader_id=team.applicant.id)
        return str(version.document_id)


def test_an_officer_token_from_the_command_line_has_no_second_factor(app, make_user, document):
    officer = make_user(Role.OFFICER, mfa=True)
    result = app.test_cli_runner().invoke(
        cli, ["token", "create", "--email", officer.email, "--name", "cli"])
    assert result.exit_code == 0, result.output
    assert "no second factor" in result.output
    token = result.output.splitlines()[0]
    client = app.test_client()
    me = client.get("/api/v1/me", headers=_bearer(token))
    assert me.status_code == 200 and me.json["mfa"] is False
    assert client.get(f"/api/v1/documents/{document}/content",
                      headers=_bearer(token)).status_code == 404
    assert client.get(f"/api/v1/documents/{document}", headers=_bearer(token)).status_code == 404
    assert client.get("/api/v1/submissions", headers=_bearer(token)).json["submissions"] == []


def test_an_officer_token_from_a_verified_session_reads(app, make_user, clock, document):
    officer = make_user(Role.OFFICER, mfa=True)
    token = _token_from(_create(_signed_in(app, officer, clock)))
    client = app.test_client()
    assert client.get("/api/v1/me", headers=_bearer(token)).json["mfa"] is True
    response = client.get(f"/api/v1/documents/{document}/content", headers=_bearer(token))
    assert response.status_code == 200


def test_me_tells_whether_the_session_passed_a_second_factor(app, make_user, settings, clock):
    (settings.data_dir / DEMO_MARKER).touch()
    officer = make_user(Role.OFFICER, demo=True)
    browser = app.test_client()
    sign_in(browser, officer)
    skip = browser.post("/login/enrol/skip",
                        data={"csrf_token": csrf_from(browser, "/login/enrol")})
    assert skip.location == "/"
    assert browser.get("/api/v1/me").json["mfa"] is False
    verified = _signed_in(app, make_user(Role.OFFICER, mfa=True), clock)
    assert verified.get("/api/v1/me").json["mfa"] is True
