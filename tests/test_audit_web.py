"""The auditor's pages and the audit API: filters, paging, the chain check, exports and the
per-document access report — and nobody else reaching them."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, pdf_bytes, sign_in, user_factory
from vault.app import create_app
from vault.audit.checkpoints import create_log_identity, issue_and_publish
from vault.audit.models import AuditEvent, AuditVerification
from vault.audit.service import Tag
from vault.audit.verify import verify_bundle
from vault.crypto import signed_note
from vault.db import unit_of_work
from vault.identity.models import Role
from vault.settings import Settings


@pytest.fixture
def identity(runtime, settings):
    """The log's signing identity, as ``vault init`` creates it."""
    runtime.log_identity = create_log_identity(settings)
    return runtime.log_identity


@pytest.fixture
def auditor(app, make_user, clock, identity):
    client = app.test_client()
    sign_in(client, make_user(Role.AUDITOR, mfa=True), clock)
    return client


def _append(runtime, count: int, tag: Tag = Tag.KEY_ROTATED) -> None:
    with unit_of_work(runtime.sessions) as session:
        log = runtime.audit(session)
        for _ in range(count):
            log.append(tag, target={"key": "consortium-x"})


def _seqs(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr><td class="num">(\d+)</td>', html)]


def test_the_log_pages_newest_first_without_gaps_or_overlaps(auditor, runtime):
    _append(runtime, 250)
    first = auditor.get("/audit/").get_data(as_text=True)
    seen = _seqs(first)
    assert len(seen) == 100 and seen == sorted(seen, reverse=True)
    next_link = re.search(r'href="(/audit/\?before=\d+)"', first).group(1)
    second = _seqs(auditor.get(next_link).get_data(as_text=True))
    assert second[0] == seen[-1] - 1 and len(second) == 100


def test_filters_narrow_the_log(auditor, runtime, make_team, app):
    team = make_team()
    owner = app.test_client()
    sign_in(owner, team.applicant)
    _append(runtime, 3)
    by_tag = auditor.get("/audit/?tag=key:rotated").get_data(as_text=True)
    assert by_tag.count("key:rotated</code>") == 3
    logins = auditor.get(f"/audit/?actor={quote(team.applicant.email)}&tag=auth:login:succeeded")
    assert logins.get_data(as_text=True).count("auth:login:succeeded</code>") == 1
    denied = auditor.get("/audit/?decision=deny").get_data(as_text=True)
    assert "No events match." in denied
    assert auditor.get("/audit/?tag=not-a-tag").status_code == 400
    assert auditor.get("/audit/?from=yesterday").status_code == 400
    assert auditor.get("/audit/?consortium=not-a-uuid").status_code == 400
    today = runtime.clock().strftime("%Y-%m-%d")
    assert _seqs(auditor.get(f"/audit/?from={today}&to={today}").get_data(as_text=True))


@pytest.mark.parametrize("role", ["applicant", "reviewer", "officer", "admin"])
def test_only_auditors_read_the_log(app, make_user, clock, identity, runtime, role):
    client = app.test_client()
    sign_in(client, make_user(Role(role), mfa=role != "applicant"), clock)
    for path in ("/audit/", "/audit/export", "/api/v1/audit/export"):
        assert client.get(path).status_code == 403
    with unit_of_work(runtime.sessions) as session:
        log = runtime.audit(session)
        leaves = [session.get(AuditEvent, seq).leaf for seq in range(log.size())]
    assert any(b'"decision":"deny"' in leaf and b"audit-log" in leaf for leaf in leaves)


def test_the_chain_check_records_who_ran_it(auditor, runtime):
    _append(runtime, 5)
    response = auditor.post("/audit/check", data={"csrf_token": csrf_from(auditor, "/audit/")})
    assert response.status_code == 302
    page = auditor.get("/audit/").get_data(as_text=True)
    assert "The audit log is intact" in page and "intact</strong>" in page
    with unit_of_work(runtime.sessions) as session:
        runs = session.scalars(select(AuditVerification)).all()
    assert len(runs) == 1 and runs[0].ok and runs[0].by_user_id is not None


def test_an_export_downloads_a_bundle_that_verifies_offline(auditor, runtime, identity,
                                                            tmp_path: Path):
    _append(runtime, 7)
    response = auditor.get("/audit/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(response.data)
    response.close()
    report = verify_bundle(bundle, identity.vkey)
    assert report.size >= 8  # the events, the export itself, the sign-in
    api = auditor.get("/api/v1/audit/export")
    assert api.status_code == 200 and api.data[:2] == b"PK"
    api.close()
    # The bundle was spooled to an anonymous file: nothing of it is left in the data dir.
    assert not [p for p in runtime.settings.data_dir.iterdir()
                if p.suffix == ".zip" or p.name.startswith("tmp")]


def test_the_latest_checkpoint_is_served_and_verifies(auditor, runtime, identity, settings):
    issue_and_publish(runtime.sessions, identity=identity, clock=runtime.clock,
                      path=settings.published_checkpoints)
    note = auditor.get("/api/v1/audit/checkpoint").get_data(as_text=True)
    checkpoint = signed_note.verify_checkpoint(note, identity.vkey, identity.origin)
    assert checkpoint.size >= 1


def test_the_access_report_shows_who_opened_a_document(app, make_team, make_user, clock,
                                                      identity, runtime):
    team = make_team()
    owner = app.test_client()
    sign_in(owner, team.applicant)
    token = csrf_from(owner, "/")
    receipt = owner.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal", data=pdf_bytes(2000),
        headers={"X-CSRFToken": token, "Content-Disposition": "attachment; filename=p.pdf"},
        content_type="application/pdf").json
    owner.get(receipt["content_url"])
    officer = app.test_client()
    officer_account = make_user(Role.OFFICER, mfa=True)
    sign_in(officer, officer_account, clock)
    report = officer.get(f"/audit/documents/{receipt['document_id']}").get_data(as_text=True)
    assert "document:version:uploaded" in report and "document:version:downloaded" in report
    assert team.applicant.email in report
    assert owner.get(f"/audit/documents/{receipt['document_id']}").status_code == 403


def test_checkpoints_follow_the_configured_interval(environ, clock):
    settings = Settings.from_env({**environ, "VAULT_CHECKPOINT_EVERY": "3"}, testing=True)
    create_log_identity(settings)
    app = create_app(settings, clock=clock)
    try:
        account = user_factory(app.extensions["vault"], clock)(Role.APPLICANT)
        sign_in(app.test_client(), account)
        first = settings.published_checkpoints.read_text().splitlines()
        assert len(first) == 1  # the first events always get a checkpoint
        for _ in range(3):  # each sign-in appends an event: three more make one due
            sign_in(app.test_client(), account)
        assert len(settings.published_checkpoints.read_text().splitlines()) == 2
    finally:
        app.extensions["vault"].engine.dispose()


EXPORTS = ("/audit/export", "/api/v1/audit/export")


def _bundle(response, path: Path) -> Path:
    assert response.status_code == 200 and response.mimetype == "application/zip"
    path.write_bytes(response.data)
    response.close()
    return path


def _entries(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as bundle:
        return [json.loads(line) for line in bundle.read("entries.jsonl").splitlines()]


@pytest.mark.parametrize("url", EXPORTS)
def test_an_export_filtered_to_a_consortium_holds_only_its_events_each_proven(
        auditor, runtime, identity, make_team, tmp_path: Path, url):
    ours, theirs = make_team("Team Alpha"), make_team("Team Beta", partners=("Beta U",))
    with unit_of_work(runtime.sessions) as session:
        log = runtime.audit(session)
        for number in range(6):
            team = ours if number % 2 else theirs
            log.append(Tag.DOCUMENT_DOWNLOADED,
                       target={"consortium": team.consortium_id, "n": number})
    bundle = _bundle(auditor.get(f"{url}?consortium={ours.consortium_id}"),
                     tmp_path / "ours.zip")
    entries = _entries(bundle)
    assert [e["target"]["n"] for e in entries if "n" in e["target"]] == ["1", "3", "5"]
    assert {e["target"]["consortium"] for e in entries} == {str(ours.consortium_id)}
    report = verify_bundle(bundle, identity.vkey)
    assert report.size == len(entries)
    assert report.filter == {"consortium": str(ours.consortium_id)}
    assert "does NOT prove that no other entries" in report.statement()


def test_an_export_filtered_to_a_document_holds_only_its_events(
        app, auditor, make_team, identity, tmp_path: Path):
    team = make_team()
    owner = app.test_client()
    sign_in(owner, team.applicant)
    receipt = owner.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal", data=pdf_bytes(2000),
        headers={"X-CSRFToken": csrf_from(owner, "/"),
                 "Content-Disposition": "attachment; filename=p.pdf"},
        content_type="application/pdf").json
    owner.get(receipt["content_url"])
    bundle = _bundle(auditor.get(f"/api/v1/audit/export?document={receipt['document_id']}"),
                     tmp_path / "document.zip")
    entries = _entries(bundle)
    assert {e["tag"] for e in entries} >= {"document:version:uploaded",
                                           "document:version:downloaded"}
    assert {e["target"]["document"] for e in entries} == {receipt["document_id"]}
    assert verify_bundle(bundle, identity.vkey).filter == {"document": receipt["document_id"]}


def _exports_recorded(runtime) -> int:
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).sequence()
        return sum(b'"tag":"audit:exported"' in leaf
                   for leaf in session.scalars(select(AuditEvent.leaf)))


