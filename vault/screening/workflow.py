"""The submission's state machine: submit, recall, withdraw, screening, decisions and the gate
to the written evaluation.

    draft ──submit──▶ submitted ──▶ screening ──▶ eligible ──▶ (first evaluation stage)
      ▲                  │                    ├─▶ returned ──resubmit──▶ resubmitted
      └─────recall───────┘                    └─▶ ineligible             ├─▶ eligible
                                                                         └─▶ ineligible
    returned ──▶ ineligible only after its correction deadline; withdrawn from any state but
    ineligible (withdrawn and ineligible are final).

Every change appends a ``SubmissionEvent`` (its reason sealed); submitting and resubmitting also
issue a ``SubmissionReceipt`` listing every document's newest version with its SHA-256. Who may
act is the caller's question (the access policies); this service refuses what nobody may do. It
flushes; the caller commits (and records the audit event in the same transaction).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.crypto import FieldCipher
from vault.documents.models import Submission, SubmissionState
from vault.documents.service import DocumentService
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.screening.errors import (
    CorrectionPending,
    DeadlinePassed,
    EmptySubmission,
    IllegalTransition,
    InvalidDecision,
    NotEligible,
    ReceiptNotFound,
    UnknownStage,
)
from vault.screening.models import SubmissionEvent, SubmissionReceipt

S = SubmissionState

#: Every legal change of state. Anything else raises ``IllegalTransition``.
TRANSITIONS: frozenset[tuple[SubmissionState, SubmissionState]] = frozenset({
    (S.DRAFT, S.SUBMITTED),
    (S.SUBMITTED, S.DRAFT),
    (S.SUBMITTED, S.SCREENING),
    (S.SCREENING, S.ELIGIBLE),
    (S.SCREENING, S.RETURNED),
    (S.SCREENING, S.INELIGIBLE),
    (S.RETURNED, S.RESUBMITTED),
    (S.RETURNED, S.INELIGIBLE),
    (S.RESUBMITTED, S.ELIGIBLE),
    (S.RESUBMITTED, S.INELIGIBLE),
    *((state, S.WITHDRAWN) for state in (S.DRAFT, S.SUBMITTED, S.RETURNED, S.RESUBMITTED,
                                         S.SCREENING, S.ELIGIBLE)),
})
#: The outcomes of an officer's decision.
OUTCOMES = frozenset({S.ELIGIBLE, S.RETURNED, S.INELIGIBLE})
#: Decisions and withdrawals say why, in at most this many characters.
MAX_REASON = 2000
#: How far ahead a correction deadline may be set.
MAX_CORRECTION_DAYS = 60
#: The stage of a submission while the call runs (see ``Submission.stage``).
CALL = "call"


@dataclass(frozen=True)
class EventView:
    """A state change as people read it, with its reason opened."""

    id: uuid.UUID
    from_state: SubmissionState | None
    to_state: SubmissionState
    actor_id: uuid.UUID | None
    actor_role: str
    at: datetime
    reason: str | None
    correction_deadline: datetime | None

    @property
    def is_decision(self) -> bool:
        """Whether this is an officer's decision (eligible, returned or ineligible)."""
        return self.to_state in OUTCOMES and self.from_state != self.to_state

    @property
    def is_stage_entry(self) -> bool:
        """Whether this is the entry into the first evaluation stage (the state stays)."""
        return self.from_state == self.to_state


