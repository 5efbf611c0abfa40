"""Uploads, receipts, versions and downloads over the web UI and the JSON API."""

from __future__ import annotations

import hashlib
import io
import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_from, pdf_bytes, sign_in
from tests.reviewing import page_texts, text_pdf
from vault.db import unit_of_work
from vault.documents.models import DocumentVersion
from vault.identity.models import Role, User


def _upload(client, team, body, *, kind="proposal", filename="proposal.pdf",
            content_type="application/pdf", token=None, csrf=None, partner=None):
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if csrf:
        headers["X-CSRFToken"] = csrf
    query = f"?partner={partner}" if partner else ""
    return client.put(f"/api/v1/submissions/{team.submission_id}/documents/{kind}{query}",
                      data=body, headers=headers, content_type=content_type)


def _token(runtime, account, days=30):
    with unit_of_work(runtime.sessions) as session:
        token, _ = runtime.identity(session).create_token(session.get(User, account.id),
                                                          "test", days)
    return token


def _versions(runtime) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(DocumentVersion))


def _visible_blobs(settings) -> list:
    root = settings.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts] \
        if root.exists() else []


@pytest.fixture
def team(make_team):
    return make_team("Team Alpha")


@pytest.fixture
def signed_in(client, team):
    sign_in(client, team.applicant)
    return client


def test_applicant_uploads_in_the_browser_session_and_gets_a_receipt(signed_in, team, runtime,
                                                                      clock):
    body = pdf_bytes(40_000, b"confidential-marker")
    response = _upload(signed_in, team, body, csrf=csrf_from(signed_in, "/"))
    assert response.status_code == 201, response.json
    receipt = response.json
    assert receipt["version"] == 1 and receipt["size"] == len(body)
    assert receipt["sha256"] == hashlib.sha256(body).hexdigest()
    assert receipt["server_time"] == clock().isoformat()
    page = signed_in.get(receipt["receipt_url"]).get_data(as_text=True)
    assert receipt["sha256"] in page and "This is your receipt" in page
    listed = signed_in.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "proposal.pdf" in listed


def test_session_uploads_need_the_csrf_header(signed_in, team, runtime, settings):
    response = _upload(signed_in, team, pdf_bytes(1000))
    assert response.status_code == 400 and response.json["error"] == "csrf"
    assert _versions(runtime) == 0 and _visible_blobs(settings) == []


def test_download_streams_the_verified_bytes_as_an_attachment(signed_in, team):
    body = pdf_bytes(100_000)
    receipt = _upload(signed_in, team, body, filename="사업계획서 v1.pdf",
                      csrf=csrf_from(signed_in, "/")).json
    response = signed_in.get(receipt["content_url"])
    assert response.status_code == 200 and response.data == body
    assert response.headers["Content-Length"] == str(len(body))
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "filename*=UTF-8''%EC%82%AC%EC%97%85" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_each_upload_adds_a_version_and_old_versions_stay_readable(signed_in, team):
    csrf = csrf_from(signed_in, "/")
    first, second = pdf_bytes(5000, b"first"), pdf_bytes(7000, b"second")
    one = _upload(signed_in, team, first, csrf=csrf).json
    two = _upload(signed_in, team, second, csrf=csrf).json
    assert (one["version"], two["version"]) == (1, 2)
    assert one["document_id"] == two["document_id"]
    content = f"/api/v1/documents/{one['document_id']}/content"
    assert signed_in.get(content).data == second
    assert signed_in.get(content + "?version=1").data == first
    assert signed_in.get(content + "?version=3").status_code == 404
    meta = signed_in.get(f"/api/v1/documents/{one['document_id']}").json
    assert [v["version"] for v in meta["versions"]] == [1, 2]


def test_bearer_tokens_upload_without_csrf(client, team, runtime):
    token = _token(runtime, team.applicant)
    response = _upload(client, team, pdf_bytes(2000), token=token)
    assert response.status_code == 201
    listed = client.get("/api/v1/submissions", headers={"Authorization": f"Bearer {token}"})
    assert [s["id"] for s in listed.json["submissions"]] == [str(team.submission_id)]


