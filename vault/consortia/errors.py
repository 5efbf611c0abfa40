"""Domain errors of the consortium service."""

from vault.errors import DomainError


class ConsortiumError(DomainError):
    """Base class of consortium errors."""

    status = 409
    code = "consortium_conflict"


class DuplicateConsortium(ConsortiumError):
    """A consortium with this name already applies to the programme."""


class CannotRemoveMember(ConsortiumError):
    """The partner-list entry cannot be removed (lead, unknown, or documents attached)."""


class TooManyMembers(ConsortiumError):
    """The partner list is full."""
