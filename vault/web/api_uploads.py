"""Resumable uploads over the JSON API: the tus 1.0 core protocol with the creation,
termination and expiration extensions, registered on the API blueprint.

``POST /uploads`` opens an upload (``Upload-Length``, ``Upload-Metadata`` with ``submission``,
``kind``, ``partner``, ``filename`` and ``filetype``); ``HEAD`` says how much is stored;
``PATCH`` appends at exactly that offset; ``DELETE`` ends it. The final ``PATCH`` answers
``204`` like any other (tus clients expect it) with the receipt's version id and SHA-256 in
``Upload-Receipt-*`` headers; ``GET /uploads/<id>`` returns the whole receipt as JSON.
Only the user who opened an upload sees it: for anyone else it does not exist (404).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify, request, url_for
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import http_date

from vault.documents.models import DocumentVersion, Submission, UploadSession, UploadState
from vault.documents.resumable import Lease, ResumableUploads, Segment
from vault.documents.service import DocumentService
from vault.documents.upload_errors import (
    BodyIncomplete,
    LengthRequired,
    ProtocolError,
    UnsupportedTusVersion,
    WrongPatchType,
)
from vault.policy.actions import Action
from vault.programmes.definition import DocumentKind
from vault.web.api import bp
from vault.web.context import actor, audit_log, commit_so_far, db, request_info, runtime, user
from vault.web.documents import READ_SIZE, document_kind
from vault.web.loaders import load_submission

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
PATCH_TYPE = "application/offset+octet-stream"
#: Endpoints that speak tus: their every answer carries ``Tus-Resumable``.
_TUS_ENDPOINTS = frozenset({"api.upload_options", "api.upload_create", "api.upload_status",
                            "api.upload_append", "api.upload_terminate"})
#: Metadata keys, and the aliases some clients send.
_METADATA_ALIASES = {"slot": "partner", "name": "filename", "content_type": "filetype",
                     "submission_id": "submission"}


@bp.after_request
def tus_headers(response: Response) -> Response:
    """Every tus answer names the protocol version; a refused version lists what we speak."""
    if request.endpoint in _TUS_ENDPOINTS:
        response.headers["Tus-Resumable"] = TUS_VERSION
        if response.status_code == 412:
            response.headers["Tus-Version"] = TUS_VERSION
    return response


def _service() -> ResumableUploads:
    rt = runtime()
    documents = DocumentService(db(), keys=rt.keys, blobs=rt.blobs, clock=rt.clock,
                                definitions=rt.definitions)
    return ResumableUploads(db(), documents=documents, audit=audit_log(), clock=rt.clock,
                            request=request_info())


def _require_tus() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise UnsupportedTusVersion(version=TUS_VERSION)


def _header_int(name: str) -> int:
    """A non-negative decimal header; raises ``ProtocolError``."""
    raw = request.headers.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise ProtocolError(header=name)
    return int(raw)


def parse_metadata(header: str) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64(value)`` pairs, values UTF-8.

    Raises ``ProtocolError`` on a malformed pair, bad base64 or a repeated key.
    """
    values: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        key = _METADATA_ALIASES.get(key, key)
        if not key or key in values or " " in encoded.strip():
            raise ProtocolError(header="Upload-Metadata")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ProtocolError(header="Upload-Metadata") from None
    return values


def _expires(upload: UploadSession) -> str:
    return http_date(upload.expires_at)


def _load(upload_id: uuid.UUID, action: Action) -> tuple[ResumableUploads, UploadSession,
                                                          Submission]:
    """The caller's own upload and its submission, authorised for ``action`` (404 for
    anyone but the uploader, exactly like an id that does not exist)."""
    service = _service()
    upload = service.get(upload_id, owner_id=user().id)
    submission = load_submission(upload.submission_id, action)
    return service, upload, submission


