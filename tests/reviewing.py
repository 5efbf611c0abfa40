"""Test helpers for reviewing: a reviewer with everything the policies require, and real PDFs."""

from __future__ import annotations

import io
from datetime import timedelta

from pypdf import PdfReader

from tests.conftest import Account, Clock, Team, team_factory, user_factory
from tests.test_watermark import Page, make_pdf
from vault.assignments.models import Assignment
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.identity.models import Role
from vault.nda.models import NdaAcceptance
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime

PROGRAMME = "sovereign-ai-2025"


def text_pdf(pages: int = 3) -> bytes:
    """A small real PDF with text on every page."""
    return make_pdf(*[Page() for _ in range(pages)])


def page_texts(data: bytes) -> list[str]:
    """The extracted text of every page."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def enter_stage(runtime: Runtime, clock: Clock, team: Team, stage: str = "written") -> None:
    """Move the team's submission into ``stage`` and the clock one day into its window."""
    definition = runtime.definitions[PROGRAMME]
    with unit_of_work(runtime.sessions) as session:
        session.get(Submission, team.submission_id).stage = stage
    clock.now = definition.stage(stage).review_opens + timedelta(days=1)


def accept_nda(runtime: Runtime, clock: Clock, account: Account) -> None:
    """Record the reviewer's acceptance of the programme's current NDA."""
    definition = runtime.definitions[PROGRAMME]
    with unit_of_work(runtime.sessions) as session:
        programme_id = ProgrammeService(session).by_code(PROGRAMME).id
        session.add(NdaAcceptance(
            user_id=account.id, programme_id=programme_id, nda_sha256=definition.nda.sha256,
            typed_name="Test Reviewer", accepted_at=clock(),
            expires_at=definition.nda.accepted_until, client_address="127.0.0.1",
            user_agent="pytest", channel="web"))


def assign(runtime: Runtime, account: Account, team: Team, stage: str = "written") -> None:
    """Assign the reviewer to the team's submission for ``stage``."""
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        session.add(Assignment(programme_id=submission.programme_id, stage=stage,
                               submission_id=submission.id, reviewer_id=account.id))


def ready_reviewer(runtime: Runtime, make_user, clock: Clock, team: Team,
                   stage: str = "written") -> Account:
    """A reviewer with MFA, the current NDA accepted, assigned to ``team`` in ``stage``, with the
    submission in that stage and the clock inside its review window."""
    reviewer = make_user(Role.REVIEWER, mfa=True)
    enter_stage(runtime, clock, team, stage)
    accept_nda(runtime, clock, reviewer)
    assign(runtime, reviewer, team, stage)
    return reviewer


def team_and_reviewer(runtime: Runtime, clock: Clock) -> tuple[Team, Account]:
    """Team Alpha in the written stage and a reviewer ready to score it (a builder for
    ``snapshot_fixtures``)."""
    make_user = user_factory(runtime, clock)
    team = team_factory(runtime, make_user)("Team Alpha")
    return team, ready_reviewer(runtime, make_user, clock, team)
