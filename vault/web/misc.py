"""Small public endpoints: the language switch and the health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, redirect, url_for
from sqlalchemy import text

from vault.web.auth import safe_next
from vault.web.context import db
from vault.web.forms import LanguageForm
from vault.web.i18n import COOKIE, LOCALES

i18n_bp = Blueprint("i18n", __name__)
health_bp = Blueprint("health", __name__)


@i18n_bp.post("/language")
def set_language() -> Response:
    """Remember the chosen language in a cookie and go back to the page."""
    form = LanguageForm()
    if not form.validate_on_submit() or form.lang.data not in LOCALES:
        abort(400)
    target = safe_next(form.next.data) if form.next.data else url_for("home.index")
    response = redirect(target)
    response.set_cookie(
        COOKIE, form.lang.data, max_age=365 * 24 * 3600, httponly=True, samesite="Lax"
    )
    return response


@health_bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness and database reachability, for load balancers (no details leak)."""
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # any database failure means "not ready"; the log has the details
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok"), 200
