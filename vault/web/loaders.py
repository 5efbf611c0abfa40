"""Loading what a request names, with the access check: the first step of every handler.

An object the actor may not see answers 404 exactly like an id that does not exist, so that
existence is never revealed; a refused action on a visible object answers 403.
"""

from __future__ import annotations

import uuid

from flask import abort
from werkzeug.exceptions import NotFound

from vault.documents.errors import DocumentNotFound
from vault.documents.models import Document, Submission
from vault.documents.submissions import SubmissionService
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition, Stage
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web.context import authorize, db, runtime


def load_submission(submission_id: uuid.UUID, action: Action = Action.SUBMISSION_VIEW
                    ) -> Submission:
    """The submission if the actor may see it; 404 otherwise (existence is not revealed)."""
    submission = SubmissionService(db()).get(submission_id)
    if submission is None:
        raise DocumentNotFound("No such submission.")
    target = {"consortium": submission.consortium_id, "submission": submission.id}
    authorize(Action.SUBMISSION_VIEW, submission, target=target,
              denied=DocumentNotFound("No such submission."))
    if action is not Action.SUBMISSION_VIEW:
        authorize(action, submission, target=target)
    return submission


def load_document(document_id: uuid.UUID, action: Action = Action.DOCUMENT_VIEW) -> Document:
    """The document if the actor may take ``action`` on it (view its metadata by default);
    404 otherwise, exactly like an id that does not exist."""
    document = runtime().documents(db()).get(document_id)
    authorize(action, document,
              target={"consortium": document.submission.consortium_id, "document": document.id},
              denied=DocumentNotFound("No such document."))
    return document


def load_programme(code: str) -> tuple[Programme, ProgrammeDefinition]:
    """The programme and its definition; 404 for an unknown code."""
    programme = ProgrammeService(db()).by_code(code)
    definition = runtime().definitions.get(code)
    if programme is None or definition is None:
        raise NotFound()
    return programme, definition


def round_target(programme: Programme, stage_id: str, **extra: object) -> dict[str, object]:
    """The audit target of an access to a round (never a score or a reason)."""
    return {"programme": programme.code, "stage": stage_id[:64], **extra}


def load_round(code: str, stage_id: str, action: Action
               ) -> tuple[Programme, ProgrammeDefinition, Stage]:
    """The programme, its definition and the stage if the actor may take ``action`` on the
    programme's rounds; 404 for an unknown programme or stage, 403 when refused."""
    programme, definition = load_programme(code)
    authorize(action, programme, target=round_target(programme, stage_id))
    try:
        stage = definition.stage(stage_id)
    except KeyError:
        abort(404)
    return programme, definition, stage
