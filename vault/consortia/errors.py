"""Domain errors of the consortium service."""


class ConsortiumError(Exception):
    """Base class of consortium errors."""


class DuplicateConsortium(ConsortiumError):
    """A consortium with this name already applies to the programme."""


class CannotRemoveMember(ConsortiumError):
    """The partner-list entry cannot be removed (lead, unknown, or documents attached)."""


class TooManyMembers(ConsortiumError):
    """The partner list is full."""