@pytest.mark.parametrize("url", EXPORTS)
@pytest.mark.parametrize(("query", "status", "message"), [
    ("consortium=not-a-uuid", 400, "The consortium to export is not a valid id."),
    ("document=12345", 400, "The document to export is not a valid id."),
    ("consortium=", 400, "The consortium to export is not a valid id."),
    ("consortium={id}&document={id}", 400, "Export one consortium or one document, not both."),
    ("consortium={id}&consortium={id}", 400, "Give the consortium to export once."),
    ("consortium=00000000-0000-4000-8000-000000000000", 404,
     "There is no such consortium to export."),
    ("document=00000000-0000-4000-8000-000000000000", 404,
     "There is no such document to export."),
])
def test_a_bad_export_filter_is_refused_with_a_message_and_exports_nothing(
        auditor, runtime, make_team, url, query, status, message):
    team = make_team()
    before = _exports_recorded(runtime)
    response = auditor.get(f"{url}?{query.format(id=team.consortium_id)}")
    response.close()
    assert response.status_code == status
    if url.startswith("/api/"):
        assert response.json["message"] == message
        assert response.json["error"] == ("invalid_export_filter" if status == 400
                                          else "not_found")
    else:
        assert message in response.get_data(as_text=True)
    assert _exports_recorded(runtime) == before


def test_the_log_filtered_to_a_consortium_offers_its_export_and_states_its_limit(
        auditor, make_team):
    team = make_team()
    page = auditor.get(f"/audit/?consortium={team.consortium_id}").get_data(as_text=True)
    assert f'href="/audit/export?consortium={team.consortium_id}"' in page
    assert "only a full export proves completeness" in page
    assert "/audit/export?consortium=" not in auditor.get("/audit/").get_data(as_text=True)