def test_expired_revoked_and_unknown_tokens_are_refused(client, team, runtime, clock):
    token = _token(runtime, team.applicant, days=1)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    clock.advance(days=1, seconds=1)
    assert client.get("/api/v1/me", headers=auth).status_code == 401
    fresh = _token(runtime, team.applicant)
    with unit_of_work(runtime.sessions) as session:
        runtime.identity(session).revoke_token(fresh[:12])
    assert client.get("/api/v1/me",
                      headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
    assert client.get("/api/v1/me",
                      headers={"Authorization": "Bearer vault_forged"}).status_code == 401


def test_tokens_of_deactivated_users_stop_working(client, team, runtime):
    token = _token(runtime, team.applicant)
    with unit_of_work(runtime.sessions) as session:
        runtime.identity(session).deactivate(team.applicant.email)
    assert client.get("/api/v1/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_are_stored_as_digests(runtime, team):
    token = _token(runtime, team.applicant)
    with unit_of_work(runtime.sessions) as session:
        stored = runtime.identity(session).tokens()
    assert stored and all(token not in (t.digest, t.prefix) for t in stored)
    assert stored[0].digest == hashlib.sha256(token.encode()).hexdigest()


def test_another_consortiums_submission_is_invisible(app, team, make_team, runtime, settings):
    other = make_team("Team Beta", partners=("Beta University",))
    client = app.test_client()
    sign_in(client, other.applicant)
    csrf = csrf_from(client, "/")
    owner = app.test_client()
    sign_in(owner, team.applicant)
    receipt = _upload(owner, team, pdf_bytes(3000), csrf=csrf_from(owner, "/")).json
    before = _versions(runtime)
    for response in (
        client.get(f"/api/v1/submissions/{team.submission_id}"),
        client.get(f"/submissions/{team.submission_id}"),
        _upload(client, team, pdf_bytes(3000), csrf=csrf),
        client.get(f"/api/v1/documents/{receipt['document_id']}"),
        client.get(f"/api/v1/documents/{receipt['document_id']}/content"),
        client.get(f"/documents/{receipt['document_id']}/content"),
    ):
        assert response.status_code == 404
    assert _versions(runtime) == before
    # An id that exists and one that does not answer alike.
    missing = client.get("/api/v1/submissions/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json == client.get(
        f"/api/v1/submissions/{team.submission_id}").json


def test_officers_read_but_never_upload(app, team, make_user, clock, runtime):
    owner = app.test_client()
    sign_in(owner, team.applicant)
    body = text_pdf(2)
    receipt = _upload(owner, team, body, csrf=csrf_from(owner, "/")).json
    officer = app.test_client()
    sign_in(officer, make_user(Role.OFFICER, mfa=True), clock)
    # Officers read stamped copies (tests/test_watermark_web.py): the pages, marked.
    copy = officer.get(receipt["content_url"])
    assert copy.status_code == 200
    assert [t.splitlines()[0] for t in page_texts(copy.data)] == [
        "Original text of page 1", "Original text of page 2"]
    refused = _upload(officer, team, pdf_bytes(100), csrf=csrf_from(officer, "/"))
    assert refused.status_code == 403 and _versions(runtime) == 1


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ADMIN])
def test_other_roles_reach_no_submission(app, team, make_user, clock, role):
    client = app.test_client()
    sign_in(client, make_user(role, mfa=True), clock)
    assert client.get(f"/api/v1/submissions/{team.submission_id}").status_code == 404
    assert client.get("/api/v1/submissions").json == {"submissions": []}


