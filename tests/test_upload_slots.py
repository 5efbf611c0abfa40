"""The applicant's submission page: which documents take an upload now, and which go up by
resumable upload (stage artifacts and kinds above the ordinary limit)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.conftest import sign_in
from tests.test_resumable_uploads import _set_submission
from vault.documents.models import SubmissionState
from vault.identity.models import Role
from vault.web import documents as documents_web

_BOX = re.compile(r'<div class="upload"(.*?)>', re.S)


def _boxes(page: str) -> dict[str, dict[str, str]]:
    """The upload boxes of the page by kind (from their PUT URL), with their attributes."""
    boxes = {}
    for match in _BOX.finditer(page):
        attributes = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', match.group(1)))
        kind = re.search(r"/documents/([a-z_]+)", attributes["data-url"]).group(1)
        boxes[kind] = attributes
    return boxes


@pytest.fixture
def team(make_team):
    return make_team("Team Alpha")


def _page(client, team) -> str:
    response = client.get(f"/submissions/{team.submission_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_during_the_call_only_call_documents_take_uploads_in_one_request(client, team, clock):
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    boxes = _boxes(page)
    assert {"proposal", "budget_plan"} <= set(boxes)
    assert not {"technical_report", "training_log"} & set(boxes)
    assert "Technical report" not in page  # a stage artifact before its stage: no slot at all
    assert not any("data-tus" in box for box in boxes.values())
    assert "upload.js" in page


def test_in_stage_1_the_stage_artifacts_take_resumable_uploads(client, team, clock, runtime):
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    boxes = _boxes(page)
    # The call documents are closed: listed, without an upload box.
    assert set(boxes) == {"technical_report", "training_log"}
    report = boxes["technical_report"]
    assert report["data-tus"] == "/api/v1/uploads"
    assert report["data-submission"] == str(team.submission_id)
    assert report["data-kind"] == "technical_report"
    assert report["data-partner"] == ""
    assert int(report["data-chunk"]) == documents_web.RESUMABLE_CHUNK
    assert report["data-limit"] == str(4096 * 1048576)
    assert "application/x-tar" in boxes["training_log"]["data-accept"]
    assert '<script src="/static/resumable.js" defer></script>' in page
    assert 'data-resuming="Resuming the upload…"' in page
    assert 'data-retrying="Connection lost; retrying…"' in page
    assert "<progress" in page


def test_the_stage_slots_speak_korean(app, team, clock, runtime):
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    assert 'data-resuming="업로드를 이어서 진행합니다…"' in page
    assert "기술보고서" in page


def test_after_the_stage_window_closes_no_stage_slot_remains(client, team, clock, runtime):
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    clock.now = datetime(2027, 9, 3, 9, 0, tzinfo=UTC)  # 18:00 KST, artifacts_due
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    assert _boxes(page) == {}
    assert "Technical report" not in page
    assert "resumable.js" not in page and "upload.js" not in page


def test_an_uploaded_stage_artifact_stays_listed_after_its_window(client, team, clock,
                                                                 runtime):
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    sign_in(client, team.applicant, clock)
    token = re.search(r'name="csrf-token" content="([^"]+)"', _page(client, team)).group(1)
    uploaded = client.put(f"/api/v1/submissions/{team.submission_id}/documents/training_log",
                          data=b"step 1 loss 9.9\n", headers={
                              "Content-Type": "text/plain", "X-CSRFToken": token,
                              "Content-Disposition": "attachment; filename=train.log"})
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    clock.now = datetime(2027, 9, 4, tzinfo=UTC)
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    assert "Training logs" in page and "train.log" in page
    assert "Technical report" not in page
    assert _boxes(page) == {}


def test_in_a_stage_without_artifacts_nothing_takes_an_upload(client, team, clock, runtime):
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="written")
    sign_in(client, team.applicant, clock)
    page = _page(client, team)
    assert _boxes(page) == {}
    assert "Technical report" not in page


def test_call_documents_above_the_ordinary_limit_go_up_resumably(client, team, clock,
                                                                monkeypatch):
    monkeypatch.setattr(documents_web, "RESUMABLE_ABOVE", 20 * 1048576)
    sign_in(client, team.applicant, clock)
    boxes = _boxes(_page(client, team))
    assert boxes["proposal"]["data-tus"] == "/api/v1/uploads"  # 50 MiB
    assert "data-tus" not in boxes["budget_plan"]  # 20 MiB, the ordinary way


def test_officers_see_no_upload_slot(client, team, clock, runtime, make_user):
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    officer = make_user(Role.OFFICER, mfa=True)
    sign_in(client, officer, clock)
    page = _page(client, team)
    assert _boxes(page) == {}
