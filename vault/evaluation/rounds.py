"""What the stage-round services share: the stage of a programme, the round's row and state,
the submissions in a stage, canonical JSON and reasons."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.documents.models import Submission, SubmissionState
from vault.evaluation.errors import InvalidStageReason, UnknownStage
from vault.evaluation.models import RoundState, StageRound
from vault.identity.models import User
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.models import Programme

#: Reasons (reopening, disqualifying, lifting) are at most this long.
MAX_REASON = 2000
#: How the host operator is named where a person's name would be.
OPERATOR_NAME = "operator"


def definition_stage(definitions: Mapping[str, ProgrammeDefinition], programme: Programme,
                     stage_id: str) -> tuple[ProgrammeDefinition, Stage]:
    """The programme's definition and its stage; raises ``UnknownStage``."""
    definition = definitions.get(programme.code)
    if definition is None:
        raise UnknownStage(programme=programme.code, stage=stage_id[:64])
    try:
        return definition, definition.stage(stage_id)
    except KeyError:
        raise UnknownStage(programme=programme.code, stage=stage_id[:64]) from None


def round_row(session: Session, programme: Programme, stage_id: str, *,
              lock: bool = False) -> StageRound | None:
    """The round's row (``None`` while it was never closed: open). With ``lock``, the row is
    locked and re-read, so of two concurrent changes the second sees the first's result."""
    query = select(StageRound).where(StageRound.programme_id == programme.id,
                                     StageRound.stage == stage_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def state_of(row: StageRound | None) -> RoundState:
    """The round's state (a missing row is an open round)."""
    return RoundState.OPEN if row is None else row.state


def stage_submissions(session: Session, programme: Programme,
                      stage_id: str) -> list[Submission]:
    """The submissions in the stage now (withdrawn ones are evaluated no more), by consortium
    name then id."""
    return list(session.scalars(
        select(Submission).join(Consortium, Submission.consortium_id == Consortium.id)
        .where(Submission.programme_id == programme.id, Submission.stage == stage_id,
               Submission.state != SubmissionState.WITHDRAWN)
        .order_by(Consortium.name, Submission.id)))


def lock_submission(session: Session, submission_id: uuid.UUID) -> Submission:
    """The submission with its row locked and re-read (only its own row: the joined
    consortium cannot be locked on PostgreSQL's nullable side of the join)."""
    return session.scalars(
        select(Submission).where(Submission.id == submission_id)
        .with_for_update(of=Submission).execution_options(populate_existing=True)).one()


def user_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID | None, str]:
    """Display names by user id (``None``, the host operator, is ``operator``)."""
    wanted = {user_id for user_id in ids if user_id is not None}
    names: dict[uuid.UUID | None, str] = {None: OPERATOR_NAME}
    if wanted:
        names.update(session.execute(
            select(User.id, User.display_name).where(User.id.in_(wanted))).all())
    return names


def canonical(value: object) -> str:
    """Sorted keys, no spaces, UTF-8 text: one spelling per value (what digests cover)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def clean_reason(reason: object) -> str:
    """The reason, stripped; raises ``InvalidStageReason`` when empty or too long."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON:
        raise InvalidStageReason(limit=MAX_REASON)
    return text