def test_auditors_see_metadata_but_never_content(app, team, make_user, clock):
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    document_id = _upload(owner, team, pdf_bytes(500), csrf=csrf_from(owner, "/")
                          ).json["document_id"]
    auditor = app.test_client()
    sign_in(auditor, make_user(Role.AUDITOR, mfa=True), clock)
    assert auditor.get(f"/api/v1/submissions/{team.submission_id}").status_code == 200
    assert auditor.get(f"/api/v1/documents/{document_id}").status_code == 200
    assert auditor.get(f"/api/v1/documents/{document_id}/content").status_code == 404
    page = auditor.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "Alpha University" not in page


def test_upload_after_the_deadline_is_refused_and_stores_nothing(client, team, clock, runtime,
                                                                 settings):
    token = _token(runtime, team.applicant, days=90)  # the longest allowed: past the deadline
    clock.now = runtime.definitions["sovereign-ai-2025"].submission_deadline
    response = _upload(client, team, pdf_bytes(1000), token=token)
    assert response.status_code == 409 and response.json["error"] == "deadline_passed"
    assert _versions(runtime) == 0 and _visible_blobs(settings) == []


def test_declared_size_over_the_limit_is_refused_before_reading(signed_in, team, runtime):
    limit = runtime.definitions["sovereign-ai-2025"].document_kind("proposal").max_size_bytes
    response = signed_in.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal",
        input_stream=_Endless(), environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
        headers={"X-CSRFToken": csrf_from(signed_in, "/"),
                 "Content-Disposition": "attachment; filename=big.pdf"},
        content_type="application/pdf")
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.json["error"] == "too_large"
    assert _versions(runtime) == 0


class _Endless(io.BytesIO):
    """A request body that must never be read."""

    def read(self, *_args):
        raise AssertionError("the body was read")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"MZ\x90\x00 this is an executable" * 10, "application/pdf"),
        (b"<html><script>alert(1)</script></html>", "application/pdf"),
        (b"PK\x03\x04 a zip, not a pdf", "application/pdf"),
        (pdf_bytes(1000), "text/html"),
        (b"plain text", "application/octet-stream"),
    ],
)
def test_content_that_is_not_the_allowed_type_is_refused(signed_in, team, runtime, settings,
                                                         body, content_type):
    response = _upload(signed_in, team, body, content_type=content_type,
                       csrf=csrf_from(signed_in, "/"))
    assert response.status_code == 415
    assert _versions(runtime) == 0 and _visible_blobs(settings) == []


def test_octet_stream_pdfs_are_recognised_by_their_magic_bytes(signed_in, team):
    response = _upload(signed_in, team, pdf_bytes(1000), content_type="application/octet-stream",
                       csrf=csrf_from(signed_in, "/"))
    assert response.status_code == 201 and response.json["media_type"] == "application/pdf"


def test_multipart_file_uploads_are_refused_so_nothing_is_spooled_to_disk(signed_in, team,
                                                                          runtime):
    response = signed_in.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal",
        data={"file": (io.BytesIO(pdf_bytes(2000)), "p.pdf")},
        headers={"X-CSRFToken": csrf_from(signed_in, "/"),
                 "Content-Disposition": "attachment; filename=p.pdf"},
        content_type="multipart/form-data")
    assert response.status_code == 415
    assert _versions(runtime) == 0


def test_filenames_are_reduced_to_safe_names(signed_in, team):
    receipt = _upload(signed_in, team, pdf_bytes(500), filename="../../etc/pass\x07wd.pdf",
                      csrf=csrf_from(signed_in, "/")).json
    assert receipt["filename"] == "passwd.pdf"


def test_missing_filename_is_a_clear_400(signed_in, team):
    response = signed_in.put(f"/api/v1/submissions/{team.submission_id}/documents/proposal",
                             data=pdf_bytes(500), content_type="application/pdf",
                             headers={"X-CSRFToken": csrf_from(signed_in, "/")})
    assert response.status_code == 400 and "filename" in response.json["message"]


def test_unknown_kinds_are_404(signed_in, team):
    response = _upload(signed_in, team, pdf_bytes(500), kind="no_such_kind",
                       csrf=csrf_from(signed_in, "/"))
    assert response.status_code == 404 and response.json["error"] == "unknown_kind"


