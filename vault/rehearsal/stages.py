"""The stages of a rehearsal (``vault demo simulate``): each stage's panel, sheets, imports,
disqualification, candidates, and the officer's close, confirm and publish, in order.

Every step goes through the same services and the same access decisions as the web: the officer
(the demo's, with a second factor) assigns the panel (``assignment:manage``), imports the
components (``stage:import``), disqualifies (``stage:disqualify``), enters a majority stage's
candidate (``stage:enter-candidate``), and closes, confirms and publishes (``stage:close``,
``stage:confirm``, ``stage:publish``); each reviewer writes their sheet after
``score-sheet:write`` (see ``vault.rehearsal.run._Run.score``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from vault.assignments.service import AssignmentService
from vault.audit.service import RequestInfo
from vault.evaluation.errors import CutTieUnresolved
from vault.evaluation.imports import ComponentImports
from vault.evaluation.models import StageOutcome, StageOutcomeKind
from vault.evaluation.stages import Ranking, StageRounds
from vault.identity.models import User
from vault.policy.actions import Action
from vault.programmes.definition import Stage
from vault.rehearsal import scores as rehearsal_scores

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from vault.rehearsal.run import _Run

#: Every audit event of the rehearsal says where it came from.
REQUEST = RequestInfo(client="rehearsal")
#: Outcomes that leave a team out of the running (a majority stage may take it back).
OUT = frozenset({StageOutcomeKind.NOT_SELECTED, StageOutcomeKind.ELIMINATED})


class RehearsalStopped(Exception):
    """The rehearsal cannot go on (e.g. a tie at the cut the definition's rules do not break);
    the message says where and why."""


@dataclass(frozen=True)
class Row:
    """One line of a stage's published ranking."""

    rank: int
    team: str
    #: The stage's score (the composite where components exist) to the cent; for a majority
    #: stage the accept votes (``7/10``); ``None`` without sheets.
    score: str | None
    outcome: str


@dataclass(frozen=True)
class StageReport:
    """A stage as the rehearsal ran it."""

    stage: str
    title: str
    decision: str
    rows: tuple[Row, ...]
    result_sha256: str | None
    #: Why nothing ran (e.g. no candidate for a majority stage), else empty.
    note: str = ""


class StageRunner:
    """Runs the definition's stages one after the other on a prepared rehearsal."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        teams = self._team_names()
        # Not for secrets: made-up team strengths and reviewer habits, from the seed.
        self.strength = rehearsal_scores.strengths(run.rng, teams)
        self.bias = rehearsal_scores.biases(run.rng, run.reviewer_names)
        self.disqualify_rng = random.Random(f"{run.options.seed}:disqualify")  # noqa: S311
        self.disqualified_once = not run.options.disqualify
        #: Teams still in the running after the last published stage.
        self.running: list[str] = teams

    def _team_names(self) -> list[str]:
        with self.run.work() as session:
            return [s.consortium.name for s in self.run.teams(session)
                    if s.stage != "call"]

    def rounds(self, session: Session) -> StageRounds:
        """The stage rounds service on ``session``, as the web builds it."""
        rt = self.run.runtime
        return StageRounds(session, cipher=rt.cipher, clock=rt.clock,
                           definitions=rt.definitions, keys=rt.keys,
                           audit=rt.audit(session), request=REQUEST)

    def stage(self, stage: Stage) -> StageReport:
        """Run one stage from its window's opening to its publication."""
        run = self.run
        decision = stage.decision.rule if stage.decision else "none"
        title = stage.title_en
        run.clock.move_to(stage.review_opens + timedelta(hours=1))
        if decision == "majority":
            self._enter_candidate(stage)
        with run.work() as session:
            teams = [s.consortium.name for s in run.teams(session, stage.id)]
        if not teams:
            return StageReport(stage.id, title, decision, (), None,
                               note="no submission in this stage")
        self._assign(stage)
        forms = rehearsal_scores.forms(run.rng, self.strength, teams)
        run.score(stage, forms, self.bias)
        self._import(stage, forms)
        self._disqualify(stage, teams)
        run.clock.move_to(stage.review_closes + timedelta(hours=1))
        return self._decide(stage, title, decision)

    def _assign(self, stage: Stage) -> None:
        run, rt = self.run, self.run.runtime
        with run.work() as session:
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.ASSIGNMENT_MANAGE, programme)
            service = AssignmentService(session, clock=rt.clock, definitions=rt.definitions,
                                        audit=rt.audit(session), cipher=rt.cipher,
                                        request=REQUEST)
            reviewers = [session.get(User, actor.user_id) for actor in run.reviewers]
            service.bulk_assign(run.officer, stage.id, reviewers, run.teams(session, stage.id))

    def _import(self, stage: Stage, forms: dict[str, float]) -> None:
        run, rt = self.run, self.run.runtime
        for component in stage.components:
            if component.source != "import":
                continue
            values = rehearsal_scores.imported_values(run.rng, component, forms)
            with run.work() as session:
                programme = run.programme(session)
                run.authorize(session, run.officer, Action.STAGE_IMPORT, programme)
                submissions = run.teams(session, stage.id)
                names = {s.id: s.consortium.name for s in submissions}
                data = rehearsal_scores.import_csv(
                    {s.id: values[s.consortium.name] for s in submissions}, names)
                ComponentImports(session, cipher=rt.cipher, clock=rt.clock,
                                 definitions=rt.definitions, audit=rt.audit(session),
                                 request=REQUEST).import_csv(
                    programme, stage.id, component.id, data, f"{stage.id}-{component.id}.csv",
                    run.officer)

    def _disqualify(self, stage: Stage, teams: list[str]) -> None:
        if self.disqualified_once or not stage.disqualifications:
            return
        self.disqualified_once = True
        run = self.run
        chosen = self.disqualify_rng.choice(teams)
        rule = stage.disqualifications[0]
        with run.work() as session:
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.STAGE_DISQUALIFY, programme)
            submission = next(s for s in run.teams(session, stage.id)
                              if s.consortium.name == chosen)
            self.rounds(session).disqualify(submission, stage.id, rule.id,
                                            f"Rehearsal: {rule.title_en}.", run.officer)

    def _enter_candidate(self, stage: Stage) -> None:
        """A majority stage takes one team that is out (not disqualified), picked by the
        seed."""
        run = self.run
        with run.work() as session:
            out = []
            for submission in run.teams(session):
                latest = session.scalars(select(StageOutcome).where(
                    StageOutcome.submission_id == submission.id,
                    StageOutcome.stage == submission.stage)).one_or_none()
                if latest is not None and latest.outcome in OUT:
                    out.append(submission)
            if not out:
                return
            chosen = run.rng.choice(out)
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.STAGE_ENTER_CANDIDATE, programme)
            self.rounds(session).enter_candidate(chosen, stage.id, run.officer)

    def _decide(self, stage: Stage, title: str, decision: str) -> StageReport:
        run = self.run
        with run.work() as session:
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.STAGE_CLOSE, programme)
            self.rounds(session).close(programme, stage.id, run.officer)
        with run.work() as session:
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.STAGE_CONFIRM, programme)
            try:
                self.rounds(session).confirm(programme, stage.id, run.officer)
            except CutTieUnresolved as error:
                raise RehearsalStopped(f"{stage.id}: {error}") from None
        with run.work() as session:
            programme = run.programme(session)
            run.authorize(session, run.officer, Action.STAGE_PUBLISH, programme)
            rounds = self.rounds(session)
            view = rounds.publish(programme, stage.id, run.officer)
            rows = self._rows(rounds.ranking(programme, stage.id), session)
            self.running = self._still_running(session)
        return StageReport(stage.id, title, decision, rows, view.result_sha256)

    def _rows(self, ranking: Ranking, session: Session) -> tuple[Row, ...]:
        published = {row.submission_id: row.outcome.value for row in session.scalars(
            select(StageOutcome).where(StageOutcome.stage == ranking.stage.id))}
        rows = []
        for entry in ranking.result.entries:
            figure = entry.composite if entry.composite is not None else entry.score
            if figure is not None:
                score = f"{figure}"
            elif entry.sheets:
                score = f"{entry.accepts}/{entry.sheets}"
            else:
                score = None
            rows.append(Row(entry.rank, ranking.names[entry.submission_id], score,
                            published.get(entry.submission_id, entry.outcome.value)))
        return tuple(rows)

    def _still_running(self, session: Session) -> list[str]:
        """Teams whose latest published outcome keeps them in (passed, or selected)."""
        running = []
        for submission in self.run.teams(session):
            outcomes = list(session.scalars(select(StageOutcome).where(
                StageOutcome.submission_id == submission.id).order_by(
                StageOutcome.published_at)))
            if outcomes and outcomes[-1].outcome not in (
                    OUT | {StageOutcomeKind.DISQUALIFIED}):
                running.append(submission.consortium.name)
        return running

    def survivors(self) -> tuple[str, ...]:
        """The teams still in the running after the last stage, by name."""
        return tuple(sorted(self.running))
