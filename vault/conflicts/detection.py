"""Detection (제척): matching people's organisations against consortia — who is tied to which
organisation, which organisations a consortium lists, when a tie and a listing are the same
organisation — and the conflict records every part of the service shares.

Partner lists are confidential: they are opened here only to compare, and what matched is
sealed into the conflict's details for officers; nothing here is ever shown to the person.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.conflicts.errors import InvalidAffiliation
from vault.conflicts.links import conflict_link, new_conflict
from vault.conflicts.models import (
    Affiliation,
    Conflict,
    ConflictDeclaration,
    ConflictKind,
    ConflictSource,
    ConflictStatus,
)
from vault.conflicts.rules import rules_for, years_before
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.crypto import FieldCipher, LookupKey
from vault.db import new_id
from vault.identity.models import Role, User
from vault.identity.service import employer_id, seal_employer
from vault.organizations.models import Organization
from vault.policy.actions import Actor
from vault.programmes.definition import ConflictRules, ProgrammeDefinition
from vault.programmes.models import Programme
from vault.programmes.service import ProgrammeService

_TABLE = Conflict.__tablename__
_DECLARATIONS = ConflictDeclaration.__tablename__
#: Who can have a conflict: the people who read consortia's material.
EVALUATORS = (Role.REVIEWER, Role.OFFICER)

#: Legal-form words dropped from the end of a name: "Morae Storage Inc." is "Morae Storage".
_SUFFIXES = frozenset({
    "co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc",
    "plc", "gmbh", "ag", "sa", "bv", "kk",
})
#: Korean legal-form markers, dropped wherever they stand: "(주)모래", "모래 주식회사".
_KOREAN_MARKERS = ("주식회사", "(주)", "유한회사", "(유)", "재단법인", "(재)", "사단법인", "(사)")


def normalise_name(name: str) -> str:
    """An organisation name reduced for comparison: Unicode-normalised, case-folded,
    punctuation removed, whitespace collapsed, legal-form words ("Co.", "Inc.", "Corp.",
    "Ltd", 주식회사, …) dropped. ``""`` if nothing is left."""
    text = unicodedata.normalize("NFKC", name).casefold()
    for marker in _KOREAN_MARKERS:
        text = text.replace(marker, " ")
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    words = text.split()
    # Keep at least one word: an organisation really called "Company" still has a name.
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return " ".join(words)


@dataclass(frozen=True)
class Listed:
    """One organisation a consortium lists: its lead, or an entry of its partner list."""

    consortium: Consortium
    #: ``lead`` or ``partner``.
    relation: str
    #: Set for registered organisations.
    organization_id: uuid.UUID | None
    name: str
    key: str


@dataclass(frozen=True)
class Tie:
    """An organisation a person belongs or belonged to."""

    organization_id: uuid.UUID
    name: str
    key: str
    #: ``current`` (``users.organization_sealed``) or ``past`` (an ``Affiliation``).
    affiliation: str
    ended_on: date | None = None


def same_organisation(listed: Listed, organization_ids: Iterable[uuid.UUID], key: str) -> bool:
    """Whether a listing is the organisation with one of these registered ids or this
    normalised name. Names are compared even when ids differ: one company registered twice
    under spellings of its name is still one company, and a false match only costs an
    officer's dismissal while a missed one lets a conflicted person read."""
    if listed.organization_id is not None and listed.organization_id in set(organization_ids):
        return True
    return bool(key) and listed.key == key


def tie_matches(listed: Listed, tie: Tie) -> bool:
    """Whether a person's tie is a listed organisation."""
    return same_organisation(listed, (tie.organization_id,), tie.key)


def listed_organisations(session: Session, cipher: FieldCipher,
                         consortium: Consortium) -> list[Listed]:
    """The consortium's lead and every entry of its (opened) partner list."""
    lead = consortium.lead_organization
    listed = [Listed(consortium, "lead", lead.id, lead.name, normalise_name(lead.name))]
    for member in ConsortiumService(session, cipher=cipher).members(consortium):
        listed.append(Listed(
            consortium, "lead" if member.position == 0 else "partner", member.organization_id,
            member.organization_name, normalise_name(member.organization_name)))
    return listed


