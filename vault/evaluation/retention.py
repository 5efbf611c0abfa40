"""Retention of the material of consortia that are out: schedules, notices, crypto-shredding.

When a published stage puts a submission out (not selected, eliminated, disqualified) and the
programme's definition has ``[retention]``, the submission gets a schedule: its consortium's key
is destroyed ``shred_after_days`` after the publication (crypto-shredding every document
version, also in restored backups), and the consortium is told ``notice_days`` before. Entering
the submission into a majority stage as a candidate cancels the schedule; if it is not selected
there it gets a new one.

``run`` is what an operator's timer calls (``vault retention run``): it sends the notices that
are due and shreds what is due. It never shreds without the notice period: a notice sent late
(the runner was not run) postpones the shredding until ``notice_days`` after it was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.documents.models import Submission
from vault.evaluation.models import RetentionSchedule
from vault.keys import KeyProvider
from vault.keys.service import KeyService
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition


@dataclass(frozen=True)
class RetentionDone:
    """What one run did: (consortium name, shred due) per notice, names of shredded ones."""

    notices: list[tuple[str, datetime]] = field(default_factory=list)
    shredded: list[str] = field(default_factory=list)


class Retention:
    """Retention schedules on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime],
                 keys: KeyProvider | None = None, audit: AuditLog | None = None,
                 request: RequestInfo | None = None) -> None:
        self.session = session
        self.clock = clock
        self.keys = keys
        self.audit = audit or AuditLog(session, clock=clock)
        self.request = request or RequestInfo()

    def schedule(self, definition: ProgrammeDefinition, submission: Submission, stage_id: str,
                 published_at: datetime) -> RetentionSchedule | None:
        """A schedule for a submission that is out after ``stage_id`` (none when the
        definition has no ``[retention]``)."""
        rule = definition.retention
        if rule is None:
            return None
        due = published_at + timedelta(days=rule.shred_after_days)
        row = RetentionSchedule(
            id=uuid.uuid4(), programme_id=submission.programme_id,
            consortium_id=submission.consortium_id, submission_id=submission.id,
            stage=stage_id, created_at=self.clock(), shred_due=due,
            notice_at=due - timedelta(days=rule.notice_days))
        self.session.add(row)
        self.session.flush()
        return row

    def pending(self, submission: Submission) -> RetentionSchedule | None:
        """The submission's schedule that is neither cancelled nor carried out."""
        return self.session.scalars(select(RetentionSchedule).where(
            RetentionSchedule.submission_id == submission.id,
            RetentionSchedule.cancelled_at.is_(None),
            RetentionSchedule.shredded_at.is_(None))).one_or_none()

    def cancel(self, submission: Submission, actor: Actor) -> RetentionSchedule | None:
        """Cancel the submission's pending schedule (it re-enters a stage); audited."""
        row = self.pending(submission)
        if row is None:
            return None
        row.cancelled_at = self.clock()
        self.session.flush()
        self.audit.record(Tag.RETENTION_CANCELLED, actor=actor, request=self.request, target={
            "consortium": submission.consortium_id, "submission": submission.id,
            "schedule": row.id})
        return row

    def run(self, actor: Actor) -> RetentionDone:
        """Send the notices that are due and crypto-shred the consortia whose time has come
        (after their notice period); each audited. Needs the key provider."""
        if self.keys is None:
            raise RuntimeError("retention needs the key provider")
        now = self.clock()
        done = RetentionDone()
        rows = list(self.session.scalars(
            select(RetentionSchedule)
            .where(RetentionSchedule.cancelled_at.is_(None),
                   RetentionSchedule.shredded_at.is_(None),
                   RetentionSchedule.notice_at <= now)
            .order_by(RetentionSchedule.shred_due, RetentionSchedule.id).with_for_update()))
        keys = KeyService(self.session, keys=self.keys, clock=self.clock)
        for row in rows:
            consortium = keys.consortium(row.consortium_id)
            if row.notice_sent_at is None:
                row.notice_sent_at = now
                self.audit.record(Tag.RETENTION_NOTICE, actor=actor, request=self.request,
                                  target={"consortium": row.consortium_id,
                                          "submission": row.submission_id, "schedule": row.id,
                                          "shred_due": row.shred_due.isoformat()})
                done.notices.append((consortium.name, row.shred_due))
            notice_period = row.shred_due - row.notice_at
            if now < row.shred_due or now < row.notice_sent_at + notice_period:
                continue
            if consortium.shredded_at is None:
                keys.shred(consortium.id)
            row.shredded_at = now
            self.audit.record(Tag.KEY_SHREDDED, actor=actor, request=self.request,
                              reasons=("retention",),
                              target={"consortium": consortium.id, "key": consortium.key_id,
                                      "schedule": row.id})
            done.shredded.append(consortium.name)
        self.session.flush()
        return done
