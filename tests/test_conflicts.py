"""Conflicts of interest: declarations (회피), detection (제척), challenges (기피), sanctions and
officers' decisions — and that none of it reveals a partner list, a panel or a challenger."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime

import pytest
from flask_login import login_user
from sqlalchemy import select

from tests.conftest import audit_events as events
from tests.conftest import csrf_from, sign_in
from vault.assignments.models import Assignment
from vault.audit.service import Tag
from vault.conflicts.detection import (
    affiliation_organization_id,
    normalise_name,
    seal_affiliation,
)
from vault.conflicts.errors import (
    ConflictedDecider,
    InvalidDecision,
    InvalidDeclaration,
    InvalidSanction,
    OwnConflict,
)
from vault.conflicts.links import consortium_of
from vault.conflicts.models import (
    Affiliation,
    Conflict,
    ConflictKind,
    ConflictSource,
    ConflictStatus,
)
from vault.conflicts.service import ConflictService, on_partner_list_changed
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.documents.models import Document, Submission
from vault.identity.models import Role, User
from vault.nda.models import NdaAcceptance
from vault.organizations.models import Organization, OrganizationKind
from vault.organizations.service import OrganizationService
from vault.policy.actions import Action, Actor
from vault.programmes.service import ProgrammeService
from vault.web import context as web_context
from vault.web.conflicts import detect_after_partner_change

CODE = "sovereign-ai-2025"
#: Inside the written evaluation's review window (2027-01-25 .. 2027-02-12 KST).
IN_WINDOW = datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
_CSRF_VALUE = re.compile(
    r'(name="csrf_token"[^>]*value=")[^"]+(")|(name="csrf-token" content=")[^"]+(")')


# -- helpers --------------------------------------------------------------------------------

def service(runtime, session) -> ConflictService:
    """The conflict service on ``session``, as the web layer builds it."""
    return ConflictService(session, cipher=runtime.cipher, clock=runtime.clock,
                           definitions=runtime.definitions, audit=runtime.audit(session),
                           lookup=runtime.lookup)


def actor_of(account, mfa: bool = True) -> Actor:
    """The actor of a test account."""
    return Actor(user_id=account.id, role=account.role, mfa=mfa)


def programme_of(session):
    """The demo programme's record."""
    programme = ProgrammeService(session).by_code(CODE)
    assert programme is not None
    return programme


def employ(runtime, account, organisation: str) -> None:
    """Make ``organisation`` the account's current affiliation."""
    with unit_of_work(runtime.sessions) as session:
        org = OrganizationService(session).get_or_create(organisation, OrganizationKind.COMPANY)
        runtime.identity(session).set_employer(session.get(User, account.id), org)


def add_past(runtime, account, organisation: str, ends_on: date) -> None:
    """Record a past affiliation directly (no detection)."""
    with unit_of_work(runtime.sessions) as session:
        org = OrganizationService(session).get_or_create(organisation, OrganizationKind.COMPANY)
        row = Affiliation(id=uuid.uuid4(), user_id=account.id, ends_on=ends_on)
        row.organization_sealed = seal_affiliation(runtime.cipher, row.id, org.id)
        session.add(row)


