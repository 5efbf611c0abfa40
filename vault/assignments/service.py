"""Assigning reviewers to submissions, per stage: the checks, the panels and the load balance.

Who may assign is the caller's question (``assignment:manage`` on the programme, asked at the
one enforcement point); this service refuses what no officer may do: assigning someone who is not
an active reviewer, to a stage the programme does not have, while a conflict of interest with the
consortium is in effect or a recent sanction excludes them, or twice. Every check runs before any
change, so a refused assignment leaves nothing behind.

Panel membership is confidential while the stage runs: only officers list a stage's panel; a
reviewer lists only their own assignments (``for_reviewer``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.assignments.errors import (
    AlreadyAssigned,
    AssignmentError,
    NotAReviewer,
    ReviewerConflicted,
    ReviewerSanctioned,
    UnknownStage,
)
from vault.assignments.models import Assignment
from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.conflicts.links import conflicts_between
from vault.conflicts.models import Conflict, ConflictSource, ConflictStatus
from vault.conflicts.rules import recent_sanction, rules_for
from vault.consortia.models import Consortium
from vault.crypto import FieldCipher
from vault.documents.models import Submission
from vault.identity.models import Role, User
from vault.policy.actions import Actor
from vault.programmes.definition import CALL, ProgrammeDefinition, Stage
from vault.programmes.models import Programme


@dataclass(frozen=True)
class Refusal:
    """One pair a bulk assignment could not make, and why."""

    submission: Submission
    reviewer: User
    error: AssignmentError

    @property
    def reason(self) -> str:
        """The short English reason (as recorded in the audit log)."""
        return self.error.reason


@dataclass(frozen=True)
class BulkResult:
    """What a bulk assignment did: partial success is reported pair by pair."""

    added: list[Assignment] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewerLoad:
    """One reviewer's share of a stage's panels."""

    reviewer: User
    #: Submissions the reviewer is assigned to in the stage.
    assignments: int
    #: Consortia of the programme the reviewer has a conflict in effect with.
    conflicts: int
    #: More than one assignment above the stage's mean: a candidate to relieve.
    heavy: bool


@dataclass(frozen=True)
class StageLoad:
    """The load-balance view of a stage."""

    reviewers: list[ReviewerLoad]
    #: Mean assignments per active reviewer.
    mean: float
    #: The largest load (the scale of the bars; at least 1).
    most: int


class AssignmentService:
    """Assignment operations on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition], audit: AuditLog,
                 cipher: FieldCipher, request: RequestInfo | None = None) -> None:
        self.session = session
        #: Opens which consortium a conflict is about (sealed) and computes its link digest.
        self.cipher = cipher
        self.clock = clock
        self.definitions = definitions
        self.audit = audit
        self.request = request or RequestInfo()

    # -- lookups ------------------------------------------------------------------------------

    def stage(self, programme: Programme, stage_id: str) -> Stage:
        """The programme's review stage ``stage_id``; raises ``UnknownStage``."""
        definition = self.definitions.get(programme.code)
        if definition is None or stage_id == CALL:
            raise UnknownStage(f"unknown stage {stage_id[:64]!r}")
        try:
            return definition.stage(stage_id)
        except KeyError:
            raise UnknownStage(f"unknown stage {stage_id[:64]!r}") from None

    def reviewers(self) -> list[User]:
        """Every active reviewer, by name: who can be assigned."""
        return list(self.session.scalars(
            select(User).where(User.role == Role.REVIEWER, User.active.is_(True))
            .order_by(User.display_name, User.email_key)))

    def user(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if any."""
        return self.session.get(User, user_id)

    def submissions(self, programme: Programme) -> list[Submission]:
        """The programme's submissions, by consortium name."""
        return list(self.session.scalars(
            select(Submission).join(Consortium, Submission.consortium_id == Consortium.id)
            .where(Submission.programme_id == programme.id).order_by(Consortium.name)))

    def submission(self, programme: Programme, submission_id: uuid.UUID) -> Submission | None:
        """The programme's submission with this id, if any."""
        submission = self.session.get(Submission, submission_id)
        if submission is None or submission.programme_id != programme.id:
            return None
        return submission

    def get(self, assignment_id: uuid.UUID) -> Assignment | None:
        """The assignment with this id, if any."""
        return self.session.get(Assignment, assignment_id)

    def find(self, submission: Submission, reviewer: User, stage_id: str) -> Assignment | None:
        """The assignment of ``reviewer`` to ``submission`` in ``stage_id``, if any."""
        return self.session.scalar(select(Assignment).where(
            Assignment.stage == stage_id, Assignment.submission_id == submission.id,
            Assignment.reviewer_id == reviewer.id))

    # -- checks -------------------------------------------------------------------------------

    def check(self, submission: Submission, reviewer: User, stage_id: str) -> None:
        """Whether the assignment may be made; raises ``UnknownStage``, ``NotAReviewer``,
        ``ReviewerConflicted``, ``ReviewerSanctioned`` or ``AlreadyAssigned``."""
        programme = submission.consortium.programme
        self.stage(programme, stage_id)
        if reviewer.role is not Role.REVIEWER or not reviewer.active:
            raise NotAReviewer(name=reviewer.display_name)
        sources = self.conflict_sources(reviewer, submission.consortium)
        if sources:
            raise ReviewerConflicted(name=reviewer.display_name, sources=sources)
        sanctioned_on = self.sanctioned_on(reviewer, programme)
        if sanctioned_on is not None:
            day = sanctioned_on.isoformat()
            raise ReviewerSanctioned(f"sanctioned on {day}", name=reviewer.display_name,
                                     date=day)
        if self.find(submission, reviewer, stage_id) is not None:
            raise AlreadyAssigned(name=reviewer.display_name)

    def conflict_sources(self, user: User, consortium: Consortium) -> tuple[str, ...]:
        """How the conflicts in effect between ``user`` and ``consortium`` arose (declared,
        detected, challenged); empty when there is none. Pending conflicts are in effect."""
        found = {c.source for c in conflicts_between(self.session, self.cipher, user.id,
                                                     consortium.id)}
        order = list(ConflictSource)
        return tuple(source.value for source in sorted(set(found), key=order.index))

    def sanctioned_on(self, user: User, programme: Programme) -> date | None:
        """The latest sanction within the programme's exclusion period, if any."""
        return recent_sanction(self.session, user.id, rules_for(self.definitions, programme.code),
                               self.clock().date())

    # -- changes ------------------------------------------------------------------------------

    def assign(self, actor: Actor, submission: Submission, reviewer: User,
               stage_id: str) -> Assignment:
        """Put ``reviewer`` on ``submission``'s panel for ``stage_id``; raises what ``check``
        raises (nothing is stored then: the caller records the refusal with ``refused``)."""
        self.check(submission, reviewer, stage_id)
        programme = submission.consortium.programme
        assignment = Assignment(
            id=uuid.uuid4(), programme_id=programme.id, stage=stage_id,
            submission_id=submission.id, reviewer_id=reviewer.id, assigned_by_id=actor.user_id,
            created_at=self.clock())
        self.session.add(assignment)
        try:
            # A concurrent identical assignment loses here, not at commit.
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise AlreadyAssigned(name=reviewer.display_name) from None
        self.audit.record(Tag.ASSIGNMENT_ADDED, actor=actor, request=self.request,
                          target=_target(programme, stage_id, submission, reviewer))
        return assignment

    def refused(self, actor: Actor, submission: Submission, reviewer: User, stage_id: str,
                error: AssignmentError) -> None:
        """Record a refused assignment (``assignment:refused``) with its reason."""
        self.audit.record(Tag.ASSIGNMENT_REFUSED, actor=actor, request=self.request,
                          target=_target(submission.consortium.programme, stage_id, submission,
                                         reviewer),
                          decision="deny", reasons=(error.reason,))

    def bulk_assign(self, actor: Actor, stage_id: str, reviewers: Iterable[User],
                    submissions: Iterable[Submission]) -> BulkResult:
        """Assign every reviewer to every submission where allowed; each refused pair is
        recorded and reported with its reason (partial success is fine)."""
        result = BulkResult()
        reviewers = list(reviewers)
        for submission in submissions:
            for reviewer in reviewers:
                try:
                    result.added.append(self.assign(actor, submission, reviewer, stage_id))
                except AssignmentError as error:
                    self.refused(actor, submission, reviewer, stage_id, error)
                    result.refused.append(Refusal(submission, reviewer, error))
        return result

    def unassign(self, actor: Actor, assignment: Assignment) -> None:
        """Take the reviewer off the panel: their access ends with the next request."""
        submission = assignment.submission
        target = _target(submission.consortium.programme, assignment.stage, submission,
                         assignment.reviewer)
        self.session.delete(assignment)
        self.session.flush()
        self.audit.record(Tag.ASSIGNMENT_REMOVED, actor=actor, request=self.request,
                          target=target)

    # -- listings -----------------------------------------------------------------------------

    def for_stage(self, programme: Programme, stage_id: str) -> list[Assignment]:
        """A stage's panels (confidential: officers only), by consortium and reviewer."""
        return list(self.session.scalars(
            select(Assignment)
            .join(Submission, Assignment.submission_id == Submission.id)
            .join(Consortium, Submission.consortium_id == Consortium.id)
            .join(User, Assignment.reviewer_id == User.id)
            .where(Assignment.programme_id == programme.id, Assignment.stage == stage_id)
            .order_by(Consortium.name, User.display_name, User.email_key)))

    def load(self, programme: Programme, stage_id: str) -> StageLoad:
        """Per active reviewer (and anyone still assigned): assignments in the stage and
        conflicts in effect with the programme's consortia; flags loads above the mean + 1."""
        counts = dict(self.session.execute(
            select(Assignment.reviewer_id, func.count())
            .where(Assignment.programme_id == programme.id, Assignment.stage == stage_id)
            .group_by(Assignment.reviewer_id)).all())
        conflicts = dict(self.session.execute(
            # One link digest per (person, consortium): distinct digests count consortia.
            select(Conflict.user_id, func.count(Conflict.link_digest.distinct()))
            .where(Conflict.programme_id == programme.id,
                   Conflict.status != ConflictStatus.DISMISSED)
            .group_by(Conflict.user_id)).all())
        people = {user.id: user for user in self.reviewers()}
        for user_id in counts.keys() - people.keys():  # deactivated since being assigned
            people[user_id] = self.session.get(User, user_id)
        ordered = sorted(people.values(), key=lambda u: (u.display_name, u.email_key))
        mean = sum(counts.values()) / len(ordered) if ordered else 0.0
        rows = [ReviewerLoad(reviewer=user, assignments=counts.get(user.id, 0),
                             conflicts=conflicts.get(user.id, 0),
                             heavy=counts.get(user.id, 0) > mean + 1)
                for user in ordered]
        return StageLoad(reviewers=rows, mean=mean, most=max([1, *counts.values()]))

    def for_reviewer(self, user: User) -> list[Assignment]:
        """The reviewer's own assignments with their submissions, by programme and stage."""
        return list(self.session.scalars(
            select(Assignment)
            .join(Submission, Assignment.submission_id == Submission.id)
            .join(Consortium, Submission.consortium_id == Consortium.id)
            .where(Assignment.reviewer_id == user.id)
            .order_by(Assignment.programme_id, Assignment.stage, Consortium.name)))



def _target(programme: Programme, stage_id: str, submission: Submission,
            reviewer: User) -> dict[str, object]:
    return {"programme": programme.code, "stage": stage_id, "submission": submission.id,
            "reviewer": reviewer.id, "consortium": submission.consortium_id}

