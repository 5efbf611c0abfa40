"""Per-request access to the runtime, the database session and the acting user.

The request's database session is the unit of work: it commits after the handler returns and
rolls back when the handler raises (see ``vault.app.VaultFlask``).
"""

from __future__ import annotations

from flask import current_app, g
from flask_login import current_user
from sqlalchemy.orm import Session

from vault.access import Actor
from vault.consortia.service import ConsortiumService
from vault.identity.models import User
from vault.runtime import Runtime


def runtime() -> Runtime:
    """The application's runtime."""
    return current_app.extensions["vault"]


def db() -> Session:
    """The request's database session, opened on first use."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def checkpoint() -> None:
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
            mfa=account.mfa_enabled,
        )
    return g.actor
