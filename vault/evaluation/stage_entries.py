"""Who is in a stage's ranking: disqualifications (and lifting them) and the candidates an
officer enters into a stage decided by a panel majority.

``StageEntries`` is part of ``vault.evaluation.stages.StageRounds`` (which sets up the session,
cipher, clock, definitions, retention and the audit log it uses).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from vault.audit.service import Tag
from vault.documents.models import Submission, SubmissionState
from vault.evaluation.errors import (
    AlreadyDisqualified,
    NotACandidate,
    NotAMajorityStage,
    NotDisqualified,
    NotInStage,
    PanelClosed,
    RoundConfirmed,
    UnknownRule,
)
from vault.evaluation.models import (
    RoundState,
    StageDisqualification,
    StageOutcome,
    StageOutcomeKind,
)
from vault.evaluation.rounds import (
    clean_reason,
    definition_stage,
    lock_submission,
    round_row,
    state_of,
)
from vault.policy.actions import Actor
from vault.programmes.models import Programme

if TYPE_CHECKING:
    from vault.evaluation.stages import StageRounds

_TABLE = StageDisqualification.__tablename__
#: A submission with its latest outcome one of these may enter a majority stage.
ENTERABLE = frozenset({StageOutcomeKind.NOT_SELECTED, StageOutcomeKind.ELIMINATED})


class StageEntries:
    """Disqualifications and majority-stage candidates."""

    def disqualify(self: StageRounds, submission: Submission, stage_id: str, rule_id: str,
                   reason: str, actor: Actor) -> StageDisqualification:
        """Apply a disqualification rule of the stage to a submission in it, with a reason
        (sealed); it is ranked after all others and eliminated whatever its score. Audited.

        Raises ``UnknownStage``, ``UnknownRule``, ``InvalidStageReason``, ``NotInStage``,
        ``RoundConfirmed`` or ``AlreadyDisqualified``.
        """
        programme = submission.consortium.programme
        _, stage = definition_stage(self.definitions, programme, stage_id)
        if rule_id not in {rule.id for rule in stage.disqualifications}:
            raise UnknownRule(stage=stage_id, rule=str(rule_id)[:64])
        text = clean_reason(reason)
        self._unconfirmed(programme, stage_id)
        if submission.stage != stage_id:
            raise NotInStage(stage=stage_id)
        if self._disqualification(submission, stage_id) is not None:
            raise AlreadyDisqualified(stage=stage_id)
        row = StageDisqualification(
            id=uuid.uuid4(), programme_id=programme.id, stage=stage_id,
            submission_id=submission.id, rule=rule_id, disqualified_by_id=actor.user_id,
            disqualified_at=self.clock())
        row.reason_sealed = self.cipher.seal(_TABLE, "reason", row.id, text)
        self.session.add(row)
        self.session.flush()
        self._record(Tag.STAGE_DISQUALIFIED, actor, programme, stage_id,
                         submission=submission.id, consortium=submission.consortium_id,
                         rule=rule_id, disqualification=row.id)
        return row

    def lift_disqualification(self: StageRounds, submission: Submission, stage_id: str,
                              reason: str, actor: Actor) -> StageDisqualification:
        """Lift the submission's disqualification in the stage, with a reason (sealed; the
        row is kept). Raises ``UnknownStage``, ``InvalidStageReason``, ``RoundConfirmed`` or
        ``NotDisqualified``."""
        programme = submission.consortium.programme
        definition_stage(self.definitions, programme, stage_id)
        text = clean_reason(reason)
        self._unconfirmed(programme, stage_id)
        row = self._disqualification(submission, stage_id)
        if row is None:
            raise NotDisqualified(stage=stage_id)
        row.lifted_at, row.lifted_by_id = self.clock(), actor.user_id
        row.lift_reason_sealed = self.cipher.seal(_TABLE, "lift_reason", row.id, text)
        self.session.flush()
        self._record(Tag.STAGE_DISQUALIFICATION_LIFTED, actor, programme, stage_id,
                         submission=submission.id, consortium=submission.consortium_id,
                         rule=row.rule, disqualification=row.id)
        return row

    def enter_candidate(self: StageRounds, submission: Submission, stage_id: str,
                        actor: Actor) -> None:
        """Enter a submission that is out (not selected or eliminated in an earlier stage; not
        disqualified, withdrawn or shredded) into a majority stage whose panel is open; its
        pending retention schedule is cancelled. Audited.

        Raises ``UnknownStage``, ``NotAMajorityStage``, ``PanelClosed`` (or
        ``RoundConfirmed``) or ``NotACandidate``.
        """
        programme = submission.consortium.programme
        definition, stage = definition_stage(self.definitions, programme, stage_id)
        if stage.decision is None or stage.decision.rule != "majority":
            raise NotAMajorityStage(stage=stage_id)
        state = state_of(round_row(self.session, programme, stage_id, lock=True))
        if state is not RoundState.OPEN:
            raise (PanelClosed if state is RoundState.CLOSED else RoundConfirmed)(stage=stage_id)
        lock_submission(self.session, submission.id)
        if not self._may_enter(submission, [s.id for s in definition.stages], stage_id):
            raise NotACandidate(stage=stage_id)
        left = submission.stage
        submission.stage = stage_id
        self.session.flush()
        cancelled = self.retention.cancel(submission, actor)
        self._record(Tag.STAGE_CANDIDATE_ENTERED, actor, programme, stage_id,
                         submission=submission.id, consortium=submission.consortium_id,
                         left=left, retention_cancelled=cancelled.id if cancelled else None)

    def candidates(self: StageRounds, programme: Programme,
                   stage_id: str) -> list[tuple[Submission, str]]:
        """The submissions that may enter the majority stage now, with their consortium's
        name, by name: out of an earlier stage (not selected or eliminated), not withdrawn,
        disqualified or shredded. Empty unless the stage is a majority stage whose panel is
        open. Raises ``UnknownStage``."""
        definition, stage = definition_stage(self.definitions, programme, stage_id)
        if (stage.decision is None or stage.decision.rule != "majority"
                or state_of(round_row(self.session, programme, stage_id)) is not RoundState.OPEN):
            return []
        order = [s.id for s in definition.stages]
        out = self.session.scalars(
            select(Submission).join(StageOutcome, (StageOutcome.submission_id == Submission.id)
                                    & (StageOutcome.stage == Submission.stage))
            .where(Submission.programme_id == programme.id,
                   StageOutcome.outcome.in_(ENTERABLE)))
        names = self._names(programme)
        return sorted(((submission, names.get(submission.id, "")) for submission in out
                       if self._may_enter(submission, order, stage_id)),
                      key=lambda pair: (pair[1], str(pair[0].id)))

    # -- helpers ------------------------------------------------------------------------------

    def _may_enter(self: StageRounds, submission: Submission, order: list[str],
                   stage_id: str) -> bool:
        """Whether the submission is out of a stage before ``stage_id`` and may come back."""
        latest = self.session.scalars(select(StageOutcome).where(
            StageOutcome.submission_id == submission.id,
            StageOutcome.stage == submission.stage)).one_or_none()
        return not (latest is None or latest.outcome not in ENTERABLE
                    or submission.state is SubmissionState.WITHDRAWN
                    or submission.consortium.shredded_at is not None
                    or submission.stage not in order
                    or order.index(submission.stage) >= order.index(stage_id))

    def _unconfirmed(self: StageRounds, programme: Programme, stage_id: str) -> None:
        """Lock the round; raise ``RoundConfirmed`` once its ranking is confirmed."""
        if state_of(round_row(self.session, programme, stage_id, lock=True)) in (
                RoundState.CONFIRMED, RoundState.PUBLISHED):
            raise RoundConfirmed(stage=stage_id)

    def _disqualification(self: StageRounds, submission: Submission,
                          stage_id: str) -> StageDisqualification | None:
        return self.session.scalars(select(StageDisqualification).where(
            StageDisqualification.submission_id == submission.id,
            StageDisqualification.stage == stage_id,
            StageDisqualification.lifted_at.is_(None))).one_or_none()