def detect(runtime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Run detection on the demo programme; the (user, consortium) pairs it created."""
    with unit_of_work(runtime.sessions) as session:
        found = service(runtime, session).detect(programme_of(session))
        return [(c.user_id, consortium_of(runtime.cipher, c)) for c in found]


class Opened:
    """A conflict row with its (sealed) consortium opened as ``consortium_id``."""

    def __init__(self, row: Conflict, consortium_id: uuid.UUID) -> None:
        self.row = row
        self.consortium_id = consortium_id

    def __getattr__(self, name: str) -> object:
        return getattr(self.row, name)


def conflicts(runtime, consortium_id: uuid.UUID | None = None, **where) -> list[Opened]:
    """Conflict rows matching the keyword filters, their consortium opened."""
    with unit_of_work(runtime.sessions) as session:
        query = select(Conflict)
        for column, value in where.items():
            query = query.where(getattr(Conflict, column) == value)
        rows = [Opened(row, consortium_of(runtime.cipher, row))
                for row in session.scalars(query)]
    return [row for row in rows if consortium_id in (None, row.consortium_id)]


def ready_reviewer(runtime, clock, make_user, team):
    """A reviewer who may read the team's proposal right now: NDA accepted, MFA, assigned to
    the written stage, the submission in that stage, the clock inside its window."""
    clock.now = IN_WINDOW
    reviewer = make_user(Role.REVIEWER, mfa=True)
    nda = runtime.definitions[CODE].nda
    with unit_of_work(runtime.sessions) as session:
        programme = programme_of(session)
        submission = session.get(Submission, team.submission_id)
        submission.stage = "written"
        session.add(NdaAcceptance(user_id=reviewer.id, programme_id=programme.id,
                                  nda_sha256=nda.sha256, typed_name="Test reviewer",
                                  accepted_at=clock(), expires_at=nda.accepted_until,
                                  client_address="127.0.0.1", user_agent="pytest",
                                  channel="web"))
        session.add(Assignment(programme_id=programme.id, stage="written",
                               submission_id=submission.id, reviewer_id=reviewer.id))
        document = Document(submission_id=submission.id, kind="proposal", slot="")
        session.add(document)
        session.flush()
        return reviewer, document.id


def may_read(runtime, reviewer, document_id) -> bool:
    """A fresh request's decision: may the reviewer read the document?"""
    with unit_of_work(runtime.sessions) as session:
        return runtime.authorizer(session).allowed(
            actor_of(reviewer), Action.DOCUMENT_READ, session.get(Document, document_id))


def without_csrf(body: str) -> str:
    """A page with its per-request CSRF tokens blanked out, for comparing two pages."""
    return _CSRF_VALUE.sub(lambda m: (m.group(1) or m.group(3)) + "…" + (m.group(2) or m.group(4)),
                           body)


# -- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("one", "other"), [
    ("Morae Storage Inc.", "morae  storage"),
    ("MORAE STORAGE CO., LTD.", "Morae Storage"),
    ("Morae Storage Corp", "Morae-Storage"),
    ("(주)모래스토리지", "모래스토리지 주식회사"),
    ("㈜모래스토리지", "모래스토리지"),
])
def test_normalised_names_ignore_case_punctuation_and_legal_forms(one, other):
    assert normalise_name(one) == normalise_name(other) != ""


def test_normalised_names_keep_different_organisations_apart():
    assert normalise_name("Morae Storage") != normalise_name("Morae Systems")
    assert normalise_name("Company") == "company"  # a name made only of a legal form stays


# -- detection (제척) -------------------------------------------------------------------------

def test_detection_finds_a_reviewer_employed_by_a_partner_in_the_sealed_list(
        runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Morae Storage Inc.",))
    other = make_team("Team Beta", partners=("Beta University",))
    reviewer = make_user(Role.REVIEWER)
    employ(runtime, reviewer, "Morae Storage")  # registered under another spelling
    assert detect(runtime) == [(reviewer.id, team.consortium_id)]
    (row,) = conflicts(runtime, user_id=reviewer.id)
    assert row.source is ConflictSource.DETECTED and row.status is ConflictStatus.PENDING
    assert b"Morae" not in row.details_sealed  # the evidence is sealed
    with unit_of_work(runtime.sessions) as session:
        (view,) = service(runtime, session).for_programme(programme_of(session))
    assert view.details["evidence"] == [{
        "relation": "partner", "organization": "Morae Storage Inc.", "affiliation": "current",
        "affiliated_with": "Morae Storage", "ended_on": None}]
    assert not conflicts(runtime, consortium_id=other.consortium_id)
    (event,) = events(runtime, Tag.CONFLICT_DETECTED)
    # The log names the conflict only: person and consortium side by side would name the
    # partner to anyone who knows where the person works.
    assert event["target"] == {"programme": str(row.programme_id), "conflict": str(row.id)}
    assert "Morae" not in json.dumps(event)


def test_detection_finds_the_lead_organisation_and_officers_too(runtime, make_user, make_team):
    team = make_team("Team Gamma")
    officer = make_user(Role.OFFICER)
    employ(runtime, officer, "Team Gamma Lead Co.")
    assert detect(runtime) == [(officer.id, team.consortium_id)]
    with unit_of_work(runtime.sessions) as session:
        (view,) = service(runtime, session).for_programme(programme_of(session))
    assert {e["relation"] for e in view.details["evidence"]} == {"lead"}


def test_a_past_affiliation_counts_for_the_configured_years_only(runtime, make_user, make_team):
    # The clock is 2026-12-01; the rule is 3 years.
    team = make_team("Team Alpha", partners=("Haneul Data",))
    recent = make_user(Role.REVIEWER)
    old = make_user(Role.REVIEWER)
    add_past(runtime, recent, "Haneul Data Ltd", date(2024, 12, 1))  # ended 2 years ago
    add_past(runtime, old, "Haneul Data", date(2022, 12, 1))  # ended 4 years ago
    assert detect(runtime) == [(recent.id, team.consortium_id)]
    with unit_of_work(runtime.sessions) as session:
        (view,) = service(runtime, session).for_programme(programme_of(session))
    assert view.details["evidence"][0]["affiliation"] == "past"
    assert view.details["evidence"][0]["ended_on"] == "2024-12-01"


def test_detection_is_idempotent_and_never_reopens_a_dismissal(runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Morae Storage",))
    reviewer = make_user(Role.REVIEWER)
    officer = make_user(Role.OFFICER)
    employ(runtime, reviewer, "Morae Storage")
    assert len(detect(runtime)) == 1
    assert detect(runtime) == []
    (row,) = conflicts(runtime, user_id=reviewer.id)
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, row.id),
                                         confirm=False, reason="Left the company in 2019.")
    assert detect(runtime) == []
    (row,) = conflicts(runtime, user_id=reviewer.id, consortium_id=team.consortium_id)
    assert row.status is ConflictStatus.DISMISSED


