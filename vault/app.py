"""The application factory. Nothing happens at import time; ``create_app`` does the wiring."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from flask import Flask, Request, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, UnsupportedMediaType
from werkzeug.middleware.proxy_fix import ProxyFix

from vault.audit.checkpoints import Checkpoints, issue_and_publish
from vault.db import unit_of_work, utcnow
from vault.errors import DomainError
from vault.policy.errors import AccessDenied
from vault.runtime import Runtime
from vault.settings import Settings
from vault.web import (
    account,
    api,
    assignments,
    audit,
    auth,
    conflicts,
    documents,
    evaluation,
    grants,
    home,
    i18n,
    misc,
    nda,
    programmes,
    resources,
    screening,
    security,
    stages,
    watermarks,
)
from vault.web.context import finish_request, rollback_request
from vault.web.i18n import gettext as _

csrf = CSRFProtect()


#: How deeply a JSON request body may nest. The vault's own bodies are at most three levels
#: deep; the limit keeps every handler (and anything that walks a parsed body) far from
#: Python's recursion limit.
MAX_JSON_DEPTH = 32


class JsonTooDeep(DomainError):
    """A JSON body nested deeper than any the vault accepts."""

    status = 400
    code = "json_too_deep"


def _depth(value: object) -> int:
    """How deeply ``value`` (parsed JSON) nests arrays and objects, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


class VaultRequest(Request):
    """Requests that never spool an uploaded file to disk, and whose JSON has a bounded depth.

    Werkzeug writes multipart file parts over 500 KiB to a temporary file: that would be
    plaintext on disk. Documents arrive as raw request bodies streamed through the encryptor,
    so a multipart file part is refused outright.
    """

    def _get_file_stream(self, *args: object, **kwargs: object) -> IO[bytes]:
        raise UnsupportedMediaType("Upload documents as the raw request body, not as a form.")

    def get_json(self, force: bool = False, silent: bool = False,
                 cache: bool = True) -> Any | None:
        """The body as JSON (as Flask's), refusing one nested deeper than ``MAX_JSON_DEPTH``
        with ``JsonTooDeep`` even when ``silent``: the parser would otherwise raise
        ``RecursionError`` (a 500) on a body of a hundred thousand ``[``."""
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            value, too_deep = None, True
        else:
            too_deep = _depth(value) > MAX_JSON_DEPTH
        if too_deep:
            raise JsonTooDeep("The JSON body is nested more than {limit} levels deep.",
                              limit=MAX_JSON_DEPTH)
        return value


class VaultFlask(Flask):
    """Flask with the request's unit of work: roll back whenever a handler raises."""

    def handle_user_exception(self, e: Exception) -> Response:  # type: ignore[override]
        """Roll back the request's changes before any error response is built."""
        rollback_request()
        return super().handle_user_exception(e)


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Flask:
    """Build the web application for ``settings``."""
    app = VaultFlask(__name__.split(".")[0], template_folder="web/templates",
                     static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        WTF_CSRF_SECRET_KEY=settings.csrf_key.encode(),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        SESSION_COOKIE_NAME="vault_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.force_https_cookies,
        PERMANENT_SESSION_LIFETIME=settings.session_lifetime,
        MAX_CONTENT_LENGTH=1024 * 1024,  # forms only; document uploads stream on their own route
        TESTING=settings.testing,
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )
    runtime = Runtime.build(settings, clock=clock)
    try:
        # Every process that serves or operates the vault proves its keys first: a wrong master
        # key would otherwise answer every download with a 500 and a false integrity alarm.
        runtime.verify_keys()
    except BaseException:
        runtime.close()
        raise
    app.extensions["vault"] = runtime

    app.request_class = VaultRequest
    csrf.init_app(app)
    # The API checks CSRF itself: tokens need none, cookie callers send X-CSRFToken.
    csrf.exempt(api.bp)
    i18n.init_app(app)
    security.init_app(app)
    for blueprint in (auth.bp, account.bp, home.bp, programmes.bp, documents.bp, audit.bp,
                      nda.bp, conflicts.bp, assignments.bp, grants.bp, watermarks.bp,
                      screening.bp, resources.bp, evaluation.bp, stages.bp, api.bp,
                      misc.i18n_bp, misc.health_bp):
        app.register_blueprint(blueprint)

    @app.after_request
    def commit(response: Response) -> Response:
        finish_request(commit=response.status_code < 500)
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        if g.get("audit_appended"):
            _sequence_and_checkpoint(app.extensions["vault"])
        return response

    @app.teardown_request
    def close(_error: BaseException | None) -> None:
        finish_request(commit=False)

    @app.context_processor
    def template_globals() -> dict[str, object]:
        return {"demo_mode": settings.demo}

    app.register_error_handler(AccessDenied, _access_denied)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(api.ApiCsrfError, _csrf_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _sequence_and_checkpoint(runtime: Runtime) -> None:
    """After the request's commit: place its recorded events in the log (with any others
    waiting: one commit covers them all), then sign a checkpoint when enough events or time
    have passed — only committed history is ever signed and published."""
    settings = runtime.settings
    now = time.monotonic()
    if now - runtime.last_sequenced < settings.audit_sequence_interval:
        return  # a run in the last few milliseconds (or the next one) places these events
    runtime.last_sequenced = now
    with unit_of_work(runtime.sessions) as session:
        # Never queue behind a busy sequencer: it (or the next one) places these events, and
        # every reader of the log (pages, checks, checkpoints, exports) sequences first.
        runtime.audit(session).sequence(wait=False)
    if runtime.log_identity is None:
        return
    with unit_of_work(runtime.sessions) as session:
        due = Checkpoints(session, identity=runtime.log_identity, clock=runtime.clock).due(
            settings.checkpoint_every, settings.checkpoint_seconds)
    if due:
        issue_and_publish(runtime.sessions, identity=runtime.log_identity, clock=runtime.clock,
                          path=settings.published_checkpoints)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _error(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error=code, message=message), status
    return render_template("error.html", status=status, message=message), status


def _access_denied(_error_: AccessDenied) -> tuple[Response | str, int]:
    return _error(403, "forbidden", _("You do not have access to this page."))


def _domain_error(error: DomainError) -> tuple[Response | str, int]:
    return _error(error.status, error.code, error.translated(_))


def _csrf_error(_error_: Exception) -> tuple[Response | str, int]:
    message = _("The form expired or did not come from this site. Reload the page and try again.")
    return _error(400, "csrf", message)


def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    status = error.code or 500
    messages = {
        400: _("The request was malformed."),
        403: _("You do not have access to this page."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept that method."),
        413: _("The request is too large."),
        415: _("This kind of content is not accepted here."),
    }
    return _error(status, error.name.lower().replace(" ", "_"),
                  messages.get(status, _("The request could not be handled.")))