@bp.route("/uploads", methods=["OPTIONS"])
def upload_options() -> tuple[str, int, dict[str, str]]:
    """What this tus server supports: version, extensions, the largest upload of any kind."""
    largest = max((kind.max_size_bytes for definition in runtime().definitions.values()
                   for kind in definition.document_kinds), default=0)
    return "", 204, {"Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
                     "Tus-Max-Size": str(largest)}


@bp.route("/uploads", methods=["POST"], provide_automatic_options=False)
def upload_create() -> tuple[str, int, dict[str, str]]:
    """Open a resumable upload (tus creation); ``201`` with its ``Location``."""
    _require_tus()
    if "Upload-Defer-Length" in request.headers:
        raise ProtocolError(header="Upload-Length")
    length = _header_int("Upload-Length")
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    try:
        submission_id = uuid.UUID(metadata.get("submission", ""))
    except ValueError:
        raise ProtocolError(header="Upload-Metadata submission") from None
    submission = load_submission(submission_id, Action.DOCUMENT_UPLOAD)
    kind = document_kind(submission, metadata.get("kind", ""))
    upload = _service().create(
        submission=submission, kind=kind, slot=metadata.get("partner", ""),
        filename=metadata.get("filename"), declared_type=metadata.get("filetype"),
        length=length, actor=actor())
    return "", 201, {"Location": url_for("api.upload_status", upload_id=upload.id),
                     "Upload-Expires": _expires(upload)}


@bp.route("/uploads/<uuid:upload_id>", methods=["GET", "HEAD"])
def upload_status(upload_id: uuid.UUID) -> Response:
    """``HEAD`` (tus): the stored offset and the length. ``GET``: the same as JSON, with the
    receipt once the upload is complete."""
    if request.method == "HEAD":
        _require_tus()
    service, upload, _submission = _load(upload_id, Action.SUBMISSION_VIEW)
    service.check_live(upload)
    version = service.receipt(upload)
    if request.method == "HEAD":
        response = Response(status=200)
    else:
        response = jsonify(_status_json(upload, version))
    response.headers["Upload-Offset"] = str(upload.offset_bytes)
    response.headers["Upload-Length"] = str(upload.length_bytes)
    response.headers["Cache-Control"] = "no-store"
    if upload.state is UploadState.OPEN:
        response.headers["Upload-Expires"] = _expires(upload)
    return response


@bp.route("/uploads/<uuid:upload_id>", methods=["PATCH"])
def upload_append(upload_id: uuid.UUID) -> Response:
    """Append the body at ``Upload-Offset`` (tus core); ``204`` with the new offset. The
    final PATCH also carries the receipt (``Upload-Receipt-Version-Id``, ``…-Sha256``)."""
    _require_tus()
    if request.mimetype != PATCH_TYPE:
        raise WrongPatchType()
    offset = _header_int("Upload-Offset")
    if request.content_length is None:
        raise LengthRequired()
    service, upload, submission = _load(upload_id, Action.DOCUMENT_UPLOAD)
    kind = document_kind(submission, upload.kind)
    version = receive_patch(service, upload, kind, offset, request.content_length)
    response = Response(status=204)
    response.headers["Upload-Offset"] = str(upload.offset_bytes)
    if version is None:
        response.headers["Upload-Expires"] = _expires(upload)
    else:
        response.headers["Upload-Receipt-Version-Id"] = str(version.id)
        response.headers["Upload-Receipt-Sha256"] = version.sha256
    return response


@bp.route("/uploads/<uuid:upload_id>", methods=["DELETE"])
def upload_terminate(upload_id: uuid.UUID) -> tuple[str, int]:
    """End an upload and remove its stored bytes (tus termination); ``204``."""
    _require_tus()
    service, upload, _submission = _load(upload_id, Action.DOCUMENT_UPLOAD)
    names = service.terminate(upload, actor())
    # The rows go first: a failure after the commit leaves unreferenced ciphertext, never a
    # row whose blob is gone.
    commit_so_far()
    for name in names:
        service.documents.blobs.delete(name)
    return "", 204


