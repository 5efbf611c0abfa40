"""The programme NDA: versions, acceptance in the browser and over the API, outdated and expired
acceptances, the officers' report and its CSV export; API tokens made on the account page."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import unicodedata
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import audit_events as _events
from tests.conftest import csrf_from, sign_in
from vault.audit.service import Tag
from vault.db import unit_of_work
from vault.identity.models import ApiToken, Role, User
from vault.nda.models import NdaAcceptance, NdaVersion
from vault.nda.service import NdaService, NdaState, names_match
from vault.policy.actions import Actor
from vault.programmes.service import ProgrammeService
from vault.settings import DEMO_MARKER
from vault.spreadsheets import csv_cell

CODE = "sovereign-ai-2025"
PAGE = f"/nda/{CODE}"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) NdaTest/1.0"


# -- helpers --------------------------------------------------------------------------------

@pytest.fixture
def programme(runtime):
    """The demo programme, synced from its definition (which publishes its NDA)."""
    with unit_of_work(runtime.sessions) as session:
        found, _ = ProgrammeService(session).sync(runtime.definitions[CODE])
        return found


def _terms(runtime):
    return runtime.definitions[CODE].nda


def _change_nda(runtime, *, text=None, accepted_until=None):
    """Replace the programme's NDA as if its text file (or date) had been edited."""
    definition = runtime.definitions[CODE]
    terms = definition.nda
    new_text = terms.text if text is None else text
    runtime.definitions[CODE] = dataclasses.replace(definition, nda=dataclasses.replace(
        terms, text=new_text, sha256=hashlib.sha256(new_text.encode()).hexdigest(),
        accepted_until=accepted_until or terms.accepted_until))
    return runtime.definitions[CODE].nda


def _rename(runtime, account, name):
    with unit_of_work(runtime.sessions) as session:
        session.get(User, account.id).display_name = name


def _acceptances(runtime, account=None):
    with unit_of_work(runtime.sessions) as session:
        query = select(NdaAcceptance).order_by(NdaAcceptance.accepted_at)
        if account is not None:
            query = query.where(NdaAcceptance.user_id == account.id)
        return list(session.scalars(query))


def _signed_in(app, account, clock, **headers):
    client = app.test_client()
    client.environ_base.update(headers)
    sign_in(client, account, clock)
    return client


def _accept_in_browser(client, sha256, typed_name="Test reviewer", *, confirm=True):
    data = {"csrf_token": csrf_from(client, PAGE), "sha256": sha256, "typed_name": typed_name}
    if confirm:
        data["confirm"] = "y"
    return client.post(PAGE, data=data)


def _accept_directly(runtime, account, clock_value=None):
    """Accept the current NDA through the service (for report set-ups)."""
    with unit_of_work(runtime.sessions) as session:
        programme = ProgrammeService(session).by_code(CODE)
        user = session.get(User, account.id)
        NdaService(session, clock=runtime.clock).accept(
            Actor(user.id, Role.REVIEWER, mfa=True), programme, runtime.definitions[CODE],
            sha256=_terms(runtime).sha256, typed_name=user.display_name,
            client_address="192.0.2.7", user_agent="script/1.0", channel="api")


def _create_token_on_account_page(client, name="nda script", days=7):
    response = client.post("/account/tokens", data={
        "csrf_token": csrf_from(client, "/account/"), "name": name, "days": str(days)})
    assert response.status_code == 200
    match = re.search(r'<code class="secret">(vault_[^<]+)</code>', response.get_data(as_text=True))
    assert match, "the new token is shown on the page"
    return match.group(1)


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _skip_mfa_as_demo_reviewer(app, make_user, settings):
    """A reviewer whose demo session skipped the second factor."""
    (settings.data_dir / DEMO_MARKER).touch()
    account = make_user(Role.REVIEWER, demo=True)
    client = app.test_client()
    sign_in(client, account)
    token = csrf_from(client, "/login/enrol")
    assert client.post("/login/enrol/skip", data={"csrf_token": token}).location == "/"
    return account, client


# -- versions -------------------------------------------------------------------------------

