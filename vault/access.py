"""The single authorisation chokepoint (interim, role-based; Cedar policies replace the table).

Every read or change of a protected object calls ``authorize``. It denies by default: an action
missing from the table, or a role not listed for it, is refused; an unknown action raises.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from vault.identity.models import Role


class Action(StrEnum):
    """Actions, named ``resource:verb`` like the Cedar actions that will replace this table."""

    CONSORTIUM_VIEW = "consortium:view"
    PARTNER_LIST_VIEW = "partner-list:view"
    PARTNER_LIST_EDIT = "partner-list:edit"
    SUBMISSION_VIEW = "submission:view"
    DOCUMENT_READ = "document:read"
    DOCUMENT_UPLOAD = "document:upload"
    PROGRAMME_VIEW = "programme:view"
    PROGRAMME_MANAGE = "programme:manage"
    ASSIGNMENT_LIST = "assignment:list"
    AUDIT_LOG_VIEW = "audit-log:view"
    AUDIT_LOG_EXPORT = "audit-log:export"
    AUDIT_LOG_CHECK = "audit-log:check"
    AUDIT_CHECKPOINT_VIEW = "audit-checkpoint:view"
    DOCUMENT_ACCESS_REPORT = "document:access-report"
    USER_LIST = "user:list"


class AccessDenied(Exception):
    """The actor may not perform the action on the resource."""


@dataclass(frozen=True)
class Actor:
    """Who is acting: passed to services instead of any web framework global."""

    user_id: uuid.UUID
    role: Role
    #: Consortia an applicant acts for (empty for other roles).
    consortium_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    mfa: bool = False


#: Which roles may take each action on resources not owned by a consortium.
_ROLE_ACTIONS: dict[Action, frozenset[Role]] = {
    Action.PROGRAMME_VIEW: frozenset({Role.OFFICER, Role.APPLICANT, Role.REVIEWER, Role.AUDITOR}),
    Action.PROGRAMME_MANAGE: frozenset({Role.OFFICER}),
    Action.ASSIGNMENT_LIST: frozenset({Role.REVIEWER}),
    Action.AUDIT_LOG_VIEW: frozenset({Role.AUDITOR}),
    Action.AUDIT_LOG_EXPORT: frozenset({Role.AUDITOR}),
    Action.AUDIT_LOG_CHECK: frozenset({Role.AUDITOR}),
    # A checkpoint says how many events exist and commits to them; it reveals no content.
    Action.AUDIT_CHECKPOINT_VIEW: frozenset(set(Role)),
    # Who opened a document, and when: metadata for auditors and the programme office.
    Action.DOCUMENT_ACCESS_REPORT: frozenset({Role.AUDITOR, Role.OFFICER}),
    Action.USER_LIST: frozenset({Role.ADMIN}),
}
#: Actions on one consortium's material: always allowed to that consortium's own applicants,
#: and to the roles listed here for every consortium. Until the policy engine lands, officers
#: reach every consortium's material; nobody else reaches any.
_CONSORTIUM_ACTIONS: dict[Action, frozenset[Role]] = {
    Action.CONSORTIUM_VIEW: frozenset({Role.OFFICER}),
    Action.SUBMISSION_VIEW: frozenset({Role.OFFICER}),
    Action.PARTNER_LIST_VIEW: frozenset({Role.OFFICER}),
    Action.DOCUMENT_READ: frozenset({Role.OFFICER}),
    # Changes are the consortium's own: nobody uploads or edits partners on its behalf.
    Action.PARTNER_LIST_EDIT: frozenset(),
    Action.DOCUMENT_UPLOAD: frozenset(),
}


def is_allowed(actor: Actor, action: Action, consortium_id: uuid.UUID | None = None) -> bool:
    """Whether the actor may take the action (on the consortium's material, if given)."""
    action = Action(action)  # raises ValueError on an unknown action
    if action in _CONSORTIUM_ACTIONS:
        if consortium_id is None:
            return False
        if actor.role is Role.APPLICANT and consortium_id in actor.consortium_ids:
            return True
        return actor.role in _CONSORTIUM_ACTIONS[action]
    if action in _ROLE_ACTIONS:
        return actor.role in _ROLE_ACTIONS[action]
    raise ValueError(f"no access rule for action {action!r}")


def authorize(actor: Actor, action: Action, consortium_id: uuid.UUID | None = None) -> None:
    """Raise ``AccessDenied`` unless the actor may take the action."""
    if not is_allowed(actor, action, consortium_id):
        raise AccessDenied(f"{actor.role.value} may not {action.value}")