# -- the PATCH pipeline --------------------------------------------------------------------

def receive_patch(service: ResumableUploads, upload: UploadSession, kind: DocumentKind,
                  offset: int, length: int) -> DocumentVersion | None:
    """Stream one PATCH body into a sealed segment; on the last byte, turn the upload into a
    document version and return it. No transaction stays open while bytes stream in."""
    lease = service.begin_append(upload, offset=offset, length=length, kind=kind)
    if length == 0:  # an empty PATCH only confirms the offset
        _release(service, lease)
        return None
    commit_so_far()
    # Flask's global body limit is for forms; a PATCH may carry the rest of the upload. One
    # more byte, so that reading to the end of a complete body is not an overrun (a server
    # that terminates the input stream enforces this as a maximum).
    request.max_content_length = length + 1
    try:
        segment = service.store_segment(lease, _body(), kind)
    except BaseException:
        _release(service, lease)
        raise
    if not lease.final:
        try:
            service.record_segment(upload, lease, segment)
        except BaseException:
            _release(service, lease)
            raise
        return None
    try:
        completion = service.prepare_document(upload, lease, kind, segment)
        commit_so_far()
        stored = service.store_document(completion)
        version = service.record_document(upload, lease, completion.plan, stored, segment,
                                          actor())
        commit_so_far()
    except BaseException:
        # The upload stays one PATCH short: the client resends its last piece and the
        # completion runs again.
        _release(service, lease, segment)
        raise
    service.discard_segments(upload)
    return version


def _release(service: ResumableUploads, lease: Lease, segment: Segment | None = None) -> None:
    """Undo a failed PATCH: its segment blob goes, the lease ends (committed on its own)."""
    db().rollback()
    if segment is not None:
        service.documents.blobs.delete(segment.blob_name)
    service.release(lease.upload_id, lease.token)
    db().commit()


def _body() -> Iterator[bytes]:
    """The request body in pieces of ``READ_SIZE``; a body cut short raises
    ``BodyIncomplete``."""
    stream = request.stream
    while True:
        try:
            chunk = stream.read(READ_SIZE)
        except ClientDisconnected:
            raise BodyIncomplete() from None
        if not chunk:
            return
        yield chunk


def _status_json(upload: UploadSession, version: DocumentVersion | None) -> dict[str, object]:
    data: dict[str, object] = {
        "id": str(upload.id),
        "submission_id": str(upload.submission_id),
        "kind": upload.kind,
        "partner": upload.slot or None,
        "filename": upload.filename,
        "state": upload.state.value,
        "offset": upload.offset_bytes,
        "length": upload.length_bytes,
        "expires_at": upload.expires_at.isoformat(),
        "receipt": None,
    }
    if version is not None:
        data["receipt"] = {
            "version_id": str(version.id),
            "document_id": str(version.document_id),
            "version": version.version,
            "media_type": version.media_type,
            "size": version.size_bytes,
            "sha256": version.sha256,
            "uploaded_at": version.created_at.isoformat(),
            "content_url": url_for("api.content", document_id=version.document_id,
                                   version=version.version),
            "receipt_url": url_for("documents.document_page", document_id=version.document_id,
                                   uploaded=version.version),
        }
    return data


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _header(name: str, description: str, *, required: bool = True,
            schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


_TUS_RESUMABLE = _header("Tus-Resumable", "Always `1.0.0` (412 otherwise)",
                         schema={"const": TUS_VERSION})
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True,
              "schema": {"type": "string", "format": "uuid"}}
_OFFSET = {"Upload-Offset": {"description": "Bytes durably stored",
                             "schema": {"type": "integer", "minimum": 0}}}
_NOT_YOURS = _error("No such upload, or another user's (even of the same consortium)")
_EXPIRED = _error("`upload_expired`: the upload's 24 hours are over")

