"""The submission state machine: every legal transition, every illegal one refused without a
trace, deadlines and correction deadlines, reasons, receipts that list every document with its
SHA-256, the gate to the written evaluation, and two concurrent submits of which one wins."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import Team
from tests.reviewing import text_pdf
from vault.db import unit_of_work
from vault.documents.errors import SubmissionLocked, UploadClosed
from vault.documents.models import Submission, SubmissionState
from vault.identity.models import Role
from vault.policy.actions import Actor
from vault.programmes.service import ProgrammeService
from vault.screening.errors import (
    CorrectionPending,
    DeadlinePassed,
    EmptySubmission,
    IllegalTransition,
    InvalidDecision,
    NotEligible,
    ReceiptNotFound,
    UnknownStage,
)
from vault.screening.models import SubmissionEvent, SubmissionReceipt
from vault.screening.workflow import TRANSITIONS, SubmissionWorkflow, canonical_json

S = SubmissionState
PROGRAMME = "sovereign-ai-2025"
DEADLINE = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)  # 18:00 KST
OFFICER = Actor(user_id=None, role=Role.OFFICER)


def workflow(runtime, session) -> SubmissionWorkflow:
    """The workflow on ``session`` with the runtime's collaborators."""
    return SubmissionWorkflow(session, cipher=runtime.cipher, clock=runtime.clock,
                              documents=runtime.documents(session),
                              definitions=runtime.definitions)


def act(runtime, team: Team, step: Callable[[SubmissionWorkflow, Submission], object]) -> object:
    """Run one workflow step on the team's submission in its own unit of work."""
    with unit_of_work(runtime.sessions) as session:
        return step(workflow(runtime, session), session.get(Submission, team.submission_id))


def applicant(team: Team) -> Actor:
    return Actor(user_id=team.applicant.id, role=Role.APPLICANT,
                 consortium_ids=frozenset({team.consortium_id}))


def upload(runtime, team: Team, kind: str = "proposal", slot: str = "",
           data: bytes | None = None, filename: str = "proposal.pdf") -> str:
    """Upload a document version as the team's applicant; returns its SHA-256."""
    with unit_of_work(runtime.sessions) as session:
        version = runtime.documents(session).upload(
            submission=session.get(Submission, team.submission_id),
            kind=runtime.definitions[PROGRAMME].document_kind(kind), slot=slot,
            filename=filename, declared_type="application/pdf",
            body=[data or text_pdf()], uploader_id=team.applicant.id)
        return version.sha256


def put(runtime, team: Team, state: SubmissionState,
        correction_deadline: datetime | None = None) -> None:
    """Put the submission in ``state`` directly (the set-up of a transition under test)."""
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        submission.state = state
        submission.correction_deadline = correction_deadline


def state_and_events(runtime, team: Team) -> tuple[SubmissionState, int]:
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        count = session.scalar(select(func.count()).select_from(SubmissionEvent)
                               .where(SubmissionEvent.submission_id == submission.id))
        return submission.state, count


def step_to(target: SubmissionState, team: Team, clock, outcome_reason: str = "Checked.",
            ) -> Callable[[SubmissionWorkflow, Submission], object]:
    """The workflow call that aims at ``target``."""
    actor = applicant(team)
    if target in (S.SUBMITTED, S.RESUBMITTED):
        return lambda wf, s: wf.submit(s, actor)
    if target is S.DRAFT:
        return lambda wf, s: wf.recall(s, actor)
    if target is S.SCREENING:
        return lambda wf, s: wf.start_screening(s, OFFICER)
    if target is S.WITHDRAWN:
        return lambda wf, s: wf.withdraw(s, actor, "We are merging with another consortium.")
    return lambda wf, s: wf.decide(s, OFFICER, target, outcome_reason,
                                   clock() + timedelta(days=7))


@pytest.fixture
def team(runtime, make_team) -> Team:
    """A team with its proposal uploaded."""
    made = make_team("Team Workflow")
    upload(runtime, made)
    return made


# -- legal transitions ---------------------------------------------------------------------

