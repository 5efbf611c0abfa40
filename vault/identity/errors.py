"""Domain errors of the identity service. Messages are safe to show to the person concerned;
like every domain error they are templates with values, so they show in the reader's language
(``error.translated(gettext)``) and ``str(error)`` is the English text."""

from __future__ import annotations

from datetime import timedelta

from vault.errors import DomainError


class IdentityError(DomainError):
    """Base class of identity errors."""

    status = 400
    code = "identity_error"


class InvalidCredentials(IdentityError):
    """Unknown account, wrong password or inactive account: deliberately one error."""

    status = 401
    code = "invalid_credentials"


class AccountLocked(IdentityError):
    """Too many failures for this account identifier; ``retry_after`` is a timedelta."""

    status = 429
    code = "locked"

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("Too many failed attempts.")
        self.retry_after = retry_after


class InvalidCode(IdentityError):
    """A TOTP or recovery code was wrong, malformed or already used."""

    status = 401
    code = "invalid_code"


class WeakPassword(IdentityError):
    """A new password breaks the password rules; the message says which."""

    status = 422
    code = "weak_password"


class InvalidEmail(IdentityError):
    """An e-mail address (or the display name given with it) is malformed."""

    status = 422
    code = "invalid_email"


class DuplicateEmail(IdentityError):
    """An account with this e-mail address (case-insensitively) already exists."""

    status = 409
    code = "duplicate_email"


class UnknownUser(IdentityError):
    """No account has this e-mail address."""

    status = 404
    code = "unknown_user"


class UnknownOrganization(IdentityError):
    """No registered organisation has this name."""

    status = 404
    code = "unknown_organization"


class InvalidToken(IdentityError):
    """An API token request is malformed, or no token matches."""

    status = 400
    code = "invalid_token"