def test_a_past_affiliation_added_by_an_officer_detects_at_once(runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Nuri Compute",))
    reviewer = make_user(Role.REVIEWER)
    officer = make_user(Role.OFFICER)
    with unit_of_work(runtime.sessions) as session:
        org = OrganizationService(session).get_or_create("Nuri Compute Inc.",
                                                         OrganizationKind.COMPANY)
        found = service(runtime, session).add_affiliation(
            actor_of(officer), session.get(User, reviewer.id), org, date(2015, 3, 1),
            date(2025, 6, 30))
        assert [(c.user_id, consortium_of(runtime.cipher, c)) for c in found] == [
            (reviewer.id, team.consortium_id)]
    (event,) = events(runtime, Tag.AFFILIATION_CHANGED)
    assert event["target"]["user"] == str(reviewer.id)


def test_changing_the_current_organisation_keeps_the_old_one_as_a_past_affiliation(
        runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Old Employer",))
    reviewer = make_user(Role.REVIEWER)
    officer = make_user(Role.OFFICER)
    employ(runtime, reviewer, "Old Employer")
    with unit_of_work(runtime.sessions) as session:
        organizations = OrganizationService(session)
        new = organizations.get_or_create("New Employer", OrganizationKind.COMPANY)
        found = service(runtime, session).set_affiliation(
            actor_of(officer), session.get(User, reviewer.id), new)
        assert [(c.user_id, consortium_of(runtime.cipher, c)) for c in found] == [
            (reviewer.id, team.consortium_id)]
        (past,) = session.scalars(select(Affiliation).where(Affiliation.user_id == reviewer.id))
        opened = session.get(Organization, affiliation_organization_id(runtime.cipher, past))
        assert opened.name == "Old Employer"
        employer = runtime.identity(session).employer(session.get(User, reviewer.id))
        assert employer.name == "New Employer"
        assert past.ends_on == date(2026, 12, 1)


def test_a_partner_added_later_takes_effect_through_the_partner_list_hook(
        runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Alpha University",))
    declared_elsewhere = make_team("Team Beta", partners=("Haneul Data",))
    reviewer = make_user(Role.REVIEWER)
    spouse = make_user(Role.REVIEWER)
    employ(runtime, reviewer, "Nuri Compute")
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).declare(
            actor_of(spouse), programme_of(session), ConflictKind.FAMILY,
            "My spouse works there.", organization_name="Haneul Data Inc.")
    assert [c.consortium_id for c in conflicts(runtime, user_id=spouse.id)] == [
        declared_elsewhere.consortium_id]
    with unit_of_work(runtime.sessions) as session:
        consortium = session.get(Consortium, team.consortium_id)
        consortia = ConsortiumService(session, cipher=runtime.cipher)
        consortia.add_member(consortium, name="Nuri Compute Co., Ltd.",
                             kind=OrganizationKind.COMPANY, role="partner", contribution="GPUs")
        consortia.add_member(consortium, name="HANEUL DATA", kind=OrganizationKind.COMPANY,
                             role="partner", contribution="data")
        found = on_partner_list_changed(session, runtime.cipher, runtime.clock,
                                        runtime.definitions, runtime.audit(session), None,
                                        consortium)
        assert {(c.user_id, c.source) for c in found} == {
            (reviewer.id, ConflictSource.DETECTED), (spouse.id, ConflictSource.DECLARED)}
    assert {c.consortium_id for c in conflicts(runtime, user_id=spouse.id)} == {
        team.consortium_id, declared_elsewhere.consortium_id}


def test_a_declaration_that_matches_nobody_yet_stands_and_is_listed_to_the_declarer(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Alpha University",))
    reviewer = make_user(Role.REVIEWER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        created = service(runtime, session).declare(
            actor_of(reviewer), programme_of(session), ConflictKind.FINANCIAL,
            "I hold shares in Dolbit.", organization_name="Dolbit Labeling Co.")
    assert created == [] and conflicts(runtime, user_id=reviewer.id) == []
    sign_in(client, reviewer, clock)
    page = client.get(f"/conflicts/{CODE}/declarations").get_data(as_text=True)
    assert "Dolbit Labeling Co." in page and "I hold shares in Dolbit." in page
    assert "Recorded for the programme office" in page and "Team Alpha" not in page
    # The organisation joins a consortium later: the standing declaration takes effect.
    with unit_of_work(runtime.sessions) as session:
        consortium = session.get(Consortium, team.consortium_id)
        ConsortiumService(session, cipher=runtime.cipher).add_member(
            consortium, name="DOLBIT LABELING", kind=OrganizationKind.COMPANY, role="partner",
            contribution="labels")
        on_partner_list_changed(session, runtime.cipher, runtime.clock, runtime.definitions,
                                runtime.audit(session), None, consortium)
    [conflict] = conflicts(runtime, user_id=reviewer.id)
    assert (conflict.consortium_id, conflict.source) == (team.consortium_id,
                                                         ConflictSource.DECLARED)
    assert conflict.declaration_id is not None
    # ... and the declarer still does not learn which consortium it was.
    page = client.get(f"/conflicts/{CODE}/declarations").get_data(as_text=True)
    assert "Team Alpha" not in page


def test_the_web_hook_for_partner_list_handlers_detects_in_the_request(
        app, runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER)
    employ(runtime, reviewer, "Nuri Compute")
    with app.test_request_context("/submissions/x/partners", method="POST"):
        session = web_context.db()
        login_user(session.get(User, team.applicant.id))
        consortium = session.get(Consortium, team.consortium_id)
        ConsortiumService(session, cipher=runtime.cipher).add_member(
            consortium, name="Nuri Compute", kind=OrganizationKind.COMPANY, role="partner",
            contribution="GPUs")
        detect_after_partner_change(consortium)
        web_context.finish_request(commit=True)
    (row,) = conflicts(runtime, user_id=reviewer.id)
    assert row.consortium_id == team.consortium_id and row.source is ConflictSource.DETECTED
    (event,) = events(runtime, Tag.CONFLICT_DETECTED)
    assert event["actor"]["user"] == str(team.applicant.id)


# -- declarations (회피) ----------------------------------------------------------------------

def test_declaring_against_an_organisation_finds_every_consortium_that_lists_it(
        runtime, make_user, make_team):
    first = make_team("Team Alpha", partners=("Morae Storage Inc.",))
    second = make_team("Team Beta", partners=("Beta University", "MORAE STORAGE"))
    make_team("Team Gamma", partners=("Gamma Institute",))
    reviewer = make_user(Role.REVIEWER)
    with unit_of_work(runtime.sessions) as session:
        created = service(runtime, session).declare(
            actor_of(reviewer), programme_of(session), ConflictKind.FAMILY,
            "My spouse works at Morae.", period_from=date(2020, 1, 1),
            organization_name="Morae Storage Corp.")
        ids = {c.id for c in created}
    rows = conflicts(runtime, user_id=reviewer.id)
    assert {r.consortium_id for r in rows} == {first.consortium_id, second.consortium_id}
    assert all(r.source is ConflictSource.DECLARED and r.created_by_id == reviewer.id
               for r in rows)
    (event,) = events(runtime, Tag.CONFLICT_DECLARED)
    assert set(event["target"]["conflicts"].split(",")) == {str(i) for i in ids}
    assert "spouse" not in json.dumps(event) and "Morae" not in json.dumps(event)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "Name either a consortium or an organisation."),
    ({"organization_name": "  "}, "Name either a consortium or an organisation."),
    ({"organization_name": "X", "period_from": date(2025, 1, 2), "period_to": date(2025, 1, 1)},
     "The period ends before it starts."),
    ({"organization_name": "X", "description": " "},
     "Describe the conflict (up to 2,000 characters)."),
])
def test_a_declaration_must_name_one_target_a_description_and_a_valid_period(
        runtime, make_user, make_team, kwargs, message):
    make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER)
    arguments = {"description": "A tie.", **kwargs}
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidDeclaration) as error:
        service(runtime, session).declare(actor_of(reviewer), programme_of(session),
                                          ConflictKind.OTHER, **arguments)
    assert str(error.value) == message
    assert not conflicts(runtime)