@pytest.mark.parametrize(("source", "target"), sorted(TRANSITIONS))
def test_every_legal_transition_changes_the_state_and_appends_one_event(
        runtime, team, clock, source, target):
    deadline = None
    if source is S.RETURNED:
        deadline = clock() + timedelta(days=3)
        if target is S.INELIGIBLE:
            deadline = clock() - timedelta(seconds=1)  # corrections are over
    put(runtime, team, source, deadline)
    act(runtime, team, step_to(target, team, clock))
    state, events = state_and_events(runtime, team)
    assert (state, events) == (target, 1)
    with unit_of_work(runtime.sessions) as session:
        event = session.scalar(select(SubmissionEvent))
        assert (event.from_state, event.to_state) == (source, target)
        submission = session.get(Submission, team.submission_id)
        assert (submission.correction_deadline is not None) == (target is S.RETURNED)
        assert event.correction_deadline == submission.correction_deadline


def test_the_whole_way_from_draft_to_the_written_evaluation(runtime, team, clock):
    act(runtime, team, step_to(S.SUBMITTED, team, clock))
    act(runtime, team, step_to(S.SCREENING, team, clock))
    act(runtime, team, step_to(S.RETURNED, team, clock, "The budget plan is missing."))
    clock.advance(days=1)
    upload(runtime, team, "budget_plan", filename="budget.pdf")  # corrections are accepted
    act(runtime, team, step_to(S.RESUBMITTED, team, clock))
    act(runtime, team, step_to(S.ELIGIBLE, team, clock, "Complete now."))
    act(runtime, team, lambda wf, s: wf.enter_stage(s, "written", OFFICER))
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        assert (submission.state, submission.stage) == (S.ELIGIBLE, "written")
        history = workflow(runtime, session).history(submission)
        assert [(e.from_state, e.to_state) for e in history] == [
            (S.DRAFT, S.SUBMITTED), (S.SUBMITTED, S.SCREENING), (S.SCREENING, S.RETURNED),
            (S.RETURNED, S.RESUBMITTED), (S.RESUBMITTED, S.ELIGIBLE), (S.ELIGIBLE, S.ELIGIBLE)]
        assert [e.reason for e in history if e.is_decision] == [
            "The budget plan is missing.", "Complete now."]
        assert history[-1].is_stage_entry
        decision = workflow(runtime, session).decision(submission)
        assert (decision.to_state, decision.reason) == (S.ELIGIBLE, "Complete now.")
        assert len(workflow(runtime, session).receipts(submission)) == 2


# -- illegal transitions -------------------------------------------------------------------

#: Each workflow call with the states it is legal from (start_screening is also a no-op from
#: screening and resubmitted; returned → ineligible needs the correction deadline passed).
CALLS = {
    "submit": (S.SUBMITTED, {S.DRAFT, S.RETURNED}),
    "recall": (S.DRAFT, {S.SUBMITTED}),
    "start_screening": (S.SCREENING, {S.SUBMITTED, S.SCREENING, S.RESUBMITTED}),
    "eligible": (S.ELIGIBLE, {S.SCREENING, S.RESUBMITTED}),
    "returned": (S.RETURNED, {S.SCREENING}),
    "ineligible": (S.INELIGIBLE, {S.SCREENING, S.RESUBMITTED, S.RETURNED}),
    "withdraw": (S.WITHDRAWN, set(S) - {S.WITHDRAWN, S.INELIGIBLE}),
}
ILLEGAL = [(call, state) for call, (_target, legal) in CALLS.items()
           for state in S if state not in legal]


def test_the_call_table_matches_the_transitions():
    legal = {(source, target) for target, sources in CALLS.values() for source in sources
             if source is not target}
    legal.add((S.RETURNED, S.RESUBMITTED))  # submit from returned resubmits
    legal.discard((S.RETURNED, S.SUBMITTED))
    legal.discard((S.RESUBMITTED, S.SCREENING))  # a no-op: screened as it is
    assert legal == TRANSITIONS


@pytest.mark.parametrize(("call", "source"), ILLEGAL)
def test_an_illegal_transition_raises_and_changes_nothing(runtime, team, clock, call, source):
    put(runtime, team, source, clock() + timedelta(days=3) if source is S.RETURNED else None)
    target = CALLS[call][0]
    with pytest.raises(IllegalTransition) as raised:
        act(runtime, team, step_to(target, team, clock))
    assert (raised.value.current, raised.value.target) == (source, target)
    assert source.value in str(raised.value) and target.value in str(raised.value)
    assert raised.value.status == 409
    assert state_and_events(runtime, team) == (source, 0)


