"""What the stage rounds show: round status and reviewer progress, the ranking with names and
components, disqualifications, published outcomes, panels, the funnel and exports.

``StageViews`` is the reading half of ``vault.evaluation.stages.StageRounds`` (which sets up
the session, cipher, definitions and the audit log it uses).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from vault.assignments.models import Assignment
from vault.audit.service import Tag
from vault.consortia.models import Consortium
from vault.documents.models import Submission
from vault.evaluation.errors import RoundNotConfirmed
from vault.evaluation.models import (
    RetentionSchedule,
    RoundState,
    ScoreSheet,
    SheetState,
    StageDisqualification,
    StageOutcome,
    StageOutcomeKind,
)
from vault.evaluation.ranking import StageResult
from vault.evaluation.rounds import (
    definition_stage,
    round_row,
    stage_submissions,
    state_of,
    user_names,
)
from vault.policy.actions import Actor
from vault.programmes.definition import Stage
from vault.programmes.evaluation_rules import Disqualification
from vault.programmes.models import Programme

if TYPE_CHECKING:
    from vault.evaluation.stages import StageRounds

#: Outcomes that go on (or end the programme selected).
PASSING = frozenset({StageOutcomeKind.PASS, StageOutcomeKind.SELECTED})


@dataclass(frozen=True)
class ReviewerProgress:
    """An assigned reviewer's progress in a stage (names: the officer's progress list only)."""

    reviewer_id: uuid.UUID
    name: str
    assigned: int
    submitted: int
    drafts: int


@dataclass(frozen=True)
class RoundView:
    """What the officer's page shows about a round."""

    stage: Stage
    state: RoundState
    closed_at: datetime | None
    confirmed_at: datetime | None
    published_at: datetime | None
    result_sha256: str | None
    progress: list[ReviewerProgress]
    #: Submissions in the stage (once published: those it decided on).
    candidates: int


@dataclass(frozen=True)
class DisqualificationView:
    """A disqualification in force, with its reason opened."""

    id: uuid.UUID
    submission_id: uuid.UUID
    consortium: str
    rule: Disqualification
    reason: str
    disqualified_by: str
    disqualified_at: datetime


