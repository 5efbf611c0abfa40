"""The OpenAPI 3.1 document of ``/api/v1``, written out by hand so it says exactly what the
handlers do (a test checks every API route appears in it)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed request or missing CSRF header", 401: "Not authenticated",
            403: "Not allowed", 404: "Not found (or not visible to the caller)",
            409: "Deadline passed, submission locked, or a concurrent upload won",
            410: "Shredded: the consortium's key was destroyed", 413: "Over the size limit",
            415: "Not an allowed media type (checked by magic bytes)",
            500: "Stored content failed authentication (integrity alarm)"}
    return {str(s): {"description": text[s], "content": {"application/json": {"schema": _ERROR}}}
            for s in statuses}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_UUID = {"type": "string", "format": "uuid"}
_VERSION = {
    "type": "object",
    "required": ["version", "filename", "media_type", "size", "sha256", "uploaded_at"],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "filename": {"type": "string"},
        "media_type": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "uploaded_at": {"type": "string", "format": "date-time"},
        "content_url": {"type": "string"},
    },
}


def openapi_document() -> dict[str, Any]:
    """The API description as a JSON-ready dict."""
    submission_id = {"name": "submission_id", "in": "path", "required": True, "schema": _UUID}
    document_id = {"name": "document_id", "in": "path", "required": True, "schema": _UUID}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vault API",
            "version": "1",
            "description": "Secure document vault of the sovereign AI foundation-model programme."
                           " Authenticate with `Authorization: Bearer <token>` (create tokens on"
                           " the account page, or with `vault token create`: such a token has no"
                           " second factor behind it). Errors are `{\"error\", \"message\"}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": {"type": "string"},
                                         "message": {"type": "string"}}},
                "Version": _VERSION,
                "Submission": {
                    "type": "object",
                    "properties": {
                        "id": _UUID, "programme": {"type": "string"},
                        "state": {"type": "string"},
                        "consortium": {"type": "object", "properties": {
                            "id": _UUID, "name": {"type": "string"}}},
                        "submission_deadline": {"type": "string", "format": "date-time"},
                        "documents": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness", "security": [],
                                "responses": {"200": {"description": "Alive"}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/audit/checkpoint": {"get": {
                "summary": "The latest signed checkpoint of the audit log",
                "description": "A C2SP tlog-checkpoint in a C2SP signed note (Ed25519); verify "
                               "it with the key printed by `vault audit vkey`.",
                "responses": {"200": {"description": "The signed note", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 404)}}},
            "/audit/export": {"get": {
                "summary": "A bundle of the audit log, whole or filtered (auditors)",
                "description": "A zip with entries.jsonl, a signed checkpoint, earlier "
                               "checkpoints, entries.csv and MANIFEST.sha256; verify it offline "
                               "with `python -m vault.audit.verify BUNDLE --vkey VKEY`. With "
                               "`consortium` or `document` (one of them, once), only those "
                               "events, each with a C2SP tlog-proof of its inclusion: such a "
                               "bundle proves each entry is in the log, not that none is "
                               "missing (only a full export proves completeness).",
                "parameters": [
                    {"name": "consortium", "in": "query", "required": False, "schema": _UUID},
                    {"name": "document", "in": "query", "required": False, "schema": _UUID}],
                "responses": {"200": {"description": "The bundle", "content": {
                    "application/zip": {"schema": {"type": "string"}}}},
                    **_errors(400, 401, 403, 404)}}},
            "/me": {"get": {"summary": "The caller", "responses": {
                "200": _json({"type": "object", "properties": {
                    "mfa": {"type": "boolean",
                            "description": "Whether these credentials passed a second factor"
                                           " (the session, or the session the token was made"
                                           " on); not whether the account has one."}}},
                    "The caller's account"), **_errors(401)}}},
            "/submissions": {"get": {"summary": "Submissions the caller may see", "responses": {
                "200": _json({"type": "object", "properties": {"submissions": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Submission"}}}},
                    "Visible submissions"), **_errors(401)}}},
            "/submissions/{submission_id}": {"get": {
                "summary": "A submission with its documents' newest versions",
                "parameters": [submission_id],
                "responses": {"200": _json({"$ref": "#/components/schemas/Submission"},
                                           "The submission"), **_errors(401, 404)}}},
            "/submissions/{submission_id}/documents/{kind}": {"put": {
                "summary": "Upload a new version of a document (raw body)",
                "description": "The body is the file itself; its name goes in "
                               "`Content-Disposition: attachment; filename*=UTF-8''…`. "
                               "For kinds required once per partner, add `?partner=<id>`.",
                "parameters": [
                    submission_id,
                    {"name": "kind", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "partner", "in": "query", "required": False, "schema": _UUID},
                    {"name": "Content-Disposition", "in": "header", "required": True,
                     "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {
                    "application/pdf": {"schema": {"type": "string",
                                                   "contentMediaType": "application/pdf"}},
                    "application/octet-stream": {"schema": {"type": "string"}}}},
                "responses": {"201": _json({"allOf": [{"$ref": "#/components/schemas/Version"},
                                                      {"type": "object", "properties": {
                                                          "document_id": _UUID,
                                                          "server_time": {
                                                              "type": "string",
                                                              "format": "date-time"}}}]},
                                           "The receipt"),
                              **_errors(400, 401, 403, 404, 409, 410, 413, 415)}}},
            "/documents/{document_id}": {"get": {
                "summary": "A document's metadata and versions", "parameters": [document_id],
                "responses": {"200": _json({"type": "object", "properties": {
                    "id": _UUID, "kind": {"type": "string"}, "shredded": {"type": "boolean"},
                    "versions": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Version"}}}},
                    "The document"), **_errors(401, 404)}}},
            "/documents/{document_id}/content": {"get": {
                "summary": "Download a version (newest unless ?version=N)",
                "parameters": [document_id, {"name": "version", "in": "query",
                                             "required": False,
                                             "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": {"description": "The verified content, as an attachment. "
                                                     "If stored ciphertext fails authentication"
                                                     " mid-stream the connection is cut short.",
                                      "content": {"application/octet-stream": {
                                          "schema": {"type": "string"}}}},
                              **_errors(401, 404, 410, 500)}}},
            **_capability_paths(),
        },
    }


def _capability_paths() -> dict[str, Any]:
    """Paths described by the API modules of other capabilities (``OPENAPI_PATHS``)."""
    # imported late: those modules import the API blueprint
    from vault.web import (
        api_evaluation,
        api_nda,
        api_resources,
        api_screening,
        api_stages,
        api_uploads,
    )

    return {**api_nda.OPENAPI_PATHS, **api_screening.OPENAPI_PATHS,
            **api_resources.OPENAPI_PATHS, **api_evaluation.OPENAPI_PATHS,
            **api_stages.OPENAPI_PATHS, **api_uploads.OPENAPI_PATHS}