def canonical_json(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text (not ASCII escapes): one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SubmissionWorkflow:
    """State changes of submissions on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, cipher: FieldCipher, clock: Callable[[], datetime],
                 documents: DocumentService,
                 definitions: Mapping[str, ProgrammeDefinition] | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.clock = clock
        self.documents = documents
        self.definitions = definitions or {}

    # -- the applicant's changes --------------------------------------------------------------

    def submit(self, submission: Submission, actor: Actor) -> SubmissionReceipt:
        """Submit a draft before the programme's deadline, or resubmit a returned submission
        before its correction deadline; returns the receipt.

        Raises ``IllegalTransition`` (any other state, or submitted meanwhile by someone else),
        ``DeadlinePassed`` or ``EmptySubmission``.
        """
        self._lock(submission)
        now = self.clock()
        if submission.state is S.RETURNED:
            target = S.RESUBMITTED
            deadline = submission.correction_deadline
            if deadline is None or now >= deadline:
                raise DeadlinePassed("The correction deadline has passed.")
        else:
            target = S.SUBMITTED
            self._check(submission, target)
            if now >= self._programme(submission).submission_deadline:
                raise DeadlinePassed("The submission deadline has passed.")
        items = self.documents.listing(submission)
        if not items:
            raise EmptySubmission()
        event = self._change(submission, target, actor)
        submission.submitted_at = now
        documents = [{
            "kind": item.document.kind,
            "slot": item.document.slot,
            "version": item.latest.version,
            "filename": item.latest.original_filename,
            "size": item.latest.size_bytes,
            "sha256": item.latest.sha256,
            "uploaded_at": item.latest.created_at.isoformat(),
        } for item in items]
        manifest = canonical_json({
            "submission": str(submission.id),
            "consortium": submission.consortium.name,
            "programme": self._programme(submission).code,
            "state": target.value,
            "at": event.at.isoformat(),
            "documents": documents,
        })
        receipt = SubmissionReceipt(
            id=uuid.uuid4(), submission_id=submission.id, event_id=event.id, created_at=event.at,
            manifest=manifest,
            manifest_sha256=hashlib.sha256(manifest.encode("utf-8")).hexdigest())
        self.session.add(receipt)
        self.session.flush()
        return receipt

    def recall(self, submission: Submission, actor: Actor) -> SubmissionEvent:
        """Take a submitted submission back to draft, before the deadline, to change it.

        Raises ``IllegalTransition`` (not submitted) or ``DeadlinePassed``.
        """
        self._lock(submission)
        self._check(submission, S.DRAFT)
        if self.clock() >= self._programme(submission).submission_deadline:
            raise DeadlinePassed("The submission deadline has passed.")
        event = self._change(submission, S.DRAFT, actor)
        submission.submitted_at = None
        self.session.flush()
        return event

    def withdraw(self, submission: Submission, actor: Actor, reason: str) -> SubmissionEvent:
        """Withdraw the submission from the programme for good.

        Raises ``InvalidDecision`` (no reason, or too long) or ``IllegalTransition`` (already
        withdrawn or ineligible).
        """
        reason = self._reason(reason)
        self._lock(submission)
        self._check(submission, S.WITHDRAWN)
        event = self._change(submission, S.WITHDRAWN, actor, reason=reason)
        self.session.flush()
        return event

    # -- screening and the officers' decisions -------------------------------------------------

    def start_screening(self, submission: Submission, actor: Actor) -> SubmissionEvent | None:
        """Move a submitted submission into screening; ``None`` when it is already screening
        (or resubmitted, which is screened as it is).

        Raises ``IllegalTransition`` from any other state.
        """
        self._lock(submission)
        if submission.state in (S.SCREENING, S.RESUBMITTED):
            return None
        self._check(submission, S.SCREENING)
        event = self._change(submission, S.SCREENING, actor)
        self.session.flush()
        return event

    def decide(self, submission: Submission, actor: Actor, outcome: SubmissionState,
               reason: str, correction_deadline: datetime | None = None) -> SubmissionEvent:
        """Record an officer's decision: eligible, returned (with a correction deadline) or
        ineligible, with a reason the applicant sees.

        Raises ``InvalidDecision`` (no reason, a reason too long, a missing, past or too distant
        correction deadline), ``IllegalTransition`` or ``CorrectionPending`` (a returned
        submission declared ineligible before its correction deadline).
        """
        reason = self._reason(reason)
        now = self.clock()
        if outcome is S.RETURNED:
            if correction_deadline is None:
                raise InvalidDecision("A returned submission needs a correction deadline.")
            if correction_deadline.tzinfo is None:
                raise InvalidDecision("The correction deadline needs a time zone.")
            if correction_deadline <= now:
                raise InvalidDecision("The correction deadline must be in the future.")
            if correction_deadline > now + timedelta(days=MAX_CORRECTION_DAYS):
                raise InvalidDecision("The correction deadline may be at most {days} days ahead.",
                                      days=MAX_CORRECTION_DAYS)
        else:
            correction_deadline = None
        self._lock(submission)
        if outcome not in OUTCOMES:
            raise IllegalTransition(submission.state, outcome)
        self._check(submission, outcome)
        if (submission.state is S.RETURNED and submission.correction_deadline is not None
                and now < submission.correction_deadline):
            raise CorrectionPending()
        event = self._change(submission, outcome, actor, reason=reason,
                             correction_deadline=correction_deadline)
        self.session.flush()
        return event

    def first_stage(self, programme: Programme) -> str:
        """The id of the programme's first evaluation stage; raises ``UnknownStage``."""
        definition = self.definitions.get(programme.code)
        if definition is None or not definition.stages:
            raise UnknownStage("The programme has no such review stage.")
        return definition.stages[0].id

    def enter_stage(self, submission: Submission, stage_id: str,
                    actor: Actor) -> SubmissionEvent:
        """Move an eligible submission into the programme's first evaluation stage.

        Raises ``UnknownStage`` (not the first stage, or already in a stage) or ``NotEligible``
        (any state but eligible: only eligible submissions are evaluated).
        """
        first = self.first_stage(self._programme(submission))
        if stage_id != first:
            raise UnknownStage("Submissions enter the evaluation at its first stage, {stage}.",
                               stage=first)
        self._lock(submission)
        if submission.state is not S.ELIGIBLE:
            raise NotEligible(state=submission.state)
        if submission.stage != CALL:
            raise UnknownStage("This submission is already in the {stage} stage.",
                               stage=submission.stage)
        event = self._event(submission, S.ELIGIBLE, actor)
        submission.stage = first
        programme = self._programme(submission)
        if programme.current_stage == CALL:
            programme.current_stage = first  # the evaluation has begun
        self.session.flush()
        return event

    def advance(self, programme: Programme, actor: Actor) -> list[Submission]:
        """Move every eligible submission of the programme still in the call into its first
        stage; the others stay where they are. Returns the submissions moved.

        Raises ``UnknownStage`` when the programme has no stages.
        """
        first = self.first_stage(programme)
        candidates = list(self.session.scalars(
            select(Submission).where(Submission.programme_id == programme.id,
                                     Submission.state == S.ELIGIBLE, Submission.stage == CALL)
            .order_by(Submission.id)))
        moved = []
        for submission in candidates:
            self._lock(submission)  # re-read: a withdrawal may have won meanwhile
            if submission.state is S.ELIGIBLE and submission.stage == CALL:
                self.enter_stage(submission, first, actor)
                moved.append(submission)
        return moved

    # -- reading ------------------------------------------------------------------------------

    def history(self, submission: Submission) -> list[EventView]:
        """Every state change of the submission, oldest first, with the reasons opened."""
        events = self.session.scalars(
            select(SubmissionEvent).where(SubmissionEvent.submission_id == submission.id)
            .order_by(SubmissionEvent.at, SubmissionEvent.id))
        return [self._view(event) for event in events]

    def decision(self, submission: Submission) -> EventView | None:
        """The latest officer decision on the submission, if any."""
        decisions = [event for event in self.history(submission) if event.is_decision]
        return decisions[-1] if decisions else None

    def receipts(self, submission: Submission) -> list[SubmissionReceipt]:
        """The submission's receipts, newest first."""
        return list(self.session.scalars(
            select(SubmissionReceipt).where(SubmissionReceipt.submission_id == submission.id)
            .order_by(SubmissionReceipt.created_at.desc(), SubmissionReceipt.id)))

    def receipt(self, submission: Submission, receipt_id: uuid.UUID) -> SubmissionReceipt:
        """One receipt of the submission; raises ``ReceiptNotFound``."""
        receipt = self.session.get(SubmissionReceipt, receipt_id)
        if receipt is None or receipt.submission_id != submission.id:
            raise ReceiptNotFound()
        return receipt

    # -- internals ----------------------------------------------------------------------------

    def _lock(self, submission: Submission) -> None:
        """Lock the submission's row and re-read its state: of two concurrent changes, the
        second sees the first's result. (SQLite: the transaction already holds the writer lock,
        taken by ``BEGIN IMMEDIATE``.)"""
        self.session.scalars(
            select(Submission).where(Submission.id == submission.id)
            .with_for_update(of=Submission)
            .execution_options(populate_existing=True)).one()

    @staticmethod
    def _check(submission: Submission, target: SubmissionState) -> None:
        if (submission.state, target) not in TRANSITIONS:
            raise IllegalTransition(submission.state, target)

    @staticmethod
    def _reason(reason: str | None) -> str:
        text = (reason or "").strip()
        if not text:
            raise InvalidDecision("Give a reason.")
        if len(text) > MAX_REASON:
            raise InvalidDecision("The reason is longer than {limit} characters.",
                                  limit=MAX_REASON)
        return text

    def _programme(self, submission: Submission) -> Programme:
        return submission.consortium.programme

    def _change(self, submission: Submission, target: SubmissionState, actor: Actor, *,
                reason: str | None = None,
                correction_deadline: datetime | None = None) -> SubmissionEvent:
        self._check(submission, target)
        event = self._event(submission, target, actor, reason=reason,
                            correction_deadline=correction_deadline)
        submission.state = target
        submission.correction_deadline = correction_deadline
        return event

    def _event(self, submission: Submission, target: SubmissionState, actor: Actor, *,
               reason: str | None = None,
               correction_deadline: datetime | None = None) -> SubmissionEvent:
        event_id = uuid.uuid4()
        at = self.clock()
        # Strictly after the previous event, so the history has one order even when the clock
        # has not moved between two changes.
        latest = self.session.scalar(select(func.max(SubmissionEvent.at))
                                     .where(SubmissionEvent.submission_id == submission.id))
        if latest is not None and at <= latest:
            at = latest + timedelta(microseconds=1)
        event = SubmissionEvent(
            id=event_id, submission_id=submission.id, from_state=submission.state,
            to_state=target, actor_id=actor.user_id, actor_role=actor.role_name, at=at,
            reason_sealed=(self.cipher.seal("submission_events", "reason", event_id, reason)
                           if reason is not None else None),
            correction_deadline=correction_deadline)
        self.session.add(event)
        self.session.flush()
        return event

    def _view(self, event: SubmissionEvent) -> EventView:
        reason = (self.cipher.open("submission_events", "reason", event.id, event.reason_sealed)
                  if event.reason_sealed is not None else None)
        return EventView(id=event.id, from_state=event.from_state, to_state=event.to_state,
                         actor_id=event.actor_id, actor_role=event.actor_role, at=event.at,
                         reason=reason, correction_deadline=event.correction_deadline)
