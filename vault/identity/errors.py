"""Domain errors of the identity service. Messages are safe to show to the person concerned."""


class IdentityError(Exception):
    """Base class of identity errors."""


class InvalidCredentials(IdentityError):
    """Unknown account, wrong password or inactive account: deliberately one error."""


class AccountLocked(IdentityError):
    """Too many failures for this account identifier; ``retry_after`` is a timedelta."""

    def __init__(self, retry_after) -> None:
        super().__init__("too many failed attempts")
        self.retry_after = retry_after


class InvalidCode(IdentityError):
    """A TOTP or recovery code was wrong, malformed or already used."""


class WeakPassword(IdentityError):
    """A new password breaks the password rules; the message says which."""


class InvalidEmail(IdentityError):
    """An e-mail address is malformed."""


class DuplicateEmail(IdentityError):
    """An account with this e-mail address (case-insensitively) already exists."""


class UnknownUser(IdentityError):
    """No account has this e-mail address."""


class UnknownOrganization(IdentityError):
    """No registered organisation has this name."""


class InvalidToken(IdentityError):
    """An API token request is malformed, or no token matches.

    ``template`` and ``values`` let the web layer translate the message before filling it in.
    """

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(template.format(**values))
        self.template = template
        self.values = values
