"""The stage round pages: an officer closes the panel, imports the components, disqualifies,
confirms and publishes; applicants read their own published outcome; everyone else is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func, select

from tests.conftest import (
    EnglishClient,
    audit_events,
    csrf_from,
    sign_in,
    snapshot_fixtures,
)
from tests.reviewing import PROGRAMME
from tests.stage_rounds import STAGE, StageWorld, component_csv, stage_world
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.evaluation.models import ComponentImport, StageDisqualification
from vault.identity.models import Role, User

BASE = f"/stages/{PROGRAMME}"
ROUND = f"{BASE}/{STAGE}"
BENCHMARK = {"Team Alpha": "91.5", "Team Beta": "77", "Team Gamma": "88.25",
             "Team Delta": "52"}
USERS = {"Team Alpha": "80", "Team Beta": "75.5", "Team Gamma": "70", "Team Delta": "60"}
#: Reviewer names that must never appear on the ranking (only on the progress list).
NAMES = ("Reviewer Hong Gildong", "Reviewer Kim Minji")


def _build(runtime, clock) -> StageWorld:
    made = stage_world(runtime, clock)
    with unit_of_work(runtime.sessions) as session:
        for account, name in zip(made.reviewers, NAMES, strict=True):
            session.get(User, account.id).display_name = name
    return made


built, database_url, data_dir, world = snapshot_fixtures(_build)


@pytest.fixture
def officer(client, clock, world) -> EnglishClient:
    assert sign_in(client, world.officer, clock).status_code == 302
    return client


def post(client, path: str, data: dict[str, str] | None = None, *, page: str = ROUND):
    """A form post with the CSRF token of ``page``."""
    return client.post(path, data={"csrf_token": csrf_from(client, page), **(data or {})})


def state_of(runtime, world: StageWorld) -> dict[str, str]:
    """Each team's current stage."""
    with unit_of_work(runtime.sessions) as session:
        return {name: session.get(Submission, team.submission_id).stage
                for name, team in world.teams.items()}


def count(runtime, model) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


def run_round(client, world: StageWorld, *, disqualify: str | None = "Team Gamma") -> None:
    """Close, import both components, disqualify a team, confirm and publish, as the officer."""
    assert post(client, f"{ROUND}/close", {"confirm": "y"}).status_code == 302
    for component, values in (("benchmark", BENCHMARK), ("user", USERS)):
        response = post(client, f"{ROUND}/imports/{component}",
                        {"data": component_csv(world, values), "filename": f"{component}.csv"})
        assert response.status_code == 302, response.get_data(as_text=True)
    if disqualify:
        response = post(client, f"{ROUND}/disqualify", {
            "submission": str(world.team(disqualify).submission_id), "rule": "from_scratch",
            "reason": "Continued pre-training of a foreign base model"})
        assert response.status_code == 302, response.get_data(as_text=True)
    assert post(client, f"{ROUND}/confirm", {"confirm": "y"}).status_code == 302
    assert post(client, f"{ROUND}/publish", {"confirm": "y"}).status_code == 302


def test_the_officer_runs_a_round_from_closing_to_publication(officer, runtime, world):
    dashboard = officer.get(BASE)
    assert dashboard.status_code == 200
    assert "First stage evaluation" in dashboard.get_data(as_text=True)
    assert 'class="chart" role="img"' in dashboard.get_data(as_text=True)  # the charts

    page = officer.get(ROUND).get_data(as_text=True)
    assert "Reviewer 1" in page and "Reviewer 2" in page
    # Names only on the progress list, never in the ranking's table.
    ranking = page[page.index('class="ranking"'):]
    assert all(name in page for name in NAMES)
    assert not any(name in ranking for name in NAMES)

    unconfirmed = post(officer, f"{ROUND}/close")
    assert unconfirmed.status_code == 422
    assert "Tick the confirmation" in unconfirmed.get_data(as_text=True)
    assert "panel open" in officer.get(ROUND).get_data(as_text=True)

    run_round(officer, world)

    page = officer.get(ROUND).get_data(as_text=True)
    assert "outcomes published" in page
    assert "Failed the from-scratch requirement" in page
    stages = state_of(runtime, world)
    next_stage = runtime.definitions[PROGRAMME].next_stage(STAGE).id
    assert stages == {"Team Alpha": next_stage, "Team Beta": next_stage,
                      "Team Gamma": STAGE, "Team Delta": STAGE}
    [published] = audit_events(runtime, "stage:published")
    assert published["target"]["stage"] == STAGE
    assert "Continued pre-training" not in json.dumps(audit_events(runtime, "stage:disqualified"))

    export = officer.get(f"{ROUND}/export.csv")
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].startswith("attachment")
    assert export.headers["X-Content-Type-Options"] == "nosniff"
    assert "Team Alpha" in export.get_data(as_text=True)
    as_json = officer.get(f"{ROUND}/export.json")
    assert as_json.status_code == 200 and as_json.headers["Content-Disposition"].startswith(
        "attachment")
    assert {row["consortium"] for row in json.loads(as_json.data)["rows"]} >= {"Team Alpha"}