def test_the_version_is_the_sha256_of_the_text_and_is_published_once(runtime, programme):
    terms = _terms(runtime)
    assert terms.sha256 == hashlib.sha256(terms.source.read_bytes()).hexdigest()
    assert terms.sha256 == hashlib.sha256(terms.text.encode("utf-8")).hexdigest()
    with unit_of_work(runtime.sessions) as session:
        _, changed = ProgrammeService(session).sync(runtime.definitions[CODE])
        versions = list(session.scalars(select(NdaVersion)))
    assert not changed
    assert [(v.sha256, v.text) for v in versions] == [(terms.sha256, terms.text)]


def test_a_new_nda_text_is_published_as_a_new_version_at_sync(runtime, programme):
    _change_nda(runtime, text="A changed pledge.\n")
    with unit_of_work(runtime.sessions) as session:
        _, changed = ProgrammeService(session).sync(runtime.definitions[CODE])
        count = session.scalar(select(func.count()).select_from(NdaVersion))
    assert changed and count == 2


def test_names_are_compared_after_nfc_whitespace_and_case_folding():
    assert names_match(unicodedata.normalize("NFD", "김민지"), "김민지")
    assert names_match("  kim   MIN-ji ", "Kim Min-ji")
    assert not names_match("Kim Minji", "Kim Min-ji")
    assert not names_match("", "Kim Min-ji")


# -- accepting in the browser ---------------------------------------------------------------

def test_reviewer_reads_and_accepts_in_the_browser(app, runtime, programme, make_user, clock):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    client = _signed_in(app, reviewer, clock, HTTP_USER_AGENT=BROWSER)
    page = client.get(PAGE).get_data(as_text=True)
    terms = _terms(runtime)
    assert terms.sha256 in page and "Evaluator Non-Disclosure Pledge" in page
    assert "You have not accepted this NDA yet" in page and 'name="typed_name"' in page

    response = _accept_in_browser(client, terms.sha256, "test  Reviewer")
    assert response.status_code == 302 and response.location == PAGE
    [accepted] = _acceptances(runtime)
    assert accepted.user_id == reviewer.id and accepted.nda_sha256 == terms.sha256
    assert accepted.typed_name == "test Reviewer"
    assert accepted.accepted_at == clock() and accepted.expires_at == terms.accepted_until
    assert (accepted.client_address, accepted.user_agent, accepted.channel) == (
        "127.0.0.1", BROWSER, "web")
    page = client.get(PAGE).get_data(as_text=True)
    assert "You accepted this version" in page and 'name="typed_name"' not in page


def test_nda_acceptance_is_audited_with_a_minimal_event(app, runtime, programme, make_user,
                                                        clock):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _rename(runtime, reviewer, "Kim Min-ji")
    client = _signed_in(app, reviewer, clock)
    assert _accept_in_browser(client, _terms(runtime).sha256, "Kim Min-ji").status_code == 302
    [event] = _events(runtime, Tag.NDA_ACCEPTED)
    assert event["actor"] == {"role": "reviewer", "user": str(reviewer.id)}
    assert event["target"]["programme"] == CODE
    assert event["target"]["nda"] == _terms(runtime).sha256
    assert event["target"]["account"] == str(reviewer.id)
    assert "Kim Min-ji" not in json.dumps(event, ensure_ascii=False)
    decisions = _events(runtime, Tag.ACCESS_DECIDED)
    assert any(e["target"]["action"] == "nda:accept" and e["decision"] == "allow"
               for e in decisions)


