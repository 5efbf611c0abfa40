"""Score sheet API: the assigned reviewer reads, saves and submits their own sheet under the
pages' rules; errors are JSON with the right status (422 bad values, 409 locked, 403/404 denied)
and store nothing; bearer tokens of a second-factor session work like the browser."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Account, Team, audit_events, csrf_from, sign_in, snapshot_fixtures
from tests.reviewing import accept_nda, enter_stage, ready_reviewer, team_and_reviewer
from vault.audit.service import Tag
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.evaluation.models import ScoreSheet
from vault.identity.models import Role, User

CRITERIA = ("capability", "experience", "strategy", "excellence", "impact", "open_source")
FULL = dict(zip(CRITERIA, (87, 64, 93, 71, 58, 100), strict=True))


def _url(team, stage: str = "written") -> str:
    return f"/api/v1/submissions/{team.submission_id}/stages/{stage}/sheet"


class Api:
    """A signed-in browser calling the API from the vault's pages (cookie + X-CSRFToken)."""

    def __init__(self, client) -> None:
        self.client = client
        self.token = csrf_from(client, "/account/")

    def get(self, url: str):
        return self.client.get(url)

    def put(self, url: str, body: object):
        return self.client.put(url, json=body, headers={"X-CSRFToken": self.token})

    def submit(self, url: str):
        return self.client.post(f"{url}/submit", headers={"X-CSRFToken": self.token})


def _api(app, account: Account, clock) -> Api:
    client = app.test_client()
    assert sign_in(client, account, clock).status_code == 302
    return Api(client)


def _count(runtime) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(ScoreSheet))


built, database_url, data_dir, world = snapshot_fixtures(team_and_reviewer)


@pytest.fixture
def team(world) -> Team:
    return world[0]


@pytest.fixture
def reviewer(world) -> Account:
    return world[1]


@pytest.fixture
def api(app, reviewer, clock) -> Api:
    return _api(app, reviewer, clock)


def test_save_read_and_submit_the_own_sheet(api, team, runtime):
    assert api.get(_url(team)).status_code == 404  # nothing saved yet
    saved = api.put(_url(team), {"scores": {"capability": 50}, "comments": {"impact": "thin"},
                                 "overall_comment": "ok"})
    assert saved.status_code == 200
    body = saved.json
    assert (body["state"], body["scores"], body["comments"], body["vote"]) == (
        "draft", {"capability": 50}, {"impact": "thin"}, None)
    assert api.get(_url(team)).json["id"] == body["id"]
    incomplete = api.submit(_url(team))
    assert incomplete.status_code == 422 and incomplete.json["error"] == "incomplete_score_sheet"
    assert api.put(_url(team), {"scores": FULL}).status_code == 200
    done = api.submit(_url(team))
    assert done.status_code == 200 and done.json["state"] == "submitted"
    assert done.json["submitted_at"] is not None and done.json["comments"] == {}
    assert len(audit_events(runtime, Tag.SCORE_SHEET_SAVED)) == 2
    [event] = audit_events(runtime, Tag.SCORE_SHEET_SUBMITTED)
    assert event["target"]["sheet"] == body["id"]


def test_a_submitted_sheet_is_locked(api, team):
    api.put(_url(team), {"scores": FULL})
    api.submit(_url(team))
    locked = api.put(_url(team), {"scores": {**FULL, "impact": 0}})
    assert (locked.status_code, locked.json["error"]) == (409, "score_sheet_locked")
    assert api.submit(_url(team)).status_code == 409
    assert api.get(_url(team)).json["scores"] == FULL


@pytest.mark.parametrize(("body", "error"), [
    ({"scores": {"capability": 101}}, "invalid_scores"),
    ({"scores": {"capability": 80.0}}, "invalid_scores"),
    ({"scores": {"capability": "80"}}, "invalid_scores"),
    ({"scores": {"capability": True}}, "invalid_scores"),
    ({"scores": {"novelty": 80}}, "invalid_scores"),
    ({"scores": FULL, "vote": "accept"}, "invalid_scores"),
    ({"scores": FULL, "grade": "A"}, "invalid_scores"),
    ({"scores": [80]}, "invalid_scores"),
    (["capability", 80], "invalid_scores"),
], ids=["above", "float", "string", "bool", "unknown-criterion", "vote-on-scored-stage",
        "unknown-field", "scores-not-an-object", "body-not-an-object"])
