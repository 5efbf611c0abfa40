"""Every PDF handed to a reader outside the consortium is a stamped, recorded copy."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.conftest import audit_events as _events
from tests.conftest import csrf_from, sign_in
from tests.hostile_corpus import CASES, hostile_pdf, problems
from tests.reviewing import page_texts, ready_reviewer, text_pdf
from vault.db import unit_of_work
from vault.documents.models import WatermarkCopy
from vault.identity.models import Role


def _upload(client, team, body):
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote('plan.pdf')}",
               "X-CSRFToken": csrf_from(client, "/")}
    response = client.put(f"/api/v1/submissions/{team.submission_id}/documents/proposal",
                          data=body, headers=headers, content_type="application/pdf")
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["document_id"]


@pytest.fixture
def world(app, runtime, make_team, make_user, clock):
    """A team with a 3-page PDF uploaded, and a reviewer ready to read it."""
    team = make_team("Team Alpha")
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    original = text_pdf(3)
    document_id = _upload(owner, team, original)
    reviewer = ready_reviewer(runtime, make_user, clock, team)
    client = app.test_client()
    sign_in(client, reviewer, clock)
    return team, owner, original, document_id, reviewer, client


def _display_name(runtime, account):
    from tests.conftest import get_user

    return get_user(runtime, account.id).display_name


def test_a_reviewers_copy_names_them_on_every_page_with_a_recorded_code(world, runtime):
    _team, _owner, original, document_id, reviewer, client = world
    response = client.get(f"/api/v1/documents/{document_id}/content")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    with unit_of_work(runtime.sessions) as session:
        [copy] = session.scalars(select(WatermarkCopy)).all()
        code, holder = copy.code, copy.user_id
    assert holder == reviewer.id
    name = _display_name(runtime, reviewer)
    texts = page_texts(response.data)
    assert len(texts) == 3
    for number, text in enumerate(texts, start=1):
        assert name in text and str(reviewer.id) in text and code in text
        assert f"Original text of page {number}" in text
    assert response.data != original
    [downloaded] = _events(runtime, "document:version:downloaded")
    assert downloaded["target"]["watermark"] == code
    assert downloaded["actor"]["user"] == str(reviewer.id)


def test_each_request_gets_its_own_code(world, runtime):
    *_, document_id, _reviewer, client = world
    first = client.get(f"/api/v1/documents/{document_id}/content").data
    second = client.get(f"/api/v1/documents/{document_id}/content").data
    with unit_of_work(runtime.sessions) as session:
        codes = [c.code for c in session.scalars(select(WatermarkCopy)).all()]
    assert len(set(codes)) == 2
    assert codes[0] in "".join(page_texts(first)) and codes[1] in "".join(page_texts(second))


def test_the_consortium_downloads_its_original_bytes(world, app, clock):
    team, _owner, original, document_id, *_ = world
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)  # the clock moved into the review window
    response = owner.get(f"/api/v1/documents/{document_id}/content")
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == hashlib.sha256(original).hexdigest()


def test_officers_receive_stamped_copies_too(world, app, runtime, make_user, clock):
    *_, document_id, _reviewer, _client = world
    officer = make_user(Role.OFFICER, mfa=True)
    client = app.test_client()
    sign_in(client, officer, clock)
    response = client.get(f"/documents/{document_id}/content")
    assert response.status_code == 200
    assert all(_display_name(runtime, officer) in text for text in page_texts(response.data))


def test_the_viewer_page_frames_an_inline_copy_from_the_vault_only(world):
    *_, document_id, _reviewer, client = world
    page = client.get(f"/documents/{document_id}/view")
    assert page.status_code == 200
    assert f"/documents/{document_id}/content?version=1&amp;inline=1" in page.get_data(
        as_text=True)
    inline = client.get(f"/documents/{document_id}/content?version=1&inline=1")
    assert inline.headers["Content-Disposition"].startswith("inline;")
    assert inline.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert inline.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_officers_trace_a_code_to_the_reviewer_who_received_it(world, app, runtime, make_user,
                                                               clock):
    *_, document_id, reviewer, client = world
    client.get(f"/api/v1/documents/{document_id}/content")
    with unit_of_work(runtime.sessions) as session:
        code = session.scalars(select(WatermarkCopy.code)).one()
    officer = app.test_client()
    sign_in(officer, make_user(Role.OFFICER, mfa=True), clock)
    typed = code.replace("-", " ").lower()  # as read off paper
    page = officer.get("/watermarks/lookup", query_string={"code": typed}).get_data(as_text=True)
    assert _display_name(runtime, reviewer) in page and str(reviewer.id) in page
    assert "No copy has this code." not in page
    missing = officer.get("/watermarks/lookup", query_string={"code": "00000-00000"})
    assert "No copy has this code." in missing.get_data(as_text=True)
    looked_up = _events(runtime, "watermark:looked-up")
    assert [e["target"]["found"] for e in looked_up] == ["True", "False"]


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPLICANT, Role.AUDITOR, Role.ADMIN])
def test_only_officers_trace_codes(app, make_user, clock, role):
    client = app.test_client()
    sign_in(client, make_user(role, mfa=True), clock)
    assert client.get("/watermarks/lookup?code=00000-00000").status_code == 403


def test_a_pdf_that_cannot_be_stamped_is_never_released(app, runtime, make_team, make_user,
                                                        clock):
    team = make_team("Team Broken")
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    document_id = _upload(owner, team, b"%PDF-1.7\nnot really a pdf\n%%EOF\n")
    reviewer = ready_reviewer(runtime, make_user, clock, team)
    client = app.test_client()
    sign_in(client, reviewer, clock)
    response = client.get(f"/api/v1/documents/{document_id}/content")
    assert response.status_code == 422
    assert response.json["error"] == "not_watermarkable"
    assert b"not really a pdf" not in response.data
    assert [e["tag"] for e in _events(runtime, "document:version:watermark-failed")]
    assert not _events(runtime, "document:version:downloaded")
    # The owner still gets the file exactly as uploaded.
    sign_in(owner, team.applicant, clock)
    assert owner.get(f"/api/v1/documents/{document_id}/content").status_code == 200


def test_readers_receive_a_copy_without_the_applicants_active_content(app, runtime, make_team,
                                                                      make_user, clock):
    team = make_team("Team Hostile")
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    original = hostile_pdf([case.name for case in CASES], packing="objstm")
    document_id = _upload(owner, team, original)
    reviewer = ready_reviewer(runtime, make_user, clock, team)
    officer = make_user(Role.OFFICER, mfa=True)
    for account in (reviewer, officer):
        client = app.test_client()
        sign_in(client, account, clock)
        response = client.get(f"/api/v1/documents/{document_id}/content")
        assert response.status_code == 200
        assert problems(response.data, [case.marker for case in CASES]) == []
        texts = page_texts(response.data)
        assert len(texts) == 3 and "Hostile corpus page 2 body text" in texts[1]
        assert _display_name(runtime, account) in texts[1]
    # The consortium still has its file exactly as uploaded.
    sign_in(owner, team.applicant, clock)
    assert owner.get(f"/api/v1/documents/{document_id}/content").data == original


@pytest.mark.parametrize("failure", ["limit", "unreadable"])
def test_a_version_refused_by_the_stamper_is_refused_at_once_after(
        app, runtime, make_team, make_user, clock, monkeypatch, failure):
    """A version whose stamping hit a limit (or that the stamper cannot read) is kept as
    refused: later readers are told at once instead of waiting up to the limit again."""
    from vault.documents import copies
    from vault.documents.models import WatermarkRefusal
    from vault.sandbox import SandboxError

    calls = []
    real = copies.stamp_pdf_limited

    def stamper(data, stamp, **kwargs):
        calls.append(stamp.code)
        if failure == "limit":
            raise SandboxError("timed out after 30 s")  # as the sandbox reports its limit
        return real(data, stamp, **kwargs)

    monkeypatch.setattr(copies, "stamp_pdf_limited", stamper)
    team = make_team("Team Slow")
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    body = text_pdf(2) if failure == "limit" else b"%PDF-1.7\nnot really a pdf\n%%EOF\n"
    document_id = _upload(owner, team, body)
    reviewer = ready_reviewer(runtime, make_user, clock, team)
    client = app.test_client()
    sign_in(client, reviewer, clock)

    answers = [client.get(f"/api/v1/documents/{document_id}/content") for _ in range(3)]

    assert [a.status_code for a in answers] == [422, 422, 422]
    assert {a.json["error"] for a in answers} == {"not_watermarkable"}
    assert len(calls) == 1  # stamped once; the refusal was kept
    assert answers[0].json["message"] == answers[2].json["message"]
    assert len(_events(runtime, "document:version:watermark-failed")) == 3
    assert not _events(runtime, "document:version:downloaded")
    with unit_of_work(runtime.sessions) as session:
        [refusal] = session.scalars(select(WatermarkRefusal)).all()
        assert refusal.reason


def test_a_passing_failure_of_the_stamper_is_tried_again(
        app, runtime, make_team, make_user, clock, monkeypatch):
    """A crash of the sandbox is a fact of the moment, not of the file: the next read tries."""
    from vault.documents import copies
    from vault.sandbox import SandboxError

    outcomes = [SandboxError("crashed (signal 11)"), None]
    real = copies.stamp_pdf_limited

    def stamper(data, stamp, **kwargs):
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return real(data, stamp, **kwargs)

    monkeypatch.setattr(copies, "stamp_pdf_limited", stamper)
    team = make_team("Team Flaky")
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    document_id = _upload(owner, team, text_pdf(1))
    reviewer = ready_reviewer(runtime, make_user, clock, team)
    client = app.test_client()
    sign_in(client, reviewer, clock)

    assert client.get(f"/api/v1/documents/{document_id}/content").status_code == 422
    assert client.get(f"/api/v1/documents/{document_id}/content").status_code == 200
