"""Stage rounds: closing a stage's panel, its live ranking, disqualification, confirmation,
publication, and candidates of majority stages.

    open ──close──▶ closed ──confirm──▶ confirmed ──publish──▶ published
      ▲               │
      └──reopen───────┘  (with a reason; a confirmed round never reopens)

Closing the panel stops every sheet write and, through the ``stage_closed`` attribute of the
submissions in the stage, every reviewer's access to them (on the very next request). The
ranking is computed live from the submitted sheets, the current imports and the
disqualifications until the round is confirmed; confirming freezes it as a sealed snapshot
whose SHA-256 is recorded in the clear and in the audit log; publishing applies the snapshot's
outcomes in one transaction (passing submissions move to the next stage, the others get their
outcome and, under ``[retention]``, a shredding schedule).

Callers authorize first (``stage:view``, ``stage:close``, ``stage:confirm``, ``stage:publish``,
``stage:disqualify``, ``stage:enter-candidate`` on the programme; ``outcome:view`` on the
submission). The service refuses what no authorization can make right and records an audit
event for every change. Scores and reasons never go into an audit event or an error message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag, rfc3339
from vault.crypto import FieldCipher
from vault.documents.models import Submission
from vault.evaluation import snapshot as snapshots
from vault.evaluation.errors import (
    CutTieUnresolved,
    MissingImports,
    PanelClosed,
    PanelOpen,
    RoundConfirmed,
    RoundNotConfirmed,
    RoundPublished,
    UnscoredSubmissions,
)
from vault.evaluation.imports import ComponentImports
from vault.evaluation.models import (
    RoundState,
    StageDisqualification,
    StageOutcome,
    StageOutcomeKind,
    StageRound,
    StageRoundReopening,
)
from vault.evaluation.ranking import (
    Candidate,
    Outcome,
    RankingError,
    StageResult,
    rank_stage,
)
from vault.evaluation.retention import Retention
from vault.evaluation.rounds import (
    clean_reason,
    definition_stage,
    lock_submission,
    round_row,
    stage_submissions,
    state_of,
)
from vault.evaluation.sheets import ScoreSheets
from vault.evaluation.stage_entries import StageEntries
from vault.evaluation.stage_views import (
    DisqualificationView,
    FunnelStep,
    OutcomeView,
    PanelMember,
    Ranking,
    RoundView,
    StageViews,
)
from vault.keys import KeyProvider
from vault.policy.actions import Actor
from vault.programmes.definition import CALL, ProgrammeDefinition, Stage
from vault.programmes.models import Programme

__all__ = ["DisqualificationView", "FunnelStep", "OutcomeView", "PanelMember", "Ranking",
           "RoundState", "RoundView", "StageRounds"]

_TABLE = StageRound.__tablename__


@dataclass(frozen=True)
class LiveRanking:
    """A ranking computed from what is stored now, with what confirmation checks."""

    result: StageResult
    unscored: list[uuid.UUID]
    missing_imports: list[str]
    #: The digests of the inputs (the snapshot's ``inputs``).
    inputs: dict[str, object]
#: Outcomes after which a submission is out of the evaluation.
OUT = frozenset({Outcome.NOT_SELECTED, Outcome.ELIMINATED, Outcome.DISQUALIFIED})


class StageRounds(StageEntries, StageViews):
    """Stage rounds on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, cipher: FieldCipher, clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition], keys: KeyProvider | None = None,
                 audit: AuditLog | None = None, request: RequestInfo | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.clock = clock
        self.definitions = definitions
        self.keys = keys
        self.audit = audit or AuditLog(session, clock=clock)
        self.request = request or RequestInfo()
        self.sheets = ScoreSheets(session, cipher=cipher, clock=clock, definitions=definitions)
        self.imports = ComponentImports(session, cipher=cipher, clock=clock,
                                        definitions=definitions, audit=self.audit,
                                        request=self.request)
        self.retention = Retention(session, clock=clock, keys=keys, audit=self.audit,
                                   request=self.request)

    # -- the round's state ----------------------------------------------------------------------

    def close(self, programme: Programme, stage_id: str, actor: Actor) -> RoundView:
        """Close the panel: no more sheet writes, reviewers lose access to the stage's
        submissions. Raises ``UnknownStage``, ``PanelClosed`` or ``RoundConfirmed``."""
        definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id, lock=True)
        self._require(row, stage_id, RoundState.OPEN)
        if row is None:
            row = StageRound(id=uuid.uuid4(), programme_id=programme.id, stage=stage_id,
                             created_at=self.clock())
            self.session.add(row)
        row.state = RoundState.CLOSED
        row.closed_at = self.clock()
        row.closed_by_id = actor.user_id
        self.session.flush()
        self._record(Tag.STAGE_CLOSED, actor, programme, stage_id)
        return self.round(programme, stage_id)

    def reopen(self, programme: Programme, stage_id: str, actor: Actor,
               reason: str) -> RoundView:
        """Open a closed (unconfirmed) panel again, with a reason (sealed, kept).

        Raises ``UnknownStage``, ``InvalidStageReason``, ``PanelOpen`` or ``RoundConfirmed``.
        """
        definition_stage(self.definitions, programme, stage_id)
        text = clean_reason(reason)
        row = round_row(self.session, programme, stage_id, lock=True)
        self._require(row, stage_id, RoundState.CLOSED)
        assert row is not None
        entry = StageRoundReopening(id=uuid.uuid4(), round_id=row.id,
                                    reopened_by_id=actor.user_id,
                                    reopened_by_role=actor.role_name, reopened_at=self.clock())
        entry.reason_sealed = self.cipher.seal(StageRoundReopening.__tablename__, "reason",
                                               entry.id, text)
        self.session.add(entry)
        row.state, row.closed_at, row.closed_by_id = RoundState.OPEN, None, None
        self.session.flush()
        self._record(Tag.STAGE_REOPENED, actor, programme, stage_id, reopening=entry.id)
        return self.round(programme, stage_id)

    def confirm(self, programme: Programme, stage_id: str, actor: Actor) -> RoundView:
        """Freeze the closed round's ranking as a sealed snapshot; its SHA-256 is recorded in
        the clear and audited.

        Raises ``UnknownStage``, ``PanelOpen``, ``RoundConfirmed``, ``UnscoredSubmissions``,
        ``MissingImports``, ``CutTieUnresolved`` or a ``RankingError``.
        """
        definition, stage = definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id, lock=True)
        self._require(row, stage_id, RoundState.CLOSED)
        assert row is not None
        live = self._live(programme, stage)
        names = self._names(programme)
        if live.unscored:
            raise UnscoredSubmissions(stage=stage_id,
                                      names=", ".join(names[i] for i in live.unscored))
        if live.missing_imports:
            raise MissingImports(stage=stage_id, components=", ".join(live.missing_imports))
        if live.result.cut_unresolved:
            raise CutTieUnresolved(stage=stage_id, names=", ".join(
                names[e.submission_id] for e in live.result.entries if e.cut_tie))
        data = snapshots.build(programme=programme.code, stage=stage_id,
                               definition_sha256=definition.sha256, result=live.result,
                               inputs=live.inputs)
        text, sha256 = snapshots.encode(data)
        row.snapshot_sealed = self.cipher.seal(_TABLE, "snapshot", row.id, text)
        row.result_sha256 = sha256
        row.state, row.confirmed_at, row.confirmed_by_id = (RoundState.CONFIRMED, self.clock(),
                                                            actor.user_id)
        self.session.flush()
        self._record(Tag.STAGE_CONFIRMED, actor, programme, stage_id, sha256=sha256,
                     entries=len(live.result.entries))
        return self.round(programme, stage_id)

    def publish(self, programme: Programme, stage_id: str, actor: Actor) -> RoundView:
        """Apply the confirmed snapshot's outcomes, in one transaction: passing submissions
        move to the next stage (or, after the last, are selected), the others stay with their
        outcome and get a retention schedule; every submission gets its outcome row; audited.

        Raises ``UnknownStage``, ``RoundNotConfirmed`` or ``RoundPublished``.
        """
        definition, _ = definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id, lock=True)
        if state_of(row) is RoundState.PUBLISHED:
            raise RoundPublished(stage=stage_id)
        if state_of(row) is not RoundState.CONFIRMED:
            raise RoundNotConfirmed(stage=stage_id)
        assert row is not None
        result = self._snapshot_result(row)
        following = definition.next_stage(stage_id)
        now = self.clock()
        for entry in result.entries:
            submission = lock_submission(self.session, entry.submission_id)
            outcome = entry.outcome
            if outcome is Outcome.PASS and following is None:
                outcome = Outcome.SELECTED   # through the last stage: finally selected
            elif outcome in (Outcome.PASS, Outcome.SELECTED) and following is not None:
                submission.stage = following.id
            outcome_row = StageOutcome(
                id=uuid.uuid4(), programme_id=programme.id, round_id=row.id, stage=stage_id,
                submission_id=submission.id, outcome=StageOutcomeKind(outcome.value),
                rank=entry.rank, published_at=now)
            outcome_row.figures_sealed = self.cipher.seal(
                StageOutcome.__tablename__, "figures", outcome_row.id, snapshots.canonical({
                    "score": snapshots.number_text(entry.score),
                    "composite": snapshots.number_text(entry.composite),
                    "criteria": {k: str(v) for k, v in entry.criterion_means.items()},
                    "components": {k: str(v) for k, v in entry.components.items()}}))
            self.session.add(outcome_row)
            schedule = (self.retention.schedule(definition, submission, stage_id, now)
                        if outcome in OUT else None)
            self._record(Tag.SUBMISSION_OUTCOME, actor, programme, stage_id,
                         submission=submission.id, consortium=submission.consortium_id,
                         outcome=outcome.value,
                         moved_to=submission.stage if submission.stage != stage_id else None,
                         shred_due=schedule.shred_due.isoformat() if schedule else None)
        row.state, row.published_at, row.published_by_id = (RoundState.PUBLISHED, now,
                                                            actor.user_id)
        order = [CALL, *(stage.id for stage in definition.stages)]
        current = order.index(programme.current_stage) if programme.current_stage in order else 0
        if following is not None and current < order.index(following.id):
            # The programme moves on with its teams (never back: a majority stage published
            # after the next stage began moves nothing).
            programme.current_stage = following.id
        self.session.flush()
        self._record(Tag.STAGE_PUBLISHED, actor, programme, stage_id, sha256=row.result_sha256,
                     entries=len(result.entries), no_selection=result.no_selection)
        return self.round(programme, stage_id)

    # -- reading ------------------------------------------------------------------------------

    def ranking(self, programme: Programme, stage_id: str) -> Ranking:
        """The stage's ranking: live while open or closed, the snapshot once confirmed.

        Raises ``UnknownStage`` or a ``RankingError`` (sheets that cannot be ranked).
        """
        _, stage = definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id)
        names = self._names(programme)
        disqualified = self.disqualification_views(programme, stage_id)
        if state_of(row) in (RoundState.CONFIRMED, RoundState.PUBLISHED):
            assert row is not None
            result = self._snapshot_result(row)
            return self._ranking_view(stage, result, names, disqualified, [], [], True,
                                      row.result_sha256)
        live = self._live(programme, stage)
        return self._ranking_view(stage, live.result, names, disqualified,
                                  live.missing_imports, live.unscored, False, None)

    def verify(self, programme: Programme, stage_id: str) -> bool:
        """Whether the confirmed snapshot is what its stored inputs give today (the same
        SHA-256). Raises ``UnknownStage`` or ``RoundNotConfirmed``."""
        definition, stage = definition_stage(self.definitions, programme, stage_id)
        row = round_row(self.session, programme, stage_id)
        if state_of(row) not in (RoundState.CONFIRMED, RoundState.PUBLISHED):
            raise RoundNotConfirmed(stage=stage_id)
        assert row is not None
        stored = json.loads(self.cipher.open(_TABLE, "snapshot", row.id, row.snapshot_sealed))
        ids = [uuid.UUID(item["submission"]) for item in stored["entries"]]
        live = self._live(programme, stage, [self.session.get(Submission, i) for i in ids])
        data = snapshots.build(programme=programme.code, stage=stage_id,
                               definition_sha256=definition.sha256, result=live.result,
                               inputs=live.inputs)
        return snapshots.encode(data)[1] == row.result_sha256

    # -- helpers ------------------------------------------------------------------------------

    def _require(self, row: StageRound | None, stage_id: str, wanted: RoundState) -> None:
        """Raise the error that says why the round is not in ``wanted``."""
        state = state_of(row)
        if state is wanted:
            return
        if state in (RoundState.CONFIRMED, RoundState.PUBLISHED):
            raise RoundConfirmed(stage=stage_id)
        raise PanelClosed(stage=stage_id) if state is RoundState.CLOSED else PanelOpen(
            stage=stage_id)

    def _snapshot_result(self, row: StageRound) -> StageResult:
        text = self.cipher.open(_TABLE, "snapshot", row.id, row.snapshot_sealed)
        return snapshots.result_of(json.loads(text))

    def _live(self, programme: Programme, stage: Stage,
              submissions: list[Submission] | None = None) -> LiveRanking:
        """The ranking from what is stored now: the submitted sheets of the submissions in the
        stage (or of ``submissions``), the current imports and the disqualifications in force.

        Submissions without a sheet (and not disqualified) are left out and listed; imported
        components are used only when every one has a current import covering every ranked
        submission (otherwise they are listed as missing and the panel's score ranks alone).
        """
        if stage.decision is None:
            raise RankingError("The stage {stage} has no decision rule.", stage=stage.id)
        pool = (submissions if submissions is not None
                else stage_submissions(self.session, programme, stage.id))
        disqualified = {row.submission_id: row for row in self.session.scalars(
            select(StageDisqualification).where(
                StageDisqualification.programme_id == programme.id,
                StageDisqualification.stage == stage.id,
                StageDisqualification.lifted_at.is_(None)))}
        candidates, sheet_digests = self._candidates(pool, stage)
        unscored = [c.submission_id for c in candidates
                    if not c.sheets and c.submission_id not in disqualified]
        ranked = [c for c in candidates if c.submission_id not in unscored]
        ids = {c.submission_id for c in ranked}
        current = self.imports.current(programme, stage.id)
        imported: dict[uuid.UUID, dict[str, Decimal]] = {i: {} for i in ids}
        missing, import_digests = [], []
        for component in stage.components:
            if component.source != "import":
                continue
            row = current.get(component.id)
            values = self.imports.values(row) if row is not None else {}
            if row is None or not ids - set(disqualified) <= set(values):
                missing.append(component.id)
                continue
            for submission_id in ids & set(values):
                imported[submission_id][component.id] = values[submission_id]
            import_digests.append({"component": component.id, "import": str(row.id),
                                   "sha256": row.sha256, "values_sha256": snapshots.digest(
                                       {str(k): str(v) for k, v in values.items()})})
        result = rank_stage(
            ranked, criteria=stage.criteria, scoring=stage.scoring, decision=stage.decision,
            disqualified={i: disqualified[i].rule for i in ids if i in disqualified},
            components=() if missing else stage.components,
            imported=None if missing else {k: v for k, v in imported.items() if v})
        inputs = {
            "candidates": sorted(({"submission": str(c.submission_id),
                                   "submitted_at": rfc3339(c.submitted_at)} for c in ranked),
                                 key=lambda item: item["submission"]),
            "sheets": sorted(sheet_digests, key=lambda d: (d["submission"], d["reviewer"])),
            "imports": import_digests,
            "disqualifications": sorted(
                ({"submission": str(i), "rule": disqualified[i].rule,
                  "id": str(disqualified[i].id)} for i in ids if i in disqualified),
                key=lambda item: item["submission"]),
        }
        return LiveRanking(result, unscored, missing, inputs)

    def _candidates(self, submissions: list[Submission], stage: Stage,
                    ) -> tuple[list[Candidate], list[dict[str, object]]]:
        """Each submission with its submitted sheets, and the sheets' digests."""
        candidates, digests = [], []
        for submission in submissions:
            views = self.sheets.panel_sheets(submission, stage.id)
            candidates.append(Candidate(submission.id, submission.submitted_at or
                                        submission.created_at,
                                        tuple(view.for_ranking() for view in views)))
            digests += [{"submission": str(submission.id), "reviewer": str(view.reviewer_id),
                         "sheet": str(view.id), "revision": view.revision,
                         "sha256": snapshots.digest({"scores": view.scores,
                                                     "vote": view.vote})} for view in views]
        return candidates, digests
