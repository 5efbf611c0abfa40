"""Submissions and the document versions recorded for them."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium
from vault.documents.models import Document, Submission, SubmissionState
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

    def latest_documents(self, submission: Submission) -> list[Document]:
        """The newest version of each document kind in the submission."""
        newest = (
            select(Document.kind, func.max(Document.version).label("version"))
            .where(Document.submission_id == submission.id)
            .group_by(Document.kind)
            .subquery()
        )
        return list(
            self.session.scalars(
                select(Document)
                .join(
                    newest,
                    (Document.kind == newest.c.kind) & (Document.version == newest.c.version),
                )
                .where(Document.submission_id == submission.id)
                .order_by(Document.kind)
            )
        )

    def state_counts(self, programme: Programme) -> Counter[SubmissionState]:
        """How many of the programme's submissions are in each state."""
        rows = self.session.execute(
            select(Submission.state, func.count())
            .where(Submission.programme_id == programme.id)
            .group_by(Submission.state)
        )
        return Counter({state: count for state, count in rows})