def test_the_declaration_page_does_not_name_the_matched_consortia(
        client, clock, runtime, make_user, make_team):
    first = make_team("Team Alpha", partners=("Morae Storage Inc.",))
    make_team("Team Beta", partners=("Beta University",))
    reviewer = make_user(Role.REVIEWER, mfa=True)
    sign_in(client, reviewer, clock)
    form = csrf_from(client, f"/conflicts/{CODE}/declare")
    response = client.post(f"/conflicts/{CODE}/declare", data={
        "csrf_token": form, "kind": "family", "consortium": "",
        "organization": "Morae Storage", "period_from": "2021-03-01", "period_to": "",
        "description": "My spouse works at Morae Storage."})
    assert response.status_code == 302
    assert response.location == f"/conflicts/{CODE}/declarations"
    page = client.get(response.location).get_data(as_text=True)
    assert "Your declaration has been recorded." in page
    for body in (response.get_data(as_text=True), page):
        assert "Team Alpha" not in body and "Team Beta" not in body
    assert [c.consortium_id for c in conflicts(runtime, user_id=reviewer.id)] == [
        first.consortium_id]


def test_a_declaration_against_a_named_consortium_is_listed_to_the_declarer(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER, mfa=True)
    sign_in(client, reviewer, clock)
    form = csrf_from(client, f"/conflicts/{CODE}/declare")
    response = client.post(f"/conflicts/{CODE}/declare", data={
        "csrf_token": form, "kind": "advisor", "consortium": str(team.consortium_id),
        "organization": "", "description": "I supervised the lead's CTO."},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Team Alpha" in page and "I supervised the lead&#39;s CTO." in page
    assert "Advisor or student" in page and "Pending — in effect" in page


def test_a_declaration_naming_both_or_neither_is_refused_with_400(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER, mfa=True)
    sign_in(client, reviewer, clock)
    form = csrf_from(client, f"/conflicts/{CODE}/declare")
    response = client.post(f"/conflicts/{CODE}/declare", data={
        "csrf_token": form, "kind": "other", "consortium": str(team.consortium_id),
        "organization": "Morae", "description": "Both."})
    assert response.status_code == 400
    assert "Name either a consortium or an organisation." in response.get_data(as_text=True)
    response = client.post(f"/conflicts/{CODE}/declare", data={
        "csrf_token": form, "kind": "other", "consortium": str(uuid.uuid4()),
        "description": "Unknown consortium."})
    assert response.status_code == 400
    assert not conflicts(runtime)


# -- taking effect --------------------------------------------------------------------------

def test_a_pending_conflict_denies_the_next_request_until_an_officer_dismisses_it(
        runtime, clock, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer, document_id = ready_reviewer(runtime, clock, make_user, team)
    officer = make_user(Role.OFFICER)
    assert may_read(runtime, reviewer, document_id)
    with unit_of_work(runtime.sessions) as session:
        (conflict,) = service(runtime, session).declare(
            actor_of(reviewer), programme_of(session), ConflictKind.COLLABORATOR,
            "We co-authored a paper last year.",
            consortium=session.get(Consortium, team.consortium_id))
        conflict_id = conflict.id
    assert not may_read(runtime, reviewer, document_id)
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, conflict_id),
                                         confirm=True, reason="A joint paper within 3 years.")
    assert not may_read(runtime, reviewer, document_id)  # confirmed: still in effect
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, conflict_id),
                                         confirm=False, reason="The paper was in 2015.")
    assert may_read(runtime, reviewer, document_id)
    decided = [e["target"] for e in events(runtime, Tag.CONFLICT_DECIDED)]
    assert [(t["old_status"], t["new_status"]) for t in decided] == [
        ("pending", "confirmed"), ("confirmed", "dismissed")]


