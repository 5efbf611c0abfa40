"""Errors of the policy engine."""

from __future__ import annotations


class PolicyError(Exception):
    """The policy files cannot be loaded: unreadable, unparsable or invalid for the schema.

    The vault refuses to start with this error; its message names the file and the problem.
    """


class AccessDenied(Exception):
    """The policies do not allow the actor this action on this resource."""

    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, policies: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: The deciding policies (forbids that matched); empty for the default deny.
        self.policies = policies