def test_bad_values_are_422_and_store_nothing(api, team, runtime, body, error):
    api.put(_url(team), {"scores": {"capability": 40}})
    response = api.put(_url(team), body)
    assert (response.status_code, response.json["error"]) == (422, error)
    assert api.get(_url(team)).json["scores"] == {"capability": 40}
    assert len(audit_events(runtime, Tag.SCORE_SHEET_SAVED)) == 1


def test_a_majority_stage_takes_a_vote(app, runtime, make_user, clock, make_team):
    gamma = make_team("Team Gamma")
    voter = ready_reviewer(runtime, make_user, clock, gamma, "additional_call")
    api = _api(app, voter, clock)
    url = _url(gamma, "additional_call")
    assert api.put(url, {"scores": {"capability": 50}}).status_code == 422
    assert api.put(url, {"vote": "maybe"}).status_code == 422
    assert api.put(url, {"overall_comment": "no vote yet"}).status_code == 200
    missing = api.submit(url)
    assert (missing.status_code, missing.json["error"]) == (422, "missing_vote")
    assert api.put(url, {"vote": "accept", "overall_comment": "Convincing"}).json["vote"] == \
        "accept"
    done = api.submit(url)
    assert (done.status_code, done.json["vote"], done.json["state"]) == (200, "accept",
                                                                         "submitted")


def test_conflicted_and_unassigned_reviewers_and_other_consortia_are_refused(
        app, runtime, make_user, clock, team, reviewer, make_team, api):
    unassigned = make_user(Role.REVIEWER, mfa=True)
    accept_nda(runtime, clock, unassigned)
    conflicted = ready_reviewer(runtime, make_user, clock, team)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        session.add(new_conflict(
            runtime.cipher, programme_id=submission.programme_id, user_id=conflicted.id,
            consortium_id=team.consortium_id, source=ConflictSource.DECLARED,
            status=ConflictStatus.PENDING, details_sealed=b"sealed-elsewhere"))
    for account in (unassigned, conflicted):
        other = _api(app, account, clock)
        assert other.put(_url(team), {"scores": FULL}).status_code == 404
        assert other.get(_url(team)).status_code == 404
        assert other.submit(_url(team)).status_code == 404
    beta = make_team("Team Beta")
    enter_stage(runtime, clock, beta)
    assert api.put(_url(beta), {"scores": FULL}).status_code == 404
    missing = f"/api/v1/submissions/{uuid.uuid4()}/stages/written/sheet"
    assert api.put(missing, {"scores": FULL}).status_code == 404
    officer = _api(app, make_user(Role.OFFICER, mfa=True), clock)
    refused = officer.put(_url(team), {"scores": FULL})
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")
    assert _count(runtime) == 0


def test_a_change_without_the_csrf_header_is_refused(api, team, runtime):
    response = api.client.put(_url(team), json={"scores": FULL})
    assert response.status_code == 400 and _count(runtime) == 0


@pytest.mark.parametrize("mfa_verified", [True, False])
def test_a_bearer_token_scores_only_if_made_in_a_second_factor_session(app, team, runtime,
                                                                       reviewer, mfa_verified):
    with unit_of_work(runtime.sessions) as session:
        token, _row = runtime.identity(session).create_token(
            session.get(User, reviewer.id), "scoring", 1, mfa_verified=mfa_verified)
    headers = {"Authorization": f"Bearer {token}"}
    response = app.test_client().put(_url(team), json={"scores": FULL}, headers=headers)
    # Without a second factor the reviewer may not even see the submission.
    assert response.status_code == (200 if mfa_verified else 404)
    assert _count(runtime) == (1 if mfa_verified else 0)


def test_the_openapi_document_describes_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    sheet = paths["/submissions/{submission_id}/stages/{stage_id}/sheet"]
    assert {"get", "put"} <= set(sheet) and "422" in sheet["put"]["responses"]
    assert "post" in paths["/submissions/{submission_id}/stages/{stage_id}/sheet/submit"]