def test_a_sanction_within_the_configured_years_excludes_and_an_older_one_does_not(
        runtime, clock, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer, document_id = ready_reviewer(runtime, clock, make_user, team)  # today 2027-02-01
    officer = make_user(Role.OFFICER)
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).record_sanction(
            actor_of(officer), session.get(User, reviewer.id), date(2023, 6, 1),
            "Leaked an evaluation in 2023.")
    assert may_read(runtime, reviewer, document_id)
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).record_sanction(
            actor_of(officer), session.get(User, reviewer.id), date(2025, 2, 3),
            "Missed the confidentiality pledge.")
    assert not may_read(runtime, reviewer, document_id)
    (_, second) = events(runtime, Tag.SANCTION_RECORDED)
    assert second["target"]["imposed_on"] == "2025-02-03"
    assert "pledge" not in json.dumps(second)


def test_sanctions_are_for_reviewers_and_never_in_the_future(runtime, make_user):
    officer = make_user(Role.OFFICER)
    reviewer = make_user(Role.REVIEWER)
    with unit_of_work(runtime.sessions) as session:
        conflicts_ = service(runtime, session)
        with pytest.raises(InvalidSanction):
            conflicts_.record_sanction(actor_of(officer), session.get(User, officer.id),
                                       date(2025, 1, 1), "Reason.")
        with pytest.raises(InvalidSanction):
            conflicts_.record_sanction(actor_of(officer), session.get(User, reviewer.id),
                                       date(2027, 1, 1), "Reason.")


