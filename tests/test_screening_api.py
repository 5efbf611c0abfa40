"""The screening endpoints of the JSON API: the live checklist, submitting with a receipt,
the receipts, and where a submission stands (decision with reason, latest findings)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Team, sign_in
from tests.reviewing import text_pdf
from tests.test_screening_workflow import OFFICER, act, put, upload
from vault.db import unit_of_work
from vault.documents.models import SubmissionState
from vault.identity.models import Role, User
from vault.programmes.service import ProgrammeService
from vault.screening.service import ScreeningService

S = SubmissionState
PROGRAMME = "sovereign-ai-2025"


def bearer(runtime, account) -> dict[str, str]:
    """The Authorization header of a fresh API token of ``account``, made as on the account page
    of a session that passed the second factor (officers need it)."""
    with unit_of_work(runtime.sessions) as session:
        token, _ = runtime.identity(session).create_token(session.get(User, account.id),
                                                          "test", 30, mfa_verified=True)
    return {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


@pytest.fixture
def team(runtime, make_team) -> Team:
    made = make_team("Team Alpha")
    upload(runtime, made, data=text_pdf(2))
    return made


@pytest.fixture
def headers(runtime, team) -> dict[str, str]:
    return bearer(runtime, team.applicant)


def test_the_checklist_lists_every_finding_with_message_and_evidence(client, team, headers):
    response = client.get(f"/api/v1/submissions/{team.submission_id}/checklist",
                          headers=headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["state"] == "draft" and body["locale"] == "en"
    assert datetime.fromisoformat(body["open_until"]) == datetime(2027, 1, 15, 9, tzinfo=UTC)
    assert body["findings"], body
    for finding in body["findings"]:
        assert finding["result"] in ("pass", "fail", "warning")
        assert finding["check"] and finding["message"] and finding["title"]
        assert isinstance(finding["evidence"], str)
    # The budget plan is missing: a required document fails.
    assert any(f["result"] == "fail" and f["kind"] == "budget_plan" for f in body["findings"])
    korean = client.get(f"/api/v1/submissions/{team.submission_id}/checklist",
                        headers={**headers, "Accept-Language": "ko"}).json
    assert korean["locale"] == "ko"
    assert [f["check"] for f in korean["findings"]] == [f["check"] for f in body["findings"]]


def test_submit_answers_with_the_receipt_and_a_second_submit_is_409(client, team, headers,
                                                                     runtime):
    path = f"/api/v1/submissions/{team.submission_id}"
    response = client.post(f"{path}/submit", headers=headers)
    assert response.status_code == 201, response.json
    receipt = response.json
    assert receipt["state"] == "submitted"
    assert receipt["manifest_sha256"] == hashlib.sha256(
        receipt["manifest"].encode("utf-8")).hexdigest()
    [document] = json.loads(receipt["manifest"])["documents"]
    assert document["sha256"] == hashlib.sha256(text_pdf(2)).hexdigest()
    assert response.headers["Location"] == receipt["url"]
    assert receipt["url"] == (f"/submissions/{team.submission_id}/receipts/{receipt['id']}")

    again = client.post(f"{path}/submit", headers=headers)
    assert again.status_code == 409 and again.json["error"] == "illegal_transition"
    assert again.json["message"] == "A submission cannot go from submitted to submitted."
    listed = client.get(f"{path}/receipts", headers=headers).json["receipts"]
    assert [r["id"] for r in listed] == [receipt["id"]]


def test_submit_after_the_deadline_and_an_empty_submit_are_409(client, team, make_team,
                                                               runtime, clock):
    empty = make_team("Team Empty")
    response = client.post(f"/api/v1/submissions/{empty.submission_id}/submit",
                           headers=bearer(runtime, empty.applicant))
    assert response.status_code == 409 and response.json["error"] == "empty_submission"
    clock.now = datetime(2027, 1, 15, 9, tzinfo=UTC)
    response = client.post(f"/api/v1/submissions/{team.submission_id}/submit",
                           headers=bearer(runtime, team.applicant))
    assert response.status_code == 409 and response.json["error"] == "deadline_passed"


def test_session_callers_need_the_csrf_header_to_submit(client, team, runtime):
    sign_in(client, team.applicant)
    response = client.post(f"/api/v1/submissions/{team.submission_id}/submit")
    assert response.status_code == 400 and response.json["error"] == "csrf"


def test_another_consortium_gets_404_on_every_endpoint(client, team, make_team, runtime):
    other = bearer(runtime, make_team("Team Beta").applicant)
    path = f"/api/v1/submissions/{team.submission_id}"
    for response in (client.get(f"{path}/checklist", headers=other),
                     client.post(f"{path}/submit", headers=other),
                     client.get(f"{path}/receipts", headers=other),
                     client.get(f"{path}/screening", headers=other)):
        assert response.status_code == 404 and response.json["error"] == "not_found"


def test_officers_read_the_screening_but_do_not_submit(client, team, make_user, runtime):
    officer = bearer(runtime, make_user(Role.OFFICER, mfa=True))
    path = f"/api/v1/submissions/{team.submission_id}"
    assert client.get(f"{path}/screening", headers=officer).status_code == 200
    assert client.post(f"{path}/submit", headers=officer).status_code == 403


def test_the_screening_shows_the_decision_with_its_reason_and_the_latest_findings(
        client, team, headers, runtime, clock):
    path = f"/api/v1/submissions/{team.submission_id}"
    assert client.post(f"{path}/submit", headers=headers).status_code == 201
    before = client.get(f"{path}/screening", headers=headers).json
    assert before["run"] is None and before["findings"] == [] and before["decision"] is None
    with unit_of_work(runtime.sessions) as session:
        service = ScreeningService(session, documents=runtime.documents(session),
                                   cipher=runtime.cipher, clock=runtime.clock,
                                   definitions=runtime.definitions)
        service.run(ProgrammeService(session).by_code(PROGRAMME), OFFICER)
    deadline = clock() + timedelta(days=5)
    act(runtime, team, lambda wf, s: wf.decide(s, OFFICER, S.RETURNED,
                                               "Add the budget plan.", deadline))
    body = client.get(f"{path}/screening", headers=headers).json
    assert body["state"] == "returned"
    assert datetime.fromisoformat(body["correction_deadline"]) == deadline
    assert body["decision"]["outcome"] == "returned"
    assert body["decision"]["reason"] == "Add the budget plan."
    assert body["run"]["id"] and body["findings"]
    assert any(f["kind"] == "budget_plan" and f["result"] == "fail" for f in body["findings"])


def test_a_returned_submission_is_resubmitted_through_the_api(client, team, headers, runtime,
                                                              clock):
    put(runtime, team, S.RETURNED, clock() + timedelta(days=2))
    response = client.post(f"/api/v1/submissions/{team.submission_id}/submit",
                           headers=headers)
    assert response.status_code == 201 and response.json["state"] == "resubmitted"


def test_the_openapi_document_describes_the_screening_paths(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("checklist", "submit", "receipts", "screening"):
        assert f"/submissions/{{submission_id}}/{path}" in paths
