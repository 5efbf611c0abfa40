"""The JSON API under ``/api/v1``.

Callers authenticate with a bearer token (``Authorization: Bearer vault_…``) or, from the
vault's own pages, with the session cookie plus an ``X-CSRFToken`` header on every change.
Unauthenticated calls get 401, never a redirect; errors are ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, g, jsonify, request, url_for
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from vault.audit.checkpoints import Checkpoints
from vault.documents.models import Document, DocumentVersion, Submission
from vault.documents.submissions import SubmissionService
from vault.policy.actions import Action
from vault.web.audit import export_response
from vault.web.context import actor, authorize, authorizer, db, runtime, user
from vault.web.documents import receive_upload, send_version
from vault.web.loaders import load_document, load_submission
from vault.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiCsrfError(Exception):
    """A session-authenticated change came without a valid ``X-CSRFToken`` header."""


@bp.before_request
def check_csrf_for_session_callers() -> None:
    """Token callers are immune to CSRF; cookie callers must prove the page is ours."""
    if request.method in ("GET", "HEAD", "OPTIONS") or g.get("auth_method") == "token":
        return
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except ValidationError:
        raise ApiCsrfError() from None


@bp.get("/health")
def health() -> Response:
    """Public liveness check."""
    return jsonify(status="ok")


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document())


@bp.get("/audit/checkpoint")
def audit_checkpoint() -> Response:
    """The latest signed checkpoint of the audit log (C2SP tlog-checkpoint, signed note)."""
    authorize(Action.AUDIT_CHECKPOINT_VIEW)
    latest = Checkpoints(db(), identity=runtime().log_identity, clock=runtime().clock).latest()
    if latest is None:
        return Response("no checkpoint has been issued yet\n", status=404,
                        mimetype="text/plain")
    return Response(latest.note, mimetype="text/plain; charset=utf-8")


@bp.get("/audit/export")
def audit_export() -> Response:
    """A bundle of the audit log (zip) that verifies offline: the whole log, or with
    ``?consortium=ID`` or ``?document=ID`` only those events, each with its inclusion proof."""
    return export_response()


@bp.get("/me")
def me() -> Response:
    """Who the caller is: id, e-mail, role, whether these credentials passed a second factor
    (the session's sign-in, or the session a token was created from) and the consortia they
    act for."""
    account = user()
    return jsonify(
        id=str(account.id),
        email=account.email,
        display_name=account.display_name,
        role=account.role.value,
        # The credentials' state, not the account's: a command-line token of an account with
        # a second factor has none behind it.
        mfa=actor().mfa,
        consortia=sorted(str(c) for c in actor().consortium_ids),
    )


def _submission_json(submission: Submission, *, with_documents: bool) -> dict[str, object]:
    consortium = submission.consortium
    data: dict[str, object] = {
        "id": str(submission.id),
        "consortium": {"id": str(consortium.id), "name": consortium.name},
        "programme": consortium.programme.code,
        "state": submission.state.value,
        "submission_deadline": consortium.programme.submission_deadline.isoformat(),
        "submitted_at": submission.submitted_at.isoformat() if submission.submitted_at else None,
    }
    if with_documents:
        items = runtime().documents(db()).listing(submission)
        visible = set(authorizer().permitted(actor(), Action.DOCUMENT_VIEW,
                                             [item.document for item in items]))
        data["documents"] = [
            {**_document_summary(item.document), "latest": _version_json(item.latest)}
            for item in items if item.document in visible
        ]
    return data


def _document_summary(document: Document) -> dict[str, object]:
    return {
        "id": str(document.id),
        "kind": document.kind,
        "partner": document.slot or None,
        "url": url_for("api.document", document_id=document.id),
    }


def _version_json(version: DocumentVersion) -> dict[str, object]:
    return {
        "version": version.version,
        "filename": version.original_filename,
        "media_type": version.media_type,
        "size": version.size_bytes,
        "sha256": version.sha256,
        "uploaded_at": version.created_at.isoformat(),
        "content_url": url_for("api.content", document_id=version.document_id,
                               version=version.version),
    }


@bp.get("/submissions")
def submissions() -> Response:
    """The submissions the caller may see."""
    visible = authorizer().permitted(actor(), Action.SUBMISSION_VIEW,
                                     SubmissionService(db()).visible(None))
    return jsonify(submissions=[_submission_json(s, with_documents=False) for s in visible])


@bp.get("/submissions/<uuid:submission_id>")
def submission(submission_id: uuid.UUID) -> Response:
    """One submission with its documents' newest versions."""
    return jsonify(_submission_json(load_submission(submission_id), with_documents=True))


@bp.put("/submissions/<uuid:submission_id>/documents/<kind>")
def upload(submission_id: uuid.UUID, kind: str) -> tuple[Response, int]:
    """Upload the raw request body as a new version of a document; answers with a receipt."""
    target = load_submission(submission_id, Action.DOCUMENT_UPLOAD)
    version = receive_upload(target, kind)
    receipt = {
        "document_id": str(version.document_id),
        "submission_id": str(target.id),
        "kind": kind,
        "partner": request.args.get("partner") or None,
        **_version_json(version),
        "server_time": runtime().clock().isoformat(),
        "receipt_url": url_for("documents.document_page", document_id=version.document_id,
                               uploaded=version.version),
    }
    response = jsonify(receipt)
    response.headers["Location"] = url_for("api.document", document_id=version.document_id)
    return response, 201


@bp.get("/documents/<uuid:document_id>")
def document(document_id: uuid.UUID) -> Response:
    """A document's metadata and all its versions."""
    found = load_document(document_id)
    return jsonify({
        **_document_summary(found),
        "submission_id": str(found.submission_id),
        "shredded": runtime().documents(db()).is_shredded(found.submission.consortium),
        "versions": [_version_json(v) for v in found.versions],
    })


@bp.get("/documents/<uuid:document_id>/content")
def content(document_id: uuid.UUID) -> Response:
    """The document's content (the newest version unless ``?version=N``), as an attachment."""
    return send_version(load_document(document_id, Action.DOCUMENT_READ),
                        request.args.get("version", type=int))


# Endpoints of other capabilities, registered on ``bp`` by importing their modules.
from vault.web import (  # noqa: E402, F401
    api_evaluation,
    api_nda,
    api_resources,
    api_screening,
    api_stages,
    api_uploads,
)
