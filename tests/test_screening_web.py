"""The screening workflow in the browser: the applicant submits, recalls, withdraws, reads the
checklist and the receipt; officers decide and move eligible submissions into the written
evaluation. Who may do what, and what the others get (404 or 403)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import Team, csrf_from, sign_in
from tests.conftest import audit_events as events
from tests.reviewing import text_pdf
from tests.test_screening_workflow import put, upload
from vault.audit.service import Tag
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.grants.models import DualControlGrant
from vault.identity.models import Role
from vault.programmes.service import ProgrammeService
from vault.screening.models import SubmissionEvent, SubmissionReceipt

S = SubmissionState
PROGRAMME = "sovereign-ai-2025"


def state(runtime, team: Team) -> SubmissionState:
    with unit_of_work(runtime.sessions) as session:
        return session.get(Submission, team.submission_id).state


def client_for(app, account, clock, language: str = "en"):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    sign_in(client, account, clock)
    return client


def post(client, path: str, **data) -> object:
    """A form post with the CSRF token of the home page."""
    return client.post(path, data={"csrf_token": csrf_from(client, "/"), **data})


def conflict(runtime, user_id: uuid.UUID, team: Team) -> None:
    """A conflict of interest in effect between the user and the team."""
    with unit_of_work(runtime.sessions) as session:
        session.add(new_conflict(
            runtime.cipher, programme_id=ProgrammeService(session).by_code(PROGRAMME).id,
            user_id=user_id, consortium_id=team.consortium_id,
            source=ConflictSource.DECLARED, status=ConflictStatus.CONFIRMED,
            details_sealed=b"sealed-elsewhere"))


def grant(runtime, clock, requester, approver, team: Team) -> None:
    """An approved dual-control grant: the conflicted officer may read the team's material."""
    row_id = uuid.uuid4()
    now = clock()
    with unit_of_work(runtime.sessions) as session:
        session.add(DualControlGrant(
            id=row_id, consortium_id=team.consortium_id, requested_by_id=requester.id,
            reason_sealed=runtime.cipher.seal("dual_control_grants", "reason", row_id,
                                              "insecure test: checking"),
            requested_at=now - timedelta(hours=1), approved_by_id=approver.id,
            approved_at=now - timedelta(minutes=30), expires_at=now + timedelta(hours=8)))


@pytest.fixture
def team(runtime, make_team) -> Team:
    made = make_team("Team Alpha")
    upload(runtime, made, data=text_pdf(3))
    return made


@pytest.fixture
def applicant(app, team, clock):
    return client_for(app, team.applicant, clock)


@pytest.fixture
def officer(make_user):
    return make_user(Role.OFFICER, mfa=True)


# -- the applicant ---------------------------------------------------------------------------

def test_the_applicant_sees_the_checklist_and_submits_with_a_receipt(applicant, team, runtime,
                                                                      clock):
    path = f"/submissions/{team.submission_id}"
    page = applicant.get(path).get_data(as_text=True)
    assert "I confirm the documents are final" in page and "Pre-check" in page
    # The summary comes first: documents are still missing, so something fails.
    assert re.search(r'<strong class="bad">\d+ failed</strong>', page)
    assert "Nothing fails" not in page
    assert f"/submissions/{team.submission_id}/submit" in page
    unconfirmed = post(applicant, f"{path}/submit")
    assert unconfirmed.status_code == 302 and state(runtime, team) is S.DRAFT
    assert "Tick the box to confirm" in applicant.get(path).get_data(as_text=True)

    response = post(applicant, f"{path}/submit", confirm="y")
    assert response.status_code == 302 and "/receipts/" in response.location
    assert state(runtime, team) is S.SUBMITTED
    with unit_of_work(runtime.sessions) as session:
        receipt = session.scalar(select(SubmissionReceipt))
        manifest = json.loads(receipt.manifest)
    shown = applicant.get(response.location).get_data(as_text=True)
    assert receipt.manifest_sha256 in shown
    assert manifest["documents"][0]["sha256"] in shown
    assert hashlib.sha256(text_pdf(3)).hexdigest() == manifest["documents"][0]["sha256"]
    assert "Submitted. Keep this receipt" in shown
    assert "2026-12-01 10:00 KST" in shown  # received and uploaded, in Korean time
    [event] = events(runtime, Tag.SUBMISSION_SUBMITTED)
    assert event["target"]["manifest_sha256"] == receipt.manifest_sha256
    assert event["target"]["submission"] == str(team.submission_id)

    page = applicant.get(path).get_data(as_text=True)
    assert "Recall to draft" in page and response.location in page
    assert "I confirm the documents are final" not in page  # no second submit
    again = post(applicant, f"{path}/submit", confirm="y")
    assert again.status_code == 302
    assert "cannot go from submitted to submitted" in applicant.get(path).get_data(as_text=True)


