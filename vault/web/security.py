"""Sign-in state, the login gate, and the security headers every response carries."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import Flask, Request, Response, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user

from vault.identity.models import User
from vault.web.context import db, runtime

#: Endpoints reachable without signing in. Everything else needs a full sign-in (all factors);
#: a test walks the URL map to prove it.
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "auth.login",
        "auth.second_factor",
        "auth.enrol",
        "auth.skip_enrolment",
        "auth.cancel",
        "i18n.set_language",
        "api.health",
        "api.openapi",
        "health.healthz",
    }
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)

login_manager = LoginManager()
login_manager.session_protection = "basic"


class VaultSessionInterface(SecureCookieSessionInterface):
    """Signed cookie sessions whose cookie is Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure over HTTPS (directly or via a trusted proxy) or when forced by settings."""
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


@login_manager.user_loader
def load_user(reference: str) -> User | None:
    """The user of a session, if the session is still valid.

    A session is valid while the account is active, its session generation still matches
    (logout, deactivation and password changes increment it), and it is younger than the
    configured lifetime.
    """
    user_id, _, generation = reference.partition(":")
    try:
        user = db().get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    if user is None or not user.active or str(user.session_generation) != generation:
        return None
    signed_in_at = session.get("signed_in_at")
    if not isinstance(signed_in_at, str):
        return None
    age = runtime().clock() - datetime.fromisoformat(signed_in_at)
    if age > runtime().settings.session_lifetime:
        return None
    return user


@login_manager.request_loader
def load_user_from_token(req: Request) -> User | None:
    """API callers may present a bearer token instead of a session (``/api/`` only)."""
    if not req.path.startswith("/api/"):
        return None
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    row = runtime().identity(db()).find_token(token.strip())
    if row is None:
        return None
    g.auth_method = "token"
    g.token_mfa = row.mfa_verified
    return row.user


def start_session(user: User, *, mfa_skipped: bool = False) -> None:
    """Sign the user in with a brand-new session (the old session's contents are discarded)."""
    session.clear()
    session["sid"] = uuid.uuid4().hex  # a new session identity at every sign-in
    session["signed_in_at"] = runtime().clock().isoformat()
    # A full sign-in is a fresh authentication: it counts as re-authentication for the steps
    # that ask for one (creating an API token) for a few minutes.
    session["reauthenticated_at"] = session["signed_in_at"]
    session["mfa_skipped"] = mfa_skipped
    session.permanent = True
    login_user(user)


def require_login() -> Response | None:
    """The login gate: every endpoint outside ``PUBLIC_ENDPOINTS`` needs a signed-in user."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        return None
    if request.path.startswith("/api/"):
        response = jsonify(error="unauthenticated", message="Sign in or send a valid token.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="vault"'
        return response
    if request.endpoint is None:
        # Unknown paths answer 404 to signed-in users only; others go to the sign-in page too,
        # so the gate reveals nothing about which URLs exist.
        return redirect(url_for("auth.login"))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def add_security_headers(response: Response) -> Response:
    """Headers every response carries; authenticated pages are never cached."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("X-Frame-Options", "DENY")  # SAMEORIGIN only for the PDF viewer
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.endpoint != "static":
        # Sign-in pages carry CSRF tokens and pending state: no page of the vault is cached.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    """Attach the login manager, the gate and the headers."""
    app.session_interface = VaultSessionInterface()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    app.before_request(require_login)
    app.after_request(add_security_headers)
