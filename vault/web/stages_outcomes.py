"""The applicant's published outcomes: per stage the outcome, the scores when the stage publishes
them, the panel when the stage discloses it, and when the consortium's documents will be
destroyed under the retention rule.

Only the consortium's own applicants read it (``outcome:view`` on the submission; everyone else
gets 404 as for a submission that does not exist); the service returns published outcomes only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import render_template

from vault.documents.models import Submission
from vault.policy.actions import Action
from vault.web.context import allowed, authorize
from vault.web.loaders import load_submission
from vault.web.stages import bp, figure, rounds_service


def load_outcome_submission(submission_id: uuid.UUID) -> Submission:
    """The submission if the actor may read its outcomes; 404 otherwise (someone who may not
    see the submission), 403 for one who may see it but not read its outcomes."""
    submission = load_submission(submission_id)
    authorize(Action.OUTCOME_VIEW, submission,
              target={"consortium": submission.consortium_id, "submission": submission.id})
    return submission


def outcome_entries(submission: Submission) -> list[dict[str, Any]]:
    """The published outcomes as the page and the API show them: figures only where the stage
    publishes scores, the panel only where it discloses it (and the reader may see it)."""
    programme = submission.consortium.programme
    service = rounds_service()
    may_see_panels = allowed(Action.PANEL_VIEW_DISCLOSED, programme)
    entries = []
    for outcome in service.outcomes(submission):
        stage = outcome.stage
        entry: dict[str, Any] = {
            "stage": stage, "stage_id": stage.id, "outcome": outcome.outcome.value,
            "rank": outcome.rank, "published_at": outcome.published_at,
            "shred_due": outcome.shred_due, "shredded_at": outcome.shredded_at,
            "scores": None, "panel": None}
        if stage.publish_scores:
            entry["scores"] = {
                "score": figure(outcome.composite if outcome.composite is not None
                                else outcome.score),
                "panel_score": figure(outcome.score),
                "criterion_means": {key: figure(value) for key, value in outcome.criteria.items()},
                "components": {key: figure(value) for key, value in outcome.components.items()}}
        if stage.disclose_panel and may_see_panels:
            authorize(Action.PANEL_VIEW_DISCLOSED, programme,
                      target={"programme": programme.code, "stage": stage.id})
            entry["panel"] = [member.name for member in service.panel(programme, stage.id)]
        entries.append(entry)
    return entries


def retention_due(entries: list[dict[str, Any]]) -> datetime | None:
    """When the consortium's documents will be destroyed, if a schedule is pending."""
    due = [entry["shred_due"] for entry in entries
           if entry["shred_due"] is not None and entry["shredded_at"] is None]
    return min(due) if due else None


@bp.get("/submissions/<uuid:submission_id>/outcomes")
def outcomes(submission_id: uuid.UUID) -> str:
    """The consortium's published outcomes, scores and panels where disclosed, and the
    retention notice."""
    submission = load_outcome_submission(submission_id)
    entries = outcome_entries(submission)
    return render_template("stages/outcomes.html", submission=submission,
                           consortium=submission.consortium, entries=entries,
                           shred_due=retention_due(entries))


@bp.app_template_global()
def may_view_outcomes(submission: Submission) -> bool:
    """Whether the submission page links the outcomes page (the consortium's applicants)."""
    return allowed(Action.OUTCOME_VIEW, submission)