#: The OpenAPI paths of this module (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {
    "/uploads": {
        "options": {
            "summary": "What the tus server supports",
            "responses": {"204": {"description": "Tus-Version, Tus-Extension (creation, "
                                                 "termination, expiration) and Tus-Max-Size"}}},
        "post": {
            "summary": "Open a resumable upload (tus creation)",
            "description": "`Upload-Metadata` carries `submission` (id), `kind`, `partner` "
                           "(for kinds required once per partner), `filename` and `filetype`, "
                           "each base64. Every check of an ordinary upload runs first: access, "
                           "the window of the kind, the partner, the name, the kind's size "
                           "limit and media types. Session callers send `X-CSRFToken`.",
            "parameters": [_TUS_RESUMABLE,
                           _header("Upload-Length", "The file's size in bytes"),
                           _header("Upload-Metadata", "`key base64(value)` pairs, comma-"
                                                      "separated")],
            "responses": {
                "201": {"description": "Created; `Location` is the upload's URL, "
                                       "`Upload-Expires` when it lapses"},
                "400": _error("Missing or malformed header, empty file, bad filename"),
                "401": _error("Not authenticated"), "403": _error("May not upload"),
                "404": _error("No such submission, kind or partner"),
                "409": _error("The window for this kind is closed or the submission locked"),
                "412": _error("Another tus version"), "413": _error("Over the kind's limit"),
                "415": _error("A declared type the kind does not accept")}},
    },
    "/uploads/{upload_id}": {
        "parameters": [_UPLOAD_ID],
        "get": {
            "summary": "The upload's state, and its receipt once complete",
            "responses": {
                "200": {"description": "`state`, `offset`, `length`, `expires_at`; `receipt` "
                                       "(version id, document, version, sha256 of the whole "
                                       "file, size, content URL) once complete",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                "401": _error("Not authenticated"), "404": _NOT_YOURS, "410": _EXPIRED}},
        "head": {
            "summary": "How much is stored (tus core)",
            "parameters": [_TUS_RESUMABLE],
            "responses": {"200": {"description": "Upload-Offset and Upload-Length; "
                                                 "Cache-Control: no-store",
                                  "headers": _OFFSET},
                          "404": {"description": "No such upload (or another user's)"},
                          "410": {"description": "Expired"},
                          "412": {"description": "Another tus version"}}},
        "patch": {
            "summary": "Append bytes at the stored offset (tus core)",
            "description": "The body is sealed as it streams in and counts only once all of "
                           "it (its Content-Length) arrived. The PATCH that completes the "
                           "upload turns it into a document version and answers with "
                           "`Upload-Receipt-Version-Id` and `Upload-Receipt-Sha256`.",
            "parameters": [_TUS_RESUMABLE,
                           _header("Upload-Offset", "Must equal the stored offset"),
                           _header("Content-Length", "Required (411 otherwise)")],
            "requestBody": {"required": True, "content": {PATCH_TYPE: {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
            "responses": {
                "204": {"description": "Stored; the new Upload-Offset", "headers": _OFFSET},
                "400": _error("`incomplete_body`: the body ended early, nothing kept"),
                "401": _error("Not authenticated"), "404": _NOT_YOURS,
                "409": _error("`offset_mismatch`, `upload_busy` (another PATCH is writing), "
                              "`upload_complete`, or the window closed"),
                "410": _EXPIRED, "411": _error("No Content-Length"),
                "412": _error("Another tus version"),
                "413": _error("`past_upload_length`: more bytes than declared"),
                "415": _error("Not application/offset+octet-stream, or content not of the "
                              "kind's media types"),
                "500": _error("A stored segment failed authentication; the upload is one "
                              "PATCH short again")}},
        "delete": {
            "summary": "End the upload and remove its stored bytes (tus termination)",
            "parameters": [_TUS_RESUMABLE],
            "responses": {"204": {"description": "Removed"},
                          "401": _error("Not authenticated"), "404": _NOT_YOURS,
                          "409": _error("A PATCH is writing to it"),
                          "412": _error("Another tus version")}},
    },
}
