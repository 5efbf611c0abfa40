"""Score sheet pages: an assigned, conflict-free reviewer saves and submits their sheet (scores,
or a vote on a majority stage) in English or Korean; bad input is refused with 422 and stores
nothing; a submitted sheet is read-only until an officer reopens it with a reason (kept in its
history); nobody else reads or writes it."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import (
    Account,
    Team,
    audit_events,
    csrf_from,
    sign_in,
    snapshot_fixtures,
)
from tests.reviewing import (
    PROGRAMME,
    accept_nda,
    assign,
    enter_stage,
    ready_reviewer,
    team_and_reviewer,
)
from vault.audit.service import Tag
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.evaluation.models import ScoreSheet, ScoreSheetRevision, SheetState
from vault.evaluation.sheets import ScoreSheets
from vault.identity.models import Role

CRITERIA = ("capability", "experience", "strategy", "excellence", "impact", "open_source")
FULL = dict(zip(CRITERIA, (87, 64, 93, 71, 58, 100), strict=True))
COMMENT = "Quokka-tokenizer plan is thin on Korean legal corpora"


def _sheet_url(team, stage: str = "written") -> str:
    return f"/evaluation/submissions/{team.submission_id}/{stage}/sheet"


def _fields(scores: dict[str, object], **extra: str) -> dict[str, str]:
    return {**{f"score-{key}": str(value) for key, value in scores.items()}, **extra}


def _post(client, url: str, fields: dict[str, str]):
    return client.post(url, data={"csrf_token": csrf_from(client, "/account/"), **fields})


def _sheets(runtime) -> list:
    """Every stored sheet, opened."""
    with unit_of_work(runtime.sessions) as session:
        service = ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                              definitions=runtime.definitions)
        return [service.opened(sheet) for sheet in session.scalars(select(ScoreSheet))]


def _count(runtime, model) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


def _signed_in(app, account: Account, clock):
    client = app.test_client()
    assert sign_in(client, account, clock).status_code == 302
    return client


built, database_url, data_dir, world = snapshot_fixtures(team_and_reviewer)


@pytest.fixture
def team(world) -> Team:
    return world[0]


@pytest.fixture
def reviewer(world) -> Account:
    return world[1]


@pytest.fixture
def browser(app, reviewer, clock):
    return _signed_in(app, reviewer, clock)


# -- the reviewer writes ------------------------------------------------------------------------

def test_the_form_shows_the_criteria_weights_and_scale(browser, team):
    page = browser.get(_sheet_url(team)).get_data(as_text=True)
    assert "Technological capability" in page and "Open-source strategy" in page
    assert "People, infrastructure and technology" in page  # the description
    assert "20%" in page and "From 0 to 100" in page
    assert 'name="score-capability"' in page and 'value="accept"' not in page
    assert "I understand a submitted sheet cannot be changed" in page
    assert "2027-01-25 09:00 KST" in page  # the review window, in Korean time


def test_the_form_speaks_korean(browser, team):
    browser.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    page = browser.get(_sheet_url(team)).get_data(as_text=True)
    for text in ("평가표", "기술 역량", "모델 개발에 필요한 인력", "임시 저장", "평가표 제출",
                 "제출한 평가표는 변경할 수 없음을 이해합니다"):
        assert text in page, text
    response = _post(browser, _sheet_url(team), _fields({"capability": 101}, action="save"))
    assert response.status_code == 422
    assert "capability 항목의 점수는 0에서 100 사이의 정수여야 합니다." in \
        response.get_data(as_text=True)


def test_a_draft_is_saved_and_shown_with_its_values(browser, team, runtime, reviewer):
    response = _post(browser, _sheet_url(team), _fields(
        {"capability": 50}, action="save", **{"comment-strategy": COMMENT},
        overall_comment="Overall fine"))
    assert response.status_code == 302 and response.location == _sheet_url(team)
    [view] = _sheets(runtime)
    assert (view.state, view.scores, view.comments, view.overall_comment) == (
        SheetState.DRAFT, {"capability": 50}, {"strategy": COMMENT}, "Overall fine")
    page = browser.get(_sheet_url(team)).get_data(as_text=True)
    assert 'name="score-capability" inputmode="numeric" maxlength="10" size="5"' in page
    assert 'value="50"' in page and COMMENT in page and "The draft was saved." in page
    [event] = audit_events(runtime, Tag.SCORE_SHEET_SAVED)
    assert event["target"]["sheet"] == str(view.id)
    assert event["actor"]["user"] == str(reviewer.id)
    # Which sheet, never what it holds.
    assert set(event["target"]) == {"programme", "stage", "consortium", "submission", "sheet",
                                    "revision"}
    assert "Quokka" not in str(event) and "Overall fine" not in str(event)


def test_submitting_needs_the_confirmation_and_every_criterion_and_stores_nothing_otherwise(
        browser, team, runtime):
    unconfirmed = _post(browser, _sheet_url(team), _fields(FULL, action="submit"))
    assert unconfirmed.status_code == 422
    assert "Tick the confirmation" in unconfirmed.get_data(as_text=True)
    partial = {key: FULL[key] for key in CRITERIA[:4]}
    incomplete = _post(browser, _sheet_url(team), _fields(partial, action="submit", confirm="y"))
    assert incomplete.status_code == 422
    page = incomplete.get_data(as_text=True)
    assert "not scored yet: impact, open_source" in page
    assert 'value="87"' in page  # what was typed is kept on the form
    assert _count(runtime, ScoreSheet) == 0
    assert audit_events(runtime, Tag.SCORE_SHEET_SAVED) == []


def test_a_submitted_sheet_is_read_only_and_cannot_change_without_a_reopen(browser, team,
                                                                           runtime):
    response = _post(browser, _sheet_url(team), _fields(FULL, action="submit", confirm="y"))
    assert response.status_code == 302
    [view] = _sheets(runtime)
    assert view.submitted and view.scores == FULL
    assert len(audit_events(runtime, Tag.SCORE_SHEET_SUBMITTED)) == 1
    page = browser.get(_sheet_url(team)).get_data(as_text=True)
    assert "A submitted sheet changes only after an officer reopens it." in page
    assert 'value="submit"' not in page and 'value="save"' not in page
    assert re.search(r'name="score-impact"[^>]*disabled', page)
    again = _post(browser, _sheet_url(team), _fields({**FULL, "impact": 0}, action="save"))
    assert again.status_code == 409
    assert "changes only after an officer reopens it" in again.get_data(as_text=True)
    assert _sheets(runtime)[0].scores == FULL


@pytest.mark.parametrize(("fields", "named"), [
    ({"score-capability": "101"}, "capability"),
    ({"score-impact": "-1"}, "impact"),
    ({"score-impact": "12.5"}, "impact"),
    ({"score-impact": "eighty"}, "impact"),
    ({"score-novelty": "80"}, "novelty"),
    ({"comment-novelty": "fine"}, "novelty"),
    ({"vote": "accept"}, "written"),
], ids=["above", "below", "decimal", "text", "unknown-criterion", "unknown-comment",
        "vote-on-scored-stage"])
def test_bad_values_are_refused_with_422_and_nothing_is_stored(browser, team, runtime, fields,
                                                               named):
    _post(browser, _sheet_url(team), _fields({"capability": 40}, action="save"))
    response = _post(browser, _sheet_url(team), {**_fields(FULL), **fields, "action": "save"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert named in page and 'class="flash error"' in page
    [view] = _sheets(runtime)
    assert view.scores == {"capability": 40} and view.vote is None
    assert len(audit_events(runtime, Tag.SCORE_SHEET_SAVED)) == 1


def test_a_request_without_csrf_or_action_stores_nothing(browser, team, runtime):
    assert browser.post(_sheet_url(team), data=_fields(FULL, action="save")).status_code == 400
    assert _post(browser, _sheet_url(team), _fields(FULL, action="erase")).status_code == 400
    assert _count(runtime, ScoreSheet) == 0


def test_a_majority_stage_takes_a_vote_and_a_comment(app, runtime, make_user, clock, make_team):
    gamma = make_team("Team Gamma")
    voter = ready_reviewer(runtime, make_user, clock, gamma, "additional_call")
    browser = _signed_in(app, voter, clock)
    url = _sheet_url(gamma, "additional_call")
    page = browser.get(url).get_data(as_text=True)
    assert 'value="accept"' in page and 'value="reject"' in page
    assert 'name="score-' not in page
    missing = _post(browser, url, {"action": "submit", "confirm": "y"})
    assert missing.status_code == 422
    assert "Vote accept or reject before submitting." in missing.get_data(as_text=True)
    scored = _post(browser, url, {"action": "save", "score-capability": "50"})
    assert scored.status_code == 422 and "take no scores" in scored.get_data(as_text=True)
    unknown = _post(browser, url, {"action": "save", "vote": "maybe"})
    assert unknown.status_code == 422
    assert _count(runtime, ScoreSheet) == 0
    done = _post(browser, url, {"action": "submit", "confirm": "y", "vote": "reject",
                                "overall_comment": "Not from scratch"})
    assert done.status_code == 302
    [view] = _sheets(runtime)
    assert (view.submitted, view.vote, view.overall_comment) == (True, False, "Not from scratch")
    page = browser.get(url).get_data(as_text=True)
    assert re.search(r'value="reject" checked disabled', page)


# -- who may write ------------------------------------------------------------------------------

def _refused(client, url: str) -> tuple[int, int]:
    return (client.get(url).status_code,
            _post(client, url, _fields(FULL, action="save")).status_code)


def test_unassigned_and_conflicted_reviewers_cannot_score(app, runtime, make_user, clock, team,
                                                          reviewer):
    unassigned = make_user(Role.REVIEWER, mfa=True)
    accept_nda(runtime, clock, unassigned)
    assert _refused(_signed_in(app, unassigned, clock), _sheet_url(team)) == (404, 404)

    conflicted = ready_reviewer(runtime, make_user, clock, team)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        session.add(new_conflict(
            runtime.cipher, programme_id=submission.programme_id, user_id=conflicted.id,
            consortium_id=team.consortium_id, source=ConflictSource.DECLARED,
            status=ConflictStatus.PENDING, details_sealed=b"sealed-elsewhere"))
    assert _refused(_signed_in(app, conflicted, clock), _sheet_url(team)) == (404, 404)
    assert _count(runtime, ScoreSheet) == 0


def test_another_consortiums_submission_is_denied(app, runtime, make_team, browser, clock):
    beta = make_team("Team Beta")
    enter_stage(runtime, clock, beta)
    assert _refused(browser, _sheet_url(beta)) == (404, 404)
    assert _refused(browser, f"/evaluation/submissions/{uuid.uuid4()}/written/sheet") == (404,
                                                                                         404)
    assert _count(runtime, ScoreSheet) == 0


def test_officers_applicants_and_auditors_may_see_the_submission_but_not_score(
        app, runtime, make_user, clock, team, reviewer):
    for account in (make_user(Role.OFFICER, mfa=True), make_user(Role.AUDITOR, mfa=True),
                    team.applicant):
        assert _refused(_signed_in(app, account, clock), _sheet_url(team)) == (403, 403)
    assert _count(runtime, ScoreSheet) == 0


def test_a_stage_without_sheets_or_another_stage_is_refused(browser, team, runtime):
    assert browser.get(_sheet_url(team, "nowhere")).status_code == 404
    other = _post(browser, _sheet_url(team, "presentation"), _fields(FULL, action="save"))
    assert other.status_code == 409  # the submission is not in that stage
    assert _count(runtime, ScoreSheet) == 0


def test_an_expired_session_goes_to_the_login(browser, team, clock, runtime):
    clock.advance(hours=9)  # sessions last eight hours
    response = browser.get(_sheet_url(team))
    assert response.status_code == 302 and response.location.startswith("/login")
    saved = browser.post(_sheet_url(team), data=_fields(FULL, action="save"))
    assert saved.status_code in (302, 400) and _count(runtime, ScoreSheet) == 0


def test_the_overview_lists_the_reviewers_assignments_with_their_sheets(browser, team, runtime,
                                                                        make_team, clock,
                                                                        reviewer):
    beta = make_team("Team Beta")
    assign(runtime, reviewer, beta)  # assigned, but Beta is not in the stage
    _post(browser, _sheet_url(team), _fields({"capability": 1}, action="save"))
    page = browser.get(f"/evaluation/{PROGRAMME}").get_data(as_text=True)
    assert "Team Alpha" in page and "Team Beta" in page
    assert "draft" in page and "not started" in page
    assert _sheet_url(team) in page and _sheet_url(beta) not in page
    assert "2027-02-12 18:00 KST" in page


# -- officers -------------------------------------------------------------------------------------

@pytest.fixture
def submitted(browser, team, runtime) -> uuid.UUID:
    assert _post(browser, _sheet_url(team), _fields(
        FULL, action="submit", confirm="y", **{"comment-impact": COMMENT})).status_code == 302
    return _sheets(runtime)[0].id


def test_officers_list_a_stages_sheets_without_conflicted_consortia(app, runtime, make_user,
                                                                    clock, submitted, team):
    officer = _signed_in(app, make_user(Role.OFFICER, mfa=True), clock)
    page = officer.get(f"/evaluation/{PROGRAMME}/written/sheets").get_data(as_text=True)
    assert "Team Alpha" in page and "Test reviewer" in page and "submitted" in page
    assert f"/evaluation/sheets/{submitted}" in page
    # The list shows no values: no cell holds a score (ids and times may contain the digits).
    cells = {cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", page, re.S)}
    assert cells and not cells & {str(score) for score in FULL.values()}

    conflicted = make_user(Role.OFFICER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        session.add(new_conflict(
            runtime.cipher, programme_id=submission.programme_id, user_id=conflicted.id,
            consortium_id=team.consortium_id, source=ConflictSource.DECLARED,
            status=ConflictStatus.PENDING, details_sealed=b"sealed-elsewhere"))
    browser = _signed_in(app, conflicted, clock)
    page = browser.get(f"/evaluation/{PROGRAMME}/written/sheets").get_data(as_text=True)
    assert "Team Alpha" not in page and "1 sheets of consortia" in page
    assert browser.get(f"/evaluation/sheets/{submitted}").status_code == 404


def test_an_officer_reopens_with_a_reason_and_the_history_keeps_it(app, runtime, make_user,
                                                                    clock, submitted, browser,
                                                                    team):
    officer_account = make_user(Role.OFFICER, mfa=True)
    officer = _signed_in(app, officer_account, clock)
    url = f"/evaluation/sheets/{submitted}"
    page = officer.get(url).get_data(as_text=True)
    assert COMMENT in page and ">87<" in page and "Revision 0" in page
    assert "The sheet has never been reopened." in page and "/reopen" in page

    for fields in ({"reason": "Typo", "confirm": ""}, {"reason": "   ", "confirm": "y"}):
        refused = _post(officer, f"{url}/reopen", fields)
        assert refused.status_code == 422
    assert _count(runtime, ScoreSheetRevision) == 0 and _sheets(runtime)[0].submitted

    reopened = _post(officer, f"{url}/reopen", {"reason": "Impact contradicts the comment",
                                                "confirm": "y"})
    assert reopened.status_code == 302
    view = _sheets(runtime)[0]
    assert (view.state, view.revision) == (SheetState.DRAFT, 1)
    page = officer.get(url).get_data(as_text=True)
    assert "Impact contradicts the comment" in page and "Revision 1" in page
    assert "Test officer" in page
    [event] = audit_events(runtime, Tag.SCORE_SHEET_REOPENED)
    assert event["actor"]["user"] == str(officer_account.id)
    assert "Impact" not in str(event) and event["target"]["sheet"] == str(submitted)

    # The reviewer corrects and submits again; reopening a draft is refused.
    assert _post(officer, f"{url}/reopen", {"reason": "Again", "confirm": "y"}).status_code \
        == 409
    corrected = _post(browser, _sheet_url(team), _fields({**FULL, "impact": 75}, action="submit",
                                                         confirm="y"))
    assert corrected.status_code == 302 and _sheets(runtime)[0].scores["impact"] == 75


def test_reviewers_and_auditors_cannot_read_sheets_or_reopen(app, runtime, make_user, clock,
                                                             submitted, browser):
    url = f"/evaluation/sheets/{submitted}"
    auditor = _signed_in(app, make_user(Role.AUDITOR, mfa=True), clock)
    for client in (browser, auditor):
        assert client.get(url).status_code == 403
        assert _post(client, f"{url}/reopen", {"reason": "x", "confirm": "y"}).status_code == 403
        assert client.get(f"/evaluation/{PROGRAMME}/written/sheets").status_code == 403
    assert browser.get(f"/evaluation/sheets/{uuid.uuid4()}").status_code == 404
    assert _sheets(runtime)[0].submitted