def test_refusals_are_shown_in_korean(app, team, runtime, clock):
    korean = client_for(app, team.applicant, clock, language="ko")
    put(runtime, team, S.INELIGIBLE)
    post(korean, f"/submissions/{team.submission_id}/submit", confirm="y")
    page = korean.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "제출물을 &#39;부적합&#39; 상태에서 &#39;제출됨&#39; 상태로 바꿀 수 없습니다." in page


def test_the_applicant_recalls_before_the_deadline(app, applicant, team, runtime, clock):
    path = f"/submissions/{team.submission_id}"
    post(applicant, f"{path}/submit", confirm="y")
    assert post(applicant, f"{path}/recall").status_code == 302
    assert state(runtime, team) is S.DRAFT
    assert len(events(runtime, Tag.SUBMISSION_RECALLED)) == 1
    post(applicant, f"{path}/submit", confirm="y")
    clock.now = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    applicant = client_for(app, team.applicant, clock)  # a new day, a new session
    assert "Recall to draft" not in applicant.get(path).get_data(as_text=True)
    post(applicant, f"{path}/recall")
    assert state(runtime, team) is S.SUBMITTED
    assert "The submission deadline has passed." in applicant.get(path).get_data(as_text=True)


def test_the_applicant_withdraws_with_a_reason_and_a_confirmation(applicant, team, runtime):
    path = f"/submissions/{team.submission_id}"
    post(applicant, f"{path}/withdraw", reason="We merge with another team.")
    assert state(runtime, team) is S.DRAFT  # not confirmed
    post(applicant, f"{path}/withdraw", reason=" ", confirm="y")
    assert state(runtime, team) is S.DRAFT  # no reason
    assert "Give a reason." in applicant.get(path).get_data(as_text=True)
    post(applicant, f"{path}/withdraw", reason="We merge with another team.", confirm="y")
    assert state(runtime, team) is S.WITHDRAWN
    [event] = events(runtime, Tag.SUBMISSION_WITHDRAWN)
    assert "merge" not in json.dumps(event)  # the reason is sealed, not audited in clear
    with unit_of_work(runtime.sessions) as session:
        sealed = session.scalar(select(SubmissionEvent.reason_sealed))
        assert b"merge" not in sealed
    page = applicant.get(path).get_data(as_text=True)
    assert "Withdraw the submission" not in page and "I confirm the documents" not in page


def test_another_consortiums_applicant_gets_404_everywhere(app, team, make_team, runtime,
                                                         clock):
    post(client_for(app, team.applicant, clock), f"/submissions/{team.submission_id}/submit",
         confirm="y")
    with unit_of_work(runtime.sessions) as session:
        receipt_id = session.scalar(select(SubmissionReceipt.id))
    other = client_for(app, make_team("Team Beta").applicant, clock)
    path = f"/submissions/{team.submission_id}"
    for response in (
        post(other, f"{path}/submit", confirm="y"),
        post(other, f"{path}/recall"),
        post(other, f"{path}/withdraw", reason="x", confirm="y"),
        other.get(f"{path}/receipts/{receipt_id}"),
        post(other, f"/screening/submissions/{team.submission_id}/decide",
             outcome="eligible", reason="x"),
    ):
        assert response.status_code == 404
    assert state(runtime, team) is S.SUBMITTED


def test_a_receipt_of_another_submission_is_404(app, team, make_team, runtime, clock):
    other_team = make_team("Team Beta")
    upload(runtime, other_team)
    post(client_for(app, other_team.applicant, clock),
         f"/submissions/{other_team.submission_id}/submit", confirm="y")
    with unit_of_work(runtime.sessions) as session:
        foreign = session.scalar(select(SubmissionReceipt.id))
    applicant = client_for(app, team.applicant, clock)
    assert applicant.get(f"/submissions/{team.submission_id}/receipts/{foreign}") \
        .status_code == 404


def test_applicants_neither_decide_nor_advance(applicant, team, runtime):
    put(runtime, team, S.SCREENING)
    refused = post(applicant, f"/screening/submissions/{team.submission_id}/decide",
                   outcome="eligible", reason="We are great.")
    assert refused.status_code == 403 and state(runtime, team) is S.SCREENING
    assert post(applicant, f"/screening/{PROGRAMME}/advance").status_code == 403


# -- the officers ------------------------------------------------------------------------------

