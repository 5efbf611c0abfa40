"""Screening endpoints of the JSON API, registered on the API blueprint.

Applicants read their live checklist, submit (or resubmit) and read their receipts; applicants
and officers read where a submission stands in screening. Messages of findings are in the
caller's language (``Accept-Language``: Korean unless English is preferred).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import Response, jsonify, url_for

from vault.audit.service import Tag
from vault.documents.models import SubmissionState
from vault.policy.actions import Action
from vault.screening.models import SubmissionReceipt
from vault.web.api import bp
from vault.web.context import actor, audit
from vault.web.i18n import current_locale
from vault.web.loaders import load_submission
from vault.web.screening import (
    finding_row,
    open_until,
    precheck,
    screening_service,
    target,
    workflow,
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _receipt_json(receipt: SubmissionReceipt) -> dict[str, object]:
    return {
        "id": str(receipt.id),
        "submission_id": str(receipt.submission_id),
        "created_at": receipt.created_at.isoformat(),
        # The exact text: its UTF-8 bytes are what manifest_sha256 is the hash of.
        "manifest": receipt.manifest,
        "manifest_sha256": receipt.manifest_sha256,
        "url": url_for("screening.receipt", submission_id=receipt.submission_id,
                       receipt_id=receipt.id),
    }


@bp.get("/submissions/<uuid:submission_id>/checklist")
def checklist(submission_id: uuid.UUID) -> Response:
    """The live pre-check of the submission's current documents (nothing is stored but PDF
    analyses); ``pending`` is true while some are still running: ask again."""
    submission = load_submission(submission_id, Action.SCREENING_VIEW)
    findings = precheck(submission)
    until = open_until(submission)
    rows = [finding_row(finding) for finding in findings]
    return jsonify(
        submission=str(submission.id), state=submission.state.value, locale=current_locale(),
        open_until=_time(until), findings=rows, pending=any(row["pending"] for row in rows))


@bp.post("/submissions/<uuid:submission_id>/submit")
def submit(submission_id: uuid.UUID) -> tuple[Response, int]:
    """Submit the draft (or resubmit the returned submission); answers with the receipt."""
    submission = load_submission(submission_id, Action.SUBMISSION_SUBMIT)
    resubmitting = submission.state is SubmissionState.RETURNED
    receipt = workflow().submit(submission, actor())
    audit(Tag.SUBMISSION_RESUBMITTED if resubmitting else Tag.SUBMISSION_SUBMITTED,
          target=target(submission, receipt=receipt.id,
                        manifest_sha256=receipt.manifest_sha256))
    body = {**_receipt_json(receipt), "state": submission.state.value}
    response = jsonify(body)
    response.headers["Location"] = str(body["url"])
    return response, 201


@bp.get("/submissions/<uuid:submission_id>/receipts")
def receipts(submission_id: uuid.UUID) -> Response:
    """Every receipt of the submission, newest first."""
    submission = load_submission(submission_id, Action.SCREENING_VIEW)
    return jsonify(receipts=[_receipt_json(r) for r in workflow().receipts(submission)])


@bp.get("/submissions/<uuid:submission_id>/screening")
def screening(submission_id: uuid.UUID) -> Response:
    """Where the submission stands: its state, the decision with its reason and the findings
    of the latest screening run."""
    submission = load_submission(submission_id, Action.SCREENING_VIEW)
    decision = workflow().decision(submission)
    run, findings = screening_service().latest(submission)
    return jsonify(
        submission=str(submission.id), state=submission.state.value, stage=submission.stage,
        submitted_at=_time(submission.submitted_at),
        correction_deadline=_time(submission.correction_deadline),
        decision={"outcome": decision.to_state.value, "reason": decision.reason,
                  "at": decision.at.isoformat(),
                  "correction_deadline": _time(decision.correction_deadline)}
        if decision else None,
        run={"id": str(run.id), "started_at": run.started_at.isoformat(),
             "finished_at": _time(run.finished_at)} if run else None,
        locale=current_locale(), findings=[finding_row(finding) for finding in findings])


_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SUBMISSION_ID = {"name": "submission_id", "in": "path", "required": True,
                  "schema": {"type": "string", "format": "uuid"}}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATES = [state.value for state in SubmissionState]
_FINDING = {
    "type": "object",
    "required": ["check", "result", "kind", "partner", "title", "message", "evidence"],
    "properties": {
        "check": {"type": "string", "description": "Stable check id, e.g. pdf.pages"},
        "result": {"type": "string", "enum": ["pass", "fail", "warning"]},
        "kind": {"type": "string", "description": "Document kind (\"\" for the whole "
                                                  "submission)"},
        "partner": {"type": ["string", "null"], "description": "Partner-list entry id for "
                                                                "per-partner documents"},
        "title": {"type": "string"},
        "message": {"type": "string", "description": "For the applicant, in `locale`"},
        "evidence": {"type": "string", "description": "What was found, e.g. \"42 pages, "
                                                      "limit 40\""},
    },
}
_RECEIPT = {
    "type": "object",
    "required": ["id", "submission_id", "created_at", "manifest", "manifest_sha256", "url"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "submission_id": {"type": "string", "format": "uuid"},
        "created_at": {"type": "string", "format": "date-time"},
        "manifest": {"type": "string", "description": "Canonical JSON (sorted keys, no spaces, "
                     "UTF-8): submission, consortium, programme, state, at and documents "
                     "(kind, slot, version, filename, size, sha256, uploaded_at)"},
        "manifest_sha256": {**_SHA256, "description": "SHA-256 of the manifest's UTF-8 bytes"},
        "url": {"type": "string", "description": "The printable receipt page"},
        "state": {"type": "string", "enum": ["submitted", "resubmitted"]},
    },
}
_NOT_VISIBLE = "No such submission (or not visible to the caller)"

#: This module's part of the OpenAPI document (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {
    "/submissions/{submission_id}/checklist": {"get": {
        "summary": "The live pre-check of a submission's current documents",
        "description": "Runs every screening check on the newest version of each document now "
                       "(PDFs are analysed in a sandbox; analyses are cached). Nothing is "
                       "stored. Messages are in the caller's language (Accept-Language).",
        "parameters": [_SUBMISSION_ID],
        "responses": {
            "200": _json({"type": "object", "properties": {
                "submission": {"type": "string", "format": "uuid"},
                "state": {"type": "string", "enum": _STATES},
                "locale": {"type": "string", "enum": ["ko", "en"]},
                "open_until": {**_TIME, "description": "The deadline (or correction deadline) "
                                                       "for changes; null when closed"},
                "findings": {"type": "array", "items": _FINDING}}}, "The checklist"),
            "401": _error("Not authenticated"),
            "403": _error("May see the submission but not its screening"),
            "404": _error(_NOT_VISIBLE),
            "410": _error("The consortium's documents were destroyed"),
        }}},
    "/submissions/{submission_id}/submit": {"post": {
        "summary": "Submit (or resubmit) the submission (applicants)",
        "description": "A draft is submitted before the programme's deadline; a returned "
                       "submission is resubmitted before its correction deadline. The answer "
                       "is the receipt: every document's newest version with its SHA-256.",
        "parameters": [_SUBMISSION_ID],
        "responses": {
            "201": _json(_RECEIPT, "The receipt"),
            "400": _error("Missing CSRF header (session callers)"),
            "401": _error("Not authenticated"),
            "403": _error("Not an applicant of this consortium"),
            "404": _error(_NOT_VISIBLE),
            "409": _error("`illegal_transition` (e.g. already submitted), `deadline_passed` or "
                          "`empty_submission` (nothing uploaded)"),
        }}},
    "/submissions/{submission_id}/receipts": {"get": {
        "summary": "The submission's receipts, newest first",
        "parameters": [_SUBMISSION_ID],
        "responses": {
            "200": _json({"type": "object", "properties": {
                "receipts": {"type": "array", "items": _RECEIPT}}}, "The receipts"),
            "401": _error("Not authenticated"),
            "403": _error("May see the submission but not its screening"),
            "404": _error(_NOT_VISIBLE),
        }}},
    "/submissions/{submission_id}/screening": {"get": {
        "summary": "Where the submission stands in screening",
        "description": "The state, the officer's decision with its reason (the applicant sees "
                       "it), and the findings of the latest screening run.",
        "parameters": [_SUBMISSION_ID],
        "responses": {
            "200": _json({"type": "object", "properties": {
                "submission": {"type": "string", "format": "uuid"},
                "state": {"type": "string", "enum": _STATES},
                "stage": {"type": "string", "description": "call, or the evaluation stage"},
                "submitted_at": _TIME,
                "correction_deadline": _TIME,
                "decision": {"type": ["object", "null"], "properties": {
                    "outcome": {"type": "string", "enum": ["eligible", "returned",
                                                           "ineligible"]},
                    "reason": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "correction_deadline": _TIME}},
                "run": {"type": ["object", "null"], "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "finished_at": _TIME}},
                "locale": {"type": "string", "enum": ["ko", "en"]},
                "findings": {"type": "array", "items": _FINDING}}}, "The screening state"),
            "401": _error("Not authenticated"),
            "403": _error("May see the submission but not its screening"),
            "404": _error(_NOT_VISIBLE),
        }}},
}