def test_per_partner_documents_name_their_partner(signed_in, team):
    csrf = csrf_from(signed_in, "/")
    missing = _upload(signed_in, team, pdf_bytes(500), kind="letter_of_commitment", csrf=csrf)
    assert missing.status_code == 404
    ok = _upload(signed_in, team, pdf_bytes(500), kind="letter_of_commitment", csrf=csrf,
                 partner=team.partner_ids[0])
    assert ok.status_code == 201 and ok.json["partner"] == str(team.partner_ids[0])


def test_submitted_submissions_are_locked(signed_in, team, runtime):
    from vault.documents.models import Submission, SubmissionState

    with unit_of_work(runtime.sessions) as session:
        session.get(Submission, team.submission_id).state = SubmissionState.SUBMITTED
    response = _upload(signed_in, team, pdf_bytes(500), csrf=csrf_from(signed_in, "/"))
    assert response.status_code == 409 and response.json["error"] == "submission_locked"


def test_partner_list_can_be_edited_by_its_consortium(signed_in, team, runtime):
    page = f"/submissions/{team.submission_id}"
    csrf = csrf_from(signed_in, page)
    response = signed_in.post(f"{page}/partners", data={
        "csrf_token": csrf, "name": "Gamma Research Institute", "kind": "research_institute",
        "role": "data partner", "contribution": "Korean corpora"})
    assert response.status_code == 302
    html = signed_in.get(page).get_data(as_text=True)
    assert "Gamma Research Institute" in html and "Korean corpora" in html
    member = re.search(r'/partners/([0-9a-f-]{36})/remove', html).group(1)
    signed_in.post(f"{page}/partners/{member}/remove", data={"csrf_token": csrf})
    assert "Alpha University" not in signed_in.get(page).get_data(as_text=True)


def test_partners_with_documents_cannot_be_removed(signed_in, team):
    page = f"/submissions/{team.submission_id}"
    csrf = csrf_from(signed_in, page)
    _upload(signed_in, team, pdf_bytes(500), kind="partner_nda", csrf=csrf,
            partner=team.partner_ids[0])
    signed_in.post(f"{page}/partners/{team.partner_ids[0]}/remove", data={"csrf_token": csrf})
    assert "Alpha University" in signed_in.get(page).get_data(as_text=True)


def test_officers_cannot_edit_partner_lists(app, team, make_user, clock):
    officer = app.test_client()
    sign_in(officer, make_user(Role.OFFICER, mfa=True), clock)
    page = f"/submissions/{team.submission_id}"
    response = officer.post(f"{page}/partners", data={
        "csrf_token": csrf_from(officer, page), "name": "X", "kind": "company", "role": "r",
        "contribution": "c"})
    assert response.status_code == 403


def test_shredded_documents_show_as_shredded_not_as_errors(signed_in, team, runtime):
    receipt = _upload(signed_in, team, pdf_bytes(500), csrf=csrf_from(signed_in, "/")).json
    runtime.keys.destroy(f"consortium-{team.consortium_id}")
    assert signed_in.get(receipt["content_url"]).status_code == 410
    page = signed_in.get(f"/documents/{receipt['document_id']}").get_data(as_text=True)
    assert "crypto-shredded" in page
    assert signed_in.get(f"/api/v1/documents/{receipt['document_id']}").json["shredded"] is True


def test_openapi_describes_every_api_route(client, app):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    documented = {path for path in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
            assert path in documented, path


def test_upload_page_has_a_progress_bar(signed_in, team):
    html = signed_in.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "<progress" in html and "upload.js" in html and 'name="csrf-token"' in html


def test_session_clock_time_is_in_receipts(signed_in, team, clock):
    clock.advance(hours=1)
    receipt = _upload(signed_in, team, pdf_bytes(500), csrf=csrf_from(signed_in, "/")).json
    assert receipt["uploaded_at"] == clock().isoformat()
