"""A reusable evaluation world for stage-round tests (and the simulation that mirrors them):
consortia of the shipped programme moved into the first stage, panels of reviewers assigned to a
stage, score sheets and votes submitted from per-team "quality" figures with a fixed random
seed, and the CSV files of imported components.

Scores are ``quality + noise`` per criterion, the noise a seeded whole number in
``[-NOISE, NOISE]``: qualities set at least ``2 * NOISE + 1`` apart keep the order of the
teams whatever the noise, so the expected survivors of each stage can be written down.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from tests.conftest import Account, Clock, Team, team_factory, user_factory
from tests.reviewing import PROGRAMME, accept_nda
from vault.assignments.models import Assignment
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.evaluation.imports import ComponentImports
from vault.evaluation.sheets import ScoreSheets
from vault.evaluation.stages import StageRounds
from vault.identity.models import Role
from vault.policy.actions import Actor
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime

#: Fifteen consortia, as in the 2025 call.
TEAM_NAMES = ("Baekdu", "Dokdo", "Eunha", "Gaon", "Haneul", "Hanbit", "Hangang", "Jeju",
              "Mirae", "Nuri", "Pureun", "Saebyeok", "Seorak", "Taebaek", "Uri")
#: How far a reviewer's score strays from the team's quality, per criterion.
NOISE = 2
SEED = 20270125
#: Six teams left for the presentation, and their quality there: it keeps 5, Hanbit is last.
SIX = ("Baekdu", "Dokdo", "Eunha", "Gaon", "Haneul", "Hanbit")
PRESENTATION = {"Baekdu": 90, "Dokdo": 80, "Eunha": 70, "Gaon": 60, "Haneul": 50, "Hanbit": 40}


def actor(account: Account) -> Actor:
    """The account as an actor with a second factor."""
    return Actor(user_id=account.id, role=account.role, mfa=True)


@dataclass
class EvaluationWorld:
    """The programme, its teams by name, an officer and the panels made so far."""

    runtime: Runtime
    clock: Clock
    make_user: object
    teams: dict[str, Team]
    officer: Account
    panels: dict[str, list[Account]] = field(default_factory=dict)
    # A fixed seed: the same scores on every run (not a secret).
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))  # noqa: S311

    def bound(self, runtime: Runtime, clock: Clock) -> EvaluationWorld:
        """A copy on another runtime and clock (a test's copy of a snapshot), with its own
        teams, panels and random generator, the generator where this one stands."""
        rng = random.Random()  # noqa: S311 - seeded test scores, not a secret
        rng.setstate(self.rng.getstate())
        return dataclasses.replace(self, runtime=runtime, clock=clock,
                                   make_user=user_factory(runtime, clock),
                                   teams=copy.deepcopy(self.teams),
                                   panels=copy.deepcopy(self.panels), rng=rng)

    @property
    def definition(self):
        """The shipped programme's definition."""
        return self.runtime.definitions[PROGRAMME]

    @contextmanager
    def session(self) -> Iterator:
        """One unit of work."""
        with unit_of_work(self.runtime.sessions) as session:
            yield session

    def programme(self, session) -> Programme:
        """The programme row."""
        return ProgrammeService(session).by_code(PROGRAMME)

    def rounds(self, session) -> StageRounds:
        """The stage rounds service on ``session``."""
        runtime = self.runtime
        return StageRounds(session, cipher=runtime.cipher, clock=runtime.clock,
                           definitions=runtime.definitions, keys=runtime.keys,
                           audit=runtime.audit(session))

    def imports(self, session) -> ComponentImports:
        """The component imports service on ``session``."""
        runtime = self.runtime
        return ComponentImports(session, cipher=runtime.cipher, clock=runtime.clock,
                                definitions=runtime.definitions, audit=runtime.audit(session))

    def in_window(self, stage_id: str) -> None:
        """Move the clock one day into the stage's review window."""
        self.clock.now = self.definition.stage(stage_id).review_opens + timedelta(days=1)

    def stage_of(self, name: str) -> str:
        """The stage the team's submission is in."""
        with self.session() as session:
            return session.get(Submission, self.teams[name].submission_id).stage

    def names_in(self, stage_id: str) -> list[str]:
        """The teams whose submission is in the stage, sorted."""
        return sorted(name for name in self.teams if self.stage_of(name) == stage_id)

    def submission(self, session, name: str) -> Submission:
        """The team's submission row."""
        return session.get(Submission, self.teams[name].submission_id)

    def ids(self, names: Sequence[str]) -> list[uuid.UUID]:
        """The submission ids of the named teams."""
        return [self.teams[name].submission_id for name in names]

    # -- panels, sheets, votes, imports -------------------------------------------------------

    def panel(self, stage_id: str, size: int, *, mfa: bool = False) -> list[Account]:
        """``size`` new reviewers who accepted the NDA, assigned to every submission in the
        stage."""
        reviewers = [self.make_user(Role.REVIEWER, mfa=mfa) for _ in range(size)]
        names = self.names_in(stage_id)
        for reviewer in reviewers:
            accept_nda(self.runtime, self.clock, reviewer)
            with self.session() as session:
                programme = self.programme(session)
                for name in names:
                    session.add(Assignment(programme_id=programme.id, stage=stage_id,
                                           submission_id=self.teams[name].submission_id,
                                           reviewer_id=reviewer.id))
        self.panels[stage_id] = reviewers
        return reviewers

    def score(self, stage_id: str, quality: Mapping[str, int],
              reviewers: Sequence[Account] | None = None) -> None:
        """Every reviewer of the stage's panel submits a sheet for each named team:
        quality ± seeded noise on every criterion."""
        stage = self.definition.stage(stage_id)
        for reviewer in reviewers or self.panels[stage_id]:
            for name, level in quality.items():
                scores = {criterion.id: max(0, min(100, level + self.rng.randint(-NOISE, NOISE)))
                          for criterion in stage.criteria}
                self._sheet(stage_id, name, reviewer, scores, None)

    def scored(self, stage_id: str, quality: Mapping[str, int], panel: int = 3) -> None:
        """The named teams move into the stage, the clock into its window, and a panel of
        ``panel`` reviewers scores them."""
        with self.session() as session:
            for name in quality:
                self.submission(session, name).stage = stage_id
        self.in_window(stage_id)
        self.panel(stage_id, panel)
        self.score(stage_id, quality)

    def vote(self, stage_id: str, name: str, accepts: Sequence[bool]) -> None:
        """The stage's panel votes on the team, one vote per reviewer in order."""
        for reviewer, accept in zip(self.panels[stage_id], accepts, strict=True):
            self._sheet(stage_id, name, reviewer, {}, accept)

    def _sheet(self, stage_id: str, name: str, reviewer: Account, scores: dict[str, int],
               vote: bool | None) -> None:
        runtime = self.runtime
        with self.session() as session:
            sheets = ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                                 definitions=runtime.definitions)
            sheet = sheets.save(self.submission(session, name), stage_id, actor(reviewer),
                                scores, {}, vote=vote)
            sheets.submit(sheet, actor(reviewer))

    def csv(self, values: Mapping[str, Decimal | int | str]) -> bytes:
        """A component CSV with the consortium column (ignored on import)."""
        lines = ["submission_id,consortium,score"]
        lines += [f"{self.teams[name].submission_id},{name},{value}"
                  for name, value in values.items()]
        return ("\r\n".join(lines) + "\r\n").encode()

    def import_csv(self, stage_id: str, component: str,
                   values: Mapping[str, Decimal | int | str]):
        """Import a component's scores as the officer."""
        with self.session() as session:
            return self.imports(session).import_csv(
                self.programme(session), stage_id, component, self.csv(values),
                f"{component}.csv", actor(self.officer))

    def act(self, method: str, stage_id: str, *args: object):
        """Call a ``StageRounds`` method on the programme and stage as the officer."""
        with self.session() as session:
            service = self.rounds(session)
            return getattr(service, method)(self.programme(session), stage_id,
                                            actor(self.officer), *args)

    def ranking(self, stage_id: str):
        """The stage's ranking."""
        with self.session() as session:
            return self.rounds(session).ranking(self.programme(session), stage_id)

    def conclude(self, stage_id: str) -> None:
        """Close, confirm and publish the stage as the officer."""
        for method in ("close", "confirm", "publish"):
            self.act(method, stage_id)


