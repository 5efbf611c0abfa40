"""Score sheets: a reviewer scores each criterion of a stage on the stage's scale and comments,
saves drafts, submits once; a submitted sheet changes only after an officer reopens it with a
reason, and the values it held are kept in its history. On a stage decided by a panel majority
(``decision = "majority"``) the sheet holds the reviewer's vote, accept or reject, instead of
(or, where the stage is also scored, beside) the scores; it has the same life cycle.

Scores, votes and comments are confidential: they are sealed with the field cipher (associated
data = table, column and row id) and opened only here. They never go into logs, URLs, audit
events or error messages (errors name criteria and ranges only).

This service does not decide who may act. Callers authorize through the policy engine first:
``score-sheet:write`` on the submission before ``save`` and ``submit`` (the reviewer is assigned
to its current stage, conflict-free, with the NDA and a second factor, inside the review window),
and ``score-sheet:reopen`` before ``reopen``. The service itself refuses what no authorization can
make right: a sheet written by anyone but its own reviewer, a stage without score sheets, a
submission not in the stage, a submitted sheet changed without a reopen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.crypto import FieldCipher
from vault.documents.models import Submission
from vault.evaluation.errors import (
    IncompleteSheet,
    InvalidReason,
    MissingVote,
    NoScoring,
    NotInStage,
    NotYourSheet,
    PanelClosed,
    SheetLocked,
    SheetNotSubmitted,
)
from vault.evaluation.models import (
    RoundState,
    ScoreSheet,
    ScoreSheetRevision,
    SheetState,
    StageRound,
)
from vault.evaluation.ranking import Sheet
from vault.evaluation.sheet_values import (
    MAX_COMMENT,
    SheetCipher,
    ordered,
    takes_scores,
    takes_vote,
    validate,
)
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.models import Programme


@dataclass(frozen=True)
class SheetView:
    """A score sheet with its scores and comments opened."""

    id: uuid.UUID
    stage: str
    submission_id: uuid.UUID
    reviewer_id: uuid.UUID
    state: SheetState
    #: Criterion id → score, in the stage's criterion order (a draft may lack some).
    scores: dict[str, int]
    #: Criterion id → comment, in the stage's criterion order (only criteria commented on).
    comments: dict[str, str]
    overall_comment: str
    revision: int
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    #: The vote on a majority stage: ``True`` accept, ``False`` reject, ``None`` not cast.
    vote: bool | None = None

    @property
    def submitted(self) -> bool:
        """Whether the sheet is handed in (and immutable until reopened)."""
        return self.state is SheetState.SUBMITTED

    def for_ranking(self) -> Sheet:
        """The sheet as the ranking reads it: the reviewer, the scores and the vote."""
        return Sheet(reviewer_id=self.reviewer_id, scores=dict(self.scores), accept=self.vote)


@dataclass(frozen=True)
class RevisionView:
    """What a sheet held when it was reopened, who reopened it, when and why."""

    revision: int
    scores: dict[str, int]
    comments: dict[str, str]
    overall_comment: str
    submitted_at: datetime
    reopened_by_id: uuid.UUID | None
    reopened_by_role: str
    reopened_at: datetime
    reason: str
    vote: bool | None = None


class ScoreSheets:
    """Score sheet operations on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, cipher: FieldCipher, clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition]) -> None:
        self.session = session
        self.cipher = cipher
        self.values = SheetCipher(cipher)
        self.clock = clock
        self.definitions = definitions

    # -- the reviewer's changes --------------------------------------------------------------

    def save(self, submission: Submission, stage_id: str, reviewer: Actor,
             scores: Mapping[str, object], comments: Mapping[str, object], *,
             overall_comment: object = "", vote: bool | None = None) -> ScoreSheet:
        """Save the reviewer's own draft sheet for the submission in ``stage_id`` (created on
        first save); the values given replace the draft's (``vote`` too: ``None`` clears it).
        A draft may leave criteria out and the vote open. Anything but a whole number on the
        stage's scale is refused as a score.

        Raises ``NoScoring`` (no such stage, or it has no score sheets), ``NotInStage``,
        ``NotYourSheet`` (the actor is not a user), ``UnknownCriterion``, ``ScoreOutOfRange``,
        ``PanelClosed``, ``CommentTooLong``, ``OverallCommentTooLong``, ``VoteNotAccepted`` (a
        vote on a stage not decided by majority), ``ScoresNotAccepted`` (scores on a majority
        stage without scoring) or ``InvalidVote`` (all ``InvalidScores``: nothing is stored)
        and ``SheetLocked`` (the sheet was submitted).
        """
        stage = self._sheet_stage(submission, stage_id)
        if reviewer.user_id is None:
            raise NotYourSheet()
        clean_scores, clean_comments = validate(stage, scores, comments, overall_comment, vote)
        sheet = self.sheet(submission, stage_id, reviewer.user_id)
        now = self.clock()
        if sheet is None:
            sheet = ScoreSheet(id=uuid.uuid4(), programme_id=submission.programme_id,
                               stage=stage_id, submission_id=submission.id,
                               reviewer_id=reviewer.user_id, state=SheetState.DRAFT,
                               created_at=now, revision=0)
            self.session.add(sheet)
        else:
            self._lock(sheet)
            if sheet.state is SheetState.SUBMITTED:
                raise SheetLocked()
        table = ScoreSheet.__tablename__
        sheet.scores_sealed = self.values.seal_scores(table, sheet.id, clean_scores, vote)
        sheet.comments_sealed = self.values.seal_comments(table, sheet.id, clean_comments,
                                                          str(overall_comment))
        sheet.updated_at = now
        self.session.flush()
        return sheet

    def submit(self, sheet: ScoreSheet, reviewer: Actor) -> ScoreSheet:
        """Hand in the reviewer's own sheet: every criterion must be scored and, on a majority
        stage, the vote cast. Afterwards the sheet is immutable until an officer reopens it.

        Raises ``NotYourSheet``, ``SheetLocked`` (already submitted), ``NoScoring``,
        ``NotInStage`` (the submission left the stage), ``IncompleteSheet`` or ``MissingVote``.
        """
        if reviewer.user_id is None or sheet.reviewer_id != reviewer.user_id:
            raise NotYourSheet()
        self._lock(sheet)
        if sheet.state is SheetState.SUBMITTED:
            raise SheetLocked()
        submission = self.session.get(Submission, sheet.submission_id)
        stage = self._sheet_stage(submission, sheet.stage)
        scores, vote = self.values.open_scores(ScoreSheet.__tablename__, sheet.id,
                                               sheet.scores_sealed)
        missing = [criterion.id for criterion in stage.criteria if criterion.id not in scores]
        if takes_scores(stage) and missing:
            raise IncompleteSheet(missing)
        if takes_vote(stage) and vote is None:
            raise MissingVote()
        now = self.clock()
        sheet.state = SheetState.SUBMITTED
        sheet.submitted_at = now
        sheet.updated_at = now
        self.session.flush()
        return sheet

    # -- the officer's reopening --------------------------------------------------------------

    def reopen(self, sheet: ScoreSheet, officer: Actor, reason: str) -> ScoreSheetRevision:
        """Return a submitted sheet to its reviewer as a draft: the values it held, who
        reopened it and the sealed reason are appended to its history, and its revision count
        goes up. The draft keeps the values, for the reviewer to correct.

        Raises ``InvalidReason`` (empty, or longer than ``MAX_COMMENT``), ``SheetNotSubmitted``
        or ``PanelClosed`` (the stage's panel is closed: reopen the panel first).
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_COMMENT:
            raise InvalidReason(limit=MAX_COMMENT)
        self._lock(sheet)
        if sheet.state is not SheetState.SUBMITTED or sheet.submitted_at is None:
            raise SheetNotSubmitted()
        self._check_panel_open(sheet.programme_id, sheet.stage)
        table = ScoreSheet.__tablename__
        scores, vote = self.values.open_scores(table, sheet.id, sheet.scores_sealed)
        comments, overall = self.values.open_comments(table, sheet.id, sheet.comments_sealed)
        history = ScoreSheetRevision.__tablename__
        entry = ScoreSheetRevision(id=uuid.uuid4(), sheet_id=sheet.id, revision=sheet.revision,
                                   submitted_at=sheet.submitted_at,
                                   reopened_by_id=officer.user_id,
                                   reopened_by_role=officer.role_name, reopened_at=self.clock())
        entry.scores_sealed = self.values.seal_scores(history, entry.id, scores, vote)
        entry.comments_sealed = self.values.seal_comments(history, entry.id, comments, overall)
        entry.reason_sealed = self.cipher.seal(history, "reason", entry.id, reason)
        self.session.add(entry)
        sheet.state = SheetState.DRAFT
        sheet.submitted_at = None
        sheet.revision += 1
        sheet.updated_at = entry.reopened_at
        self.session.flush()
        return entry

    # -- reading ------------------------------------------------------------------------------

    def sheet(self, submission: Submission, stage_id: str,
              reviewer_id: uuid.UUID) -> ScoreSheet | None:
        """The reviewer's sheet for the submission in the stage, if one was saved."""
        return self.session.scalars(select(ScoreSheet).where(
            ScoreSheet.stage == stage_id, ScoreSheet.submission_id == submission.id,
            ScoreSheet.reviewer_id == reviewer_id)).one_or_none()

    def own_sheets(self, reviewer_id: uuid.UUID, stage_id: str) -> list[ScoreSheet]:
        """The reviewer's sheets in the stage (of every programme with such a stage), oldest
        first. A reviewer sees only these until the panel closes."""
        return list(self.session.scalars(
            select(ScoreSheet)
            .where(ScoreSheet.reviewer_id == reviewer_id, ScoreSheet.stage == stage_id)
            .order_by(ScoreSheet.created_at, ScoreSheet.id)))

    def panel_sheets(self, submission: Submission, stage_id: str) -> list[SheetView]:
        """The submitted sheets on the submission in the stage, opened, by reviewer id: the
        input of the ranking (``SheetView.for_ranking``). Drafts do not count."""
        sheets = self.session.scalars(
            select(ScoreSheet)
            .where(ScoreSheet.submission_id == submission.id, ScoreSheet.stage == stage_id,
                   ScoreSheet.state == SheetState.SUBMITTED)
            .order_by(ScoreSheet.reviewer_id))
        return [self.opened(sheet) for sheet in sheets]

    def opened(self, sheet: ScoreSheet) -> SheetView:
        """The sheet with its scores, vote and comments opened (callers authorized to see
        it)."""
        table = ScoreSheet.__tablename__
        scores, vote = self.values.open_scores(table, sheet.id, sheet.scores_sealed)
        comments, overall = self.values.open_comments(table, sheet.id, sheet.comments_sealed)
        order = self._criterion_order(sheet)
        return SheetView(
            id=sheet.id, stage=sheet.stage, submission_id=sheet.submission_id,
            reviewer_id=sheet.reviewer_id, state=sheet.state,
            scores=ordered(scores, order), comments=ordered(comments, order),
            overall_comment=overall, revision=sheet.revision, created_at=sheet.created_at,
            updated_at=sheet.updated_at, submitted_at=sheet.submitted_at, vote=vote)

    def history(self, sheet: ScoreSheet) -> list[RevisionView]:
        """The sheet's reopenings, oldest first, with the values (and vote) it held and the
        reasons."""
        table = ScoreSheetRevision.__tablename__
        entries = self.session.scalars(
            select(ScoreSheetRevision).where(ScoreSheetRevision.sheet_id == sheet.id)
            .order_by(ScoreSheetRevision.revision))
        order = self._criterion_order(sheet)
        views = []
        for entry in entries:
            comments, overall = self.values.open_comments(table, entry.id, entry.comments_sealed)
            scores, vote = self.values.open_scores(table, entry.id, entry.scores_sealed)
            views.append(RevisionView(
                revision=entry.revision, vote=vote, scores=ordered(scores, order),
                comments=ordered(comments, order), overall_comment=overall,
                submitted_at=entry.submitted_at, reopened_by_id=entry.reopened_by_id,
                reopened_by_role=entry.reopened_by_role, reopened_at=entry.reopened_at,
                reason=self.cipher.open(table, "reason", entry.id, entry.reason_sealed)))
        return views

    # -- helpers ------------------------------------------------------------------------------

    def stage(self, programme_id: uuid.UUID, stage_id: str) -> Stage | None:
        """The stage of the programme's definition, if it takes score sheets (scored, or
        decided by a panel majority)."""
        programme = self.session.get(Programme, programme_id)
        definition = self.definitions.get(programme.code) if programme is not None else None
        try:
            stage = definition.stage(stage_id) if definition is not None else None
        except KeyError:
            return None
        if stage is None or not (takes_scores(stage) or takes_vote(stage)):
            return None
        return stage

    def _sheet_stage(self, submission: Submission, stage_id: str) -> Stage:
        """The stage of the submission's programme, if it takes score sheets and the
        submission is in it; raises ``NoScoring`` or ``NotInStage``."""
        stage = self.stage(submission.programme_id, stage_id)
        if stage is None:
            raise NoScoring(stage=stage_id)
        if submission.stage != stage_id:
            raise NotInStage(stage=stage_id)
        self._check_panel_open(submission.programme_id, stage_id)
        return stage

    def _check_panel_open(self, programme_id: uuid.UUID, stage_id: str) -> None:
        """Raise ``PanelClosed`` unless the stage's round is open.

        The policies already deny writes once the panel closes; this holds the rule in the
        service too, so no caller that skips authorization can change a closed panel's sheets.
        """
        state = self.session.scalar(select(StageRound.state).where(
            StageRound.programme_id == programme_id, StageRound.stage == stage_id))
        if state is not None and state is not RoundState.OPEN:
            raise PanelClosed(stage=stage_id)

    def _criterion_order(self, sheet: ScoreSheet) -> list[str]:
        programme = self.session.get(Programme, sheet.programme_id)
        definition = self.definitions.get(programme.code) if programme is not None else None
        try:
            stage = definition.stage(sheet.stage) if definition is not None else None
        except KeyError:
            return []
        return [criterion.id for criterion in stage.criteria] if stage is not None else []

    def _lock(self, sheet: ScoreSheet) -> None:
        """Lock the sheet's row and re-read it: of two concurrent changes, the second sees the
        first's result. (SQLite: the transaction already holds the writer lock.)"""
        self.session.scalars(
            select(ScoreSheet).where(ScoreSheet.id == sheet.id)
            .with_for_update(of=ScoreSheet)
            .execution_options(populate_existing=True)).one()