def ties_of(session: Session, cipher: FieldCipher, users: Sequence[User],
            since: date) -> dict[uuid.UUID, list[Tie]]:
    """Each person's current organisation and every affiliation that has not ended or ended
    after ``since`` (the rule's years before today), opened from their sealed columns."""
    ties: dict[uuid.UUID, list[Tie]] = {user.id: [] for user in users}
    if not users:
        return ties
    current = {user.id: employer_id(cipher, user) for user in users}
    rows = list(session.scalars(
        select(Affiliation)
        .where(Affiliation.user_id.in_([user.id for user in users]),
               or_(Affiliation.ends_on.is_(None), Affiliation.ends_on > since))
        .order_by(Affiliation.user_id, Affiliation.starts_on)
    ))
    past = {row.id: affiliation_organization_id(cipher, row) for row in rows}
    wanted = {i for i in current.values() if i is not None} | set(past.values())
    names = dict(session.execute(select(Organization.id, Organization.name)
                                 .where(Organization.id.in_(wanted))).all())
    for user in users:
        organization_id = current[user.id]
        if organization_id is not None and organization_id in names:
            name = names[organization_id]
            ties[user.id].append(Tie(organization_id, name, normalise_name(name), "current"))
    for row in rows:
        # Organisations are never deleted; one that is gone has no name to match.
        if past[row.id] in names:
            name = names[past[row.id]]
            ties[row.user_id].append(Tie(past[row.id], name, normalise_name(name), "past",
                                         row.ends_on))
    return ties


def seal_affiliation(cipher: FieldCipher, row_id: uuid.UUID,
                     organization_id: uuid.UUID) -> bytes:
    """An affiliation's organisation id sealed for ``affiliations.organization_sealed``."""
    return cipher.seal(Affiliation.__tablename__, "organization", row_id, str(organization_id))


def affiliation_organization_id(cipher: FieldCipher, row: Affiliation) -> uuid.UUID:
    """The id of an affiliation's organisation, opened; raises ``DecryptionError`` if altered."""
    return uuid.UUID(cipher.open(Affiliation.__tablename__, "organization", row.id,
                                 row.organization_sealed))


def evidence(listed: Sequence[Listed], ties: Sequence[Tie]) -> list[dict[str, str | None]]:
    """What ties a person to a consortium, one entry per (relation, organisation, tie), for
    the sealed details of a detected conflict."""
    found: list[dict[str, str | None]] = []
    for entry in listed:
        for tie in ties:
            if not tie_matches(entry, tie):
                continue
            item = {"relation": entry.relation, "organization": entry.name,
                    "affiliation": tie.affiliation, "affiliated_with": tie.name,
                    "ended_on": tie.ended_on.isoformat() if tie.ended_on else None}
            if item not in found:
                found.append(item)
    return found


def registered_ids(session: Session, key: str) -> set[uuid.UUID]:
    """Ids of the registered organisations whose normalised name is ``key``."""
    if not key:
        return set()
    return {org.id for org in session.scalars(select(Organization))
            if normalise_name(org.name) == key}