@pytest.mark.parametrize("outcome", [S.DRAFT, S.SUBMITTED, S.WITHDRAWN, S.SCREENING])
def test_a_decision_is_eligible_returned_or_ineligible(runtime, team, clock, outcome):
    put(runtime, team, S.SCREENING)
    with pytest.raises(IllegalTransition):
        act(runtime, team, lambda wf, s: wf.decide(s, OFFICER, outcome, "No."))
    assert state_and_events(runtime, team) == (S.SCREENING, 0)


@pytest.mark.parametrize("source", [S.SCREENING, S.RESUBMITTED])
def test_starting_screening_twice_changes_nothing(runtime, team, clock, source):
    put(runtime, team, source)
    assert act(runtime, team, step_to(S.SCREENING, team, clock)) is None
    assert state_and_events(runtime, team) == (source, 0)


# -- deadlines -----------------------------------------------------------------------------

def test_submitting_and_recalling_end_at_the_deadline(runtime, team, clock):
    act(runtime, team, step_to(S.SUBMITTED, team, clock))
    clock.now = DEADLINE
    with pytest.raises(DeadlinePassed):
        act(runtime, team, step_to(S.DRAFT, team, clock))
    put(runtime, team, S.DRAFT)
    with pytest.raises(DeadlinePassed, match="submission deadline"):
        act(runtime, team, step_to(S.SUBMITTED, team, clock))
    assert state_and_events(runtime, team) == (S.DRAFT, 1)


def test_a_returned_submission_is_resubmitted_until_its_correction_deadline(runtime, team,
                                                                             clock):
    clock.now = DEADLINE + timedelta(days=2)  # after the programme's deadline
    put(runtime, team, S.RETURNED, clock() + timedelta(days=1))
    clock.advance(days=1)
    with pytest.raises(DeadlinePassed, match="correction deadline"):
        act(runtime, team, step_to(S.RESUBMITTED, team, clock))
    clock.advance(seconds=-1)
    act(runtime, team, step_to(S.RESUBMITTED, team, clock))
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        assert submission.state is S.RESUBMITTED and submission.correction_deadline is None
        assert submission.submitted_at == clock()


def test_a_returned_submission_is_declared_ineligible_only_after_its_correction_deadline(
        runtime, team, clock):
    put(runtime, team, S.RETURNED, clock() + timedelta(days=1))
    with pytest.raises(CorrectionPending):
        act(runtime, team, step_to(S.INELIGIBLE, team, clock))
    assert state_and_events(runtime, team) == (S.RETURNED, 0)
    clock.advance(days=1)
    act(runtime, team, step_to(S.INELIGIBLE, team, clock))
    assert state_and_events(runtime, team) == (S.INELIGIBLE, 1)


@pytest.mark.parametrize(("deadline", "message"), [
    (None, "needs a correction deadline"),
    (timedelta(0), "in the future"),
    (timedelta(days=-1), "in the future"),
    (timedelta(days=60, seconds=1), "at most 60 days"),
])
def test_returning_needs_a_sensible_correction_deadline(runtime, team, clock, deadline, message):
    put(runtime, team, S.SCREENING)
    when = clock() + deadline if deadline is not None else None
    with pytest.raises(InvalidDecision, match=message):
        act(runtime, team, lambda wf, s: wf.decide(s, OFFICER, S.RETURNED, "Fix it.", when))
    assert state_and_events(runtime, team) == (S.SCREENING, 0)


def test_a_naive_correction_deadline_is_refused(runtime, team, clock):
    put(runtime, team, S.SCREENING)
    naive = (clock() + timedelta(days=3)).replace(tzinfo=None)
    with pytest.raises(InvalidDecision, match="time zone"):
        act(runtime, team, lambda wf, s: wf.decide(s, OFFICER, S.RETURNED, "Fix it.", naive))


@pytest.mark.parametrize("reason", ["", "   \n", "x" * 2001])
@pytest.mark.parametrize("outcome", [S.ELIGIBLE, S.RETURNED, S.INELIGIBLE, S.WITHDRAWN])
def test_every_decision_and_withdrawal_needs_a_reason(runtime, team, clock, reason, outcome):
    put(runtime, team, S.SCREENING)
    if outcome is S.WITHDRAWN:
        step = lambda wf, s: wf.withdraw(s, applicant(team), reason)  # noqa: E731
    else:
        step = lambda wf, s: wf.decide(s, OFFICER, outcome, reason,  # noqa: E731
                                       clock() + timedelta(days=3))
    with pytest.raises(InvalidDecision):
        act(runtime, team, step)
    assert state_and_events(runtime, team) == (S.SCREENING, 0)


