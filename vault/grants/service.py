"""Dual control: an officer with a conflict asks to read a consortium's material, and a second,
unconflicted officer approves for a limited time (``conflicts.dual_control_hours``).

Who may ask and who may approve is decided by the policies (``grant:request``,
``grant:approve``) at the one enforcement point; this service also refuses what nobody may do
(approving one's own request, approving twice, approving with a conflict of one's own), so the
rule holds even for a caller that forgot to ask. The reason is confidential: it is sealed with
the field cipher, bound to its table, column and row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.conflicts.links import conflicted_consortia, conflicts_between
from vault.consortia.models import Consortium
from vault.crypto import FieldCipher
from vault.grants.errors import (
    ApproverConflicted,
    DuplicateRequest,
    GrantClosed,
    InvalidReason,
    NotConflicted,
    SelfApproval,
)
from vault.grants.models import DualControlGrant
from vault.identity.models import User
from vault.policy.actions import Actor
from vault.programmes.definition import ConflictRules, ProgrammeDefinition
from vault.programmes.models import Programme

_TABLE = DualControlGrant.__tablename__
#: Long enough for a real justification, short enough to read before approving.
MAX_REASON = 2000


class GrantService:
    """Dual-control operations on one database session (flushes; the caller commits)."""

    def __init__(self, session: Session, *, clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition], cipher: FieldCipher,
                 audit: AuditLog, request: RequestInfo | None = None) -> None:
        self.session = session
        self.clock = clock
        self.definitions = definitions
        self.cipher = cipher
        self.audit = audit
        self.request = request or RequestInfo()

    # -- lookups ------------------------------------------------------------------------------

    def get(self, grant_id: uuid.UUID) -> DualControlGrant | None:
        """The request with this id, if any."""
        return self.session.get(DualControlGrant, grant_id)

    def consortium(self, consortium_id: uuid.UUID) -> Consortium | None:
        """The consortium with this id, if any."""
        return self.session.get(Consortium, consortium_id)

    def reason(self, grant: DualControlGrant) -> str:
        """The opened reason (for officers deciding on it); raises ``DecryptionError`` if the
        sealed value was tampered with or moved to another row."""
        return self.cipher.open(_TABLE, "reason", grant.id, grant.reason_sealed)

    def conflicted_consortia(self, user: User) -> list[Consortium]:
        """Consortia the user has a conflict in effect with (pending or confirmed), by name."""
        ids = conflicted_consortia(self.session, self.cipher, user.id)
        if not ids:
            return []
        return list(self.session.scalars(
            select(Consortium).where(Consortium.id.in_(ids)).order_by(Consortium.name)))

    def pending(self, programme: Programme) -> list[DualControlGrant]:
        """The programme's requests waiting for a second officer, oldest first."""
        return list(self.session.scalars(
            select(DualControlGrant)
            .join(Consortium, DualControlGrant.consortium_id == Consortium.id)
            .where(Consortium.programme_id == programme.id,
                   DualControlGrant.approved_at.is_(None), DualControlGrant.revoked_at.is_(None))
            .order_by(DualControlGrant.requested_at)))

    def active(self, programme: Programme) -> list[DualControlGrant]:
        """The programme's approvals in force now, soonest to expire first."""
        return list(self.session.scalars(
            select(DualControlGrant)
            .join(Consortium, DualControlGrant.consortium_id == Consortium.id)
            .where(Consortium.programme_id == programme.id,
                   DualControlGrant.approved_at.is_not(None),
                   DualControlGrant.revoked_at.is_(None),
                   DualControlGrant.expires_at > self.clock())
            .order_by(DualControlGrant.expires_at)))

    def of_officer(self, user: User) -> list[DualControlGrant]:
        """The officer's own requests, newest first."""
        return list(self.session.scalars(
            select(DualControlGrant).where(DualControlGrant.requested_by_id == user.id)
            .order_by(DualControlGrant.requested_at.desc())))

    def status(self, grant: DualControlGrant) -> str:
        """``pending``, ``active``, ``expired`` or ``revoked``."""
        if grant.revoked_at is not None:
            return "revoked"
        if grant.approved_at is None:
            return "pending"
        return "active" if grant.active(self.clock()) else "expired"

    # -- changes ------------------------------------------------------------------------------

    def request_grant(self, actor: Actor, consortium: Consortium, reason: str
                      ) -> DualControlGrant:
        """Ask a second officer for access to a conflicted consortium; raises
        ``InvalidReason``, ``NotConflicted`` or ``DuplicateRequest``."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidReason("Give a reason of 1 to {limit} characters.", limit=MAX_REASON)
        if actor.user_id is None or not self._conflicted(actor.user_id, consortium.id):
            raise NotConflicted("You have no conflict with this consortium; "
                                "no second officer's approval is needed.")
        now = self.clock()
        open_request = self.session.scalar(
            select(DualControlGrant.id).where(
                DualControlGrant.requested_by_id == actor.user_id,
                DualControlGrant.consortium_id == consortium.id,
                DualControlGrant.revoked_at.is_(None),
                or_(DualControlGrant.approved_at.is_(None), DualControlGrant.expires_at > now))
            .limit(1))
        if open_request is not None:
            raise DuplicateRequest("You already have a pending or active request for this "
                                   "consortium.")
        grant = DualControlGrant(id=uuid.uuid4(), consortium_id=consortium.id,
                                 requested_by_id=actor.user_id, requested_at=now)
        grant.reason_sealed = self.cipher.seal(_TABLE, "reason", grant.id, reason)
        self.session.add(grant)
        self.session.flush()
        self.audit.record(Tag.GRANT_REQUESTED, actor=actor, request=self.request,
                          target={"grant": grant.id, "consortium": consortium.id,
                                  "requested_by": actor.user_id})
        return grant

    def approve(self, actor: Actor, grant: DualControlGrant) -> DualControlGrant:
        """Approve another officer's request until now + ``dual_control_hours``; raises
        ``GrantClosed``, ``SelfApproval`` or ``ApproverConflicted``."""
        if grant.revoked_at is not None:
            raise GrantClosed("This request was revoked.")
        if grant.approved_at is not None:
            raise GrantClosed("This request was already approved.")
        if actor.user_id is None or actor.user_id == grant.requested_by_id:
            # Approval is a named officer's act: the host operator approves nothing either.
            raise SelfApproval("Nobody may approve their own request; "
                               "a second officer must approve it.")
        if self._conflicted(actor.user_id, grant.consortium_id):
            raise ApproverConflicted("You have a conflict with this consortium yourself and "
                                     "cannot approve access to it.")
        now = self.clock()
        grant.approved_by_id = actor.user_id
        grant.approved_at = now
        grant.expires_at = now + timedelta(hours=self._rules(grant).dual_control_hours)
        self.session.flush()
        self.audit.record(Tag.GRANT_APPROVED, actor=actor, request=self.request, target={
            "grant": grant.id, "consortium": grant.consortium_id,
            "requested_by": grant.requested_by_id, "approved_by": actor.user_id,
            "expires_at": grant.expires_at.isoformat()})
        return grant

    def revoke(self, actor: Actor, grant: DualControlGrant) -> DualControlGrant:
        """End a request or an approval now (withdraw, reject or cut short); raises
        ``GrantClosed`` if it was already revoked."""
        if grant.revoked_at is not None:
            raise GrantClosed("This request was already revoked.")
        was = self.status(grant)
        grant.revoked_at = self.clock()
        self.session.flush()
        self.audit.record(Tag.GRANT_REVOKED, actor=actor, request=self.request, target={
            "grant": grant.id, "consortium": grant.consortium_id,
            "requested_by": grant.requested_by_id, "approved_by": grant.approved_by_id,
            "revoked_by": actor.user_id, "was": was})
        return grant

    # -- helpers ------------------------------------------------------------------------------

    def _conflicted(self, user_id: uuid.UUID, consortium_id: uuid.UUID) -> bool:
        return bool(conflicts_between(self.session, self.cipher, user_id, consortium_id))

    def _rules(self, grant: DualControlGrant) -> ConflictRules:
        definition = self.definitions.get(grant.consortium.programme.code)
        return definition.conflicts if definition else ConflictRules()
