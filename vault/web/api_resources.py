"""Resource request endpoints of the JSON API, registered on the API blueprint.

Applicants read and replace their consortium's request (``PUT`` sends every field: it is one
form); officers read requests and the programme totals. JSON numbers are taken as they are:
a string, a decimal or ``true`` is not a count.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request

from vault.audit.service import Tag
from vault.documents.models import Submission
from vault.policy.actions import Action
from vault.programmes.rules import ResourceForm
from vault.resources.errors import (
    NOT_A_NUMBER,
    NOT_A_TEXT,
    NOT_AN_OBJECT,
    UNKNOWN_FIELD,
    InvalidResourceRequest,
)
from vault.resources.service import FIELDS, Problem, ResourceService, ResourceValues
from vault.web.api import bp
from vault.web.context import audit, db, runtime, user
from vault.web.resources import (
    load_request_submission,
    problem_text,
    programme_totals,
    resource_form,
    resource_service,
    with_problems,
)


def parse_json(body: object, form: ResourceForm) -> ResourceValues:
    """The values of a JSON request body; raises ``InvalidResourceRequest`` naming every
    field that is missing, unknown, of the wrong type or out of range."""
    if not isinstance(body, dict):
        raise InvalidResourceRequest([Problem("", NOT_AN_OBJECT)])
    unreadable = [Problem(str(key)[:64], UNKNOWN_FIELD) for key in body if key not in FIELDS]
    model = body.get("gpu_model")
    if model is not None and not isinstance(model, str):
        unreadable.append(Problem("gpu_model", NOT_A_TEXT))
        model = None
    numbers: dict[str, int | None] = {}
    for name in FIELDS[1:]:
        value = body.get(name)
        # bool is an int in Python, and 512.0 is a float: neither is a count.
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            unreadable.append(Problem(name, NOT_A_NUMBER))
            value = None
        numbers[name] = value
    values = ResourceValues(gpu_model=model, **numbers)
    problems = with_problems(values, form, unreadable)
    if problems:
        raise InvalidResourceRequest(problems)
    return values


def _problems_response(error: InvalidResourceRequest) -> tuple[Response, int]:
    """400 with every problem, each by field, in the reader's language."""
    problems = [{"field": p.field, "message": problem_text(p), "values": p.values}
                for p in error.problems]
    return jsonify(error=error.code, message=problems[0]["message"],
                   problems=problems), error.status


def _request_json(submission: Submission, service: ResourceService) -> dict[str, Any]:
    _definition, form = resource_form(submission)
    values = service.get(submission)
    updated = service.updated_at(submission)
    return {
        "submission_id": str(submission.id),
        "programme": submission.consortium.programme.code,
        "editable": runtime().documents(db()).accepts_changes(submission),
        "request": _values_json(values),
        "updated_at": updated.isoformat() if updated else None,
        "form": {
            "gpu_models": [{"id": m.id, "title": m.title, "max_count": m.max_count}
                           for m in form.gpu_models],
            **{name: {"min": getattr(form, name).minimum, "max": getattr(form, name).maximum}
               for name in FIELDS[1:]},
        },
    }


def _values_json(values: ResourceValues | None) -> dict[str, object] | None:
    return None if values is None else {name: getattr(values, name) for name in FIELDS}


@bp.get("/submissions/<uuid:submission_id>/resource-request")
def resource_request(submission_id: uuid.UUID) -> Response:
    """The submission's resource request (``request`` null if not filled in) and the form's
    ranges."""
    submission = load_request_submission(submission_id, Action.RESOURCE_REQUEST_VIEW)
    return jsonify(_request_json(submission, resource_service()))


@bp.put("/submissions/<uuid:submission_id>/resource-request")
def put_resource_request(submission_id: uuid.UUID) -> Response | tuple[Response, int]:
    """Replace the submission's resource request with the JSON body (every field)."""
    submission = load_request_submission(submission_id, Action.RESOURCE_REQUEST_EDIT)
    _definition, form = resource_form(submission)
    service = resource_service()
    try:
        values = parse_json(request.get_json(silent=True), form)
    except InvalidResourceRequest as error:
        # A submission that no longer accepts changes says so before any field problem.
        runtime().documents(db()).check_open(submission)
        return _problems_response(error)
    try:
        service.save(submission, values, form, user_id=user().id)
    except InvalidResourceRequest as error:
        return _problems_response(error)
    audit(Tag.RESOURCE_REQUEST_SAVED, target={"consortium": submission.consortium_id,
                                              "submission": submission.id})
    return jsonify(_request_json(submission, service))