def test_a_reason_of_2000_characters_is_kept_sealed(runtime, team, clock):
    put(runtime, team, S.SCREENING)
    reason = "비밀 " + "y" * 1997
    act(runtime, team, lambda wf, s: wf.decide(s, OFFICER, S.INELIGIBLE, reason))
    with unit_of_work(runtime.sessions) as session:
        event = session.scalar(select(SubmissionEvent))
        assert reason.encode() not in event.reason_sealed and b"yyyy" not in event.reason_sealed
        submission = session.get(Submission, team.submission_id)
        assert workflow(runtime, session).decision(submission).reason == reason


# -- receipts --------------------------------------------------------------------------------

def test_the_receipt_lists_every_documents_newest_version_with_its_sha256(runtime, make_team,
                                                                         clock):
    team = make_team("Team Receipt", partners=("Receipt University",))
    upload(runtime, team, data=text_pdf(2))
    newest = upload(runtime, team, data=text_pdf(4), filename="제안서 v2.pdf")
    clock.advance(minutes=5)
    letter = upload(runtime, team, "letter_of_commitment", slot=str(team.partner_ids[0]),
                    filename="letter.pdf")
    receipt = act(runtime, team, step_to(S.SUBMITTED, team, clock))
    assert isinstance(receipt, SubmissionReceipt)
    assert receipt.manifest_sha256 == hashlib.sha256(receipt.manifest.encode()).hexdigest()
    manifest = json.loads(receipt.manifest)
    assert canonical_json(manifest) == receipt.manifest  # sorted keys, no spaces
    assert "제안서 v2.pdf" in receipt.manifest  # UTF-8, not \u escapes
    assert manifest["submission"] == str(team.submission_id)
    assert manifest["consortium"] == "Team Receipt"
    assert manifest["state"] == "submitted"
    assert datetime.fromisoformat(manifest["at"]) == clock()
    documents = {(d["kind"], d["slot"]): d for d in manifest["documents"]}
    assert set(documents) == {("proposal", ""),
                              ("letter_of_commitment", str(team.partner_ids[0]))}
    proposal = documents[("proposal", "")]
    assert (proposal["version"], proposal["sha256"], proposal["filename"]) == (
        2, newest, "제안서 v2.pdf")
    assert documents[("letter_of_commitment", str(team.partner_ids[0]))]["sha256"] == letter
    assert all(d["size"] > 0 and d["uploaded_at"] for d in manifest["documents"])
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        found = workflow(runtime, session).receipts(submission)
        assert [r.id for r in found] == [receipt.id]
        assert workflow(runtime, session).receipt(submission, receipt.id).manifest \
            == receipt.manifest
        with pytest.raises(ReceiptNotFound):
            workflow(runtime, session).receipt(submission, uuid.uuid4())
        assert submission.submitted_at == clock()


def test_an_empty_submission_cannot_be_submitted(runtime, make_team, clock):
    team = make_team("Team Empty")
    with pytest.raises(EmptySubmission, match="nothing to submit"):
        act(runtime, team, step_to(S.SUBMITTED, team, clock))
    assert state_and_events(runtime, team) == (S.DRAFT, 0)


def test_recalling_reopens_the_draft_for_uploads(runtime, team, clock):
    act(runtime, team, step_to(S.SUBMITTED, team, clock))
    with pytest.raises(SubmissionLocked):
        upload(runtime, team)
    act(runtime, team, step_to(S.DRAFT, team, clock))
    upload(runtime, team)
    receipt = act(runtime, team, step_to(S.SUBMITTED, team, clock))
    assert json.loads(receipt.manifest)["documents"][0]["version"] == 2
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        assert len(workflow(runtime, session).receipts(submission)) == 2


# -- documents stay open for a returned submission ------------------------------------------

def test_a_returned_submission_accepts_uploads_until_its_correction_deadline(runtime, team,
                                                                             clock):
    clock.now = DEADLINE + timedelta(days=3)
    with pytest.raises(UploadClosed):
        upload(runtime, team)  # a draft after the deadline
    put(runtime, team, S.RETURNED, clock() + timedelta(days=2))
    upload(runtime, team)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        assert runtime.documents(session).accepts_changes(submission)
    clock.advance(days=2)
    with pytest.raises(UploadClosed, match="correction deadline"):
        upload(runtime, team)
    put(runtime, team, S.RESUBMITTED)
    clock.now = DEADLINE - timedelta(days=1)
    with pytest.raises(SubmissionLocked):
        upload(runtime, team)