class ConflictRecords:
    """What every part of the conflict service shares: the session, the cipher and the log,
    sealing and opening details, and adding conflict rows."""

    def __init__(self, session: Session, *, cipher: FieldCipher,
                 clock: Callable[[], datetime],
                 definitions: Mapping[str, ProgrammeDefinition], audit: AuditLog,
                 request: RequestInfo | None = None, lookup: LookupKey | None = None) -> None:
        self.session = session
        self.cipher = cipher
        self.clock = clock
        self.definitions = definitions
        self.audit = audit
        self.request = request or RequestInfo()
        #: Keyed digests of challenged names that match nobody (needed by ``challenge`` only).
        self.lookup = lookup

    def evaluators(self) -> list[User]:
        """Every reviewer and officer account, by name."""
        return list(self.session.scalars(select(User).where(User.role.in_(EVALUATORS))
                                         .order_by(User.display_name, User.email_key)))

    def evaluator(self, user_id: uuid.UUID | None) -> User | None:
        """The reviewer or officer with this id, if there is one."""
        user = self.session.get(User, user_id) if user_id is not None else None
        return user if user is not None and user.role in EVALUATORS else None

    def consortia(self, programme: Programme) -> list[Consortium]:
        """The programme's consortia, by name (names are not confidential)."""
        return ConsortiumService(self.session, cipher=self.cipher).list_for_programme(programme)

    def listing(self, programme: Programme, organization_name: str) -> list[Consortium]:
        """The programme's consortia whose lead or partner list names the organisation."""
        key = normalise_name(organization_name)
        if not key:
            return []
        registered = registered_ids(self.session, key)
        return [consortium for consortium in self.consortia(programme)
                if any(same_organisation(entry, registered, key)
                       for entry in listed_organisations(self.session, self.cipher, consortium))]

    # -- records -----------------------------------------------------------------------------

    def _add(self, programme_id: uuid.UUID, user_id: uuid.UUID, consortium: Consortium,
             source: ConflictSource, details: Mapping[str, Any],
             created_by: uuid.UUID | None, declaration_id: uuid.UUID | None = None) -> Conflict:
        # The row id is the sealed details' associated data, so it is chosen before sealing.
        row = new_conflict(self.cipher, id=new_id(), programme_id=programme_id, user_id=user_id,
                           consortium_id=consortium.id, source=source,
                           status=ConflictStatus.PENDING, created_by_id=created_by,
                           created_at=self.clock(), declaration_id=declaration_id)
        row.details_sealed = self._seal(row.id, details)
        self.session.add(row)
        return row

    def declaration_details(self, declaration: ConflictDeclaration) -> dict[str, Any]:
        """A declaration's opened details."""
        return json.loads(self.cipher.open(_DECLARATIONS, "details", declaration.id,
                                           declaration.details_sealed))

    def _seal_declaration(self, row_id: uuid.UUID, details: Mapping[str, Any]) -> bytes:
        text = json.dumps(details, ensure_ascii=False, sort_keys=True)
        return self.cipher.seal(_DECLARATIONS, "details", row_id, text)

    def _seal(self, row_id: uuid.UUID, details: Mapping[str, Any]) -> bytes:
        text = json.dumps(details, ensure_ascii=False, sort_keys=True)
        return self.cipher.seal(_TABLE, "details", row_id, text)

    def _details(self, row: Conflict) -> dict[str, Any]:
        return json.loads(self.cipher.open(_TABLE, "details", row.id, row.details_sealed))

    def _rules(self, programme: Programme) -> ConflictRules:
        return rules_for(self.definitions, programme.code)

    def _evaluator(self, user_id: uuid.UUID | None, error: Exception) -> User:
        user = self.evaluator(user_id)
        if user is None:
            raise error
        return user

    def _user(self, user_id: uuid.UUID) -> User:
        user = self.session.get(User, user_id)
        assert user is not None  # a foreign key
        return user

    def _users(self, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, User]:
        wanted = [i for i in ids if i is not None]
        if not wanted:
            return {}
        return {u.id: u for u in self.session.scalars(select(User).where(User.id.in_(wanted)))}


