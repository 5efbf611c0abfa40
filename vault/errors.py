"""The base of every domain error a user can cause: it says how the web layer answers."""

from __future__ import annotations

from collections.abc import Callable


class DomainError(Exception):
    """Base class: ``status`` (HTTP) and ``code`` (stable, for API clients).

    The message is an English source string with ``{name}`` placeholders filled from
    ``values``, so that it can be shown in the reader's language: ``str(error)`` is the English
    text, ``error.translated(gettext)`` the translated one.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str = "", **values: object) -> None:
        self.message_template = message
        self.values = values
        super().__init__(message.format(**values) if values else message)

    def translated(self, gettext: Callable[..., str]) -> str:
        """The message in the reader's language (``gettext`` looks up the template)."""
        return gettext(self.message_template, **self.values)
