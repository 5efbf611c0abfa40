"""Conflicts of interest (Korean practice): declarations (회피), detection (제척), challenges
(기피), sanctions, and officers' decisions.

A pending or confirmed conflict is in effect: the entity builder denies the person every
consortium they have one with, so a conflict recorded here takes effect on the next request.
What a conflict is about is sealed (associated data = table, column, row id), and so is which
consortium it concerns (``vault.conflicts.links``) and which organisations a person belongs or
belonged to (``IdentityService.employer``, ``detection.ties_of``); partner lists are
confidential, so nothing a declarer or a challenger is told depends on which consortia matched
or whether the person they named exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.conflicts.detection import EVALUATORS, ConflictDetection, conflict_ids
from vault.conflicts.errors import (
    ConflictedDecider,
    InvalidChallenge,
    InvalidDecision,
    InvalidDeclaration,
    InvalidSanction,
    OwnConflict,
)
from vault.conflicts.links import conflicted_consortia, conflicts_between, consortium_of
from vault.conflicts.models import (
    Conflict,
    ConflictDeclaration,
    ConflictKind,
    ConflictSource,
    ConflictStatus,
    Sanction,
)
from vault.consortia.models import Consortium
from vault.crypto import FieldCipher
from vault.db import new_id
from vault.documents.models import Submission
from vault.identity.models import Role, User
from vault.identity.service import email_key
from vault.policy.actions import Actor
from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme

__all__ = ["EVALUATORS", "ConflictService", "ConflictView", "OwnDeclaration", "SanctionView",
           "on_partner_list_changed"]

_TABLE = Conflict.__tablename__
_SANCTIONS = Sanction.__tablename__
#: Free text (descriptions, reasons) is bounded.
MAX_TEXT = 2000
#: An e-mail address or a full name.
MAX_PERSON = 254


@dataclass(frozen=True)
class ConflictView:
    """A conflict as officers see it: opened details and decision reason."""

    conflict: Conflict
    #: The consortium, opened from the conflict's sealed column.
    consortium: Consortium
    details: dict[str, Any]
    decision_reason: str | None
    created_by: User | None
    decided_by: User | None


@dataclass(frozen=True)
class OwnDeclaration:
    """What a person sees of a declaration they made: the consortium they named (with the
    conflict's status), or the organisation they named (nothing about what it matched)."""

    id: uuid.UUID
    consortium_name: str | None
    organization: str | None
    kind: ConflictKind
    description: str
    period_from: date | None
    period_to: date | None
    status: ConflictStatus | None
    created_at: datetime


@dataclass(frozen=True)
class SanctionView:
    """A sanction with its opened reason (officers only)."""

    sanction: Sanction
    user: User
    reason: str


class ConflictService(ConflictDetection):
    """Conflict-of-interest operations on one database session; flushes, never commits.

    Built as ``ConflictService(session, cipher=, clock=, definitions=, audit=, request=,
    lookup=)``; detection and affiliations come from ``ConflictDetection``.
    """

    # -- declarations (회피) -----------------------------------------------------------------

    def declare(self, actor: Actor, programme: Programme, kind: ConflictKind, description: str,
                period_from: date | None = None, period_to: date | None = None,
                consortium: Consortium | None = None,
                organization_name: str | None = None) -> list[Conflict]:
        """Record the actor's own conflict with a named consortium, or with every consortium of
        the programme that lists the named organisation as lead or partner. The caller must not
        tell the declarer which (or how many) consortia matched. Raises ``InvalidDeclaration``."""
        user = self._evaluator(actor.user_id, InvalidDeclaration(
            "Only reviewers and officers declare conflicts of interest."))
        description = _text(description, InvalidDeclaration(
            "Describe the conflict (up to 2,000 characters)."))
        organization_name = " ".join((organization_name or "").split())
        if (consortium is None) == (not organization_name):
            raise InvalidDeclaration("Name either a consortium or an organisation.")
        if len(organization_name) > 200:
            raise InvalidDeclaration("An organisation name has at most 200 characters.")
        if period_from and period_to and period_to < period_from:
            raise InvalidDeclaration("The period ends before it starts.")
        if consortium is not None and consortium.programme_id != programme.id:
            raise InvalidDeclaration("That consortium does not apply to this programme.")
        details = {
            "kind": ConflictKind(kind).value, "description": description,
            "period_from": period_from.isoformat() if period_from else None,
            "period_to": period_to.isoformat() if period_to else None,
            "basis": "consortium" if consortium is not None else "organization",
            "organization": organization_name or None,
            "consortium": str(consortium.id) if consortium is not None else None,
        }
        # The declaration stands on its own: one against an organisation that no consortium
        # lists today still takes effect when a partner list names it later.
        declaration = ConflictDeclaration(id=new_id(), programme_id=programme.id,
                                          user_id=user.id, created_at=self.clock())
        declaration.details_sealed = self._seal_declaration(declaration.id, details)
        self.session.add(declaration)
        self.session.flush()  # before the conflicts that refer to it
        targets = ([consortium] if consortium is not None
                   else self.listing(programme, organization_name))
        created = [self._add(programme.id, user.id, target, ConflictSource.DECLARED, details,
                             created_by=user.id, declaration_id=declaration.id)
                   for target in targets]
        self.session.flush()
        self.audit.record(Tag.CONFLICT_DECLARED, actor=actor, request=self.request, target={
            "programme": programme.id, "declaration": declaration.id,
            "conflicts": conflict_ids(created), "basis": details["basis"]})
        return created

    # -- challenges (기피) -------------------------------------------------------------------

    def challenge(self, actor: Actor, submission: Submission, person: str,
                  reason: str) -> Conflict | None:
        """An applicant challenges a named person (e-mail address or full name) for their
        consortium. Whether anyone matched is never told to the caller's user: the web layer
        answers the same either way. Raises ``InvalidChallenge`` (for the input only)."""
        person = " ".join(person.split())
        if not person or len(person) > MAX_PERSON:
            raise InvalidChallenge("Name the person by e-mail address or full name.")
        reason = _text(reason, InvalidChallenge(
            "Give the reason for the challenge (up to 2,000 characters)."))
        if self.lookup is None:
            raise TypeError("challenges need the lookup key")
        consortium = submission.consortium
        named = self._person(person)
        conflict = None
        if named is not None:
            entry = {"reason": reason, "at": self.clock().isoformat(),
                     "by": str(actor.user_id), "named": person}
            conflict = next((c for c in conflicts_between(self.session, self.cipher, named.id,
                                                          consortium.id)
                             if c.source is ConflictSource.CHALLENGED), None)
            if conflict is None:
                conflict = self._add(consortium.programme_id, named.id, consortium,
                                     ConflictSource.CHALLENGED,
                                     {"kind": ConflictKind.OTHER.value, "challenges": [entry]},
                                     created_by=actor.user_id)
            else:  # a further challenge of the same person: one conflict, every reason kept
                details = self._details(conflict)
                details["challenges"].append(entry)
                conflict.details_sealed = self._seal(conflict.id, details)
            self.session.flush()
        who = (str(named.id) if named is not None
               else "digest:" + self.lookup.digest("challenge:" + person.casefold()))
        self.audit.record(Tag.CONFLICT_CHALLENGED, actor=actor, request=self.request, target={
            "consortium": consortium.id, "submission": submission.id, "person": who,
            "conflict": conflict.id if conflict else None})
        return conflict

    def _person(self, person: str) -> User | None:
        """The reviewer or officer a challenge names: by e-mail address (any case), else by
        exactly that display name if only one evaluator has it."""
        if "@" in person:
            found = self.session.scalar(select(User).where(User.email_key == email_key(person)))
            return found if found is not None and found.role in EVALUATORS else None
        matches = list(self.session.scalars(select(User).where(
            User.display_name == person, User.role.in_(EVALUATORS)).limit(2)))
        return matches[0] if len(matches) == 1 else None

    # -- sanctions ---------------------------------------------------------------------------

    def record_sanction(self, actor: Actor, user: User, imposed_on: date,
                        reason: str) -> Sanction:
        """Record a disciplinary sanction of a reviewer (it excludes them for the programme's
        ``sanction_years``). Raises ``InvalidSanction``."""
        if user.role is not Role.REVIEWER:
            raise InvalidSanction("Sanctions are recorded for reviewers.")
        if imposed_on > self.clock().date():
            raise InvalidSanction("A sanction cannot be dated in the future.")
        reason = _text(reason, InvalidSanction(
            "Give the reason for the sanction (up to 2,000 characters)."))
        row = Sanction(id=new_id(), user_id=user.id, imposed_on=imposed_on,
                       recorded_by_id=actor.user_id, created_at=self.clock())
        row.reason_sealed = self.cipher.seal(_SANCTIONS, "reason", row.id, reason)
        self.session.add(row)
        self.session.flush()
        self.audit.record(Tag.SANCTION_RECORDED, actor=actor, request=self.request, target={
            "user": user.id, "sanction": row.id, "imposed_on": imposed_on.isoformat()})
        return row

    def sanctions(self) -> list[SanctionView]:
        """Every recorded sanction, newest first, with its opened reason."""
        rows = self.session.scalars(select(Sanction).order_by(Sanction.imposed_on.desc(),
                                                              Sanction.created_at.desc()))
        return [SanctionView(row, self._user(row.user_id),
                             self.cipher.open(_SANCTIONS, "reason", row.id, row.reason_sealed))
                for row in rows]

    # -- decisions ---------------------------------------------------------------------------

    def decide(self, actor: Actor, conflict: Conflict, confirm: bool, reason: str) -> Conflict:
        """An officer confirms or dismisses a conflict (again, if it was decided before) with a
        reason. Raises ``InvalidDecision``, ``OwnConflict`` and ``ConflictedDecider``."""
        reason = _text(reason, InvalidDecision(
            "Give the reason for the decision (up to 2,000 characters)."))
        if actor.user_id == conflict.user_id:
            raise OwnConflict("You cannot decide a conflict of interest about yourself; "
                              "another officer must decide it.")
        if actor.user_id is not None and consortium_of(
                self.cipher, conflict) in self.effective_consortia(actor.user_id):
            raise ConflictedDecider("You have a conflict of interest with this consortium "
                                    "yourself; another officer must decide.")
        old = conflict.status
        conflict.status = ConflictStatus.CONFIRMED if confirm else ConflictStatus.DISMISSED
        conflict.decided_by_id = actor.user_id
        conflict.decided_at = self.clock()
        conflict.decision_reason_sealed = self.cipher.seal(_TABLE, "decision_reason",
                                                           conflict.id, reason)
        self.session.flush()
        self.audit.record(Tag.CONFLICT_DECIDED, actor=actor, request=self.request, target={
            "conflict": conflict.id, "old_status": old.value,
            "new_status": conflict.status.value})
        return conflict

    # -- queries -----------------------------------------------------------------------------

    def get(self, conflict_id: uuid.UUID) -> Conflict | None:
        """The conflict with this id, if any."""
        return self.session.get(Conflict, conflict_id)

    def for_programme(self, programme: Programme, status: ConflictStatus | None = None,
                      source: ConflictSource | None = None) -> list[ConflictView]:
        """Every conflict of the programme (officers), newest first, with opened details."""
        query = select(Conflict).where(Conflict.programme_id == programme.id)
        if status is not None:
            query = query.where(Conflict.status == status)
        if source is not None:
            query = query.where(Conflict.source == source)
        rows = list(self.session.scalars(query.order_by(Conflict.created_at.desc())))
        people = self._users({r.created_by_id for r in rows} | {r.decided_by_id for r in rows})
        opened = {row.id: consortium_of(self.cipher, row) for row in rows}
        consortia = {c.id: c for c in self.session.scalars(
            select(Consortium).where(Consortium.id.in_(set(opened.values()))))} if rows else {}
        return [ConflictView(
            conflict=row, consortium=consortia[opened[row.id]], details=self._details(row),
            decision_reason=(self.cipher.open(_TABLE, "decision_reason", row.id,
                                              row.decision_reason_sealed)
                             if row.decision_reason_sealed else None),
            created_by=people.get(row.created_by_id), decided_by=people.get(row.decided_by_id),
        ) for row in rows]

    def of_user(self, user: User, programme: Programme | None = None) -> list[OwnDeclaration]:
        """What a person may see of their own conflicts: the declarations they made, as they
        made them. Detected and challenged conflicts are left out (they would reveal a partner
        list or a challenger), and so is which consortia an organisation declaration matched
        (that would reveal partner lists)."""
        query = select(ConflictDeclaration).where(ConflictDeclaration.user_id == user.id)
        if programme is not None:
            query = query.where(ConflictDeclaration.programme_id == programme.id)
        own = []
        for row in self.session.scalars(query.order_by(ConflictDeclaration.created_at.desc())):
            details = self.declaration_details(row)
            status = None
            consortium_name = None
            if details.get("basis") == "consortium":
                conflict = self.session.scalars(select(Conflict).where(
                    Conflict.declaration_id == row.id).limit(1)).first()
                if conflict is not None:
                    consortium = self.session.get(Consortium, consortium_of(self.cipher, conflict))
                    status = conflict.status
                    consortium_name = consortium.name if consortium is not None else None
            own.append(OwnDeclaration(
                id=row.id, consortium_name=consortium_name,
                organization=details.get("organization"),
                kind=ConflictKind(details["kind"]), description=details["description"],
                period_from=_date(details.get("period_from")),
                period_to=_date(details.get("period_to")),
                status=status, created_at=row.created_at))
        return own

    def effective_consortia(self, user: User | uuid.UUID) -> set[uuid.UUID]:
        """The consortia a person has a conflict in effect with (pending or confirmed)."""
        user_id = user.id if isinstance(user, User) else user
        return conflicted_consortia(self.session, self.cipher, user_id)

    def consortium(self, conflict: Conflict) -> Consortium:
        """The consortium a conflict is about (opened from its sealed column)."""
        consortium = self.session.get(Consortium, consortium_of(self.cipher, conflict))
        assert consortium is not None  # consortia are never deleted
        return consortium

    def programme(self, conflict: Conflict) -> Programme:
        """The programme a conflict belongs to."""
        programme = self.session.get(Programme, conflict.programme_id)
        assert programme is not None  # a foreign key
        return programme

    def consortium_in(self, programme: Programme, consortium_id: uuid.UUID) -> Consortium | None:
        """The consortium with this id if it applies to the programme."""
        consortium = self.session.get(Consortium, consortium_id)
        return consortium if consortium and consortium.programme_id == programme.id else None


def on_partner_list_changed(session: Session, cipher: FieldCipher,
                            clock: Callable[[], datetime],
                            definitions: Mapping[str, ProgrammeDefinition], audit: AuditLog,
                            request: RequestInfo | None, consortium: Consortium, *,
                            actor: Actor | None = None) -> list[Conflict]:
    """Call after a partner was added to ``consortium``: a new partner matching a reviewer's or
    officer's organisation (or a standing declaration) takes effect on the next request. The
    result must not be shown to the applicant."""
    service = ConflictService(session, cipher=cipher, clock=clock, definitions=definitions,
                              audit=audit, request=request)
    return service.after_partner_list_change(consortium, actor=actor)


def _text(value: str, error: Exception) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_TEXT:
        raise error
    return value


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