def test_confirming_needs_a_closed_round_and_every_import(officer, runtime, world):
    open_round = post(officer, f"{ROUND}/confirm", {"confirm": "y"})
    assert open_round.status_code == 409
    assert post(officer, f"{ROUND}/close", {"confirm": "y"}).status_code == 302
    missing = post(officer, f"{ROUND}/confirm", {"confirm": "y"})
    assert missing.status_code == 409
    assert "panel closed" in officer.get(ROUND).get_data(as_text=True)


def test_each_step_needs_its_box_ticked_and_changes_nothing_without(officer, world):
    assert post(officer, f"{ROUND}/close").status_code == 422
    assert "panel open" in officer.get(ROUND).get_data(as_text=True)
    assert post(officer, f"{ROUND}/close", {"confirm": "y"}).status_code == 302
    for step in ("confirm", "publish"):
        assert post(officer, f"{ROUND}/{step}").status_code == 422, step
        assert "panel closed" in officer.get(ROUND).get_data(as_text=True), step


def test_a_closed_round_reopens_with_a_reason(officer, world):
    assert post(officer, f"{ROUND}/close", {"confirm": "y"}).status_code == 302
    without = post(officer, f"{ROUND}/reopen", {"reason": ""})
    assert without.status_code == 422
    assert post(officer, f"{ROUND}/reopen", {"reason": "A sheet was entered wrongly"}
                ).status_code == 302
    assert "panel open" in officer.get(ROUND).get_data(as_text=True)


