"""A small world for the policy tests: the demo programme synced from its definition, a second
programme, two consortia (alpha and beta) each with a submission and a proposal document, and
one account per role, plus helpers that add the facts the policies test (NDA acceptances,
assignments, conflicts, sanctions, dual-control grants, the submission's stage).

Accounts are inserted as rows with one shared password hash: nobody signs in here, and hashing
a password per account would dominate the time of a decision-table row.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vault import crypto
from vault.assignments.models import Assignment
from vault.conflicts.links import new_conflict
from vault.conflicts.models import ConflictSource, ConflictStatus, Sanction
from vault.consortia.models import Consortium, ConsortiumContact
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.documents.models import Document, Submission, SubmissionState
from vault.documents.submissions import SubmissionService
from vault.grants.models import DualControlGrant
from vault.identity.models import Role, User
from vault.nda.models import NdaAcceptance
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.policy.actions import Actor
from vault.policy.entities import Resource
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.runtime import Runtime

PROGRAMME = "sovereign-ai-2025"
OTHER_PROGRAMME = "other-call-2026"
#: The stage reviewers are assigned to in these tests.
STAGE = "written"
#: Inside the written stage's review window (2027-01-25 09:00 KST .. 2027-02-12 18:00 KST).
IN_WINDOW = datetime(2027, 2, 1, 3, 0, tzinfo=UTC)
#: The written window's edges, in UTC.
WINDOW_OPENS = datetime(2027, 1, 25, 0, 0, tzinfo=UTC)
WINDOW_CLOSES = datetime(2027, 2, 12, 9, 0, tzinfo=UTC)
#: An NDA version that is not the programme's current one.
OUTDATED_NDA = "0" * 64

#: The accounts of a world: name → role.
ACCOUNTS = {
    "applicant_alpha": Role.APPLICANT,
    "applicant_beta": Role.APPLICANT,
    "reviewer": Role.REVIEWER,
    "officer": Role.OFFICER,
    "officer2": Role.OFFICER,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
}


@functools.cache
def _password_hash() -> str:
    return crypto.hash_password("insecure-policy-world-password")


@dataclass(frozen=True)
class TeamIds:
    """A consortium, its submission and its proposal document."""

    consortium: uuid.UUID
    submission: uuid.UUID
    document: uuid.UUID


@dataclass(frozen=True)
class World:
    """Ids of everything :func:`build_world` created."""

    programme: uuid.UUID
    other_programme: uuid.UUID
    teams: dict[str, TeamIds]
    users: dict[str, uuid.UUID]
    #: The demo programme's current NDA version.
    nda_sha256: str

    def actor(self, name: str, *, mfa: bool = True) -> Actor:
        """The acting account ``name`` (applicants act for their own consortium; ``operator``
        is the host operator at the command line)."""
        if name == "operator":
            return Actor.operator()
        role = ACCOUNTS[name]
        consortia: frozenset[uuid.UUID] = frozenset()
        if name.startswith("applicant_"):
            consortia = frozenset({self.teams[name.removeprefix("applicant_")].consortium})
        return Actor(user_id=self.users[name], role=role, consortium_ids=consortia, mfa=mfa)

    def resource(self, session: Session, target: str) -> Resource:
        """A resource by name: ``system``, ``programme``, ``other-programme``, ``alpha`` (the
        consortium), ``alpha.submission``, ``alpha.document``, ``grant`` (the newest grant)."""
        if target == "system":
            return None
        if target == "programme":
            return session.get(Programme, self.programme)
        if target == "other-programme":
            return session.get(Programme, self.other_programme)
        if target == "grant":
            grant = session.scalars(select(DualControlGrant).order_by(
                DualControlGrant.requested_at.desc()).limit(1)).first()
            assert grant is not None, "no grant in this world"
            return grant
        team, _, part = target.partition(".")
        ids = self.teams[team]
        model = {"": Consortium, "submission": Submission, "document": Document}[part]
        found = session.get(model, {"": ids.consortium, "submission": ids.submission,
                                    "document": ids.document}[part])
        assert found is not None
        return found


def build_world(runtime: Runtime) -> World:
    """Create the world in its own committed transaction."""
    with unit_of_work(runtime.sessions) as session:
        programme, _ = ProgrammeService(session).sync(runtime.definitions[PROGRAMME])
        other = Programme(code=OTHER_PROGRAMME, title_ko="다른 공모", title_en="Another call",
                          submission_deadline=datetime(2027, 6, 1, tzinfo=UTC),
                          current_stage="call", definition_sha256="1" * 64)
        session.add(other)
        users = {}
        for name, role in ACCOUNTS.items():
            user = User(email=f"{name}@test.example", email_key=f"{name}@test.example",
                        display_name=name.replace("_", " ").title(), role=role,
                        password_hash=_password_hash())
            session.add(user)
            users[name] = user
        session.flush()
        teams = {}
        consortia = ConsortiumService(session, cipher=runtime.cipher)
        for name in ("alpha", "beta"):
            lead = OrganizationService(session).get_or_create(f"{name.title()} Lead Co.",
                                                              OrganizationKind.COMPANY)
            consortium = consortia.create(programme, f"Team {name.title()}", lead)
            consortia.add_contact(consortium, users[f"applicant_{name}"], lead=True)
            submission = SubmissionService(session).open_draft(consortium)
            document = Document(submission=submission, kind="proposal", slot="")
            session.add(document)
            session.flush()
            teams[name] = TeamIds(consortium.id, submission.id, document.id)
        nda = runtime.definitions[PROGRAMME].nda
        assert nda is not None, "the demo programme has an NDA"
        return World(programme=programme.id, other_programme=other.id, teams=teams,
                     users={name: user.id for name, user in users.items()},
                     nda_sha256=nda.sha256)


class Facts:
    """Adds (and removes) the facts the policies test, on one session; the caller commits."""

    def __init__(self, session: Session, world: World, runtime: Runtime) -> None:
        self.session = session
        self.world = world
        self.cipher = runtime.cipher

    def nda(self, user: str = "reviewer", *, version: str | None = None,
            accepted_at: datetime = IN_WINDOW - timedelta(days=3),
            expires_at: datetime = datetime(2028, 12, 31, 14, 59, 59, tzinfo=UTC)) -> None:
        """``user`` accepted the NDA ``version`` (default: the current one)."""
        self.session.add(NdaAcceptance(
            user_id=self.world.users[user], programme_id=self.world.programme,
            nda_sha256=version or self.world.nda_sha256, typed_name="Test Reviewer",
            accepted_at=accepted_at, expires_at=expires_at, client_address="127.0.0.1",
            user_agent="pytest", channel="web"))
        self.session.flush()

    def contact(self, user: str, team: str) -> None:
        """Applicant ``user`` acts for ``team`` too."""
        self.session.add(ConsortiumContact(consortium_id=self.world.teams[team].consortium,
                                           user_id=self.world.users[user]))
        self.session.flush()

    def assign(self, team: str = "alpha", stage: str = STAGE, user: str = "reviewer") -> None:
        """``user`` reviews ``team``'s submission in ``stage``."""
        self.session.add(Assignment(
            programme_id=self.world.programme, stage=stage,
            submission_id=self.world.teams[team].submission, reviewer_id=self.world.users[user],
            assigned_by_id=self.world.users["officer"]))
        self.session.flush()

    def unassign(self, team: str = "alpha", user: str = "reviewer") -> None:
        """Remove every assignment of ``user`` to ``team``'s submission."""
        self.session.execute(delete(Assignment).where(
            Assignment.submission_id == self.world.teams[team].submission,
            Assignment.reviewer_id == self.world.users[user]))
        self.session.flush()

    def stage(self, stage: str, team: str = "alpha") -> None:
        """Move ``team``'s submission to ``stage``."""
        submission = self.session.get(Submission, self.world.teams[team].submission)
        assert submission is not None
        submission.stage = stage
        self.session.flush()

    def withdraw(self, team: str = "alpha") -> None:
        """``team`` withdrew its application."""
        submission = self.session.get(Submission, self.world.teams[team].submission)
        assert submission is not None
        submission.state = SubmissionState.WITHDRAWN
        self.session.flush()

    def conflict(self, team: str = "alpha", user: str = "reviewer",
                 status: ConflictStatus = ConflictStatus.PENDING) -> None:
        """``user`` has a conflict with ``team`` in ``status``."""
        row_id = uuid.uuid4()
        details = json.dumps({"kind": "employment", "description": "insecure test conflict"})
        self.session.add(new_conflict(
            self.cipher,
            id=row_id, programme_id=self.world.programme, user_id=self.world.users[user],
            consortium_id=self.world.teams[team].consortium, source=ConflictSource.DECLARED,
            status=status, details_sealed=self.cipher.seal("conflicts", "details", row_id,
                                                           details),
            created_by_id=self.world.users[user]))
        self.session.flush()

    def sanction(self, imposed_on: date, user: str = "reviewer") -> None:
        """``user`` was sanctioned on ``imposed_on``."""
        row_id = uuid.uuid4()
        self.session.add(Sanction(
            id=row_id, user_id=self.world.users[user], imposed_on=imposed_on,
            reason_sealed=self.cipher.seal("sanctions", "reason", row_id, "insecure test"),
            recorded_by_id=self.world.users["officer"]))
        self.session.flush()

    def grant(self, team: str = "alpha", requester: str = "officer",
              approver: str | None = "officer2", *, now: datetime = IN_WINDOW,
              hours: float = 8, revoked: bool = False) -> None:
        """A dual-control grant for ``requester`` on ``team``: approved by ``approver`` (or
        pending when ``None``) at ``now``, lasting ``hours`` (negative: already expired)."""
        row_id = uuid.uuid4()
        self.session.add(DualControlGrant(
            id=row_id, consortium_id=self.world.teams[team].consortium,
            requested_by_id=self.world.users[requester],
            reason_sealed=self.cipher.seal("dual_control_grants", "reason", row_id,
                                           "insecure test"),
            requested_at=now - timedelta(hours=1),
            approved_by_id=self.world.users[approver] if approver else None,
            approved_at=now - timedelta(minutes=30) if approver else None,
            expires_at=now + timedelta(hours=hours) if approver else None,
            revoked_at=now - timedelta(minutes=1) if revoked else None))
        self.session.flush()

