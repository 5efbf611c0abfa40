"""Submissions: one per consortium and programme, in the states of the call's workflow."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.documents.models import Submission, SubmissionState
from vault.programmes.models import Programme


class SubmissionService:
    """Submission operations on one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def open_draft(self, consortium: Consortium) -> Submission:
        """The consortium's submission to its programme, created as a draft if it has none."""
        submission = self.for_consortium(consortium)
        if submission is None:
            submission = Submission(consortium=consortium, programme_id=consortium.programme_id)
            self.session.add(submission)
            self.session.flush()
        return submission

    def for_consortium(self, consortium: Consortium) -> Submission | None:
        """The consortium's submission to its programme, if any."""
        return self.session.scalar(
            select(Submission).where(
                Submission.consortium_id == consortium.id,
                Submission.programme_id == consortium.programme_id,
            )
        )

    def get(self, submission_id: uuid.UUID) -> Submission | None:
        """The submission with this id, if any."""
        return self.session.get(Submission, submission_id)

    def visible(self, consortium_ids: Iterable[uuid.UUID] | None) -> list[Submission]:
        """Submissions of the given consortia (``None``: all), newest programme first."""
        query = select(Submission).join(Consortium).order_by(Consortium.name)
        if consortium_ids is not None:
            query = query.where(Submission.consortium_id.in_(list(consortium_ids)))
        return list(self.session.scalars(query))

    def state_counts(self, programme: Programme) -> Counter[SubmissionState]:
        """How many of the programme's submissions are in each state."""
        rows = self.session.execute(
            select(Submission.state, func.count())
            .where(Submission.programme_id == programme.id)
            .group_by(Submission.state)
        )
        return Counter({state: count for state, count in rows})
