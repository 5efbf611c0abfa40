"""Test helpers for stage rounds: teams in a stage with a panel's submitted sheets, and a
component CSV for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.conftest import Account, Clock, Team, team_factory, user_factory
from tests.reviewing import PROGRAMME, accept_nda, assign, enter_stage
from vault.db import unit_of_work
from vault.documents.models import Submission, SubmissionState
from vault.evaluation.sheets import ScoreSheets
from vault.identity.models import Role
from vault.policy.actions import Actor
from vault.runtime import Runtime

#: The first stage evaluation: benchmark (import) 40, experts (panel) 35, users (import) 25;
#: one team eliminated; a from-scratch disqualification rule.
STAGE = "stage_1"
#: Each team's panel score on every criterion (distinct, so the ranking has no ties).
PANEL = {"Team Alpha": 90, "Team Beta": 80, "Team Gamma": 70, "Team Delta": 60}


@dataclass
class StageWorld:
    """Teams in ``STAGE`` with two reviewers' submitted sheets, and an officer."""

    officer: Account
    teams: dict[str, Team]
    reviewers: list[Account]
    other_applicant: Account
    stage: str = STAGE
    reviewer_names: list[str] = field(default_factory=list)

    def team(self, name: str) -> Team:
        """The team called ``name``."""
        return self.teams[name]


def scores_for(runtime: Runtime, stage: str, value: int) -> dict[str, int]:
    """Every criterion of ``stage`` scored ``value``."""
    definition = runtime.definitions[PROGRAMME]
    return {criterion.id: value for criterion in definition.stage(stage).criteria}


def submit_sheet(runtime: Runtime, reviewer: Account, team: Team, stage: str,
                 scores: dict[str, int]) -> None:
    """The reviewer's sheet for the team, saved and submitted."""
    actor = Actor(user_id=reviewer.id, role=Role.REVIEWER, mfa=True)
    with unit_of_work(runtime.sessions) as session:
        sheets = ScoreSheets(session, cipher=runtime.cipher, clock=runtime.clock,
                             definitions=runtime.definitions)
        submission = session.get(Submission, team.submission_id)
        sheet = sheets.save(submission, stage, actor, scores, {})
        sheets.submit(sheet, actor)


def build_world(runtime: Runtime, clock: Clock, make_user, make_team,
                panel: dict[str, int] | None = None, stage: str = STAGE) -> StageWorld:
    """Teams (submitted and eligible, in ``stage``), two reviewers who submitted a sheet for
    each, an officer with a second factor and an applicant of no team in the stage."""
    panel = panel or PANEL
    officer = make_user(Role.OFFICER, mfa=True)
    teams = {name: make_team(name, partners=(f"{name} University",)) for name in panel}
    for index, team in enumerate(teams.values()):
        with unit_of_work(runtime.sessions) as session:
            submission = session.get(Submission, team.submission_id)
            submission.state = SubmissionState.ELIGIBLE
            submission.submitted_at = datetime(2027, 1, 10, tzinfo=UTC) + timedelta(hours=index)
        enter_stage(runtime, clock, team, stage)
    reviewers = [make_user(Role.REVIEWER, mfa=True) for _ in range(2)]
    for reviewer in reviewers:
        accept_nda(runtime, clock, reviewer)
        for name, team in teams.items():
            assign(runtime, reviewer, team, stage)
            submit_sheet(runtime, reviewer, team, stage, scores_for(runtime, stage, panel[name]))
    other = make_team("Team Outsider").applicant
    return StageWorld(officer=officer, teams=teams, reviewers=reviewers, other_applicant=other,
                      stage=stage)


def stage_world(runtime: Runtime, clock: Clock) -> StageWorld:
    """``build_world`` with the test suite's account and team factories (a builder for
    ``snapshot_fixtures``)."""
    make_user = user_factory(runtime, clock)
    return build_world(runtime, clock, make_user, team_factory(runtime, make_user))


def component_csv(world: StageWorld, values: dict[str, str], *, header: str = "submission_id,score"
                  ) -> str:
    """A component CSV with one row per team named in ``values`` (team name → score text)."""
    lines = [header]
    lines += [f"{world.team(name).submission_id},{score}" for name, score in values.items()]
    return "\n".join(lines) + "\n"
