"""The JSON API under ``/api/v1``. Unauthenticated calls get 401, never a redirect."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from vault.web.context import actor, user

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/health")
def health() -> Response:
    """Public liveness check."""
    return jsonify(status="ok")


@bp.get("/me")
def me() -> Response:
    """Who the caller is: id, e-mail, role, MFA state and the consortia they act for."""
    account = user()
    return jsonify(
        id=str(account.id),
        email=account.email,
        display_name=account.display_name,
        role=account.role.value,
        mfa=account.mfa_enabled,
        consortia=sorted(str(c) for c in actor().consortium_ids),
    )