# -- decisions -------------------------------------------------------------------------------

def test_an_officer_cannot_decide_a_conflict_about_themselves(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Morae Storage",))
    officer = make_user(Role.OFFICER, mfa=True)
    employ(runtime, officer, "Morae Storage")
    detect(runtime)
    (row,) = conflicts(runtime, user_id=officer.id)
    with unit_of_work(runtime.sessions) as session, pytest.raises(OwnConflict):
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, row.id),
                                         confirm=False, reason="Not me.")
    sign_in(client, officer, clock)
    page = client.get(f"/conflicts/{CODE}").get_data(as_text=True)
    assert "About you: another officer decides." in page
    form = csrf_from(client, f"/conflicts/{CODE}")
    response = client.post(f"/conflicts/{row.id}/decide", data={
        "csrf_token": form, "decision": "dismiss", "reason": "Not me."})
    assert response.status_code == 403
    assert "another officer must decide it" in response.get_data(as_text=True)
    (row,) = conflicts(runtime, consortium_id=team.consortium_id)
    assert row.status is ConflictStatus.PENDING


def test_an_officer_conflicted_with_the_consortium_cannot_decide_about_it(
        runtime, make_user, make_team):
    make_team("Team Alpha", partners=("Morae Storage",))
    officer = make_user(Role.OFFICER)
    reviewer = make_user(Role.REVIEWER)
    employ(runtime, officer, "Morae Storage")
    employ(runtime, reviewer, "Morae Storage")
    detect(runtime)
    (row,) = conflicts(runtime, user_id=reviewer.id)
    with unit_of_work(runtime.sessions) as session, pytest.raises(ConflictedDecider):
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, row.id),
                                         confirm=True, reason="Obvious.")


def test_a_decision_needs_a_reason(runtime, make_user, make_team):
    make_team("Team Alpha", partners=("Morae Storage",))
    officer = make_user(Role.OFFICER)
    reviewer = make_user(Role.REVIEWER)
    employ(runtime, reviewer, "Morae Storage")
    detect(runtime)
    (row,) = conflicts(runtime, user_id=reviewer.id)
    with unit_of_work(runtime.sessions) as session, pytest.raises(InvalidDecision):
        service(runtime, session).decide(actor_of(officer), session.get(Conflict, row.id),
                                         confirm=True, reason="   ")


# -- challenges (기피) -------------------------------------------------------------------------

