"""Reviewer assignments: single and bulk on the officers' panel page, refusals with their reason,
confidential panels, the reviewer's own home page, the ``vault assign`` command, and revocation
of access when an assignment is removed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.conftest import (
    Account,
    Team,
    csrf_from,
    pdf_bytes,
    sign_in,
    snapshot_fixtures,
    team_factory,
    user_factory,
)
from tests.conftest import audit_events as _events
from vault.assignments import errors as assignment_errors
from vault.assignments.models import Assignment
from vault.cli import cli
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus, Sanction
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.identity.models import Role, User
from vault.nda.models import NdaAcceptance
from vault.programmes.models import Programme
from vault.web.i18n import catalogue

CODE = "sovereign-ai-2025"
PANEL = f"/assignments/{CODE}"
#: Inside the written evaluation's review window (2027-01-25 09:00 to 2027-02-12 18:00 KST).
IN_WRITTEN_WINDOW = datetime(2027, 1, 26, 1, 0, tzinfo=UTC)


# -- helpers ----------------------------------------------------------------------------------

def _named(runtime, account, name: str):
    """Give a test account a distinct display name (the factory names them all alike)."""
    with unit_of_work(runtime.sessions) as session:
        session.get(User, account.id).display_name = name
    return account


def _assign(client, reviewer_id, submission_id, stage="written"):
    token = csrf_from(client, f"{PANEL}?stage={stage}")
    return client.post(f"{PANEL}/add", data={"csrf_token": token, "stage": stage,
                                             "reviewer": str(reviewer_id),
                                             "submission": str(submission_id)})


def _bulk(client, reviewer_ids, submission_ids, stage="written"):
    token = csrf_from(client, f"{PANEL}?stage={stage}")
    return client.post(f"{PANEL}/bulk", data={
        "csrf_token": token, "stage": stage, "reviewers": [str(r) for r in reviewer_ids],
        "submissions": [str(s) for s in submission_ids]})


def _assignments(runtime) -> set[tuple[str, uuid.UUID, uuid.UUID]]:
    with unit_of_work(runtime.sessions) as session:
        return {(a.stage, a.submission_id, a.reviewer_id)
                for a in session.scalars(select(Assignment))}


def _programme_id(runtime) -> uuid.UUID:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(Programme.id).where(Programme.code == CODE))


def _conflict(runtime, user_id, consortium_id, *, source=ConflictSource.DECLARED,
              status=ConflictStatus.PENDING) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.add(new_conflict(
            runtime.cipher, programme_id=_programme_id(runtime), user_id=user_id,
            consortium_id=consortium_id, source=source, status=status,
            details_sealed=b"sealed-elsewhere"))


def _sanction(runtime, user_id, day: date) -> None:
    with unit_of_work(runtime.sessions) as session:
        session.add(Sanction(user_id=user_id, imposed_on=day, reason_sealed=b"sealed-elsewhere"))


def _build(runtime, clock) -> tuple[Team, Team, Account]:
    """Team Alpha, Team Beta and a programme officer with a second factor."""
    make_user = user_factory(runtime, clock)
    make_team = team_factory(runtime, make_user)
    return (make_team("Team Alpha"), make_team("Team Beta", partners=("Beta Institute",)),
            make_user(Role.OFFICER, mfa=True))


built, database_url, data_dir, world = snapshot_fixtures(_build)


@pytest.fixture
def alpha(world) -> Team:
    return world[0]


@pytest.fixture
def beta(world) -> Team:
    return world[1]


@pytest.fixture
def officer(world) -> Account:
    return world[2]


@pytest.fixture
def office(app, officer, clock, alpha, beta):
    """A browser signed in as a programme officer (both teams exist)."""
    client = app.test_client()
    sign_in(client, officer, clock)
    return client


# -- single assignment ------------------------------------------------------------------------

def test_officer_assigns_a_reviewer_and_the_panel_shows_it(office, alpha, make_user, runtime,
                                                           officer):
    reviewer = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Kim")
    response = _assign(office, reviewer.id, alpha.submission_id)
    assert response.status_code == 302
    assert _assignments(runtime) == {("written", alpha.submission_id, reviewer.id)}
    page = office.get(response.location).get_data(as_text=True)
    assert "Reviewer Kim is assigned to Team Alpha." in page
    assert "Reviewer Kim" in page and "Load balance" in page
    added = _events(runtime, "assignment:added")
    assert len(added) == 1
    assert added[0]["actor"]["user"] == str(officer.id)
    assert added[0]["target"] == {
        "programme": CODE, "stage": "written", "submission": str(alpha.submission_id),
        "reviewer": str(reviewer.id), "consortium": str(alpha.consortium_id)}


def test_panel_defaults_to_the_first_stage_during_the_call(office, alpha):
    page = office.get(PANEL)
    assert page.status_code == 200
    assert "Written evaluation" in page.get_data(as_text=True)
    assert office.get(f"{PANEL}?stage=no-such-stage").status_code == 404
    assert office.get("/assignments/no-such-programme").status_code == 404


def test_duplicate_assignment_is_refused_with_409(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    assert _assign(office, reviewer.id, alpha.submission_id).status_code == 302
    again = _assign(office, reviewer.id, alpha.submission_id)
    assert again.status_code == 409
    assert "already assigned to this submission in this stage" in again.get_data(as_text=True)
    assert len(_assignments(runtime)) == 1
    assert _events(runtime, "assignment:refused")[0]["reasons"] == ["already assigned"]


def test_the_same_reviewer_may_sit_on_another_stage(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    assert _assign(office, reviewer.id, alpha.submission_id, "written").status_code == 302
    assert _assign(office, reviewer.id, alpha.submission_id, "presentation").status_code == 302
    assert {a[0] for a in _assignments(runtime)} == {"written", "presentation"}


@pytest.mark.parametrize("source", list(ConflictSource))
def test_conflicted_reviewer_is_refused_with_the_reason_and_nothing_stored(
        office, alpha, make_user, runtime, officer, source):
    reviewer = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Conflicted")
    _conflict(runtime, reviewer.id, alpha.consortium_id, source=source)
    response = _assign(office, reviewer.id, alpha.submission_id)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Reviewer Conflicted has a conflict of interest with this consortium" in page
    assert _assignments(runtime) == set()
    refused = _events(runtime, "assignment:refused")
    # The log says a conflict was acted on, not how it arose ("detected" would tie the
    # reviewer's organisation to the consortium).
    assert [e["reasons"] for e in refused] == [["conflict of interest"]]
    assert refused[0]["actor"]["user"] == str(officer.id)
    assert refused[0]["decision"] == "deny"
    assert refused[0]["target"]["reviewer"] == str(reviewer.id)


def test_a_confirmed_conflict_refuses_and_a_dismissed_one_does_not(office, alpha, beta,
                                                                   make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _conflict(runtime, reviewer.id, alpha.consortium_id, status=ConflictStatus.CONFIRMED)
    _conflict(runtime, reviewer.id, beta.consortium_id, status=ConflictStatus.DISMISSED)
    assert _assign(office, reviewer.id, alpha.submission_id).status_code == 409
    assert _assign(office, reviewer.id, beta.submission_id).status_code == 302
    assert _assignments(runtime) == {("written", beta.submission_id, reviewer.id)}


def test_a_conflict_shows_in_korean_with_its_source(office, alpha, make_user, runtime):
    reviewer = _named(runtime, make_user(Role.REVIEWER, mfa=True), "김평가")
    _conflict(runtime, reviewer.id, alpha.consortium_id, source=ConflictSource.CHALLENGED)
    office.set_cookie("vault_lang", "ko")
    page = _assign(office, reviewer.id, alpha.submission_id).get_data(as_text=True)
    assert "김평가 평가위원은 이 컨소시엄과 이해충돌이 있습니다 (신청자의 기피 신청)" in page


def test_recently_sanctioned_reviewer_is_refused(office, alpha, make_user, runtime):
    reviewer = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Sanctioned")
    _sanction(runtime, reviewer.id, date(2025, 6, 1))  # within the 3 years before 2026-12-01
    response = _assign(office, reviewer.id, alpha.submission_id)
    assert response.status_code == 409
    assert "was sanctioned on 2025-06-01" in response.get_data(as_text=True)
    assert _assignments(runtime) == set()
    assert _events(runtime, "assignment:refused")[0]["reasons"] == ["sanctioned on 2025-06-01"]


def test_an_old_sanction_no_longer_excludes(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _sanction(runtime, reviewer.id, date(2023, 11, 30))  # more than 3 years before 2026-12-01
    assert _assign(office, reviewer.id, alpha.submission_id).status_code == 302


@pytest.mark.parametrize("role", [Role.APPLICANT, Role.OFFICER, Role.AUDITOR])
def test_only_active_reviewers_can_be_assigned(office, alpha, make_user, runtime, role):
    other = make_user(role, mfa=True)
    response = _assign(office, other.id, alpha.submission_id)
    assert response.status_code == 422
    assert "is not an active reviewer" in response.get_data(as_text=True)
    assert _assignments(runtime) == set()


def test_deactivated_reviewer_is_refused(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        session.get(User, reviewer.id).active = False
    assert _assign(office, reviewer.id, alpha.submission_id).status_code == 422


def test_unknown_stage_reviewer_or_submission(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    assert _assign(office, reviewer.id, alpha.submission_id, "call").status_code == 404
    assert _events(runtime, "assignment:refused")[0]["reasons"] == ["unknown stage 'call'"]
    assert _assign(office, uuid.uuid4(), alpha.submission_id).status_code == 404
    assert _assign(office, reviewer.id, uuid.uuid4()).status_code == 404
    assert _assign(office, reviewer.id, "not-an-id").status_code == 404
    assert _assignments(runtime) == set()


def test_assigning_without_the_csrf_token_is_refused(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    response = office.post(f"{PANEL}/add", data={"stage": "written", "reviewer": str(reviewer.id),
                                                  "submission": str(alpha.submission_id)})
    assert response.status_code == 400 and _assignments(runtime) == set()


def test_officer_removes_an_assignment(office, alpha, make_user, runtime, officer):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _assign(office, reviewer.id, alpha.submission_id)
    with unit_of_work(runtime.sessions) as session:
        assignment_id = session.scalar(select(Assignment.id))
    token = csrf_from(office, f"{PANEL}?stage=written")
    response = office.post(f"{PANEL}/{assignment_id}/remove", data={"csrf_token": token})
    assert response.status_code == 302 and _assignments(runtime) == set()
    removed = _events(runtime, "assignment:removed")
    assert removed[0]["actor"]["user"] == str(officer.id)
    assert removed[0]["target"]["reviewer"] == str(reviewer.id)
    again = office.post(f"{PANEL}/{assignment_id}/remove", data={"csrf_token": token})
    assert again.status_code == 404


# -- bulk ---------------------------------------------------------------------------------------

def test_bulk_assigns_every_pair_and_reports_each_refusal(office, alpha, beta, make_user,
                                                          runtime):
    kim = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Kim")
    lee = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Lee")
    park = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Park")
    _conflict(runtime, park.id, beta.consortium_id, source=ConflictSource.DETECTED)
    _assign(office, lee.id, alpha.submission_id)  # already there: refused as a duplicate

    response = _bulk(office, [kim.id, lee.id, park.id], [alpha.submission_id, beta.submission_id])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "4 assignments added, 2 refused." in page
    assert "Reviewer Park has a conflict of interest with this consortium" in page
    assert "Reviewer Lee is already assigned" in page
    assert _assignments(runtime) == {
        ("written", alpha.submission_id, kim.id), ("written", alpha.submission_id, lee.id),
        ("written", alpha.submission_id, park.id), ("written", beta.submission_id, kim.id),
        ("written", beta.submission_id, lee.id)}
    refused = _events(runtime, "assignment:refused")
    assert sorted(e["reasons"][0] for e in refused) == ["already assigned",
                                                        "conflict of interest"]
    assert len(_events(runtime, "assignment:added")) == 5


def test_bulk_needs_a_choice_on_both_sides(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    response = _bulk(office, [reviewer.id], [])
    assert response.status_code == 400
    assert "Choose at least one reviewer and one submission." in response.get_data(as_text=True)
    assert _assignments(runtime) == set()


def test_bulk_with_an_unknown_submission_assigns_nothing(office, alpha, make_user, runtime):
    reviewer = make_user(Role.REVIEWER, mfa=True)
    response = _bulk(office, [reviewer.id], [alpha.submission_id, uuid.uuid4()])
    assert response.status_code == 404 and _assignments(runtime) == set()


def test_load_balance_flags_reviewers_above_the_mean_plus_one(office, make_team, make_user,
                                                              runtime):
    teams = [make_team(f"Team {n}") for n in ("One", "Two", "Three", "Four")]
    busy = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Busy")
    for name in ("Reviewer Idle A", "Reviewer Idle B"):
        _named(runtime, make_user(Role.REVIEWER, mfa=True), name)
    _bulk(office, [busy.id], [t.submission_id for t in teams])
    page = office.get(f"{PANEL}?stage=written").get_data(as_text=True)
    # 4 assignments among 3 reviewers: mean 1.3; 4 > 2.3 is flagged, 0 is not.
    assert "Mean: 1.3 assignments per reviewer." in page
    assert page.count("above the mean + 1</strong>") == 1
    row = page[page.index("Reviewer Busy", page.index("Load balance")):]
    assert "above the mean + 1" in row[:row.index("</tr>")]


# -- confidentiality of panels ----------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPLICANT, Role.AUDITOR, Role.ADMIN])
def test_panels_are_for_officers_only(app, alpha, make_user, clock, runtime, role):
    reviewer = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Secret Panel Member")
    with unit_of_work(runtime.sessions) as session:
        session.add(Assignment(programme_id=_programme_id(runtime), stage="written",
                               submission_id=alpha.submission_id, reviewer_id=reviewer.id))
        assignment_id = session.scalar(select(Assignment.id))
    client = app.test_client()
    sign_in(client, alpha.applicant if role is Role.APPLICANT else make_user(role, mfa=True),
            clock)
    for path in ("/assignments/", PANEL, f"{PANEL}?stage=written"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Secret Panel Member" not in response.get_data(as_text=True)
    token = csrf_from(client, "/account/")
    for path, data in ((f"{PANEL}/add", {"stage": "written", "reviewer": str(reviewer.id),
                                         "submission": str(alpha.submission_id)}),
                       (f"{PANEL}/bulk", {"stage": "written", "reviewers": str(reviewer.id),
                                          "submissions": str(alpha.submission_id)}),
                       (f"{PANEL}/{assignment_id}/remove", {})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403, path
    assert _assignments(runtime) == {("written", alpha.submission_id, reviewer.id)}
    denied = [e for e in _events(runtime, "access:decided") if e["decision"] == "deny"]
    assert denied and all(e["target"]["action"] == "assignment:manage" for e in denied)


def test_reviewer_home_lists_only_their_own_assignments(app, office, alpha, beta, make_user,
                                                        runtime, clock):
    kim = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Kim")
    lee = _named(runtime, make_user(Role.REVIEWER, mfa=True), "Reviewer Lee")
    _assign(office, kim.id, alpha.submission_id)
    _assign(office, lee.id, alpha.submission_id)
    _assign(office, lee.id, beta.submission_id)
    client = app.test_client()
    sign_in(client, kim, clock)
    page = client.get("/").get_data(as_text=True)
    assert "Team Alpha" in page and "Written evaluation" in page
    assert f"/submissions/{alpha.submission_id}" in page
    assert "Team Beta" not in page and "Reviewer Lee" not in page
    assert "2027-01-25 09:00 KST" in page and "not yet open" in page
    assert f'href="/nda/{CODE}"' in page and "Read and accept the NDA" in page
    assert "This session passed two-step verification." in page
    assert "You can read this submission now." not in page
    listed = [e for e in _events(runtime, "access:filtered")
              if e["target"]["action"] == "assignment:list"]
    assert listed and listed[-1]["actor"]["user"] == str(kim.id)


def test_reviewer_without_assignments_sees_the_empty_state(client, make_user, clock):
    sign_in(client, make_user(Role.REVIEWER, mfa=True), clock)
    assert "You have no assignments yet." in client.get("/").get_data(as_text=True)


# -- revocation ---------------------------------------------------------------------------------

def _upload_proposal(app, team, clock) -> str:
    owner = app.test_client()
    sign_in(owner, team.applicant, clock)
    response = owner.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal",
        data=pdf_bytes(2000), content_type="application/pdf",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote('p.pdf')}",
                 "X-CSRFToken": csrf_from(owner, "/")})
    assert response.status_code == 201, response.json
    return response.json["document_id"]


def _ready_to_review(runtime, reviewer_id, submission_id) -> None:
    """NDA accepted (current text, not expired) and the submission in the written stage."""
    definition = runtime.definitions[CODE]
    with unit_of_work(runtime.sessions) as session:
        session.add(NdaAcceptance(
            user_id=reviewer_id, programme_id=_programme_id(runtime),
            nda_sha256=definition.nda.sha256, typed_name="Test reviewer",
            accepted_at=datetime(2027, 1, 20, tzinfo=UTC),
            expires_at=datetime(2027, 12, 31, tzinfo=UTC), client_address="127.0.0.1",
            user_agent="pytest", channel="web"))
        session.get(Submission, submission_id).stage = "written"


def test_removing_the_assignment_revokes_access_on_the_next_request(app, alpha, make_user,
                                                                    clock, runtime):
    document_id = _upload_proposal(app, alpha, clock)
    clock.now = IN_WRITTEN_WINDOW
    officer = make_user(Role.OFFICER, mfa=True)
    office = app.test_client()
    sign_in(office, officer, clock)
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _ready_to_review(runtime, reviewer.id, alpha.submission_id)
    assert _assign(office, reviewer.id, alpha.submission_id).status_code == 302
    client = app.test_client()
    sign_in(client, reviewer, clock)

    assert client.get(f"/api/v1/documents/{document_id}").status_code == 200
    home = client.get("/").get_data(as_text=True)
    assert "You can read this submission now." in home and "(open)" in home

    with unit_of_work(runtime.sessions) as session:
        assignment_id = session.scalar(select(Assignment.id))
    token = csrf_from(office, f"{PANEL}?stage=written")
    assert office.post(f"{PANEL}/{assignment_id}/remove",
                       data={"csrf_token": token}).status_code == 302
    response = client.get(f"/api/v1/documents/{document_id}")
    assert response.status_code == 404
    assert "Team Alpha" not in response.get_data(as_text=True)
    assert "Team Alpha" not in client.get("/").get_data(as_text=True)


def test_a_conflict_after_assignment_denies_the_next_request(app, alpha, make_user, clock,
                                                             runtime):
    document_id = _upload_proposal(app, alpha, clock)
    clock.now = IN_WRITTEN_WINDOW
    office = app.test_client()
    sign_in(office, make_user(Role.OFFICER, mfa=True), clock)
    reviewer = make_user(Role.REVIEWER, mfa=True)
    _ready_to_review(runtime, reviewer.id, alpha.submission_id)
    _assign(office, reviewer.id, alpha.submission_id)
    client = app.test_client()
    sign_in(client, reviewer, clock)
    assert client.get(f"/api/v1/documents/{document_id}").status_code == 200
    _conflict(runtime, reviewer.id, alpha.consortium_id)
    assert client.get(f"/api/v1/documents/{document_id}").status_code == 404


# -- the command line -------------------------------------------------------------------------

def _vault(app, *args: str, env: dict[str, str] | None = None):
    return app.test_cli_runner().invoke(cli, ["assign", *args], env=env)


@pytest.fixture
def cli_world(alpha, beta, make_user, runtime):
    officer = make_user(Role.OFFICER)
    reviewer = _named(runtime, make_user(Role.REVIEWER), "Reviewer Kim")
    return officer, reviewer


def test_cli_adds_lists_and_removes_in_the_officers_name(app, runtime, alpha, cli_world):
    officer, reviewer = cli_world
    added = _vault(app, "add", "--stage", "written", "--reviewer", reviewer.email,
                   "--submission", str(alpha.submission_id), "--officer", officer.email)
    assert added.exit_code == 0, added.output
    assert f"Assigned {reviewer.email} to Team Alpha" in added.output
    assert _assignments(runtime) == {("written", alpha.submission_id, reviewer.id)}

    listing = _vault(app, "list", "--stage", "written", "--officer", officer.email)
    assert listing.exit_code == 0, listing.output
    assert "Team Alpha" in listing.output and reviewer.email in listing.output
    as_json = json.loads(_vault(app, "list", "--stage", "written", "--officer", officer.email,
                                "--programme", CODE, "--format", "json").output)
    assert as_json["programme"] == CODE and as_json["stage"] == "written"
    assert [(a["consortium"], a["reviewer"], a["reviewer_name"]) for a in
            as_json["assignments"]] == [("Team Alpha", reviewer.email, "Reviewer Kim")]

    removed = _vault(app, "remove", "--stage", "written", "--reviewer", reviewer.email,
                     "--submission", str(alpha.submission_id), "--officer", officer.email)
    assert removed.exit_code == 0, removed.output
    assert _assignments(runtime) == set()
    empty = _vault(app, "list", "--stage", "written", "--officer", officer.email)
    assert "No assignments in stage written" in empty.output

    for tag in ("assignment:added", "assignment:removed"):
        (event,) = _events(runtime, tag)
        assert event["actor"] == {"role": "officer", "user": str(officer.id)}
        assert event["request"]["client"] == "cli"
    decisions = [e for e in _events(runtime, "access:decided")
                 if e["target"]["action"] == "assignment:manage"]
    assert len(decisions) == 5  # add, list, list --format json, remove, list
    assert all(e["actor"]["user"] == str(officer.id) and e["decision"] == "allow"
               for e in decisions)


def test_cli_takes_the_officer_from_the_environment(app, runtime, alpha, cli_world):
    officer, reviewer = cli_world
    result = _vault(app, "add", "--stage", "written", "--reviewer", reviewer.email,
                    "--submission", str(alpha.submission_id),
                    env={"VAULT_OFFICER": officer.email})
    assert result.exit_code == 0, result.output
    assert _events(runtime, "assignment:added")[0]["actor"]["user"] == str(officer.id)


@pytest.mark.parametrize(("change", "message"), [
    ({"--reviewer": "nobody@test.example"}, "No account has e-mail nobody@test.example."),
    ({"--submission": "00000000-0000-4000-8000-000000000000"},
     "No submission 00000000-0000-4000-8000-000000000000 in programme sovereign-ai-2025."),
    ({"--submission": "not-a-uuid"}, "'not-a-uuid' is not a submission id."),
    ({"--officer": "nobody@test.example"}, "No active account has e-mail nobody@test.example."),
    ({"--programme": "no-such-programme"}, "No programme no-such-programme."),
    ({"--stage": "call"}, "The programme has no such review stage."),
])
def test_cli_errors_exit_2_with_a_clear_message(app, runtime, alpha, cli_world, change,
                                                message):
    officer, reviewer = cli_world
    options = {"--stage": "written", "--reviewer": reviewer.email,
               "--submission": str(alpha.submission_id), "--officer": officer.email, **change}
    result = _vault(app, "add", *[part for pair in options.items() for part in pair])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert _assignments(runtime) == set()


def test_cli_refusal_is_recorded_and_names_the_officer(app, runtime, alpha, cli_world):
    officer, reviewer = cli_world
    _conflict(runtime, reviewer.id, alpha.consortium_id)
    result = _vault(app, "add", "--stage", "written", "--reviewer", reviewer.email,
                    "--submission", str(alpha.submission_id), "--officer", officer.email)
    assert result.exit_code == 2
    assert "conflict of interest with this consortium (declared)" in result.output
    assert _assignments(runtime) == set()
    (refused,) = _events(runtime, "assignment:refused")
    assert refused["actor"]["user"] == str(officer.id)
    assert refused["reasons"] == ["conflict of interest"]


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPLICANT, Role.ADMIN])
def test_cli_refuses_non_officers_and_records_the_denial(app, runtime, alpha, cli_world,
                                                         make_user, role):
    _officer, reviewer = cli_world
    someone = make_user(role)
    for args in (("add", "--reviewer", reviewer.email, "--submission", str(alpha.submission_id)),
                 ("list",)):
        result = _vault(app, *args, "--stage", "written", "--officer", someone.email)
        assert result.exit_code == 2
        assert f"{someone.email} ({role.value}) may not manage the assignments" in result.output
    assert _assignments(runtime) == set()
    denied = [e for e in _events(runtime, "access:decided") if e["decision"] == "deny"]
    assert len(denied) == 2 and all(e["actor"]["user"] == str(someone.id) for e in denied)


def test_cli_remove_of_a_missing_assignment_fails(app, runtime, alpha, cli_world):
    officer, reviewer = cli_world
    result = _vault(app, "remove", "--stage", "written", "--reviewer", reviewer.email,
                    "--submission", str(alpha.submission_id), "--officer", officer.email)
    assert result.exit_code == 2
    assert "is not assigned to submission" in result.output


def test_cli_conflicted_officer_cannot_assign_that_consortium(app, runtime, alpha, cli_world):
    officer, reviewer = cli_world
    _conflict(runtime, officer.id, alpha.consortium_id)
    result = _vault(app, "add", "--stage", "written", "--reviewer", reviewer.email,
                    "--submission", str(alpha.submission_id), "--officer", officer.email)
    assert result.exit_code == 2 and "No submission" in result.output
    assert _assignments(runtime) == set()


# -- translations -----------------------------------------------------------------------------

def test_every_refusal_message_has_a_korean_translation():
    korean = catalogue("ko")
    for error in vars(assignment_errors).values():
        if isinstance(error, type) and issubclass(error, assignment_errors.AssignmentError):
            assert korean.get(error.template), error.template