# -- the gate to the written evaluation ------------------------------------------------------

@pytest.mark.parametrize("source", [state for state in S if state is not S.ELIGIBLE])
def test_only_eligible_submissions_enter_the_written_evaluation(runtime, team, source):
    put(runtime, team, source)
    with pytest.raises(NotEligible) as raised:
        act(runtime, team, lambda wf, s: wf.enter_stage(s, "written", OFFICER))
    assert str(raised.value) == ("Only eligible submissions can enter the written evaluation; "
                                 f"this one is {source.value}.")
    with unit_of_work(runtime.sessions) as session:
        assert session.get(Submission, team.submission_id).stage == "call"
    assert state_and_events(runtime, team) == (source, 0)


def test_a_submission_enters_only_the_first_stage_and_only_once(runtime, team):
    put(runtime, team, S.ELIGIBLE)
    with pytest.raises(UnknownStage, match="first stage, written"):
        act(runtime, team, lambda wf, s: wf.enter_stage(s, "presentation", OFFICER))
    with unit_of_work(runtime.sessions) as session:
        assert ProgrammeService(session).by_code(PROGRAMME).current_stage == "call"
    act(runtime, team, lambda wf, s: wf.enter_stage(s, "written", OFFICER))
    with pytest.raises(UnknownStage, match="already"):
        act(runtime, team, lambda wf, s: wf.enter_stage(s, "written", OFFICER))
    assert state_and_events(runtime, team) == (S.ELIGIBLE, 1)
    with unit_of_work(runtime.sessions) as session:  # the programme's evaluation has begun
        assert ProgrammeService(session).by_code(PROGRAMME).current_stage == "written"


def test_advancing_moves_every_eligible_submission_and_no_other(runtime, make_team, clock):
    teams = {state: make_team(f"Team {state.value}") for state in
             (S.ELIGIBLE, S.RETURNED, S.SCREENING, S.INELIGIBLE, S.WITHDRAWN)}
    second = make_team("Team eligible too")
    for state, member in [*teams.items(), (S.ELIGIBLE, second)]:
        put(runtime, member, state)
    with unit_of_work(runtime.sessions) as session:
        programme = ProgrammeService(session).by_code(PROGRAMME)
        moved = workflow(runtime, session).advance(programme, OFFICER)
        assert {s.id for s in moved} == {teams[S.ELIGIBLE].submission_id, second.submission_id}
    with unit_of_work(runtime.sessions) as session:
        stages = {state: session.get(Submission, member.submission_id).stage
                  for state, member in teams.items()}
        programme = ProgrammeService(session).by_code(PROGRAMME)
        assert workflow(runtime, session).advance(programme, OFFICER) == []  # nothing left
    assert stages == {S.ELIGIBLE: "written", S.RETURNED: "call", S.SCREENING: "call",
                      S.INELIGIBLE: "call", S.WITHDRAWN: "call"}


# -- concurrency -----------------------------------------------------------------------------

def test_two_concurrent_submits_leave_one_event(runtime, team, clock):
    """The first submit holds the row lock until it commits; the second then sees "submitted"
    and refuses (on SQLite it waits for the writer lock instead)."""
    outcome: dict[str, object] = {}
    started = threading.Event()

    def second() -> None:
        started.set()
        try:
            act(runtime, team, step_to(S.SUBMITTED, team, clock))
            outcome["second"] = "submitted"
        except Exception as error:
            outcome["second"] = error

    with unit_of_work(runtime.sessions) as session:
        flow = workflow(runtime, session)
        flow.submit(session.get(Submission, team.submission_id), applicant(team))
        thread = threading.Thread(target=second)
        thread.start()
        started.wait()
        time.sleep(0.5)  # the second submit is now waiting for the lock
        assert "second" not in outcome
    thread.join(timeout=30)
    assert isinstance(outcome["second"], IllegalTransition)
    assert state_and_events(runtime, team) == (S.SUBMITTED, 1)
    with unit_of_work(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(SubmissionReceipt)) == 1