def test_a_challenge_answers_identically_for_a_reviewer_and_an_unknown_address(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER, email="kim.reviewer@panel.example")
    sign_in(client, team.applicant)
    path = f"/conflicts/submissions/{team.submission_id}/challenge"
    answers = []
    for person in ("KIM.Reviewer@panel.example", "nobody@nowhere.example"):
        response = client.post(path, data={"csrf_token": csrf_from(client, path),
                                           "person": person, "reason": "Former colleague."})
        page = client.get(response.location)
        answers.append((response.status_code, response.location,
                        response.get_data(as_text=True), without_csrf(page.get_data(as_text=True))))
    assert answers[0] == answers[1]
    assert "Your challenge has been recorded" in answers[0][3]
    (row,) = conflicts(runtime, source=ConflictSource.CHALLENGED)
    assert (row.user_id, row.consortium_id) == (reviewer.id, team.consortium_id)
    assert row.created_by_id == team.applicant.id
    known, unknown = (e["target"] for e in events(runtime, Tag.CONFLICT_CHALLENGED))
    assert known["person"] == str(reviewer.id) and known["conflict"] == str(row.id)
    assert unknown["person"].startswith("digest:") and unknown["conflict"] is None
    assert "nobody" not in json.dumps(unknown)


def test_a_challenge_by_unique_full_name_reaches_the_reviewer(runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER)
    with unit_of_work(runtime.sessions) as session:
        session.get(User, reviewer.id).display_name = "Park Ji-won"
    with unit_of_work(runtime.sessions) as session:
        conflicts_ = service(runtime, session)
        submission = session.get(Submission, team.submission_id)
        first = conflicts_.challenge(actor_of(team.applicant, mfa=False), submission,
                                     "  Park   Ji-won ", "Reviewed our rival's grant.")
        again = conflicts_.challenge(actor_of(team.applicant, mfa=False), submission,
                                     "Park Ji-won", "Also our former employee.")
        assert first is not None and again is not None and again.id == first.id
        (view,) = conflicts_.for_programme(programme_of(session))
        assert [c["reason"] for c in view.details["challenges"]] == [
            "Reviewed our rival's grant.", "Also our former employee."]


def test_an_applicant_cannot_challenge_for_another_consortium(
        client, make_user, make_team):
    mine = make_team("Team Alpha")
    theirs = make_team("Team Beta")
    sign_in(client, mine.applicant)
    path = f"/conflicts/submissions/{theirs.submission_id}/challenge"
    assert client.get(path).status_code == 404
    assert client.get(f"/conflicts/submissions/{uuid.uuid4()}/challenge").status_code == 404
    assert client.get(f"/conflicts/submissions/{mine.submission_id}/challenge").status_code == 200


# -- who sees what ----------------------------------------------------------------------------

def test_applicants_and_reviewers_cannot_open_the_officer_pages(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha")
    reviewer = make_user(Role.REVIEWER, mfa=True)
    sign_in(client, team.applicant)
    assert client.get(f"/conflicts/{CODE}").status_code == 403
    assert client.get(f"/conflicts/{CODE}/declare").status_code == 403
    token = csrf_from(client, f"/conflicts/submissions/{team.submission_id}/challenge")
    assert client.post(f"/conflicts/{CODE}/detect", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, reviewer, clock)
    assert client.get(f"/conflicts/{CODE}").status_code == 403
    token = csrf_from(client, f"/conflicts/{CODE}/declare")
    assert client.post(f"/conflicts/{CODE}/detect", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/conflicts/{uuid.uuid4()}/decide", data={
        "csrf_token": token, "decision": "dismiss", "reason": "x"}).status_code == 404


