"""The base of every domain error a user can cause: it says how the web layer answers."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``status`` (HTTP) and ``code`` (stable, for API clients). The message is an
    English source string, translated for display."""

    status = 400
    code = "bad_request"
