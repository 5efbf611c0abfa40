"""Per-request access to the runtime, the database session and the acting user.

The request's database session is the unit of work: it commits after the handler returns and
rolls back when the handler raises (see ``vault.app.VaultFlask``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from flask import current_app, g, request, session
from flask_login import current_user
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.consortia.service import ConsortiumService
from vault.identity.models import User
from vault.policy.actions import Action, Actor
from vault.policy.engine import Decision
from vault.policy.entities import Resource
from vault.policy.service import Authorizer
from vault.runtime import Runtime


def runtime() -> Runtime:
    """The application's runtime."""
    return current_app.extensions["vault"]


#: Requests that change nothing but the audit log (and kept facts): their sessions read
#: without SQLite's write lock and take it only at commit (see ``vault.db``).
SAFE_METHODS = frozenset({"GET", "HEAD"})


def db() -> Session:
    """The request's database session, opened on first use: deferred for safe requests."""
    if "db" not in g:
        sessions = runtime().read_sessions
        if request.method not in SAFE_METHODS or sessions is None:
            sessions = runtime().sessions
        g.db = sessions()
    return g.db


def commit_so_far() -> None:
    """Commit what the request did so far and end its transaction.

    Only for handlers that must not hold a transaction while they wait on the client (a large
    upload streaming in): on SQLite an open write transaction blocks every other writer.
    """
    session = g.get("db")
    if session is not None:
        session.commit()


def rollback_request() -> None:
    """Undo the request's changes but keep its session open for rendering the error page."""
    session = g.get("db")
    if session is not None:
        session.rollback()


def finish_request(commit: bool) -> None:
    """Commit or roll back the request's session, then close it."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


def user() -> User:
    """The signed-in user (handlers behind the login gate only)."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def actor() -> Actor:
    """The signed-in user as an ``Actor`` for services and the access check."""
    if "actor" not in g:
        account = user()
        consortia = ConsortiumService(db(), cipher=runtime().cipher).consortia_of(account)
        g.actor = Actor(
            user_id=account.id,
            role=account.role,
            consortium_ids=frozenset(c.id for c in consortia),
            mfa=_mfa_verified(account),
        )
    return g.actor


def _mfa_verified(account: User) -> bool:
    """Whether this request's credentials passed a second factor: a session signed in with a
    TOTP or recovery code, or a token created from such a session."""
    if g.get("auth_method") == "token":
        return bool(g.get("token_mfa"))
    return account.mfa_enabled and not session.get("mfa_skipped", True)


def authorizer() -> Authorizer:
    """The request's access chokepoint; denials are committed on their own (``audit_failure``)
    so that they stay in the log although the request fails."""
    if "authorizer" not in g:
        def record_denial(tag: Tag, **event: object) -> None:
            current = db()
            current.rollback()
            runtime().audit(current).record(tag, **event)  # type: ignore[arg-type]
            g.audit_appended = True
            current.commit()

        g.authorizer = runtime().authorizer(db(), request=request_info(),
                                            record_denial=record_denial)
    # Decisions and filtered listings are recorded: sequence them after the commit.
    g.audit_appended = True
    return g.authorizer


def request_info() -> RequestInfo:
    """The request's id, client address and user agent, for the audit log."""
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return RequestInfo(
        request_id=g.request_id,
        client=request.remote_addr or "",
        user_agent=(request.user_agent.string or "")[:300],
    )


def audit(tag: Tag, *, actor_: Actor | None = None, target: Mapping[str, object] | None = None,
          decision: str = "", reasons: tuple[str, ...] = ()) -> None:
    """Record an event for the audit log in the request's transaction."""
    if actor_ is None and current_user.is_authenticated:
        actor_ = actor()
    g.audit_appended = True
    # Recorded with the request's change; sequenced into the log right after the commit.
    runtime().audit(db()).record(tag, actor=actor_, target=target, decision=decision,
                                 reasons=reasons, request=request_info())


def audit_log() -> AuditLog:
    """The audit log on the request's session, for services that record their own events;
    the request's events are sequenced into the log after its commit."""
    g.audit_appended = True
    return runtime().audit(db())


def authorize(action: Action, resource: Resource = None, *,
              target: Mapping[str, object] | None = None,
              denied: Exception | None = None) -> Decision:
    """The access check for the signed-in user, recorded (see ``Authorizer.authorize``): raises
    ``denied`` or ``AccessDenied`` on deny."""
    return authorizer().authorize(actor(), action, resource, target=target, denied=denied)


def allowed(action: Action, resource: Resource = None) -> bool:
    """Whether the signed-in user may (not recorded: for showing or hiding a control)."""
    return authorizer().allowed(actor(), action, resource)


def audit_failure(tag: Tag, *, target: Mapping[str, object], decision: str = "",
                  reasons: tuple[str, ...] = ()) -> None:
    """Record the event of a request that is about to fail: the request's own changes are
    rolled back, and the event is committed on its own so that it stays in the log."""
    session = db()
    session.rollback()
    audit(tag, target=target, decision=decision, reasons=reasons)
    session.commit()
