"""Stage round endpoints of the JSON API, registered on the API blueprint.

Officers read a programme's rounds and a round's ranking, import a component's CSV (the raw
``text/csv`` request body), and close, reopen, confirm and publish a round, under exactly the
rules of the pages (the ``stage:*`` actions on the programme). Applicants read their own
published outcomes. Figures are exact decimal strings ("81.25"); reviewers on a ranking are
numbers, never names. Errors are ``{"error": code, "message": text}``: 409 for a step the
round's state does not allow, 422 for a CSV with problems (``problems`` lists them by line).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from vault.errors import DomainError
from vault.evaluation.stages import RoundView
from vault.policy.actions import Action
from vault.web.api import bp
from vault.web.context import actor, authorize, db
from vault.web.i18n import gettext as _
from vault.web.loaders import load_programme, load_round
from vault.web.stages import (
    MAX_IMPORT_BYTES,
    imports_service,
    problems,
    ranking_rows,
    rounds_service,
)
from vault.web.stages_outcomes import load_outcome_submission, outcome_entries, retention_due


def _time(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def round_json(view: RoundView) -> dict[str, Any]:
    """A round as the API shows it: state, times, the result's SHA-256, counts and progress."""
    return {
        "stage": view.stage.id, "title_ko": view.stage.title_ko, "title_en": view.stage.title_en,
        "decision": view.stage.decision.rule if view.stage.decision else None,
        "state": view.state.value, "closed_at": _time(view.closed_at),
        "confirmed_at": _time(view.confirmed_at), "published_at": _time(view.published_at),
        "result_sha256": view.result_sha256, "candidates": view.candidates,
        "progress": [{"reviewer_id": str(p.reviewer_id), "name": p.name,
                      "assigned": p.assigned, "submitted": p.submitted, "drafts": p.drafts}
                     for p in view.progress],
    }


def error_json(error: DomainError) -> tuple[Response, int]:
    """A refused change with the problems of a CSV import, when it has them."""
    body: dict[str, Any] = {"error": error.code, "message": error.translated(_)}
    if getattr(error, "problems", None):
        body["problems"] = problems(error)
    return jsonify(body), error.status


@bp.get("/programmes/<code>/stages")
def stage_rounds(code: str) -> Response:
    """Every stage's round of the programme, in order."""
    programme, _definition = load_programme(code)
    authorize(Action.STAGE_VIEW, programme, target={"programme": programme.code})
    return jsonify(programme=programme.code,
                   rounds=[round_json(view) for view in rounds_service().rounds(programme)])


@bp.get("/programmes/<code>/stages/<stage_id>")
def stage_round(code: str, stage_id: str) -> Response:
    """One round."""
    programme, _definition, stage = load_round(code, stage_id, Action.STAGE_VIEW)
    return jsonify(round_json(rounds_service().round(programme, stage.id)))


@bp.get("/programmes/<code>/stages/<stage_id>/ranking")
def stage_ranking(code: str, stage_id: str) -> Response:
    """The round's ranking: live while not confirmed, else the confirmed snapshot."""
    programme, _definition, stage = load_round(code, stage_id, Action.STAGE_VIEW)
    ranking = rounds_service().ranking(programme, stage.id)
    return jsonify(programme=programme.code, stage=stage.id, confirmed=ranking.confirmed,
                   sha256=ranking.sha256, missing_imports=list(ranking.missing_imports),
                   unscored=[str(sid) for sid in ranking.unscored],
                   cut_unresolved=ranking.result.cut_unresolved,
                   no_selection=ranking.result.no_selection, entries=ranking_rows(ranking))


@bp.post("/programmes/<code>/stages/<stage_id>/imports/<component_id>")
def stage_import(code: str, stage_id: str, component_id: str
                 ) -> tuple[Response, int]:
    """Import a component's scores from the ``text/csv`` body (``?filename=`` names it)."""
    programme, _definition, stage = load_round(code, stage_id, Action.STAGE_IMPORT)
    if request.mimetype != "text/csv":
        raise UnsupportedMediaType()
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES:
        raise RequestEntityTooLarge()
    data = request.get_data(cache=False)
    filename = (request.args.get("filename") or "").strip()[:200] or f"{component_id[:64]}.csv"
    try:
        with db().begin_nested():
            view = imports_service().import_csv(programme, stage.id, component_id, data,
                                                filename, actor())
    except DomainError as error:
        return error_json(error)
    return jsonify(component=view.component.id, filename=view.filename, sha256=view.sha256,
                   rows=view.rows, imported_at=_time(view.imported_at),
                   current=view.current), 201


def _step(code: str, stage_id: str, action: Action, step: str) -> Response | tuple[Response, int]:
    programme, _definition, stage = load_round(code, stage_id, action)
    service = rounds_service()
    try:
        with db().begin_nested():
            if step == "reopen":
                body = request.get_json(silent=True)
                reason = body.get("reason") if isinstance(body, dict) else None
                view = service.reopen(programme, stage.id, actor(),
                                      reason if isinstance(reason, str) else "")
            else:
                view = getattr(service, step)(programme, stage.id, actor())
    except DomainError as error:
        return error_json(error)
    return jsonify(round_json(view))