def test_a_csv_with_problems_lists_its_lines_with_422_and_stores_nothing(officer, runtime,
                                                                         world):
    values = dict(BENCHMARK, **{"Team Beta": "104.5"})
    values.pop("Team Delta")
    text = component_csv(world, values) + "00000000-0000-4000-8000-000000000000,50\n"
    response = post(officer, f"{ROUND}/imports/benchmark", {"data": text, "filename": "b.csv"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "line 3" in body and "104.5" in body
    assert "unknown submission" in body
    assert "Team Delta" in body
    assert count(runtime, ComponentImport) == 0
    assert "Not imported yet." in officer.get(ROUND).get_data(as_text=True)


def test_the_import_template_lists_the_stage_submissions(officer, world):
    response = officer.get(f"{ROUND}/imports/benchmark/template.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    text = response.get_data(as_text=True)
    assert all(str(team.submission_id) in text for team in world.teams.values())


def test_a_disqualification_needs_a_reason_and_a_known_rule(officer, runtime, world):
    alpha = str(world.team("Team Alpha").submission_id)
    for data in ({"submission": alpha, "rule": "from_scratch", "reason": ""},
                 {"submission": alpha, "rule": "no_such_rule", "reason": "r"},
                 {"submission": "not-an-id", "rule": "from_scratch", "reason": "r"}):
        assert post(officer, f"{ROUND}/disqualify", data).status_code == 422
    assert count(runtime, StageDisqualification) == 0


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR, Role.ADMIN, Role.APPLICANT])
def test_only_officers_see_or_change_rounds(client, clock, runtime, make_user, world, role):
    account = make_user(role, mfa=True)
    sign_in(client, account, clock)
    token = csrf_from(client, "/account/")
    for path in (BASE, ROUND, f"{ROUND}/imports/benchmark/template.csv", f"{ROUND}/export.csv"):
        assert client.get(path).status_code == 403, path
    for action in ("close", "confirm", "publish"):
        response = client.post(f"{ROUND}/{action}", data={"csrf_token": token, "confirm": "y"})
        assert response.status_code == 403, action
    assert "panel open" not in client.get(ROUND).get_data(as_text=True)


def test_a_reviewer_loses_the_stage_submissions_when_the_panel_closes(app, clock, officer,
                                                                      world):
    reviewer = app.test_client()
    sign_in(reviewer, world.reviewers[0], clock)
    page = f"/submissions/{world.team('Team Alpha').submission_id}"
    assert reviewer.get(page).status_code == 200
    assert post(officer, f"{ROUND}/close", {"confirm": "y"}).status_code == 302
    assert reviewer.get(page).status_code == 404


def test_the_applicant_sees_only_their_own_published_outcome(app, clock, officer, world):
    alpha = world.team("Team Alpha")
    applicant = app.test_client()
    sign_in(applicant, alpha.applicant, clock)
    outcomes = f"/submissions/{alpha.submission_id}/outcomes"
    before = applicant.get(outcomes)
    assert before.status_code == 200
    assert "No outcome has been published" in before.get_data(as_text=True)
    assert outcomes in applicant.get(f"/submissions/{alpha.submission_id}").get_data(
        as_text=True)

    run_round(officer, world)
    page = applicant.get(outcomes).get_data(as_text=True)
    assert "passed to the next stage" in page
    assert "Independence" in page          # the panel's mean per criterion
    assert "Benchmark evaluation" in page  # the components
    assert all(name in page for name in NAMES)  # the panel, disclosed after publication
    assert "Team Beta" not in page and "Team Gamma" not in page

    stranger = app.test_client()
    sign_in(stranger, world.other_applicant, clock)
    assert stranger.get(outcomes).status_code == 404
    delta = world.team("Team Delta")
    eliminated = app.test_client()
    sign_in(eliminated, delta.applicant, clock)
    delta_page = eliminated.get(f"/submissions/{delta.submission_id}/outcomes").get_data(
        as_text=True)
    assert "eliminated" in delta_page
    assert "will be destroyed (crypto-shredded)" in delta_page


def test_scores_and_panel_stay_hidden_where_the_stage_does_not_publish_them(
        app, clock, runtime, officer, world):
    definition = runtime.definitions[PROGRAMME]
    quiet = tuple(dataclasses.replace(stage, publish_scores=False, disclose_panel=False)
                  if stage.id == STAGE else stage for stage in definition.stages)
    runtime.definitions[PROGRAMME] = dataclasses.replace(definition, stages=quiet)
    run_round(officer, world, disqualify=None)
    alpha = world.team("Team Alpha")
    applicant = app.test_client()
    sign_in(applicant, alpha.applicant, clock)
    page = applicant.get(f"/submissions/{alpha.submission_id}/outcomes").get_data(as_text=True)
    assert "passed to the next stage" in page
    assert "This stage does not publish scores." in page
    assert "Independence" not in page and "Benchmark evaluation" not in page
    assert not any(name in page for name in NAMES)


def test_the_pages_speak_korean(app, clock, officer, world):
    korean = app.test_client()
    korean.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    clock.advance(seconds=30)  # a TOTP code signs in once: the officer's next one
    assert sign_in(korean, world.officer, clock).status_code == 302
    page = korean.get(ROUND).get_data(as_text=True)
    assert "평가 마감" in page and "평가위원 1" in page and "1차 단계평가" in page
    run_round(officer, world)
    alpha = world.team("Team Alpha")
    applicant = app.test_client()
    applicant.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    sign_in(applicant, alpha.applicant, clock)
    page = applicant.get(f"/submissions/{alpha.submission_id}/outcomes").get_data(as_text=True)
    assert "평가 결과" in page and "다음 단계 진출" in page


def test_an_eliminated_submission_enters_the_majority_stage_as_a_candidate(officer, runtime,
                                                                          world):
    run_round(officer, world)
    majority = f"{BASE}/additional_call"
    alpha, delta = world.team("Team Alpha"), world.team("Team Delta")
    # The form offers exactly the teams that are out: Delta, eliminated, not Alpha, which passed.
    form = officer.get(majority).get_data(as_text=True)
    assert f'<option value="{delta.submission_id}">Team Delta' in form
    assert f'value="{alpha.submission_id}"' not in form
    refused = post(officer, f"{majority}/candidates", {"submission": str(alpha.submission_id)},
                   page=majority)
    assert refused.status_code == 409
    entered = post(officer, f"{majority}/candidates", {"submission": str(delta.submission_id)},
                   page=majority)
    assert entered.status_code == 302, entered.get_data(as_text=True)
    assert state_of(runtime, world)["Team Delta"] == "additional_call"
    assert audit_events(runtime, "retention:cancelled")
    assert "No submission may enter this stage now." in officer.get(majority).get_data(
        as_text=True)