def test_the_officer_returns_with_a_reason_and_the_applicant_sees_it(app, team, officer,
                                                                     runtime, clock):
    put(runtime, team, S.SCREENING)
    client = client_for(app, officer, clock)
    response = post(client, f"/screening/submissions/{team.submission_id}/decide",
                    outcome="returned", reason="The budget plan is missing.\nAdd it.",
                    correction_deadline="2026-12-08T18:00")
    assert response.status_code == 302
    assert response.location == f"/screening/submissions/{team.submission_id}"
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        assert submission.state is S.RETURNED
        assert submission.correction_deadline == datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    [event] = events(runtime, Tag.SCREENING_DECIDED)
    assert event["target"]["outcome"] == "returned" and "budget" not in json.dumps(event)

    applicant = client_for(app, team.applicant, clock)
    page = applicant.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "The budget plan is missing.<br>Add it." in page
    assert "2026-12-08 18:00 KST" in page and "Resubmit" in page
    # Corrections go in until the correction deadline.
    clock.now = datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    applicant = client_for(app, team.applicant, clock)
    upload(runtime, team, "budget_plan", filename="budget.pdf")
    post(applicant, f"/submissions/{team.submission_id}/submit", confirm="y")
    assert state(runtime, team) is S.RESUBMITTED
    assert len(events(runtime, Tag.SUBMISSION_RESUBMITTED)) == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"outcome": "returned", "reason": "Fix it."}, "needs a correction deadline"),
    ({"outcome": "returned", "reason": "Fix it.", "correction_deadline": "next week"},
     "not a valid date and time"),
    ({"outcome": "eligible", "reason": ""}, "Give a reason."),
    ({"outcome": "withdrawn", "reason": "No."}, "Choose eligible, returned or ineligible."),
])
def test_an_incomplete_decision_is_refused_with_a_message(app, team, officer, runtime, clock,
                                                          fields, message):
    put(runtime, team, S.SCREENING)
    client = client_for(app, officer, clock)
    post(client, f"/screening/submissions/{team.submission_id}/decide", **fields)
    assert state(runtime, team) is S.SCREENING
    with client.session_transaction() as flask_session:
        flashed = [text for _category, text in flask_session.get("_flashes", [])]
    assert any(message in text for text in flashed), flashed


def test_a_conflicted_officer_may_not_decide(app, team, officer, make_user, runtime, clock):
    put(runtime, team, S.SCREENING)
    conflict(runtime, officer.id, team)
    client = client_for(app, officer, clock)
    path = f"/screening/submissions/{team.submission_id}/decide"
    assert post(client, path, outcome="eligible", reason="Fine.").status_code == 404
    grant(runtime, clock, officer, make_user(Role.OFFICER, mfa=True), team)
    # With dual control the officer may read the submission, but never decide on it.
    assert client.get(f"/submissions/{team.submission_id}").status_code == 200
    assert post(client, path, outcome="eligible", reason="Fine.").status_code == 403
    assert state(runtime, team) is S.SCREENING


def test_advancing_moves_only_eligible_submissions(app, team, make_team, officer, runtime,
                                                   clock):
    others = {s: make_team(f"Team {s.value}") for s in (S.RETURNED, S.SCREENING, S.INELIGIBLE)}
    put(runtime, team, S.ELIGIBLE)
    for s, member in others.items():
        put(runtime, member, s, clock() + timedelta(days=3) if s is S.RETURNED else None)
    client = client_for(app, officer, clock)
    response = post(client, f"/screening/{PROGRAMME}/advance")
    assert response.status_code == 302 and response.location == f"/screening/{PROGRAMME}"
    with unit_of_work(runtime.sessions) as session:
        stages = {member.name: session.get(Submission, member.submission_id).stage
                  for member in (team, *others.values())}
    assert stages == {"Team Alpha": "written", "Team returned": "call", "Team screening": "call",
                      "Team ineligible": "call"}
    [event] = events(runtime, Tag.SUBMISSION_STAGE_ENTERED)
    assert event["target"] == {"consortium": str(team.consortium_id),
                               "submission": str(team.submission_id), "stage": "written"}
    with client.session_transaction() as flask_session:
        flashed = [text for _category, text in flask_session.get("_flashes", [])]
    assert "1 eligible submissions moved into Written evaluation." in flashed
    assert post(client, "/screening/no-such-programme/advance").status_code == 404


def test_forms_without_the_csrf_token_are_refused(applicant, team, runtime):
    response = applicant.post(f"/submissions/{team.submission_id}/submit",
                              data={"confirm": "y"})
    assert response.status_code == 400 and state(runtime, team) is S.DRAFT


def test_the_checklist_is_gone_after_the_deadline(app, team, clock):
    clock.now = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    applicant = client_for(app, team.applicant, clock)
    page = applicant.get(f"/submissions/{team.submission_id}").get_data(as_text=True)
    assert "Pre-check" not in page and "I confirm the documents are final" not in page
    assert re.search(r"state draft", page)