def test_reviewers_do_not_see_detected_or_challenged_conflicts_about_themselves(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Morae Storage Inc.",))
    reviewer = make_user(Role.REVIEWER, mfa=True)
    employ(runtime, reviewer, "Morae Storage")
    detect(runtime)
    with unit_of_work(runtime.sessions) as session:
        service(runtime, session).challenge(actor_of(team.applicant, mfa=False),
                                            session.get(Submission, team.submission_id),
                                            reviewer.email, "Works for our partner.")
    assert len(conflicts(runtime, user_id=reviewer.id)) == 2
    with unit_of_work(runtime.sessions) as session:
        assert service(runtime, session).of_user(session.get(User, reviewer.id)) == []
    sign_in(client, reviewer, clock)
    page = client.get(f"/conflicts/{CODE}/declarations").get_data(as_text=True)
    assert "Team Alpha" not in page and "Morae" not in page and "partner" not in page
    assert "You have made no declaration." in page


# -- officers' page ----------------------------------------------------------------------------

def test_officers_see_the_evidence_and_decide_with_a_reason(
        client, clock, runtime, make_user, make_team):
    make_team("Team Alpha", partners=("Morae Storage Inc.",))
    reviewer = make_user(Role.REVIEWER, email="lee@panel.example")
    officer = make_user(Role.OFFICER, mfa=True)
    employ(runtime, reviewer, "Morae Storage")
    sign_in(client, officer, clock)
    token = csrf_from(client, f"/conflicts/{CODE}")
    response = client.post(f"/conflicts/{CODE}/detect", data={"csrf_token": token},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Detection found 1 new conflicts." in page
    assert "lee@panel.example" in page and "Morae Storage Inc." in page
    assert "Partner in the consortium" in page
    (row,) = conflicts(runtime, user_id=reviewer.id)
    response = client.post(f"/conflicts/{row.id}/decide", data={
        "csrf_token": token, "decision": "dismiss", "reason": ""})
    assert response.status_code == 400
    response = client.post(f"/conflicts/{row.id}/decide", data={
        "csrf_token": token, "decision": "dismiss", "reason": "Left Morae in 2010."},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "The decision has been recorded." in page and "Left Morae in 2010." in page
    assert conflicts(runtime, user_id=reviewer.id)[0].status is ConflictStatus.DISMISSED
    filtered = client.get(f"/conflicts/{CODE}?status=pending").get_data(as_text=True)
    assert "lee@panel.example" not in filtered.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert client.get(f"/conflicts/{CODE}?status=bogus").status_code == 400


def test_officers_record_past_affiliations_and_sanctions_from_the_page(
        client, clock, runtime, make_user, make_team):
    team = make_team("Team Alpha", partners=("Nuri Compute",))
    reviewer = make_user(Role.REVIEWER)
    officer = make_user(Role.OFFICER, mfa=True)
    sign_in(client, officer, clock)
    token = csrf_from(client, f"/conflicts/{CODE}")
    response = client.post(f"/conflicts/{CODE}/affiliations", data={
        "csrf_token": token, "user": str(reviewer.id), "organization": "Nuri Compute Inc.",
        "kind": "company", "starts_on": "2018-01-01", "ends_on": "2025-01-31"},
        follow_redirects=True)
    assert "1 new conflicts were detected" in response.get_data(as_text=True)
    assert [c.consortium_id for c in conflicts(runtime, user_id=reviewer.id)] == [
        team.consortium_id]
    response = client.post(f"/conflicts/{CODE}/affiliations", data={
        "csrf_token": token, "user": str(reviewer.id), "organization": "Other",
        "kind": "company", "starts_on": "2025-01-01", "ends_on": "2024-01-01"})
    assert response.status_code == 400
    response = client.post(f"/conflicts/{CODE}/sanctions", data={
        "csrf_token": token, "user": str(reviewer.id), "imposed_on": "2026-05-01",
        "reason": "Disclosed a score."}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "The sanction has been recorded." in page and "Disclosed a score." in page
    for person in (str(officer.id), "not-an-id"):
        response = client.post(f"/conflicts/{CODE}/sanctions", data={
            "csrf_token": token, "user": person, "imposed_on": "2026-05-01",
            "reason": "Officers are not sanctioned here."})
        assert response.status_code == 400


def test_the_conflict_pages_render_in_korean(app, clock, make_user, make_team):
    make_team("Team Alpha")
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ko"
    sign_in(client, make_user(Role.REVIEWER, mfa=True), clock)
    page = client.get(f"/conflicts/{CODE}/declare").get_data(as_text=True)
    assert '<html lang="ko">' in page and "이해충돌 신고(회피)" in page and "가족" in page
    client.post("/logout", data={"csrf_token": csrf_from(client, f"/conflicts/{CODE}/declare")})
    sign_in(client, make_user(Role.OFFICER, mfa=True), clock)
    page = client.get(f"/conflicts/{CODE}").get_data(as_text=True)
    assert "과거 소속 등록" in page and "평가위원 제재 이력" in page
