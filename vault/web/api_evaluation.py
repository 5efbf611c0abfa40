"""Score sheet endpoints of the JSON API, registered on the API blueprint.

A reviewer reads (``GET``), saves (``PUT``: the whole draft, as the form does) and submits
(``POST …/submit``) their own sheet for a submission in a stage, under exactly the rules of the
pages: ``score-sheet:write`` on the submission for every call (404 when the caller may not see
the submission, 403 when they may not score it). Errors are ``{"error": code, "message": text}``
with 422 for values the stage does not accept, 409 for a submitted (locked) sheet. JSON values
are taken as they are: ``"80"``, ``80.0`` or ``true`` is not a score.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request

from vault.audit.service import Tag
from vault.documents.models import Submission
from vault.evaluation.errors import InvalidSheetRequest, SheetNotFound
from vault.evaluation.models import ScoreSheet
from vault.evaluation.sheet_values import MAX_COMMENT
from vault.evaluation.sheets import SheetView
from vault.web.api import bp
from vault.web.context import actor, audit, user
from vault.web.evaluation import (
    SheetValues,
    load_for_writing,
    parse_vote,
    sheet_target,
    sheets_service,
    write_sheet,
)

#: The fields of a sheet's body; any other is refused.
FIELDS = frozenset({"scores", "comments", "overall_comment", "vote"})


def parse_body(body: object) -> SheetValues:
    """The values of a JSON body; raises ``InvalidSheetRequest`` (wrong shape or an unknown
    field) or ``InvalidVote``. Scores are checked by the service."""
    if not isinstance(body, dict) or set(body) - FIELDS:
        raise InvalidSheetRequest()
    scores = body.get("scores") or {}
    comments = body.get("comments") or {}
    overall = body.get("overall_comment") or ""
    if (not isinstance(scores, dict) or not isinstance(comments, dict)
            or not isinstance(overall, str)
            or not all(isinstance(text, str) for text in comments.values())):
        raise InvalidSheetRequest()
    return SheetValues(scores=dict(scores), comments=dict(comments), overall_comment=overall,
                       vote=parse_vote(body.get("vote")))


def sheet_json(view: SheetView) -> dict[str, object]:
    """The sheet as its own reviewer reads it."""
    return {
        "id": str(view.id),
        "submission_id": str(view.submission_id),
        "stage": view.stage,
        "state": view.state.value,
        "revision": view.revision,
        "scores": view.scores,
        "comments": view.comments,
        "overall_comment": view.overall_comment,
        "vote": {True: "accept", False: "reject", None: None}[view.vote],
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "submitted_at": view.submitted_at.isoformat() if view.submitted_at else None,
    }


def _own_sheet(submission_id: uuid.UUID, stage_id: str) -> tuple[Submission, ScoreSheet]:
    submission, stage = load_for_writing(submission_id, stage_id)
    sheet = sheets_service().sheet(submission, stage.id, user().id)
    if sheet is None:
        raise SheetNotFound()
    return submission, sheet


@bp.get("/submissions/<uuid:submission_id>/stages/<stage_id>/sheet")
def score_sheet(submission_id: uuid.UUID, stage_id: str) -> Response:
    """The caller's own sheet for the submission in the stage (404 if none was saved)."""
    _submission, sheet = _own_sheet(submission_id, stage_id)
    return jsonify(sheet_json(sheets_service().opened(sheet)))


@bp.put("/submissions/<uuid:submission_id>/stages/<stage_id>/sheet")
def put_score_sheet(submission_id: uuid.UUID, stage_id: str) -> Response:
    """Save the caller's draft with the JSON body (every field: it replaces the draft)."""
    submission, stage = load_for_writing(submission_id, stage_id)
    values = parse_body(request.get_json(silent=True))
    sheet = write_sheet(submission, stage, values, submit=False)
    return jsonify(sheet_json(sheets_service().opened(sheet)))


