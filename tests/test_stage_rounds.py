"""Stage rounds: closing the panel revokes the reviewers' access (through the real authorizer),
illegal transitions raise, ties at the cut and missing data block confirmation, the confirmed
snapshot is immutable and reproducible, publication applies outcomes, moves passing teams on and
schedules retention, disqualification eliminates whatever the score, majority stages select or
select no one, and every change is audited."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import audit_events, snapshot_fixtures
from tests.evaluation_world import PRESENTATION, SIX, EvaluationWorld, actor, world_of
from vault.audit.service import Tag
from vault.evaluation.errors import (
    AlreadyDisqualified,
    CutTieUnresolved,
    InvalidStageReason,
    MissingImports,
    NotACandidate,
    NotAMajorityStage,
    NotDisqualified,
    PanelClosed,
    PanelOpen,
    RoundConfirmed,
    RoundNotConfirmed,
    RoundPublished,
    UnknownRule,
    UnknownStage,
    UnscoredSubmissions,
)
from vault.evaluation.models import (
    RetentionSchedule,
    RoundState,
    ScoreSheet,
    SheetState,
    StageOutcome,
    StageOutcomeKind,
    StageRound,
)
from vault.evaluation.ranking import Outcome
from vault.evaluation.sheets import ScoreSheets
from vault.policy.actions import Action
from vault.policy.errors import AccessDenied

built, database_url, data_dir, world = snapshot_fixtures(
    world_of(SIX), EvaluationWorld.bound)


def _move(world, names, stage_id):
    with world.session() as session:
        for name in names:
            world.submission(session, name).stage = stage_id
    world.in_window(stage_id)


def _presentation(world, panel=3):
    world.scored("presentation", PRESENTATION, panel)


def _state(world, stage_id):
    with world.session() as session:
        return world.rounds(session).round(world.programme(session), stage_id).state


def _authorize(world, account, name, action=Action.SUBMISSION_VIEW):
    with world.session() as session:
        world.runtime.authorizer(session).authorize(actor(account), action,
                                                    world.submission(session, name))


# -- the panel closes, and with it the reviewers' access ----------------------------------------

def test_closing_the_panel_denies_its_reviewers_at_once_and_reopening_restores(world):
    _move(world, SIX, "presentation")
    [reviewer] = world.panel("presentation", 1, mfa=True)
    for action in (Action.SUBMISSION_VIEW, Action.SCORE_SHEET_WRITE):
        _authorize(world, reviewer, "Baekdu", action)      # allowed: no exception
    world.act("close", "presentation")
    for action in (Action.SUBMISSION_VIEW, Action.PARTNER_LIST_VIEW, Action.SCORE_SHEET_WRITE):
        with pytest.raises(AccessDenied):
            _authorize(world, reviewer, "Baekdu", action)
    world.act("reopen", "presentation", "Reviewer 3 asked to correct a typo")
    _authorize(world, reviewer, "Baekdu", Action.SCORE_SHEET_WRITE)


def test_publication_moves_passing_teams_beyond_their_old_panel(world):
    _presentation(world)
    [late] = world.panel("presentation", 1, mfa=True)
    world.score("presentation", PRESENTATION, [late])
    world.conclude("presentation")
    assert world.names_in("stage_1") == sorted(n for n in SIX if n != "Hanbit")
    with pytest.raises(AccessDenied):
        _authorize(world, late, "Baekdu")       # now in stage_1: not this panel's
    with pytest.raises(AccessDenied):
        _authorize(world, late, "Hanbit")       # still in presentation, closed for good


# -- transitions --------------------------------------------------------------------------------

def test_illegal_transitions_raise(world):
    _presentation(world)
    with pytest.raises(PanelOpen):
        world.act("confirm", "presentation")
    with pytest.raises(PanelOpen):
        world.act("reopen", "presentation", "no reason to")
    with pytest.raises(RoundNotConfirmed):
        world.act("publish", "presentation")
    world.act("close", "presentation")
    with pytest.raises(PanelClosed):
        world.act("close", "presentation")
    with pytest.raises(RoundNotConfirmed):
        world.act("publish", "presentation")
    with pytest.raises(InvalidStageReason):
        world.act("reopen", "presentation", "   ")
    world.act("confirm", "presentation")
    for method, args in (("close", ()), ("confirm", ()), ("reopen", ("late sheet",))):
        with pytest.raises(RoundConfirmed):
            world.act(method, "presentation", *args)
    world.act("publish", "presentation")
    with pytest.raises(RoundPublished):
        world.act("publish", "presentation")
    with pytest.raises(UnknownStage):
        world.act("close", "nonexistent")
    assert _state(world, "presentation") is RoundState.PUBLISHED


def test_every_change_is_audited_without_scores_or_reasons(world):
    _presentation(world)
    world.act("close", "presentation")
    world.act("reopen", "presentation", "Zebra-reason: a sheet was mistyped")
    world.conclude("presentation")
    runtime = world.runtime
    for tag, count in ((Tag.STAGE_CLOSED, 2), (Tag.STAGE_REOPENED, 1), (Tag.STAGE_CONFIRMED, 1),
                       (Tag.STAGE_PUBLISHED, 1), (Tag.SUBMISSION_OUTCOME, 6)):
        assert len(audit_events(runtime, tag)) == count, tag
    [confirmed] = audit_events(runtime, Tag.STAGE_CONFIRMED)
    [published] = audit_events(runtime, Tag.STAGE_PUBLISHED)
    with world.session() as session:
        row = session.scalars(select(StageRound)).one()
    assert confirmed["target"]["sha256"] == published["target"]["sha256"] == row.result_sha256
    outcomes = {e["target"]["submission"]: e["target"]["outcome"]
                for e in audit_events(runtime, Tag.SUBMISSION_OUTCOME)}
    assert outcomes[str(world.teams["Hanbit"].submission_id)] == "not_selected"
    everything = json.dumps([audit_events(runtime, tag) for tag in Tag if "stage" in tag])
    assert "Zebra" not in everything and '"score"' not in everything


# -- confirmation -------------------------------------------------------------------------------

def test_a_tie_at_the_cut_blocks_confirmation_until_a_disqualification_settles_it(world):
    _move(world, SIX, "presentation")
    with world.session() as session:     # Haneul and Hanbit: same time, same sheets
        moment = world.submission(session, "Haneul").submitted_at
        world.submission(session, "Hanbit").submitted_at = moment
    world.panel("presentation", 3)
    for reviewer in world.panels["presentation"]:
        for name, level in {**PRESENTATION, "Hanbit": 50}.items():
            scores = {c.id: level for c in world.definition.stage("presentation").criteria}
            world._sheet("presentation", name, reviewer, scores, None)
    world.act("close", "presentation")
    ranking = world.ranking("presentation")
    assert ranking.result.cut_unresolved
    with pytest.raises(CutTieUnresolved) as raised:
        world.act("confirm", "presentation")
    assert "Haneul" in str(raised.value) and "Hanbit" in str(raised.value)
    # Disqualification is refused on a stage without such a rule.
    with pytest.raises(UnknownRule), world.session() as session:
        world.rounds(session).disqualify(world.submission(session, "Hanbit"), "presentation",
                                         "from_scratch", "x", actor(world.officer))


def test_unscored_submissions_and_missing_imports_block_confirmation(world):
    _move(world, SIX[:3], "stage_1")
    world.panel("stage_1", 3)
    world.score("stage_1", {"Baekdu": 80, "Dokdo": 70})
    world.act("close", "stage_1")
    with pytest.raises(UnscoredSubmissions) as raised:
        world.act("confirm", "stage_1")
    assert "Eunha" in str(raised.value)
    world.act("reopen", "stage_1", "Eunha's sheets are missing")
    world.score("stage_1", {"Eunha": 60})
    world.act("close", "stage_1")
    with pytest.raises(MissingImports) as raised:
        world.act("confirm", "stage_1")
    assert "benchmark, user" in str(raised.value)
    assert world.ranking("stage_1").missing_imports == ["benchmark", "user"]
    world.import_csv("stage_1", "benchmark", {"Baekdu": 10, "Dokdo": 20, "Eunha": 30})
    assert world.ranking("stage_1").missing_imports == ["user"]
    world.import_csv("stage_1", "user", {"Baekdu": 10, "Dokdo": 20, "Eunha": 30})
    world.act("confirm", "stage_1")


def test_the_confirmed_snapshot_is_immutable_and_reproducible(world, runtime):
    _presentation(world)
    world.act("close", "presentation")
    view = world.act("confirm", "presentation")
    with world.session() as session:
        row = session.scalars(select(StageRound)).one()
        text = runtime.cipher.open("stage_rounds", "snapshot", row.id, row.snapshot_sealed)
        assert world.rounds(session).verify(world.programme(session), "presentation")
    assert hashlib.sha256(text.encode()).hexdigest() == view.result_sha256
    assert b"Baekdu" not in row.snapshot_sealed
    before = world.ranking("presentation")
    assert before.confirmed and before.sha256 == view.result_sha256
    # The service refuses to reopen a sheet of the confirmed round; a sheet changed behind its
    # back (in the database) changes neither the result nor its digest, and verification
    # notices it.
    with world.session() as session:
        sheets = ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                             definitions=runtime.definitions)
        sheet = session.scalars(select(ScoreSheet).where(
            ScoreSheet.submission_id == world.teams["Hanbit"].submission_id)).first()
        with pytest.raises(PanelClosed):
            sheets.reopen(sheet, actor(world.officer), "tampering test")
    with world.session() as session:
        session.execute(update(ScoreSheet).where(ScoreSheet.id == sheet.id).values(
            state=SheetState.DRAFT, submitted_at=None))
    after = world.ranking("presentation")
    assert after.result == before.result and after.sha256 == before.sha256
    with world.session() as session:
        assert not world.rounds(session).verify(world.programme(session), "presentation")


# -- publication --------------------------------------------------------------------------------

def test_publication_applies_outcomes_and_schedules_retention(world, clock):
    _presentation(world)
    world.conclude("presentation")
    published_at = clock()
    with world.session() as session:
        outcomes = {row.submission_id: row for row in session.scalars(select(StageOutcome))}
        [schedule] = session.scalars(select(RetentionSchedule)).all()
    by_name = {name: outcomes[world.teams[name].submission_id] for name in SIX}
    assert {n: o.outcome for n, o in by_name.items()} == {
        **{n: StageOutcomeKind.PASS for n in SIX[:5]}, "Hanbit": StageOutcomeKind.NOT_SELECTED}
    assert [by_name[n].rank for n in SIX] == [1, 2, 3, 4, 5, 6]
    assert world.names_in("stage_1") == sorted(SIX[:5]) and world.names_in("presentation") == [
        "Hanbit"]
    assert schedule.submission_id == world.teams["Hanbit"].submission_id
    assert schedule.shred_due == published_at + timedelta(days=365)
    assert schedule.notice_at == schedule.shred_due - timedelta(days=30)
    with world.session() as session:
        mine = world.rounds(session).outcomes(world.submission(session, "Hanbit"))
        funnel = world.rounds(session).funnel(world.programme(session))
        rows = world.rounds(session).export(world.programme(session), "presentation",
                                            actor(world.officer), format="json")
        panels = world.rounds(session).disclosed_panels(world.programme(session))
    [outcome] = mine
    assert outcome.outcome is StageOutcomeKind.NOT_SELECTED and outcome.rank == 6
    assert outcome.score is not None and set(outcome.criteria) == {
        c.id for c in world.definition.stage("presentation").criteria}
    assert outcome.shred_due == schedule.shred_due
    steps = {step.stage.id: (step.entered, step.passed, step.out) for step in funnel}
    assert steps["presentation"] == (6, 5, 1) and steps["stage_1"] == (5, None, None)
    assert [row["consortium"] for row in rows] == list(SIX)
    assert set(rows[0]) >= {"rank", "outcome", "score", "reviewer_1", "reviewer_3"}
    assert not any("Test reviewer" in value for row in rows for value in row.values())
    assert len(panels["presentation"]) == 3 and "written" not in panels
    assert len(audit_events(world.runtime, Tag.STAGE_EXPORTED)) == 1


def test_disqualification_eliminates_regardless_of_score(world):
    names = SIX[:4]
    _move(world, names, "stage_1")
    world.panel("stage_1", 3)
    world.score("stage_1", {"Baekdu": 95, "Dokdo": 70, "Eunha": 60, "Gaon": 50})
    world.import_csv("stage_1", "benchmark", {"Baekdu": 99, "Dokdo": 70, "Eunha": 60, "Gaon": 50})
    world.import_csv("stage_1", "user", {"Baekdu": 99, "Dokdo": 70, "Eunha": 60, "Gaon": 50})
    with world.session() as session:
        service = world.rounds(session)
        baekdu = world.submission(session, "Baekdu")
        service.disqualify(baekdu, "stage_1", "from_scratch", "Reuses another model's weights",
                           actor(world.officer))
        with pytest.raises(AlreadyDisqualified):
            service.disqualify(baekdu, "stage_1", "from_scratch", "again", actor(world.officer))
        with pytest.raises(NotDisqualified):
            service.lift_disqualification(world.submission(session, "Gaon"), "stage_1",
                                          "nothing to lift", actor(world.officer))
    ranking = world.ranking("stage_1")
    result = ranking.result
    assert result.with_outcome(Outcome.DISQUALIFIED) == tuple(world.ids(["Baekdu"]))
    assert result.with_outcome(Outcome.ELIMINATED) == tuple(world.ids(["Gaon"]))
    assert ranking.disqualified[world.teams["Baekdu"].submission_id].reason == (
        "Reuses another model's weights")
    world.conclude("stage_1")
    with pytest.raises(RoundConfirmed), world.session() as session:
        world.rounds(session).lift_disqualification(
            world.submission(session, "Baekdu"), "stage_1", "appeal", actor(world.officer))
    assert world.names_in("additional_call") == []
    assert world.names_in("stage_2") == ["Dokdo", "Eunha"]
    assert len(audit_events(world.runtime, Tag.STAGE_DISQUALIFIED)) == 1


# -- majority stages and their candidates -------------------------------------------------------

def _out_after_presentation(world):
    _presentation(world)
    world.conclude("presentation")
    world.in_window("additional_call")


def _enter(world, name, stage_id="additional_call"):
    with world.session() as session:
        world.rounds(session).enter_candidate(world.submission(session, name), stage_id,
                                              actor(world.officer))


def test_a_majority_stage_selects_a_candidate_a_majority_accepts(world):
    _out_after_presentation(world)
    _enter(world, "Hanbit")
    assert world.names_in("additional_call") == ["Hanbit"]
    with world.session() as session:
        [cancelled] = session.scalars(select(RetentionSchedule)).all()
    assert cancelled.cancelled_at is not None
    assert len(audit_events(world.runtime, Tag.RETENTION_CANCELLED)) == 1
    world.panel("additional_call", 3)
    world.vote("additional_call", "Hanbit", (True, True, False))
    world.conclude("additional_call")
    assert world.names_in("stage_2") == ["Hanbit"]
    with world.session() as session:
        pending = session.scalars(select(RetentionSchedule).where(
            RetentionSchedule.cancelled_at.is_(None))).all()
    assert pending == []


def test_a_majority_stage_without_a_majority_selects_no_one(world):
    _out_after_presentation(world)
    _enter(world, "Hanbit")
    world.panel("additional_call", 4)
    world.vote("additional_call", "Hanbit", (True, True, False, False))   # a tie is no
    world.act("close", "additional_call")
    assert world.ranking("additional_call").result.no_selection
    world.act("confirm", "additional_call")
    world.act("publish", "additional_call")
    published = audit_events(world.runtime, Tag.STAGE_PUBLISHED)[-1]
    assert published["target"]["stage"] == "additional_call"
    assert published["target"]["no_selection"] == "True"
    assert world.names_in("additional_call") == ["Hanbit"]
    with world.session() as session:
        [outcome] = [o for o in world.rounds(session).outcomes(world.submission(session, "Hanbit"))
                     if o.stage.id == "additional_call"]
        pending = session.scalars(select(RetentionSchedule).where(
            RetentionSchedule.cancelled_at.is_(None))).all()
    assert outcome.outcome is StageOutcomeKind.NOT_SELECTED and outcome.score is None
    assert [row.stage for row in pending] == ["additional_call"]


def test_only_a_submission_that_is_out_enters_an_open_majority_stage(world):
    _out_after_presentation(world)
    with pytest.raises(NotACandidate):
        _enter(world, "Baekdu")              # passed: it is in stage_1
    with pytest.raises(NotAMajorityStage):
        _enter(world, "Hanbit", "stage_2")
    world.act("close", "additional_call")
    with pytest.raises(PanelClosed):
        _enter(world, "Hanbit")
    world.act("reopen", "additional_call", "a candidate was forgotten")
    _enter(world, "Hanbit")
    with pytest.raises(NotACandidate):
        _enter(world, "Hanbit")              # already in