def test_a_wrong_hash_is_refused_and_nothing_is_stored(app, runtime, programme, make_user,
                                                       clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    response = _accept_in_browser(client, "0" * 64)
    assert response.status_code == 409
    assert "The NDA text changed; read the current version" in response.get_data(as_text=True)
    assert _acceptances(runtime) == []


def test_a_typed_name_that_is_not_the_account_name_is_refused(app, runtime, programme,
                                                              make_user, clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    response = _accept_in_browser(client, _terms(runtime).sha256, "Somebody Else")
    assert response.status_code == 422
    assert "does not match the name on your account" in response.get_data(as_text=True)
    assert _acceptances(runtime) == []


def test_an_overlong_name_is_a_clear_400_and_stores_nothing(app, runtime, programme, make_user,
                                                           clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    response = _accept_in_browser(client, _terms(runtime).sha256, "x" * 201)
    assert response.status_code == 400 and _acceptances(runtime) == []
    assert "The form was incomplete" in response.get_data(as_text=True)


def test_the_box_must_be_ticked(app, runtime, programme, make_user, clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    response = _accept_in_browser(client, _terms(runtime).sha256, confirm=False)
    assert response.status_code == 422 and _acceptances(runtime) == []


def test_a_changed_text_makes_the_acceptance_outdated_until_accepted_again(
        app, runtime, programme, make_user, clock):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    client = _signed_in(app, reviewer, clock)
    old = _terms(runtime).sha256
    assert _accept_in_browser(client, old).status_code == 302

    new = _change_nda(runtime, text=_terms(runtime).text + "\n6. A new clause.\n")
    clock.advance(minutes=5)
    page = client.get(PAGE).get_data(as_text=True)
    assert "The NDA text changed after you accepted it" in page and "6. A new clause." in page
    with unit_of_work(runtime.sessions) as session:
        standing = NdaService(session, clock=runtime.clock).status(
            session.get(User, reviewer.id), ProgrammeService(session).by_code(CODE),
            runtime.definitions[CODE])
    assert standing.state is NdaState.OUTDATED and standing.acceptance.nda_sha256 == old

    assert _accept_in_browser(client, old).status_code == 409  # the page read before
    assert _accept_in_browser(client, new.sha256).status_code == 302
    assert [a.nda_sha256 for a in _acceptances(runtime)] == [old, new.sha256]
    with unit_of_work(runtime.sessions) as session:
        texts = {v.sha256: v.text for v in session.scalars(select(NdaVersion))}
    assert texts[new.sha256] == new.text  # every accepted hash has its text on record
    assert "You accepted this version" in client.get(PAGE).get_data(as_text=True)


def test_an_acceptance_expires_at_accepted_until(app, runtime, programme, make_user, clock):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    client = _signed_in(app, reviewer, clock)
    assert _accept_in_browser(client, _terms(runtime).sha256).status_code == 302

    clock.now = _terms(runtime).accepted_until + timedelta(seconds=1)
    client = _signed_in(app, reviewer, clock)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Your acceptance expired on" in page
    assert "The period for accepting this NDA has ended." in page
    response = _accept_in_browser(client, _terms(runtime).sha256)
    assert response.status_code == 409 and len(_acceptances(runtime)) == 1
    assert client.get("/api/v1/nda").json["status"] == "expired"


def test_a_reviewer_without_mfa_is_told_to_set_up_a_second_factor(app, runtime, programme,
                                                                  make_user, settings):
    _account, client = _skip_mfa_as_demo_reviewer(app, make_user, settings)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Accepting the NDA needs two-step verification" in page
    assert 'href="/account/"' in page and 'name="typed_name"' not in page
    response = _accept_in_browser(client, _terms(runtime).sha256)
    assert response.status_code == 403
    assert "Set up a second factor on your account page" in response.get_data(as_text=True)
    assert _acceptances(runtime) == []


@pytest.mark.parametrize("role", [Role.APPLICANT, Role.OFFICER, Role.AUDITOR, Role.ADMIN])
def test_only_reviewers_accept(app, runtime, programme, make_user, clock, role):
    account = make_user(role, mfa=role is not Role.APPLICANT)
    _rename(runtime, account, "Test reviewer")
    client = _signed_in(app, account, clock)
    response = client.post(PAGE, data={"csrf_token": csrf_from(client, "/account/"),
                                       "sha256": _terms(runtime).sha256,
                                       "typed_name": "Test reviewer", "confirm": "y"})
    assert response.status_code == 403
    api = client.post("/api/v1/nda/accept", headers={"X-CSRFToken": csrf_from(client, "/account/")},
                      json={"sha256": _terms(runtime).sha256, "typed_name": "Test reviewer"})
    assert api.status_code == 403 and api.json["error"] == "forbidden"
    assert _acceptances(runtime) == []


def test_officers_read_the_nda_but_applicants_do_not(app, runtime, programme, make_user, clock):
    officer = _signed_in(app, make_user(Role.OFFICER, mfa=True), clock)
    page = officer.get(PAGE).get_data(as_text=True)
    assert _terms(runtime).sha256 in page and 'name="typed_name"' not in page
    applicant = _signed_in(app, make_user(Role.APPLICANT), clock)
    assert applicant.get(PAGE).status_code == 403


def test_unknown_programmes_are_404(app, programme, make_user, clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    assert client.get("/nda/no-such-programme").status_code == 404
    assert client.get("/nda/no-such-programme/report").status_code == 404
    response = client.get("/api/v1/nda?programme=no-such-programme")
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_the_api_needs_the_programme_named_when_there_are_several(app, runtime, programme,
                                                                  make_user, clock):
    with unit_of_work(runtime.sessions) as session:
        ProgrammeService(session).sync(dataclasses.replace(runtime.definitions[CODE],
                                                           code="other-programme"))
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    response = client.get("/api/v1/nda")
    assert response.status_code == 400 and response.json["error"] == "programme_required"
    assert client.get(f"/api/v1/nda?programme={CODE}").json["programme"] == CODE


def test_a_programme_without_an_nda_has_nothing_to_accept(app, runtime, programme, make_user,
                                                         clock):
    runtime.definitions[CODE] = dataclasses.replace(runtime.definitions[CODE], nda=None)
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    assert "has not published an NDA yet" in client.get(PAGE).get_data(as_text=True)
    response = _accept_in_browser(client, "0" * 64)
    assert response.status_code == 409
    assert "This programme has no NDA to accept." in response.get_data(as_text=True)
    assert client.get("/api/v1/nda").json["sha256"] is None


def test_the_nda_page_renders_in_korean(app, runtime, programme, make_user, clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock,
                        HTTP_ACCEPT_LANGUAGE="ko")
    page = client.get(PAGE).get_data(as_text=True)
    assert '<html lang="ko">' in page
    assert "비밀유지 서약서" in page and "서약하기" in page and "아직 이 서약서에 서약하지" in page
    response = _accept_in_browser(client, _terms(runtime).sha256, "다른 사람")
    assert "입력한 성명이 계정에 등록된 성명과 다릅니다" in response.get_data(as_text=True)


# -- the officers' report -------------------------------------------------------------------

def test_officer_report_lists_every_reviewer_with_the_right_status(app, runtime, programme,
                                                                   make_user, clock):
    reviewers = {}
    for name in ("A Current", "B Outdated", "C Expired", "D Never", "E Gone"):
        reviewers[name] = make_user(Role.REVIEWER, mfa=True)
        _rename(runtime, reviewers[name], name)
    with unit_of_work(runtime.sessions) as session:
        runtime.identity(session).deactivate(reviewers["E Gone"].email)
    first_until = _terms(runtime).accepted_until

    _accept_directly(runtime, reviewers["B Outdated"])
    clock.advance(minutes=1)
    _change_nda(runtime, text="Second version of the pledge.\n")
    _accept_directly(runtime, reviewers["C Expired"])
    later = _change_nda(runtime, accepted_until=first_until + timedelta(days=365))
    clock.now = first_until + timedelta(days=1)
    _accept_directly(runtime, reviewers["A Current"])

    with unit_of_work(runtime.sessions) as session:
        rows = NdaService(session, clock=runtime.clock).report(
            ProgrammeService(session).by_code(CODE), runtime.definitions[CODE])
    assert [(r.name, r.state) for r in rows] == [
        ("A Current", NdaState.CURRENT), ("B Outdated", NdaState.OUTDATED),
        ("C Expired", NdaState.EXPIRED), ("D Never", NdaState.NONE)]
    assert rows[0].acceptance.expires_at == later.accepted_until

    officer = _signed_in(app, make_user(Role.OFFICER, mfa=True), clock)
    page = officer.get(f"{PAGE}/report").get_data(as_text=True)
    for name in ("A Current", "B Outdated", "C Expired", "D Never"):
        assert name in page
    assert "E Gone" not in page and "192.0.2.7" in page and "script/1.0" in page


def test_only_officers_see_the_report(app, runtime, programme, make_user, clock):
    for role in (Role.REVIEWER, Role.AUDITOR, Role.ADMIN):
        client = _signed_in(app, make_user(role, mfa=True), clock)
        assert client.get(f"{PAGE}/report").status_code == 403
        assert client.get(f"{PAGE}/report.csv").status_code == 403
    assert _events(runtime, Tag.NDA_REPORT_EXPORTED) == []


def test_csv_export_escapes_formulas_and_keeps_address_and_user_agent(app, runtime, programme,
                                                                     make_user, clock):
    sly = make_user(Role.REVIEWER, mfa=True)
    _rename(runtime, sly, "=HYPERLINK(\"http://evil.example\",\"x\")")
    client = _signed_in(app, sly, clock, HTTP_USER_AGENT="@SUM(1+1)*cmd|' /C calc'!A0")
    assert _accept_in_browser(client, _terms(runtime).sha256,
                              "=HYPERLINK(\"http://evil.example\",\"x\")").status_code == 302
    korean = make_user(Role.REVIEWER, mfa=True)
    _rename(runtime, korean, "김민지")

    officer_account = make_user(Role.OFFICER, mfa=True)
    officer = _signed_in(app, officer_account, clock)
    response = officer.get(f"{PAGE}/report.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with a BOM
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {sly.email, korean.email}
    row = by_email[sly.email]
    assert row["name"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert row["typed_name"].startswith("'=")
    assert row["user_agent"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["client_address"] == "127.0.0.1" and row["status"] == "current"
    assert row["version"] == _terms(runtime).sha256
    assert row["accepted_at"].endswith("+09:00")
    assert by_email[korean.email]["name"] == "김민지"
    assert by_email[korean.email]["status"] == "none"

    [event] = _events(runtime, Tag.NDA_REPORT_EXPORTED)
    assert event["actor"]["user"] == str(officer_account.id)
    assert event["target"] == {"programme": CODE, "rows": "2", "nda": _terms(runtime).sha256}


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@A1", "\t=1", "\r=1"])
def test_cells_that_start_a_formula_are_quoted(value):
    assert csv_cell(value) == "'" + value
    assert csv_cell("Kim " + value) == "Kim " + value


# -- the API and tokens from the account page ------------------------------------------------

def test_reviewer_accepts_over_the_api_with_a_token_from_an_mfa_session(
        app, runtime, programme, make_user, clock):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    browser = _signed_in(app, reviewer, clock)
    token = _create_token_on_account_page(browser)
    page = browser.get("/account/").get_data(as_text=True)
    assert token[:12] in page and "nda script" in page

    script = app.test_client()
    shown = script.get("/api/v1/nda", headers=_bearer(token)).json
    terms = _terms(runtime)
    assert shown["programme"] == CODE and shown["sha256"] == terms.sha256
    assert shown["text"] == terms.text and shown["status"] == "none"
    assert shown["accepted_until"] == terms.accepted_until.isoformat()
    assert shown["accepted_at"] is None

    response = script.post("/api/v1/nda/accept", headers=_bearer(token), json={
        "programme": CODE, "sha256": shown["sha256"], "typed_name": "Test Reviewer"})
    assert response.status_code == 201
    assert response.json["sha256"] == terms.sha256 and response.json["channel"] == "api"
    assert response.json["expires_at"] == terms.accepted_until.isoformat()
    [accepted] = _acceptances(runtime)
    assert accepted.channel == "api" and accepted.typed_name == "Test Reviewer"
    after = script.get(f"/api/v1/nda?programme={CODE}", headers=_bearer(token)).json
    assert after["status"] == "current" and after["accepted_at"] == clock().isoformat()


def test_a_cli_token_without_mfa_cannot_accept(app, runtime, programme, make_user):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        token, row = runtime.identity(session).create_token(session.get(User, reviewer.id),
                                                            "cli", 30)
        assert row.mfa_verified is False
    client = app.test_client()
    assert client.get("/api/v1/nda", headers=_bearer(token)).status_code == 200
    response = client.post("/api/v1/nda/accept", headers=_bearer(token), json={
        "sha256": _terms(runtime).sha256, "typed_name": "Test reviewer"})
    assert response.status_code == 403 and response.json["error"] == "mfa_required"
    assert "not created from a session that passed two-step" in response.json["message"]
    assert _acceptances(runtime) == []


def test_a_token_made_in_a_session_without_mfa_cannot_accept(app, runtime, programme,
                                                             make_user, settings):
    _account, browser = _skip_mfa_as_demo_reviewer(app, make_user, settings)
    assert "did not pass two-step verification" in browser.get("/account/").get_data(
        as_text=True)
    token = _create_token_on_account_page(browser)
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(ApiToken.mfa_verified)) is False
    response = app.test_client().post("/api/v1/nda/accept", headers=_bearer(token), json={
        "sha256": _terms(runtime).sha256, "typed_name": "Test reviewer"})
    assert response.status_code == 403 and response.json["error"] == "mfa_required"


def test_api_refusals_are_json_and_store_nothing(app, runtime, programme, make_user, clock):
    browser = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    token = _create_token_on_account_page(browser)
    client = app.test_client()

    def accept(body):
        return client.post("/api/v1/nda/accept", headers=_bearer(token), json=body)

    wrong_hash = accept({"sha256": "f" * 64, "typed_name": "Test reviewer"})
    assert wrong_hash.status_code == 409 and wrong_hash.json == {
        "error": "nda_changed",
        "message": "The NDA text changed; read the current version and accept it again."}
    wrong_name = accept({"sha256": _terms(runtime).sha256, "typed_name": "Someone"})
    assert wrong_name.status_code == 422 and wrong_name.json["error"] == "name_mismatch"
    malformed = accept({"sha256": 42})
    assert malformed.status_code == 422 and malformed.json["error"] == "malformed_request"
    unknown = accept({"programme": "nope", "sha256": "f" * 64, "typed_name": "x"})
    assert unknown.status_code == 404
    assert _acceptances(runtime) == []


def test_session_callers_of_the_api_need_the_csrf_header(app, runtime, programme, make_user,
                                                        clock):
    client = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    body = {"sha256": _terms(runtime).sha256, "typed_name": "Test reviewer"}
    assert client.post("/api/v1/nda/accept", json=body).status_code == 400
    response = client.post("/api/v1/nda/accept", json=body,
                           headers={"X-CSRFToken": csrf_from(client, "/account/")})
    assert response.status_code == 201 and len(_acceptances(runtime)) == 1


def test_openapi_describes_the_nda_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/nda"]) == {"get"} and set(paths["/nda/accept"]) == {"post"}
    assert {"201", "403", "409", "422"} <= set(paths["/nda/accept"]["post"]["responses"])


def test_tokens_are_created_and_revoked_on_the_account_page(app, runtime, make_user, clock):
    owner = make_user(Role.APPLICANT)
    browser = _signed_in(app, owner, clock)
    token = _create_token_on_account_page(browser, name="uploads", days=10)
    assert app.test_client().get("/api/v1/me", headers=_bearer(token)).status_code == 200
    with unit_of_work(runtime.sessions) as session:
        row = session.scalar(select(ApiToken))
        token_id, prefix = row.id, row.prefix
        assert row.name == "uploads" and row.expires_at == clock() + timedelta(days=10)
        assert row.mfa_verified is False  # the applicant signed in without a second factor

    response = browser.post(f"/account/tokens/{token_id}/revoke",
                            data={"csrf_token": csrf_from(browser, "/account/")})
    assert response.status_code == 302
    assert app.test_client().get("/api/v1/me", headers=_bearer(token)).status_code == 401
    assert "no longer valid (revoked)" in browser.get("/account/").get_data(as_text=True)

    [created] = _events(runtime, Tag.TOKEN_CREATED)
    assert created["target"]["token"] == prefix and created["target"]["mfa_verified"] == "False"
    [revoked] = _events(runtime, Tag.TOKEN_REVOKED)
    assert revoked["target"] == {"account": str(owner.id), "token": prefix}
    assert token not in json.dumps(created) + json.dumps(revoked)


def test_nobody_revokes_another_users_token(app, runtime, make_user, clock):
    owner = _signed_in(app, make_user(Role.REVIEWER, mfa=True), clock)
    token = _create_token_on_account_page(owner)
    with unit_of_work(runtime.sessions) as session:
        token_id = session.scalar(select(ApiToken.id))
    intruder = _signed_in(app, make_user(Role.ADMIN, mfa=True), clock)
    response = intruder.post(f"/account/tokens/{token_id}/revoke",
                             data={"csrf_token": csrf_from(intruder, "/account/")})
    assert response.status_code == 404
    assert app.test_client().get("/api/v1/me", headers=_bearer(token)).status_code == 200
    assert _events(runtime, Tag.TOKEN_REVOKED) == []


def test_token_form_errors_are_clear(app, make_user, clock):
    browser = _signed_in(app, make_user(Role.APPLICANT), clock)
    response = browser.post("/account/tokens", data={
        "csrf_token": csrf_from(browser, "/account/"), "name": "x", "days": "9999"})
    assert response.status_code == 400
    assert "A token lives 1 to 90 days." in response.get_data(as_text=True)