class ConflictDetection(ConflictRecords):
    """Detection and affiliations: the vault finds conflicts itself."""

    # -- detection (제척) --------------------------------------------------------------------

    def detect(self, programme: Programme, *, actor: Actor | None = None) -> list[Conflict]:
        """Compare every reviewer's and officer's organisations with every consortium of the
        programme; returns the conflicts newly detected."""
        return self._detect(programme, self.evaluators(), self.consortia(programme), actor)

    def detect_for_user(self, user: User, programme: Programme, *,
                        actor: Actor | None = None) -> list[Conflict]:
        """Detection for one person (after their affiliations changed)."""
        if user.role not in EVALUATORS:
            return []
        return self._detect(programme, [user], self.consortia(programme), actor)

    def detect_for_consortium(self, consortium: Consortium, *,
                              actor: Actor | None = None) -> list[Conflict]:
        """Detection for one consortium (after its partner list changed)."""
        return self._detect(consortium.programme, self.evaluators(), [consortium], actor)

    def _detect(self, programme: Programme, users: Sequence[User],
                consortia: Sequence[Consortium], actor: Actor | None) -> list[Conflict]:
        since = years_before(self.clock().date(), self._rules(programme).affiliation_years)
        ties = ties_of(self.session, self.cipher, users, since)
        tied = [user for user in users if ties[user.id]]
        if not tied or not consortia:
            return []
        # Idempotent: one detection per person and consortium, and a dismissed one stays so.
        # The pairs are known by their keyed digests (the consortium is sealed).
        known = set(self.session.scalars(select(Conflict.link_digest).where(
            Conflict.programme_id == programme.id,
            Conflict.source == ConflictSource.DETECTED,
            Conflict.user_id.in_([user.id for user in tied]))))
        created = []
        for consortium in consortia:
            listed = listed_organisations(self.session, self.cipher, consortium)
            for user in tied:
                if conflict_link(self.cipher, user.id, consortium.id) in known:
                    continue
                found = evidence(listed, ties[user.id])
                if not found:
                    continue
                conflict = self._add(programme.id, user.id, consortium, ConflictSource.DETECTED,
                                     {"kind": ConflictKind.EMPLOYMENT.value, "evidence": found},
                                     created_by=None)
                created.append(conflict)
        self.session.flush()
        # The log names the conflict, not the person and the consortium side by side: together
        # they would say "an organisation of this person's is listed by this consortium",
        # which is what the sealed partner list keeps. Officers open the conflict itself.
        for conflict in created:
            self.audit.record(Tag.CONFLICT_DETECTED, actor=actor, request=self.request, target={
                "programme": programme.id, "conflict": conflict.id})
        return created

    def after_partner_list_change(self, consortium: Consortium, *,
                                  actor: Actor | None = None) -> list[Conflict]:
        """Detection for a consortium whose partner list changed, and declarations against an
        organisation that the new list now names; returns the new conflicts."""
        created = self.detect_for_consortium(consortium, actor=actor)
        programme = consortium.programme
        listed = listed_organisations(self.session, self.cipher, consortium)
        # Declarations that already have a conflict with this consortium: the declarer's digest
        # for this consortium is on the conflict row.
        already = {declaration_id for declaration_id, user_id, digest in self.session.execute(
            select(Conflict.declaration_id, Conflict.user_id, Conflict.link_digest).where(
                Conflict.programme_id == programme.id, Conflict.declaration_id.is_not(None)))
            if digest == conflict_link(self.cipher, user_id, consortium.id)}
        declared = []
        # Standing declarations against an organisation that this list now names.
        for declaration in self.session.scalars(select(ConflictDeclaration).where(
                ConflictDeclaration.programme_id == programme.id)
                .order_by(ConflictDeclaration.created_at)):
            if declaration.id in already:
                continue
            details = self.declaration_details(declaration)
            key = normalise_name(details.get("organization") or "")
            if details.get("basis") != "organization" or not key:
                continue
            registered = registered_ids(self.session, key)
            if any(same_organisation(entry, registered, key) for entry in listed):
                declared.append(self._add(programme.id, declaration.user_id, consortium,
                                          ConflictSource.DECLARED, details,
                                          created_by=declaration.user_id,
                                          declaration_id=declaration.id))
        self.session.flush()
        if declared:
            self.audit.record(Tag.CONFLICT_DECLARED, actor=actor, request=self.request, target={
                "programme": programme.id, "conflicts": conflict_ids(declared),
                "basis": "organization", "trigger": "partner-list"})
        return created + declared

    # -- affiliations ------------------------------------------------------------------------

    def add_affiliation(self, actor: Actor, user: User, organization: Organization,
                        starts_on: date | None = None,
                        ends_on: date | None = None) -> list[Conflict]:
        """Record a past (or additional) affiliation and detect again for the person in every
        programme; returns the new conflicts. Raises ``InvalidAffiliation``."""
        if user.role not in EVALUATORS:
            raise InvalidAffiliation("Affiliations are recorded for reviewers and officers.")
        if starts_on and ends_on and ends_on < starts_on:
            raise InvalidAffiliation("The affiliation ends before it starts.")
        row = Affiliation(id=new_id(), user_id=user.id, starts_on=starts_on, ends_on=ends_on,
                          created_at=self.clock())
        row.organization_sealed = seal_affiliation(self.cipher, row.id, organization.id)
        self.session.add(row)
        self.session.flush()
        # The event names the person and the affiliation row, not the organisation: a plain
        # person-to-organisation link in the log would join to the person's conflicts.
        self.audit.record(Tag.AFFILIATION_CHANGED, actor=actor, request=self.request, target={
            "user": user.id, "affiliation": row.id, "change": "added"})
        return self._detect_everywhere(user, actor)

    def set_affiliation(self, actor: Actor, user: User,
                        organization: Organization | None) -> list[Conflict]:
        """Change a person's current organisation; the previous one becomes a past affiliation
        ending today (it still counts for the rule's years). Detects again; returns the new
        conflicts."""
        previous = employer_id(self.cipher, user)
        if previous == (organization.id if organization else None):
            return []
        if previous is not None:
            row = Affiliation(id=new_id(), user_id=user.id, ends_on=self.clock().date(),
                              created_at=self.clock())
            row.organization_sealed = seal_affiliation(self.cipher, row.id, previous)
            self.session.add(row)
        user.organization_sealed = seal_employer(self.cipher, user.id, organization)
        self.session.flush()
        self.audit.record(Tag.AFFILIATION_CHANGED, actor=actor, request=self.request, target={
            "user": user.id, "change": "current"})
        return self._detect_everywhere(user, actor)

    def _detect_everywhere(self, user: User, actor: Actor | None) -> list[Conflict]:
        created: list[Conflict] = []
        for programme in ProgrammeService(self.session).list():
            created.extend(self.detect_for_user(user, programme, actor=actor))
        return created


def conflict_ids(conflicts: Sequence[Conflict]) -> str:
    """Conflict ids for an audit event's target, comma-separated."""
    return ",".join(str(c.id) for c in conflicts)