def world_of(names: Sequence[str] = TEAM_NAMES, prepare=None):
    """A builder for ``snapshot_fixtures``: ``build_world`` of ``names`` with the suite's
    factories, then ``prepare(world)``."""

    def build(runtime: Runtime, clock: Clock) -> EvaluationWorld:
        make_user = user_factory(runtime, clock)
        world = build_world(runtime, clock, make_user, team_factory(runtime, make_user), names)
        if prepare is not None:
            prepare(world)
        return world

    return build


def build_world(runtime: Runtime, clock: Clock, make_user, make_team,
                names: Sequence[str] = TEAM_NAMES) -> EvaluationWorld:
    """The named consortia with eligible submissions (submitted a minute apart, in order)
    in the programme's first stage, and an officer."""
    teams = {name: make_team(name) for name in names}
    definition = runtime.definitions[PROGRAMME]
    first = definition.stages[0].id
    with unit_of_work(runtime.sessions) as session:
        for index, team in enumerate(teams.values()):
            submission = session.get(Submission, team.submission_id)
            submission.state = SubmissionState.ELIGIBLE
            submission.submitted_at = (definition.submission_deadline
                                       - timedelta(hours=1) + timedelta(minutes=index))
            submission.stage = first
    officer = make_user(Role.OFFICER, mfa=True)
    return EvaluationWorld(runtime, clock, make_user, teams, officer)
