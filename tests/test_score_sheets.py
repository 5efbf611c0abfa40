"""Score sheets: sealed scores and comments, validated against the stage's criteria and scale,
submitted once and changed only after an officer reopens them (previous values kept), written
only by their own reviewer, and — through the real authorizer — only by an assigned,
conflict-free reviewer."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text

from tests.conftest import Account
from tests.reviewing import PROGRAMME, accept_nda, assign, enter_stage, ready_reviewer
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus
from vault.crypto import DecryptionError
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.evaluation.errors import (
    CommentTooLong,
    IncompleteSheet,
    InvalidReason,
    InvalidScores,
    InvalidVote,
    MissingVote,
    NoScoring,
    NotInStage,
    NotYourSheet,
    OverallCommentTooLong,
    PanelClosed,
    ScoreOutOfRange,
    ScoresNotAccepted,
    SheetLocked,
    SheetNotSubmitted,
    UnknownCriterion,
    VoteNotAccepted,
)
from vault.evaluation.models import (
    RoundState,
    ScoreSheet,
    ScoreSheetRevision,
    SheetState,
    StageRound,
)
from vault.evaluation.ranking import Candidate, Outcome, Sheet, rank_stage
from vault.evaluation.sheet_values import MAX_COMMENT
from vault.evaluation.sheets import ScoreSheets
from vault.identity.models import Role
from vault.policy.actions import Action, Actor
from vault.policy.errors import AccessDenied

CRITERIA = ("capability", "experience", "strategy", "excellence", "impact", "open_source")
#: Every criterion scored; distinctive enough not to be found in ciphertext by accident.
FULL = dict(zip(CRITERIA, (87, 64, 93, 71, 58, 100), strict=True))
COMMENT = "Quokka-tokenizer plan is thin on Korean legal corpora"
OVERALL = "Overall: strong team, weak data licensing story"


def _actor(account: Account) -> Actor:
    return Actor(user_id=account.id, role=account.role, mfa=True)


def _sheets(runtime, session) -> ScoreSheets:
    return ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                       definitions=runtime.definitions)


def _save(runtime, team, reviewer: Account, scores, comments=None, *, overall="",
          stage="written") -> uuid.UUID:
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        sheet = _sheets(runtime, session).save(submission, stage, _actor(reviewer), scores,
                                               comments or {}, overall_comment=overall)
        return sheet.id


def _submit(runtime, sheet_id: uuid.UUID, reviewer: Account) -> None:
    with unit_of_work(runtime.sessions) as session:
        _sheets(runtime, session).submit(session.get(ScoreSheet, sheet_id), _actor(reviewer))


def _reopen(runtime, sheet_id: uuid.UUID, officer: Account, reason: str) -> None:
    with unit_of_work(runtime.sessions) as session:
        _sheets(runtime, session).reopen(session.get(ScoreSheet, sheet_id), _actor(officer),
                                         reason)


def _view(runtime, sheet_id: uuid.UUID):
    with unit_of_work(runtime.sessions) as session:
        return _sheets(runtime, session).opened(session.get(ScoreSheet, sheet_id))


def _count(runtime, model) -> int:
    with unit_of_work(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def team(runtime, clock, make_team):
    team = make_team("Team Alpha")
    enter_stage(runtime, clock, team)
    return team


@pytest.fixture
def reviewer(make_user) -> Account:
    return make_user(Role.REVIEWER, mfa=True)


@pytest.fixture
def officer(make_user) -> Account:
    return make_user(Role.OFFICER, mfa=True)


# -- sealing ------------------------------------------------------------------------------------

def test_the_stored_columns_hold_no_score_or_comment_in_the_clear(runtime, team, reviewer,
                                                                  officer):
    sheet_id = _save(runtime, team, reviewer, FULL, {"strategy": COMMENT}, overall=OVERALL)
    _submit(runtime, sheet_id, reviewer)
    _reopen(runtime, sheet_id, officer, "Reason-Wombat: the impact score contradicts the text")
    with unit_of_work(runtime.sessions) as session:
        rows = session.execute(text(
            "SELECT scores_sealed, comments_sealed FROM score_sheets UNION ALL "
            "SELECT scores_sealed, comments_sealed FROM score_sheet_revisions")).all()
        [reason] = session.execute(text("SELECT reason_sealed FROM score_sheet_revisions")).one()
    blob = b"".join(bytes(cell) for row in rows for cell in row) + bytes(reason)
    assert len(rows) == 2
    for plain in (b"capability", b"strategy", b"Quokka", b"Overall", b"Wombat", b'":87'):
        assert plain not in blob
    assert _view(runtime, sheet_id).comments == {"strategy": COMMENT}


def test_a_sealed_value_moved_to_another_column_or_sheet_does_not_open(runtime, team, make_team,
                                                                      clock, reviewer):
    sheet_id = _save(runtime, team, reviewer, FULL, {"impact": COMMENT})
    other_team = make_team("Team Beta")
    enter_stage(runtime, clock, other_team)
    other_id = _save(runtime, other_team, reviewer, {"impact": 1})
    with unit_of_work(runtime.sessions) as session:
        other = session.get(ScoreSheet, other_id)
        other.scores_sealed = session.get(ScoreSheet, sheet_id).scores_sealed
    with pytest.raises(DecryptionError):
        _view(runtime, other_id)
    with unit_of_work(runtime.sessions) as session:
        sheet = session.get(ScoreSheet, sheet_id)
        sheet.scores_sealed, sheet.comments_sealed = sheet.comments_sealed, sheet.scores_sealed
    with pytest.raises(DecryptionError):
        _view(runtime, sheet_id)


# -- save, submit, reopen -----------------------------------------------------------------------

def test_save_submit_reopen_and_resubmit_keep_the_previous_values(runtime, clock, team,
                                                                  reviewer, officer):
    draft_id = _save(runtime, team, reviewer, {"capability": 50}, {"capability": "first"})
    view = _view(runtime, draft_id)
    assert (view.state, view.scores, view.revision) == (SheetState.DRAFT, {"capability": 50}, 0)
    clock.advance(hours=1)
    sheet_id = _save(runtime, team, reviewer, FULL, {"strategy": COMMENT, "impact": "  "},
                     overall=OVERALL)
    assert sheet_id == draft_id  # one sheet per stage, submission and reviewer
    submitted_at = clock()
    _submit(runtime, sheet_id, reviewer)
    view = _view(runtime, sheet_id)
    assert view.submitted and view.submitted_at == submitted_at
    assert list(view.scores.items()) == list(FULL.items())  # in the stage's criterion order
    assert (view.comments, view.overall_comment) == ({"strategy": COMMENT}, OVERALL)

    clock.advance(hours=2)
    _reopen(runtime, sheet_id, officer, "The impact score contradicts the comment.")
    view = _view(runtime, sheet_id)
    assert (view.state, view.submitted_at, view.revision) == (SheetState.DRAFT, None, 1)
    assert view.scores == FULL  # the reviewer corrects from the submitted values
    changed = {**FULL, "impact": 75}
    _save(runtime, team, reviewer, changed, {"impact": "Reconsidered."})
    _submit(runtime, sheet_id, reviewer)
    view = _view(runtime, sheet_id)
    assert view.submitted and view.scores == changed and view.revision == 1
    assert (view.comments, view.overall_comment) == ({"impact": "Reconsidered."}, "")

    with unit_of_work(runtime.sessions) as session:
        [entry] = _sheets(runtime, session).history(session.get(ScoreSheet, sheet_id))
    assert (entry.revision, entry.scores, entry.comments, entry.overall_comment) == (
        0, FULL, {"strategy": COMMENT}, OVERALL)
    assert entry.submitted_at == submitted_at
    assert (entry.reopened_by_id, entry.reopened_by_role) == (officer.id, "officer")
    assert entry.reason == "The impact score contradicts the comment."


def test_a_submitted_sheet_cannot_change_without_a_reopen(runtime, team, reviewer, officer):
    sheet_id = _save(runtime, team, reviewer, FULL)
    _submit(runtime, sheet_id, reviewer)
    with pytest.raises(SheetLocked):
        _save(runtime, team, reviewer, {**FULL, "impact": 0})
    with pytest.raises(SheetLocked):
        _submit(runtime, sheet_id, reviewer)
    view = _view(runtime, sheet_id)
    assert view.scores == FULL and view.submitted
    # Reopening needs a reason, and only a submitted sheet can be reopened.
    for reason in ("", "   ", "x" * (MAX_COMMENT + 1)):
        with pytest.raises(InvalidReason):
            _reopen(runtime, sheet_id, officer, reason)
    _reopen(runtime, sheet_id, officer, "Typo in impact.")
    with pytest.raises(SheetNotSubmitted):
        _reopen(runtime, sheet_id, officer, "Again.")
    assert _count(runtime, ScoreSheetRevision) == 1


# -- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "error", "named"), [
    ({"capability": 101}, ScoreOutOfRange, "capability"),
    ({"impact": -1}, ScoreOutOfRange, "impact"),
    ({"impact": True}, ScoreOutOfRange, "impact"),
    ({"impact": "80"}, ScoreOutOfRange, "impact"),
    ({"impact": 80.0}, ScoreOutOfRange, "impact"),
    ({"novelty": 80}, UnknownCriterion, "novelty"),
], ids=["above", "below", "bool", "text", "float", "unknown"])
def test_invalid_scores_are_refused_and_nothing_is_stored(runtime, team, reviewer, scores,
                                                          error, named):
    with pytest.raises(error) as raised:
        _save(runtime, team, reviewer, {**FULL, **scores})
    assert isinstance(raised.value, InvalidScores) and raised.value.criterion == named
    assert named in str(raised.value)
    if error is ScoreOutOfRange:
        assert "from 0 to 100" in str(raised.value)
    assert _count(runtime, ScoreSheet) == 0
    # An existing draft keeps its values.
    sheet_id = _save(runtime, team, reviewer, {"capability": 40})
    with pytest.raises(error):
        _save(runtime, team, reviewer, {**FULL, **scores})
    assert _view(runtime, sheet_id).scores == {"capability": 40}


def test_comments_are_limited_and_must_be_about_a_criterion(runtime, team, reviewer):
    with pytest.raises(CommentTooLong, match="impact"):
        _save(runtime, team, reviewer, FULL, {"impact": "x" * (MAX_COMMENT + 1)})
    with pytest.raises(OverallCommentTooLong):
        _save(runtime, team, reviewer, FULL, overall="x" * (MAX_COMMENT + 1))
    with pytest.raises(UnknownCriterion, match="novelty"):
        _save(runtime, team, reviewer, FULL, {"novelty": "fine"})
    assert _count(runtime, ScoreSheet) == 0
    sheet_id = _save(runtime, team, reviewer, FULL, {"impact": "x" * MAX_COMMENT},
                     overall="y" * MAX_COMMENT)
    assert len(_view(runtime, sheet_id).comments["impact"]) == MAX_COMMENT


def test_submitting_needs_a_score_for_every_criterion(runtime, team, reviewer):
    partial = {key: value for key, value in FULL.items() if key not in ("strategy", "impact")}
    sheet_id = _save(runtime, team, reviewer, partial)
    with pytest.raises(IncompleteSheet) as raised:
        _submit(runtime, sheet_id, reviewer)
    assert raised.value.missing == ("strategy", "impact")
    assert "strategy, impact" in str(raised.value)
    assert _view(runtime, sheet_id).state is SheetState.DRAFT


def test_a_reviewer_cannot_write_another_reviewers_sheet(runtime, team, reviewer, make_user):
    sheet_id = _save(runtime, team, reviewer, FULL)
    other = make_user(Role.REVIEWER, mfa=True)
    with pytest.raises(NotYourSheet):
        _submit(runtime, sheet_id, other)
    with pytest.raises(NotYourSheet), unit_of_work(runtime.sessions) as session:
        _sheets(runtime, session).save(session.get(Submission, team.submission_id),
                                       "written", Actor.operator(), FULL, {})
    # Saving as the other reviewer writes the other reviewer's own sheet, never this one.
    other_id = _save(runtime, team, other, {"impact": 1})
    assert other_id != sheet_id
    assert _view(runtime, sheet_id).scores == FULL and not _view(runtime, sheet_id).submitted


def test_only_a_scored_stage_the_submission_is_in_takes_sheets(runtime, clock, team, reviewer):
    # Stages neither scored nor decided by a panel vote (if the definition has any) take none.
    without_sheets = [stage.id for stage in runtime.definitions[PROGRAMME].stages
                      if stage.scoring is None
                      and (stage.decision is None or stage.decision.rule != "majority")]
    for stage_id in (*without_sheets, "nowhere"):
        with pytest.raises(NoScoring, match=stage_id):
            _save(runtime, team, reviewer, {}, stage=stage_id)
    with pytest.raises(NotInStage, match="presentation"):
        _save(runtime, team, reviewer, FULL, stage="presentation")
    # A submission that moved on is no longer scored in the earlier stage.
    sheet_id = _save(runtime, team, reviewer, FULL)
    enter_stage(runtime, clock, team, "presentation")
    with pytest.raises(NotInStage):
        _submit(runtime, sheet_id, reviewer)
    assert _count(runtime, ScoreSheet) == 1


def test_panel_sheets_are_the_submitted_ones_and_own_sheets_the_reviewers(runtime, team,
                                                                          reviewer, make_user):
    second, drafter = (make_user(Role.REVIEWER, mfa=True) for _ in range(2))
    first_id = _save(runtime, team, reviewer, FULL)
    _submit(runtime, first_id, reviewer)
    second_id = _save(runtime, team, second, {**FULL, "impact": 10})
    _submit(runtime, second_id, second)
    _save(runtime, team, drafter, FULL)
    with unit_of_work(runtime.sessions) as session:
        service = _sheets(runtime, session)
        submission = session.get(Submission, team.submission_id)
        panel = service.panel_sheets(submission, "written")
        assert {view.id for view in panel} == {first_id, second_id}
        assert sorted(view.scores["impact"] for view in panel) == [10, 58]
        assert service.panel_sheets(submission, "presentation") == []
        assert [sheet.id for sheet in service.own_sheets(second.id, "written")] == [second_id]
        assert service.own_sheets(second.id, "presentation") == []
        assert service.sheet(submission, "written", drafter.id).state is SheetState.DRAFT


# -- who may score: the policy engine -----------------------------------------------------------

def _may_score(runtime, account: Account, team) -> bool:
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        try:
            runtime.authorizer(session).authorize(_actor(account), Action.SCORE_SHEET_WRITE,
                                                  submission)
        except AccessDenied:
            return False
        return True


def test_only_an_assigned_conflict_free_reviewer_may_score(runtime, clock, make_team, make_user):
    alpha = make_team("Team Alpha")
    ready = ready_reviewer(runtime, make_user, clock, alpha)
    assert _may_score(runtime, ready, alpha)

    unassigned = make_user(Role.REVIEWER, mfa=True)
    accept_nda(runtime, clock, unassigned)
    assert not _may_score(runtime, unassigned, alpha)

    conflicted = make_user(Role.REVIEWER, mfa=True)
    accept_nda(runtime, clock, conflicted)
    assign(runtime, conflicted, alpha)
    assert _may_score(runtime, conflicted, alpha)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, alpha.submission_id)
        session.add(new_conflict(
            runtime.cipher, programme_id=submission.programme_id, user_id=conflicted.id,
            consortium_id=alpha.consortium_id, source=ConflictSource.DECLARED,
            status=ConflictStatus.PENDING, details_sealed=b"sealed-elsewhere"))
    assert not _may_score(runtime, conflicted, alpha)
    # Nothing about the others changed.
    assert _may_score(runtime, ready, alpha)
    assert runtime.definitions[PROGRAMME].stage("written").scoring is not None


def test_an_officer_reopens_unless_conflicted(runtime, clock, make_team, make_user, officer):
    alpha = make_team("Team Alpha")
    enter_stage(runtime, clock, alpha)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, alpha.submission_id)
        assert runtime.authorizer(session).allowed(_actor(officer), Action.SCORE_SHEET_REOPEN,
                                                   submission)
        assert not runtime.authorizer(session).allowed(_actor(officer),
                                                       Action.SCORE_SHEET_WRITE, submission)
        session.add(new_conflict(
            runtime.cipher, programme_id=submission.programme_id, user_id=officer.id,
            consortium_id=alpha.consortium_id, source=ConflictSource.DECLARED,
            status=ConflictStatus.PENDING, details_sealed=b"sealed-elsewhere"))
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, alpha.submission_id)
        assert not runtime.authorizer(session).allowed(_actor(officer),
                                                       Action.SCORE_SHEET_REOPEN, submission)


# -- votes on a stage decided by a panel majority -------------------------------------------------

MAJORITY = "additional_call"


def _save_vote(runtime, team, reviewer: Account, vote, *, scores=None, comments=None,
               overall="", stage=MAJORITY) -> uuid.UUID:
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        return _sheets(runtime, session).save(submission, stage, _actor(reviewer), scores or {},
                                              comments or {}, overall_comment=overall,
                                              vote=vote).id


@pytest.fixture
def majority_team(runtime, clock, make_team):
    team = make_team("Team Gamma")
    enter_stage(runtime, clock, team, MAJORITY)
    return team


def test_the_demo_programme_has_a_majority_stage_without_scoring(runtime):
    stage = runtime.definitions[PROGRAMME].stage(MAJORITY)
    assert stage.decision.rule == "majority" and stage.scoring is None


def test_a_vote_is_saved_submitted_sealed_and_reopened_like_scores(runtime, clock, majority_team,
                                                                   reviewer, officer):
    sheet_id = _save_vote(runtime, majority_team, reviewer, None, overall=OVERALL)
    with pytest.raises(MissingVote):
        _submit(runtime, sheet_id, reviewer)
    assert _view(runtime, sheet_id).vote is None
    _save_vote(runtime, majority_team, reviewer, True, overall=OVERALL)
    _submit(runtime, sheet_id, reviewer)
    view = _view(runtime, sheet_id)
    assert (view.submitted, view.vote, view.scores, view.overall_comment) == (
        True, True, {}, OVERALL)
    with pytest.raises(SheetLocked):
        _save_vote(runtime, majority_team, reviewer, False)
    with unit_of_work(runtime.sessions) as session:
        [sealed] = session.execute(text("SELECT scores_sealed FROM score_sheets")).one()
    assert b"accept" not in bytes(sealed) and b"vote" not in bytes(sealed)

    _reopen(runtime, sheet_id, officer, "The vote contradicts the comment.")
    _save_vote(runtime, majority_team, reviewer, False, overall="Reconsidered.")
    _submit(runtime, sheet_id, reviewer)
    assert _view(runtime, sheet_id).vote is False
    with unit_of_work(runtime.sessions) as session:
        [entry] = _sheets(runtime, session).history(session.get(ScoreSheet, sheet_id))
    assert (entry.vote, entry.overall_comment, entry.scores) == (True, OVERALL, {})


def test_saving_without_a_vote_clears_the_drafts_vote(runtime, majority_team, reviewer):
    sheet_id = _save_vote(runtime, majority_team, reviewer, True)
    _save_vote(runtime, majority_team, reviewer, None)
    assert _view(runtime, sheet_id).vote is None


@pytest.mark.parametrize(("stage", "vote", "scores", "comments", "error"), [
    ("written", True, FULL, {}, VoteNotAccepted),
    (MAJORITY, True, {"capability": 50}, {}, ScoresNotAccepted),
    (MAJORITY, "accept", {}, {}, InvalidVote),
    (MAJORITY, True, {}, {"capability": "fine"}, UnknownCriterion),
], ids=["vote-on-scored-stage", "scores-on-majority-stage", "vote-not-a-bool",
        "criterion-comment-on-majority-stage"])
def test_a_vote_or_scores_the_stage_does_not_take_are_refused(runtime, team,
                                                              majority_team, reviewer, stage,
                                                              vote, scores, comments, error):
    target = team if stage == "written" else majority_team
    with pytest.raises(error) as raised:
        _save_vote(runtime, target, reviewer, vote, scores=scores, comments=comments,
                   stage=stage)
    assert raised.value.status == 422 and isinstance(raised.value, InvalidScores)
    assert _count(runtime, ScoreSheet) == 0


def test_scored_stages_keep_no_vote(runtime, team, reviewer):
    sheet_id = _save(runtime, team, reviewer, FULL)
    _submit(runtime, sheet_id, reviewer)
    view = _view(runtime, sheet_id)
    assert view.vote is None
    assert view.for_ranking() == Sheet(reviewer.id, FULL, None)


def test_panel_sheets_give_the_ranking_its_votes(runtime, make_user, majority_team):
    voters = [make_user(Role.REVIEWER, mfa=True) for _ in range(3)]
    for voter, vote in zip(voters, (True, False, True), strict=True):
        _submit(runtime, _save_vote(runtime, majority_team, voter, vote), voter)
    _save_vote(runtime, majority_team, make_user(Role.REVIEWER, mfa=True), False)  # a draft
    definition = runtime.definitions[PROGRAMME]
    stage = definition.stage(MAJORITY)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, majority_team.submission_id)
        panel = _sheets(runtime, session).panel_sheets(submission, MAJORITY)
        candidate = Candidate(submission.id, submission.created_at,
                              tuple(view.for_ranking() for view in panel))
    assert sorted(sheet.accept for sheet in candidate.sheets) == [False, True, True]
    result = rank_stage([candidate], criteria=stage.criteria, scoring=stage.scoring,
                        decision=stage.decision)
    [entry] = result.entries
    assert entry.outcome is Outcome.SELECTED and not result.no_selection



def test_a_closed_panel_refuses_sheet_changes_in_the_service_itself(runtime, clock, team,
                                                                    reviewer, officer, make_user):
    """Defence in depth: the policies deny writes once the panel closes, and the service too
    refuses saving, submitting and reopening, whatever the caller authorized."""
    submitted = _save(runtime, team, reviewer, FULL)
    _submit(runtime, submitted, reviewer)
    second = make_user(Role.REVIEWER, mfa=True)
    draft = _save(runtime, team, second, FULL)
    with unit_of_work(runtime.sessions) as session:
        programme_id = session.get(Submission, team.submission_id).programme_id
        session.add(StageRound(programme_id=programme_id, stage="written",
                               state=RoundState.CLOSED, closed_at=clock()))
    with pytest.raises(PanelClosed):
        _save(runtime, team, reviewer, FULL)
    with pytest.raises(PanelClosed):
        _submit(runtime, draft, second)
    with pytest.raises(PanelClosed):
        _reopen(runtime, submitted, officer, "a reason")
    assert _view(runtime, submitted).submitted and not _view(runtime, draft).submitted
