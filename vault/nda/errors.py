"""Domain errors of the NDA service. Messages are English source strings, safe to show to the
reviewer concerned and translated for display (``translations/ko-nda.toml``)."""

from __future__ import annotations

from vault.errors import DomainError


class NdaError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""


class UnknownProgramme(NdaError):
    """No programme has this code."""

    status = 404
    code = "unknown_programme"


class ProgrammeRequired(NdaError):
    """The vault runs several programmes and the request did not name one."""

    status = 400
    code = "programme_required"


class NoNda(NdaError):
    """The programme has published no NDA, so there is nothing to accept."""

    status = 409
    code = "no_nda"


class NdaChanged(NdaError):
    """The version the reviewer accepted is not the programme's current NDA text."""

    status = 409
    code = "nda_changed"


class NdaClosed(NdaError):
    """The programme's ``accepted_until`` has passed: no acceptance can be valid any more."""

    status = 409
    code = "nda_closed"


class NameMismatch(NdaError):
    """The typed full name (the signature) is not the reviewer's name on their account."""

    status = 422
    code = "name_mismatch"


class NotConfirmed(NdaError):
    """The reviewer did not tick "I have read and accept"."""

    status = 422
    code = "not_confirmed"


class MalformedAcceptance(NdaError):
    """An API acceptance request is not JSON with the required fields."""

    status = 422
    code = "malformed_request"


class NdaNeedsMfa(NdaError):
    """Accepting needs a second factor: the session (or the token's session) passed none.

    Raised instead of a bare 403 so that the reviewer learns what to do.
    """

    status = 403
    code = "mfa_required"


#: The message of ``NdaNeedsMfa`` for a browser session without a second factor.
SESSION_NEEDS_MFA = ("Accepting the NDA needs two-step verification. Set up a second factor on "
                     "your account page, then sign in again with it.")
#: The message of ``NdaNeedsMfa`` for an API token created without a second factor.
BEARER_NEEDS_MFA = ("This token was not created from a session that passed two-step "
                    "verification, so it cannot accept the NDA. Sign in with your second factor "
                    "and create a new token on your account page.")