@bp.post("/submissions/<uuid:submission_id>/stages/<stage_id>/sheet/submit")
def submit_score_sheet(submission_id: uuid.UUID, stage_id: str) -> Response:
    """Hand in the caller's saved draft: afterwards it changes only after an officer reopens
    it."""
    submission, sheet = _own_sheet(submission_id, stage_id)
    service = sheets_service()
    service.submit(sheet, actor())
    audit(Tag.SCORE_SHEET_SUBMITTED, target=sheet_target(submission, sheet))
    return jsonify(sheet_json(service.opened(sheet)))


# -- the OpenAPI description (merged into /api/v1/openapi.json) ------------------------------

def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


_SUBMISSION_ID = {"name": "submission_id", "in": "path", "required": True,
                  "schema": {"type": "string", "format": "uuid"}}
_STAGE_ID = {"name": "stage_id", "in": "path", "required": True,
             "schema": {"type": "string"}, "description": "A stage id of the programme"}
_VALUES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "scores": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "Criterion id → whole number on the stage's scale "
                                  "(scored stages only; a draft may leave criteria out)"},
        "comments": {"type": "object", "additionalProperties": {"type": "string",
                                                                 "maxLength": MAX_COMMENT}},
        "overall_comment": {"type": "string", "maxLength": MAX_COMMENT},
        "vote": {"type": ["string", "null"], "enum": ["accept", "reject", None],
                 "description": "Stages decided by a panel majority only"},
    },
}
_SHEET = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "submission_id": {"type": "string", "format": "uuid"},
        "stage": {"type": "string"},
        "state": {"type": "string", "enum": ["draft", "submitted"]},
        "revision": {"type": "integer", "minimum": 0,
                     "description": "How many times an officer reopened the sheet"},
        **_VALUES["properties"],
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "submitted_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_WHO = ("The caller must be a reviewer assigned to the submission in its current stage, with the "
        "programme's NDA, a second factor, no conflict, inside the review window.")
_COMMON = {
    "401": _error("Not authenticated"),
    "403": _error("May see the submission but not score it"),
    "404": _error("No such submission or sheet, not visible to the caller, or a stage "
                  "without score sheets"),
}

OPENAPI_PATHS: dict[str, Any] = {
    "/submissions/{submission_id}/stages/{stage_id}/sheet": {
        "parameters": [_SUBMISSION_ID, _STAGE_ID],
        "get": {
            "summary": "The caller's own score sheet for the submission in the stage",
            "description": _WHO,
            "responses": {"200": {"description": "The sheet", "content": {
                "application/json": {"schema": _SHEET}}}, **_COMMON}},
        "put": {
            "summary": "Save the caller's draft score sheet (replaces the draft)",
            "description": _WHO + " Scores must be JSON integers (not strings, decimals or "
                                  "booleans); nothing is stored when one value is refused.",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _VALUES}}},
            "responses": {
                "200": {"description": "The saved draft", "content": {
                    "application/json": {"schema": _SHEET}}},
                **_COMMON,
                "409": _error("`score_sheet_locked`: the sheet was submitted; or "
                              "`submission_not_in_stage`"),
                "422": _error("`invalid_scores`: an unknown criterion, a score off the scale "
                              "or not a whole number, a comment too long, a vote on a scored "
                              "stage or scores on a vote-only stage"),
            }},
    },
    "/submissions/{submission_id}/stages/{stage_id}/sheet/submit": {
        "parameters": [_SUBMISSION_ID, _STAGE_ID],
        "post": {
            "summary": "Submit the caller's saved sheet; it then changes only after an officer "
                       "reopens it",
            "description": _WHO,
            "responses": {
                "200": {"description": "The submitted sheet", "content": {
                    "application/json": {"schema": _SHEET}}},
                **_COMMON,
                "409": _error("`score_sheet_locked`: already submitted"),
                "422": _error("`incomplete_score_sheet` (a criterion unscored) or "
                              "`missing_vote`"),
            }},
    },
}
