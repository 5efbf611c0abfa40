"""Domain errors of the conflict-of-interest service. Each carries an HTTP status and a stable
code; messages are English source strings, translated for display."""

from __future__ import annotations

from vault.errors import DomainError


class ConflictError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""


class InvalidDeclaration(ConflictError):
    """A declaration names neither or both of a consortium and an organisation, has no
    description, or a period that ends before it starts."""

    status = 400
    code = "invalid_declaration"


class InvalidChallenge(ConflictError):
    """A challenge without a person or without a reason (or with over-long text)."""

    status = 400
    code = "invalid_challenge"


class InvalidDecision(ConflictError):
    """A decision without a reason (or with an over-long one)."""

    status = 400
    code = "invalid_decision"


class InvalidSanction(ConflictError):
    """A sanction without a reason, dated in the future, or for someone who does not evaluate."""

    status = 400
    code = "invalid_sanction"


class InvalidAffiliation(ConflictError):
    """An affiliation that ends before it starts, or for someone who does not evaluate."""

    status = 400
    code = "invalid_affiliation"


class OwnConflict(ConflictError):
    """An officer tried to decide a conflict about themselves."""

    status = 403
    code = "own_conflict"


class ConflictedDecider(ConflictError):
    """An officer with a conflict of their own with the consortium tried to decide about it."""

    status = 403
    code = "conflicted_decider"


class ConflictNotFound(ConflictError):
    """No such conflict (or submission), or it is not visible to the caller."""

    status = 404
    code = "not_found"
