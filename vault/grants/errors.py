"""Domain errors of dual control. Messages are English source strings, translated for display."""

from __future__ import annotations

from vault.errors import DomainError


class GrantError(DomainError):
    """Base class: a dual-control request cannot be made, approved or revoked."""

    status = 400
    code = "grant_error"


class GrantNotFound(GrantError):
    """No such request (or consortium), or not one the caller may act on."""

    status = 404
    code = "not_found"


class InvalidReason(GrantError):
    """The reason is empty or too long."""

    status = 422
    code = "invalid_reason"


class NotConflicted(GrantError):
    """The officer has no conflict with the consortium: no second officer's approval is needed."""

    status = 409
    code = "not_conflicted"


class DuplicateRequest(GrantError):
    """The officer already has a pending or active request for this consortium."""

    status = 409
    code = "duplicate_request"


class SelfApproval(GrantError):
    """Nobody approves their own request (the database refuses it too)."""

    status = 403
    code = "self_approval"


class ApproverConflicted(GrantError):
    """The approving officer has a conflict with the same consortium."""

    status = 403
    code = "approver_conflicted"


class GrantClosed(GrantError):
    """The request was already approved, or revoked."""

    status = 409
    code = "grant_closed"