@dataclass(frozen=True)
class Ranking:
    """A ``StageResult`` plus what pages need."""

    stage: Stage
    result: StageResult
    #: Submission → consortium name.
    names: dict[uuid.UUID, str]
    #: Composite stages: the components of each submission on a 0-100 footing.
    components: dict[uuid.UUID, dict[str, Decimal]]
    #: Composite stages: the stage score.
    composite: dict[uuid.UUID, Decimal]
    disqualified: dict[uuid.UUID, DisqualificationView]
    #: Imported components without a current import covering every ranked submission (the
    #: live ranking then uses the panel's score alone).
    missing_imports: list[str]
    confirmed: bool
    sha256: str | None
    #: Submissions without a submitted sheet yet (left out of the live ranking).
    unscored: list[uuid.UUID] = field(default_factory=list)
    #: Reviewer → their number on this stage's ranking ("Reviewer 1..n", never a name).
    reviewer_numbers: dict[uuid.UUID, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OutcomeView:
    """An applicant's own published outcome in one stage (figures only if the stage
    publishes scores)."""

    stage: Stage
    outcome: StageOutcomeKind
    published_at: datetime
    rank: int | None
    score: Decimal | None
    composite: Decimal | None
    criteria: dict[str, Decimal]
    components: dict[str, Decimal]
    #: When the consortium's documents are destroyed (crypto-shredded), if scheduled.
    shred_due: datetime | None = None
    notice_sent_at: datetime | None = None
    shredded_at: datetime | None = None


@dataclass(frozen=True)
class PanelMember:
    """A reviewer of a stage's panel."""

    reviewer_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class FunnelStep:
    """How many submissions a stage took in and let through (``None`` until published)."""

    stage: Stage
    state: RoundState
    entered: int
    passed: int | None
    out: int | None


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class StageViews:
    """The reading half of ``StageRounds``."""

    def round(self: StageRounds, programme: Programme, stage_id: str) -> RoundView:
        """The round's state, dates, reviewer progress and size. Raises ``UnknownStage``."""
        _, stage = definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id)
        state = state_of(row)
        if state is RoundState.PUBLISHED:
            candidates = self.session.scalar(select(func.count()).select_from(StageOutcome)
                                             .where(StageOutcome.programme_id == programme.id,
                                                    StageOutcome.stage == stage_id)) or 0
        else:
            candidates = len(stage_submissions(self.session, programme, stage_id))
        return RoundView(stage=stage, state=state, closed_at=row.closed_at if row else None,
                         confirmed_at=row.confirmed_at if row else None,
                         published_at=row.published_at if row else None,
                         result_sha256=row.result_sha256 if row else None,
                         progress=self._progress(programme, stage_id), candidates=candidates)

    def rounds(self: StageRounds, programme: Programme) -> list[RoundView]:
        """Every stage's round, in the definition's order. Raises ``UnknownStage``."""
        definition = self.definitions.get(programme.code)
        stages = definition.stages if definition is not None else ()
        return [self.round(programme, stage.id) for stage in stages]

    def disqualification_views(self: StageRounds, programme: Programme,
                               stage_id: str) -> dict[uuid.UUID, DisqualificationView]:
        """The disqualifications in force in the stage, by submission, reasons opened."""
        _, stage = definition_stage(self.definitions, programme, stage_id)
        rows = list(self.session.scalars(select(StageDisqualification).where(
            StageDisqualification.programme_id == programme.id,
            StageDisqualification.stage == stage_id, StageDisqualification.lifted_at.is_(None))))
        people = user_names(self.session, (row.disqualified_by_id for row in rows))
        names = self._names(programme)
        rules = {rule.id: rule for rule in stage.disqualifications}
        return {row.submission_id: DisqualificationView(
            id=row.id, submission_id=row.submission_id, consortium=names[row.submission_id],
            rule=rules[row.rule], reason=self.cipher.open(
                StageDisqualification.__tablename__, "reason", row.id, row.reason_sealed),
            disqualified_by=people.get(row.disqualified_by_id, ""),
            disqualified_at=row.disqualified_at) for row in rows if row.rule in rules}

    def panel(self: StageRounds, programme: Programme, stage_id: str) -> list[PanelMember]:
        """The reviewers assigned to the stage, by name (the web layer shows them only where
        allowed). Raises ``UnknownStage``."""
        definition_stage(self.definitions, programme, stage_id)
        ids = set(self.session.scalars(select(Assignment.reviewer_id).where(
            Assignment.programme_id == programme.id, Assignment.stage == stage_id)))
        names = user_names(self.session, ids)
        return sorted((PanelMember(reviewer_id, names.get(reviewer_id, "")) for reviewer_id in ids),
                      key=lambda member: (member.name, member.reviewer_id))

    def disclosed_panels(self: StageRounds, programme: Programme) -> dict[str, list[PanelMember]]:
        """The panels of the published stages whose definition discloses them."""
        definition = self.definitions.get(programme.code)
        return {stage.id: self.panel(programme, stage.id)
                for stage in (definition.stages if definition else ())
                if stage.disclose_panel
                and state_of(round_row(self.session, programme, stage.id))
                is RoundState.PUBLISHED}

    def funnel(self: StageRounds, programme: Programme) -> list[FunnelStep]:
        """Per stage: submissions entered, passed and out (the last two once published)."""
        steps = []
        for view in self.rounds(programme):
            if view.state is not RoundState.PUBLISHED:
                steps.append(FunnelStep(view.stage, view.state, view.candidates, None, None))
                continue
            counts = Counter(self.session.scalars(select(StageOutcome.outcome).where(
                StageOutcome.programme_id == programme.id, StageOutcome.stage == view.stage.id)))
            passed = sum(count for outcome, count in counts.items() if outcome in PASSING)
            total = sum(counts.values())
            steps.append(FunnelStep(view.stage, view.state, total, passed, total - passed))
        return steps

    def export(self: StageRounds, programme: Programme, stage_id: str,
               actor: Actor | None = None, *,
               format: str = "csv") -> list[dict[str, str]]:
        """The confirmed ranking as flat rows (every row has the same keys; reviewers by
        number, never by name); audited when ``actor`` is given.

        Raises ``UnknownStage`` or ``RoundNotConfirmed``.
        """
        ranking = self.ranking(programme, stage_id)
        if not ranking.confirmed:
            raise RoundNotConfirmed(stage=stage_id)
        stage = ranking.stage
        rows = []
        for entry in ranking.result.entries:
            totals = {ranking.reviewer_numbers[r.reviewer_id]: r.total for r in entry.reviewers}
            disqualification = ranking.disqualified.get(entry.submission_id)
            rows.append({
                "rank": str(entry.rank), "submission_id": str(entry.submission_id),
                "consortium": ranking.names.get(entry.submission_id, ""),
                "outcome": entry.outcome.value, "score": _text(entry.score),
                "composite": _text(entry.composite),
                **{f"component_{c.id}": _text(entry.components.get(c.id))
                   for c in stage.components},
                **{f"criterion_{c.id}": _text(entry.criterion_means.get(c.id))
                   for c in stage.criteria},
                "std_dev": _text(entry.std_dev), "sheets": str(entry.sheets),
                "accepts": str(entry.accepts), "tied": _flag(entry.tied),
                "tie_unresolved": _flag(entry.tie_unresolved), "cut_tie": _flag(entry.cut_tie),
                "disqualified": disqualification.rule.id if disqualification else "",
                **{f"reviewer_{n}": _text(totals.get(n))
                   for n in sorted(ranking.reviewer_numbers.values())}})
        if actor is not None:
            self._record(Tag.STAGE_EXPORTED, actor, programme, stage_id, format=format,
                         rows=len(rows), sha256=ranking.sha256)
        return rows

    def outcomes(self: StageRounds, submission: Submission) -> list[OutcomeView]:
        """The submission's published outcomes in stage order, with figures where the stage
        publishes scores and the retention dates where a schedule stems from that stage."""
        definition = self.definitions.get(submission.consortium.programme.code)
        if definition is None:
            return []
        order = {stage.id: index for index, stage in enumerate(definition.stages)}
        rows = self.session.scalars(select(StageOutcome).where(
            StageOutcome.submission_id == submission.id))
        schedules = {row.stage: row for row in self.session.scalars(
            select(RetentionSchedule).where(RetentionSchedule.submission_id == submission.id,
                                            RetentionSchedule.cancelled_at.is_(None)))}
        views = []
        for row in sorted((r for r in rows if r.stage in order), key=lambda r: order[r.stage]):
            stage = definition.stage(row.stage)
            figures = (json.loads(self.cipher.open(StageOutcome.__tablename__, "figures",
                                                   row.id, row.figures_sealed))
                       if stage.publish_scores else {})
            schedule = schedules.get(row.stage)
            views.append(OutcomeView(
                stage=stage, outcome=row.outcome, published_at=row.published_at,
                rank=row.rank if stage.publish_scores else None,
                score=_decimal(figures.get("score")), composite=_decimal(figures.get("composite")),
                criteria={k: Decimal(v) for k, v in figures.get("criteria", {}).items()},
                components={k: Decimal(v) for k, v in figures.get("components", {}).items()},
                shred_due=schedule.shred_due if schedule else None,
                notice_sent_at=schedule.notice_sent_at if schedule else None,
                shredded_at=schedule.shredded_at if schedule else None))
        return views

    # -- helpers ------------------------------------------------------------------------------

    def _names(self: StageRounds, programme: Programme) -> dict[uuid.UUID, str]:
        """Submission → consortium name, for the whole programme."""
        return dict(self.session.execute(
            select(Submission.id, Consortium.name)
            .join(Consortium, Submission.consortium_id == Consortium.id)
            .where(Submission.programme_id == programme.id)).all())

    def _progress(self: StageRounds, programme: Programme,
                  stage_id: str) -> list[ReviewerProgress]:
        assigned = Counter(self.session.scalars(select(Assignment.reviewer_id).where(
            Assignment.programme_id == programme.id, Assignment.stage == stage_id)))
        sheets = Counter((reviewer, state) for reviewer, state in self.session.execute(
            select(ScoreSheet.reviewer_id, ScoreSheet.state).where(
                ScoreSheet.programme_id == programme.id, ScoreSheet.stage == stage_id)))
        names = user_names(self.session, assigned)
        return sorted((ReviewerProgress(
            reviewer_id=reviewer, name=names.get(reviewer, ""), assigned=count,
            submitted=sheets[(reviewer, SheetState.SUBMITTED)],
            drafts=sheets[(reviewer, SheetState.DRAFT)]) for reviewer, count in assigned.items()),
            key=lambda p: (p.name, p.reviewer_id))

    def _ranking_view(self: StageRounds, stage: Stage, result: StageResult,
                      names: dict[uuid.UUID, str],
                      disqualified: dict[uuid.UUID, DisqualificationView],
                      missing: list[str], unscored: list[uuid.UUID], confirmed: bool,
                      sha256: str | None) -> Ranking:
        reviewers = sorted({r.reviewer_id for e in result.entries for r in e.reviewers})
        return Ranking(
            stage=stage, result=result, names=names,
            components={e.submission_id: dict(e.components) for e in result.entries
                        if e.components},
            composite={e.submission_id: e.composite for e in result.entries
                       if e.composite is not None},
            disqualified={k: v for k, v in disqualified.items()
                          if k in {e.submission_id for e in result.entries}},
            missing_imports=missing, confirmed=confirmed, sha256=sha256, unscored=unscored,
            reviewer_numbers={reviewer: n for n, reviewer in enumerate(reviewers, start=1)})

    def _record(self: StageRounds, tag: Tag, actor: Actor, programme: Programme, stage_id: str,
                **target: object) -> None:
        self.audit.record(tag, actor=actor, request=self.request,
                          target={"programme": programme.code, "stage": stage_id, **target})


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _flag(value: bool) -> str:
    return "yes" if value else ""