@bp.post("/programmes/<code>/stages/<stage_id>/close")
def stage_close(code: str, stage_id: str) -> Response | tuple[Response, int]:
    """Close the panel (reviewers lose access at once)."""
    return _step(code, stage_id, Action.STAGE_CLOSE, "close")


@bp.post("/programmes/<code>/stages/<stage_id>/reopen")
def stage_reopen(code: str, stage_id: str) -> Response | tuple[Response, int]:
    """Reopen a closed round; the JSON body gives the ``reason``."""
    return _step(code, stage_id, Action.STAGE_CLOSE, "reopen")


@bp.post("/programmes/<code>/stages/<stage_id>/confirm")
def stage_confirm(code: str, stage_id: str) -> Response | tuple[Response, int]:
    """Confirm the ranking (an immutable snapshot with its SHA-256)."""
    return _step(code, stage_id, Action.STAGE_CONFIRM, "confirm")


@bp.post("/programmes/<code>/stages/<stage_id>/publish")
def stage_publish(code: str, stage_id: str) -> Response | tuple[Response, int]:
    """Publish the confirmed round's outcomes."""
    return _step(code, stage_id, Action.STAGE_PUBLISH, "publish")


@bp.get("/submissions/<uuid:submission_id>/outcomes")
def submission_outcomes(submission_id: uuid.UUID) -> Response:
    """The submission's published outcomes (its own applicants)."""
    submission = load_outcome_submission(submission_id)
    entries = outcome_entries(submission)
    return jsonify(
        submission_id=str(submission.id), shred_due=_time(retention_due(entries)),
        outcomes=[{"stage": entry["stage_id"], "outcome": entry["outcome"],
                   "rank": entry["rank"], "published_at": _time(entry["published_at"]),
                   "scores": entry["scores"], "panel": entry["panel"]} for entry in entries])


_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_FIGURE = {"type": ["string", "null"], "description": "An exact decimal, e.g. \"81.25\""}
_FIGURES = {"type": "object", "additionalProperties": _FIGURE}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_ROUND = {"type": "object", "properties": {
    "stage": {"type": "string"}, "title_ko": {"type": "string"}, "title_en": {"type": "string"},
    "decision": {"type": ["string", "null"], "enum": ["top", "eliminate", "majority", None]},
    "state": {"type": "string", "enum": ["open", "closed", "confirmed", "published"]},
    "closed_at": _TIME, "confirmed_at": _TIME, "published_at": _TIME,
    "result_sha256": {"type": ["string", "null"]},
    "candidates": {"type": "integer", "minimum": 0},
    "progress": {"type": "array", "items": {"type": "object", "properties": {
        "reviewer_id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"}, "assigned": {"type": "integer"},
        "submitted": {"type": "integer"}, "drafts": {"type": "integer"}}}}}}
_ENTRY = {"type": "object", "properties": {
    "submission_id": {"type": "string", "format": "uuid"}, "consortium": {"type": "string"},
    "rank": {"type": "integer"},
    "outcome": {"type": "string",
                "enum": ["pass", "not_selected", "eliminated", "selected", "disqualified"]},
    "score": {**_FIGURE, "description": "The composite where the stage has components, "
                                        "else the panel's score"},
    "panel_score": _FIGURE, "components": _FIGURES, "criterion_means": _FIGURES,
    "reviewers": {"type": "array", "items": {"type": "object", "properties": {
        "reviewer": {"type": "integer", "description": "Reviewer 1..n of this stage (never "
                                                       "a name)"},
        "total": _FIGURE, "outlier": {"type": "boolean"},
        "accept": {"type": ["boolean", "null"]}}}},
    "sheets": {"type": "integer"}, "accepts": {"type": "integer"},
    "trimmed": {"type": "boolean"}, "std_dev": _FIGURE, "tied": {"type": "boolean"},
    "tie_broken_by": {"type": ["string", "null"]}, "tie_unresolved": {"type": "boolean"},
    "cut_tie": {"type": "boolean"}, "disqualified": {"type": ["string", "null"]}}}
_STEP = {
    "responses": {
        "200": _json("The round after the step", _ROUND),
        "401": _error("Not authenticated"),
        "403": _error("Not an officer, or an officer with a conflict in the programme"),
        "404": _error("No such programme or stage"),
        "409": _error("The round's state does not allow this step (e.g. confirming an open "
                      "round, a missing import, an unresolved tie at the cut)"),
    }}
_STAGE_PARAMS = [_path("code"), _path("stage_id")]