@bp.get("/programmes/<code>/resource-totals")
def resource_totals(code: str) -> Response:
    """Officers: the programme totals and every request they may read."""
    programme, _definition, totals, hidden = programme_totals(code)
    return jsonify(
        programme=programme.code,
        requests=totals.requests,
        hidden=hidden,
        gpus_by_model=totals.gpus_by_model,
        gpu_total=totals.gpu_total,
        data_budget_krw=totals.data_budget_krw,
        talent_headcount=totals.talent_headcount,
        rows=[{"submission_id": str(row.submission.id),
               "consortium": row.submission.consortium.name,
               "state": row.submission.state.value, "counted": row.counted,
               "request": _values_json(row.values)} for row in totals.rows],
    )


_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_SUBMISSION_ID = {"name": "submission_id", "in": "path", "required": True,
                  "schema": {"type": "string", "format": "uuid"}}
_COUNT = {"type": "integer", "minimum": 0}
_VALUES = {"type": "object", "additionalProperties": False,
           "required": list(FIELDS),
           "properties": {"gpu_model": {"type": "string", "description": "A model id of the "
                                                                         "programme's form"},
                          "gpu_count": _COUNT,
                          "data_budget_krw": {**_COUNT, "description": "Won"},
                          "talent_headcount": _COUNT}}
_RANGE = {"type": "object", "properties": {"min": _COUNT, "max": _COUNT}}
_REQUEST = {"type": "object", "properties": {
    "submission_id": {"type": "string", "format": "uuid"},
    "programme": {"type": "string"},
    "editable": {"type": "boolean", "description": "Whether the submission accepts changes now"},
    "request": {"oneOf": [_VALUES, {"type": "null"}]},
    "updated_at": {"type": ["string", "null"], "format": "date-time"},
    "form": {"type": "object", "properties": {
        "gpu_models": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "max_count": _COUNT}}},
        "gpu_count": _RANGE, "data_budget_krw": _RANGE, "talent_headcount": _RANGE}},
}}
_PROBLEMS = {"type": "object", "required": ["error", "message", "problems"], "properties": {
    "error": {"type": "string", "enum": ["invalid_resource_request"]},
    "message": {"type": "string"},
    "problems": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"},
        "values": {"type": "object"}}}}}}

#: This module's part of the OpenAPI document (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {
    "/submissions/{submission_id}/resource-request": {
        "parameters": [_SUBMISSION_ID],
        "get": {
            "summary": "The submission's resource request and the form's ranges",
            "description": "Applicants of the consortium and officers (an officer with a "
                           "conflict only with a second officer's approval).",
            "responses": {
                "200": {"description": "The request (`request` null if not filled in)",
                        "content": {"application/json": {"schema": _REQUEST}}},
                "401": _error("Not authenticated"),
                "404": _error("No such submission, not visible to the caller, or the "
                              "programme asks for no resource request"),
            }},
        "put": {
            "summary": "Replace the resource request (applicants, while the submission accepts "
                       "changes)",
            "description": "Send every field; ranges are inclusive, and the GPU count may not "
                           "exceed the chosen model's `max_count`. Numbers must be JSON "
                           "integers (not strings, decimals or booleans).",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _VALUES}}},
            "responses": {
                "200": {"description": "The stored request",
                        "content": {"application/json": {"schema": _REQUEST}}},
                "400": {"description": "`invalid_resource_request`: every problem by field "
                                       "(missing, unknown, wrong type, out of range), or a "
                                       "missing CSRF header (session callers)",
                        "content": {"application/json": {"schema": _PROBLEMS}}},
                "401": _error("Not authenticated"),
                "403": _error("Not an applicant of the consortium (officers read only)"),
                "404": _error("No such submission, or not visible to the caller"),
                "409": _error("`deadline_passed` or `submission_locked`: the submission does "
                              "not accept changes"),
            }},
    },
    "/programmes/{code}/resource-totals": {"get": {
        "summary": "Programme totals of the resource requests (officers)",
        "description": "GPUs by model, data budget and talent over the requests the officer "
                       "may read, without withdrawn and ineligible submissions; `hidden` "
                       "counts submissions left out because of a conflict of interest.",
        "parameters": [{"name": "code", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The totals and one row per submission",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "programme": {"type": "string"}, "requests": _COUNT, "hidden": _COUNT,
                        "gpus_by_model": {"type": "object",
                                          "additionalProperties": _COUNT},
                        "gpu_total": _COUNT, "data_budget_krw": _COUNT,
                        "talent_headcount": _COUNT,
                        "rows": {"type": "array", "items": {"type": "object", "properties": {
                            "submission_id": {"type": "string", "format": "uuid"},
                            "consortium": {"type": "string"}, "state": {"type": "string"},
                            "counted": {"type": "boolean"},
                            "request": {"oneOf": [_VALUES, {"type": "null"}]}}}}}}}}},
            "401": _error("Not authenticated"),
            "403": _error("Not an officer"),
            "404": _error("No programme has this code"),
        }}},
}
