"""NDA endpoints of the JSON API (``/api/v1/nda``), registered on the API blueprint.

Reviewers read the current text and its hash, then accept that hash with their typed full name.
Accepting needs a second factor: a token works only if it was created from a session that passed
one (``ApiToken.mfa_verified``); any other token gets a 403 that says so.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request

from vault.identity.models import Role
from vault.nda.errors import (
    BEARER_NEEDS_MFA,
    SESSION_NEEDS_MFA,
    MalformedAcceptance,
    NoNda,
    ProgrammeRequired,
    UnknownProgramme,
)
from vault.nda.models import NdaAcceptance
from vault.policy.actions import Action
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService
from vault.web.api import bp
from vault.web.context import actor, authorize, db, request_info, user
from vault.web.loaders import load_programme
from vault.web.nda import nda_service, needs_mfa_error


def _programme(code: object) -> tuple[Programme, ProgrammeDefinition]:
    """The named programme, or the only one when none is named; 404 for an unknown code."""
    if code is None or code == "":
        programmes = ProgrammeService(db()).list()
        if not programmes:
            raise UnknownProgramme("No programme is defined yet.")
        if len(programmes) > 1:
            raise ProgrammeRequired("Name the programme (programme=CODE): this vault runs "
                                    "more than one.")
        return load_programme(programmes[0].code)
    if not isinstance(code, str):
        raise MalformedAcceptance("Send a JSON object with sha256 and typed_name (strings) "
                                  "and optionally programme.")
    return load_programme(code)


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _acceptance_json(programme: Programme, acceptance: NdaAcceptance) -> dict[str, object]:
    return {
        "programme": programme.code,
        "sha256": acceptance.nda_sha256,
        "typed_name": acceptance.typed_name,
        "accepted_at": _time(acceptance.accepted_at),
        "expires_at": _time(acceptance.expires_at),
        "channel": acceptance.channel,
        "status": "current",
    }


@bp.get("/nda")
def nda() -> Response:
    """The programme's current NDA text and hash, and where the calling reviewer stands."""
    programme, definition = _programme(request.args.get("programme"))
    authorize(Action.NDA_VIEW, programme, target={"programme": programme.code})
    service = nda_service()
    version = service.current(programme, definition)
    standing = (service.status(user(), programme, definition)
                if actor().role is Role.REVIEWER else None)
    accepted = standing.acceptance if standing else None
    return jsonify(
        programme=programme.code,
        sha256=version.sha256 if version else None,
        text=version.text if version else None,
        accepted_until=_time(definition.nda.accepted_until) if definition.nda else None,
        status=standing.state.value if standing else None,
        accepted_at=_time(accepted.accepted_at) if accepted else None,
        expires_at=_time(accepted.expires_at) if accepted else None,
    )


@bp.post("/nda/accept")
def nda_accept() -> tuple[Response, int]:
    """Accept the current NDA version (``sha256``), signed with the typed full name."""
    body = request.get_json(silent=True)
    if (not isinstance(body, dict) or not isinstance(body.get("sha256"), str)
            or not isinstance(body.get("typed_name"), str)):
        raise MalformedAcceptance("Send a JSON object with sha256 and typed_name (strings) "
                                  "and optionally programme.")
    programme, definition = _programme(body.get("programme"))
    if definition.nda is None:
        raise NoNda("This programme has no NDA to accept.")
    message = BEARER_NEEDS_MFA if g.get("auth_method") == "token" else SESSION_NEEDS_MFA
    authorize(Action.NDA_ACCEPT, programme, target={"programme": programme.code},
              denied=needs_mfa_error(message))
    info = request_info()
    acceptance = nda_service().accept(
        actor(), programme, definition, sha256=body["sha256"], typed_name=body["typed_name"],
        client_address=info.client, user_agent=info.user_agent, channel="api")
    return jsonify(_acceptance_json(programme, acceptance)), 201


_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_PROGRAMME = {"type": "string", "description": "Programme code, e.g. sovereign-ai-2025; may be "
                                               "left out when the vault runs one programme."}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATUS = {"type": ["string", "null"], "enum": ["none", "current", "outdated", "expired", None],
           "description": "The calling reviewer's standing (null for other roles)."}

#: This module's part of the OpenAPI document (merged by ``vault.web.openapi``).
OPENAPI_PATHS: dict[str, Any] = {
    "/nda": {"get": {
        "summary": "The programme's current NDA and the caller's acceptance",
        "description": "The version is the SHA-256 of the text (UTF-8). Reviewers accept it with "
                       "`POST /nda/accept`; a changed text is a new version to accept again.",
        "parameters": [{"name": "programme", "in": "query", "required": False,
                        "schema": _PROGRAMME}],
        "responses": {
            "200": {"description": "The NDA (sha256/text null when the programme has none)",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["programme", "sha256", "text", "accepted_until", "status",
                                     "accepted_at"],
                        "properties": {
                            "programme": {"type": "string"},
                            "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                            "text": {"type": ["string", "null"]},
                            "accepted_until": _TIME,
                            "status": _STATUS,
                            "accepted_at": {**_TIME, "description": "The caller's latest "
                                                                    "acceptance"},
                            "expires_at": _TIME,
                        }}}}},
            "400": _error("Several programmes and none named"),
            "401": _error("Not authenticated"),
            "403": _error("Not allowed (reviewers and officers read the NDA)"),
            "404": _error("No programme has this code (or none is defined yet)"),
        }}},
    "/nda/accept": {"post": {
        "summary": "Accept the current NDA (reviewers)",
        "description": "Send the `sha256` read from `GET /nda` and your full name as on your "
                       "account (compared case-insensitively after Unicode NFC and whitespace "
                       "normalisation): it is your signature, recorded with the time, your "
                       "address and user agent. Needs a second factor: a token must have been "
                       "created on the account page of a session that passed two-step "
                       "verification (tokens from `vault token create` cannot accept).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["sha256", "typed_name"],
            "properties": {"programme": _PROGRAMME, "sha256": _SHA256,
                           "typed_name": {"type": "string", "maxLength": 200}}}}}},
        "responses": {
            "201": {"description": "The acceptance", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "programme": {"type": "string"}, "sha256": _SHA256,
                    "typed_name": {"type": "string"},
                    "accepted_at": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "channel": {"type": "string", "enum": ["api"]},
                    "status": {"type": "string", "enum": ["current"]}}}}}},
            "400": _error("Several programmes and none named, or a missing CSRF header "
                          "(session callers)"),
            "401": _error("Not authenticated"),
            "403": _error("Not a reviewer, or no second factor (`mfa_required`: the token was "
                          "not created from an MFA-verified session)"),
            "404": _error("No programme has this code"),
            "409": _error("`no_nda`, `nda_changed` (the hash is not the current version: read "
                          "it again) or `nda_closed` (the acceptance period has ended)"),
            "422": _error("`name_mismatch` (the typed name is not the account's name) or "
                          "`malformed_request`"),
        }}},
}