#: This module's part of the OpenAPI document (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {
    "/programmes/{code}/stages": {"get": {
        "summary": "Every stage's round of the programme (officers)",
        "parameters": [_path("code")],
        "responses": {
            "200": _json("The rounds in stage order", {"type": "object", "properties": {
                "programme": {"type": "string"},
                "rounds": {"type": "array", "items": _ROUND}}}),
            "401": _error("Not authenticated"), "403": _error("Not an officer"),
            "404": _error("No programme has this code")}}},
    "/programmes/{code}/stages/{stage_id}": {"get": {
        "summary": "One round (officers)", "parameters": _STAGE_PARAMS,
        "responses": {"200": _json("The round", _ROUND), "401": _error("Not authenticated"),
                      "403": _error("Not an officer"),
                      "404": _error("No such programme or stage")}}},
    "/programmes/{code}/stages/{stage_id}/ranking": {"get": {
        "summary": "The round's ranking (officers): live until confirmed, then the snapshot",
        "parameters": _STAGE_PARAMS,
        "responses": {
            "200": _json("The entries in rank order", {"type": "object", "properties": {
                "programme": {"type": "string"}, "stage": {"type": "string"},
                "confirmed": {"type": "boolean"}, "sha256": {"type": ["string", "null"]},
                "missing_imports": {"type": "array", "items": {"type": "string"}},
                "cut_unresolved": {"type": "boolean"}, "no_selection": {"type": "boolean"},
                "entries": {"type": "array", "items": _ENTRY}}}),
            "401": _error("Not authenticated"), "403": _error("Not an officer"),
            "404": _error("No such programme or stage"),
            "400": _error("The submitted sheets cannot be ranked yet")}}},
    "/programmes/{code}/stages/{stage_id}/imports/{component_id}": {"post": {
        "summary": "Import an imported component's scores from a CSV (officers)",
        "description": "The body is the CSV (UTF-8, a BOM allowed, at most 1 MiB and 1000 rows): "
                       "header `submission_id,score` (a `consortium` column is ignored), every "
                       "submission of the stage exactly once, scores with at most two decimals "
                       "inside the component's scale. `?filename=` names the file. A new import "
                       "supersedes the current one; nothing is stored when a row is wrong.",
        "parameters": [*_STAGE_PARAMS, _path("component_id"),
                       {"name": "filename", "in": "query", "required": False,
                        "schema": {"type": "string", "maxLength": 200}}],
        "requestBody": {"required": True,
                        "content": {"text/csv": {"schema": {"type": "string"}}}},
        "responses": {
            "201": _json("The stored import", {"type": "object", "properties": {
                "component": {"type": "string"}, "filename": {"type": "string"},
                "sha256": {"type": "string"}, "rows": {"type": "integer"},
                "imported_at": _TIME, "current": {"type": "boolean"}}}),
            "401": _error("Not authenticated"),
            "403": _error("Not an officer, or an officer with a conflict in the programme"),
            "404": _error("No such programme, stage or component"),
            "409": _error("The round is confirmed: its imports are final"),
            "413": _error("The body is larger than 1 MiB"),
            "415": _error("The body is not text/csv"),
            "422": _json("The problems by line (the first 20), e.g. \"line 4: 104.5 is outside "
                         "0-100\"", {"type": "object", "properties": {
                             "error": {"type": "string"}, "message": {"type": "string"},
                             "problems": {"type": "array", "items": {"type": "string"}}}})}}},
    "/programmes/{code}/stages/{stage_id}/close": {"post": {
        "summary": "Close the panel: no more sheet writes, reviewers lose access at once",
        "parameters": _STAGE_PARAMS, **_STEP}},
    "/programmes/{code}/stages/{stage_id}/reopen": {"post": {
        "summary": "Reopen a closed (unconfirmed) round, with a reason",
        "parameters": _STAGE_PARAMS,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"],
            "properties": {"reason": {"type": "string"}}}}}},
        "responses": {**_STEP["responses"], "422": _error("No reason, or one too long")}}},
    "/programmes/{code}/stages/{stage_id}/confirm": {"post": {
        "summary": "Confirm the ranking: an immutable snapshot with its SHA-256",
        "parameters": _STAGE_PARAMS, **_STEP}},
    "/programmes/{code}/stages/{stage_id}/publish": {"post": {
        "summary": "Publish the confirmed round's outcomes",
        "parameters": _STAGE_PARAMS, **_STEP}},
    "/submissions/{submission_id}/outcomes": {"get": {
        "summary": "The submission's published outcomes (its consortium's applicants)",
        "description": "Scores only where the stage publishes them, the panel's names only where "
                       "it discloses them; `shred_due` is when the consortium's documents will "
                       "be destroyed under the retention rule.",
        "parameters": [{"name": "submission_id", "in": "path", "required": True,
                        "schema": {"type": "string", "format": "uuid"}}],
        "responses": {
            "200": _json("The outcomes", {"type": "object", "properties": {
                "submission_id": {"type": "string", "format": "uuid"}, "shred_due": _TIME,
                "outcomes": {"type": "array", "items": {"type": "object", "properties": {
                    "stage": {"type": "string"}, "outcome": {"type": "string"},
                    "rank": {"type": ["integer", "null"]}, "published_at": _TIME,
                    "scores": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                        "score": _FIGURE, "criterion_means": _FIGURES,
                        "components": _FIGURES}}]},
                    "panel": {"oneOf": [{"type": "null"},
                                        {"type": "array", "items": {"type": "string"}}]}}}}}}),
            "401": _error("Not authenticated"),
            "404": _error("No such submission, or not the caller's consortium")}}},
}
