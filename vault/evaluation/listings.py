"""Listings of score sheets for the evaluation pages: a reviewer's own sheets, a stage's sheets
for officers, and the names the pages show. Metadata only (state, times, who): the sealed
values are opened by ``ScoreSheets`` alone.

Callers filter what they list through the policy engine (``score-sheet:view`` on each row's
submission): these queries do not decide who may see a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.documents.models import Submission
from vault.evaluation.models import ScoreSheet
from vault.identity.models import User
from vault.programmes.models import Programme


@dataclass(frozen=True)
class SheetRow:
    """One sheet of a stage as the officers' list shows it."""

    sheet: ScoreSheet
    submission: Submission
    reviewer_name: str
    consortium_name: str


class SheetListings:
    """Read-only listings on one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, sheet_id: uuid.UUID) -> ScoreSheet | None:
        """The sheet with this id, if there is one."""
        return self.session.get(ScoreSheet, sheet_id)

    def reviewer_sheets(self, reviewer_id: uuid.UUID,
                        programme: Programme) -> dict[tuple[uuid.UUID, str], ScoreSheet]:
        """The reviewer's own sheets in the programme, by (submission id, stage id)."""
        sheets = self.session.scalars(select(ScoreSheet).where(
            ScoreSheet.reviewer_id == reviewer_id, ScoreSheet.programme_id == programme.id))
        return {(sheet.submission_id, sheet.stage): sheet for sheet in sheets}

    def stage_rows(self, programme: Programme, stage_id: str) -> list[SheetRow]:
        """Every sheet of the stage (drafts too), by consortium and reviewer name."""
        found = self.session.execute(
            select(ScoreSheet, Submission, User.display_name, Consortium.name)
            .join(Submission, ScoreSheet.submission_id == Submission.id)
            .join(Consortium, Submission.consortium_id == Consortium.id)
            .join(User, ScoreSheet.reviewer_id == User.id)
            .where(ScoreSheet.programme_id == programme.id, ScoreSheet.stage == stage_id)
            .order_by(Consortium.name, User.display_name, ScoreSheet.id))
        return [SheetRow(sheet, submission, reviewer, consortium)
                for sheet, submission, reviewer, consortium in found]

    def display_names(self, user_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        """The display names of these accounts (``None``, the command line, is left out)."""
        wanted = {user_id for user_id in user_ids if user_id is not None}
        if not wanted:
            return {}
        found = self.session.execute(
            select(User.id, User.display_name).where(User.id.in_(wanted)))
        return {user_id: name for user_id, name in found}
