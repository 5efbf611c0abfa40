"""Consortia and their confidential partner lists.

Partner entries are sealed column by column with the field cipher; they are opened only here,
for callers that have already been authorised to read the partner list.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consortia.errors import CannotRemoveMember, DuplicateConsortium, TooManyMembers
from vault.consortia.models import Consortium, ConsortiumContact, ConsortiumMember
from vault.crypto import FieldCipher
from vault.identity.models import User
from vault.organizations.models import Organization, OrganizationKind
from vault.programmes.models import Programme

_TABLE = ConsortiumMember.__tablename__
#: A safety bound on partner lists (programme rules set the real maximum).
MAX_MEMBERS = 50


@dataclass(frozen=True)
class Member:
    """One opened entry of a partner list."""

    id: uuid.UUID
    position: int
    organization_name: str
    organization_kind: OrganizationKind
    #: Set when the member is also a registered organisation (e.g. a reviewer's employer).
    organization_id: uuid.UUID | None
    role: str
    contribution: str


class ConsortiumService:
    """Consortium operations on one database session."""

    def __init__(self, session: Session, *, cipher: FieldCipher) -> None:
        self.session = session
        self.cipher = cipher

    def create(self, programme: Programme, name: str, lead: Organization) -> Consortium:
        """A new consortium led by ``lead``, with its draft submission; raises
        ``DuplicateConsortium``."""
        exists = self.session.scalar(
            select(Consortium.id).where(
                Consortium.programme_id == programme.id, Consortium.name == name
            )
        )
        if exists is not None:
            raise DuplicateConsortium("A consortium named {name} already applies.",
                                      name=repr(name))
        consortium = Consortium(programme=programme, name=name, lead_organization=lead)
        self.session.add(consortium)
        self.session.flush()
        # The partner list and the documents are reached through the submission.
        from vault.documents.submissions import SubmissionService  # documents import consortia

        SubmissionService(self.session).open_draft(consortium)
        return consortium

    def add_member(
        self,
        consortium: Consortium,
        *,
        name: str,
        kind: OrganizationKind,
        role: str,
        contribution: str,
        organization: Organization | None = None,
    ) -> ConsortiumMember:
        """Append a sealed entry to the consortium's partner list."""
        rows = self._member_rows(consortium)
        if len(rows) >= MAX_MEMBERS:
            raise TooManyMembers("A consortium has at most {limit} entries.", limit=MAX_MEMBERS)
        # Positions are never reused, so documents filed for a removed partner never attach
        # to a new one.
        position = (rows[-1].position + 1) if rows else 0
        row = ConsortiumMember(id=uuid.uuid4(), consortium_id=consortium.id, position=position)
        organization_json = json.dumps(
            {
                "name": name,
                "kind": kind.value,
                "organization_id": str(organization.id) if organization else None,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        row.organization_sealed = self.cipher.seal(
            _TABLE, "organization", row.id, organization_json
        )
        row.role_sealed = self.cipher.seal(_TABLE, "role", row.id, role)
        row.contribution_sealed = self.cipher.seal(_TABLE, "contribution", row.id, contribution)
        self.session.add(row)
        self.session.flush()
        return row

    def members(self, consortium: Consortium) -> list[Member]:
        """The opened partner list, in declared order; raises ``DecryptionError`` if tampered."""
        opened = []
        for row in self._member_rows(consortium):
            organization = json.loads(
                self.cipher.open(_TABLE, "organization", row.id, row.organization_sealed)
            )
            opened.append(
                Member(
                    id=row.id,
                    position=row.position,
                    organization_name=organization["name"],
                    organization_kind=OrganizationKind(organization["kind"]),
                    organization_id=(
                        uuid.UUID(organization["organization_id"])
                        if organization["organization_id"]
                        else None
                    ),
                    role=self.cipher.open(_TABLE, "role", row.id, row.role_sealed),
                    contribution=self.cipher.open(
                        _TABLE, "contribution", row.id, row.contribution_sealed
                    ),
                )
            )
        return opened

    def remove_member(self, consortium: Consortium, member_id: uuid.UUID, *,
                      has_documents: bool) -> None:
        """Remove a partner; raises ``CannotRemoveMember`` for the lead, an unknown entry, or a
        partner with documents uploaded for it."""
        row = self.session.get(ConsortiumMember, member_id)
        if row is None or row.consortium_id != consortium.id:
            raise CannotRemoveMember("No such partner in this consortium.")
        if row.position == 0:
            raise CannotRemoveMember("The lead organisation cannot be removed.")
        if has_documents:
            raise CannotRemoveMember(
                "Documents were uploaded for this partner; it cannot be removed."
            )
        self.session.delete(row)
        self.session.flush()

    def _member_rows(self, consortium: Consortium) -> list[ConsortiumMember]:
        return list(
            self.session.scalars(
                select(ConsortiumMember)
                .where(ConsortiumMember.consortium_id == consortium.id)
                .order_by(ConsortiumMember.position)
            )
        )

    def add_contact(self, consortium: Consortium, user: User, *, lead: bool = False) -> None:
        """Let an applicant account act for the consortium."""
        self.session.add(
            ConsortiumContact(consortium_id=consortium.id, user_id=user.id, is_lead_contact=lead)
        )
        self.session.flush()

    def consortia_of(self, user: User) -> list[Consortium]:
        """The consortia an applicant account acts for."""
        return list(
            self.session.scalars(
                select(Consortium)
                .join(ConsortiumContact, ConsortiumContact.consortium_id == Consortium.id)
                .where(ConsortiumContact.user_id == user.id)
                .order_by(Consortium.name)
            )
        )

    def list_for_programme(self, programme: Programme) -> list[Consortium]:
        """Every consortium applying to the programme, by name."""
        return list(
            self.session.scalars(
                select(Consortium)
                .where(Consortium.programme_id == programme.id)
                .order_by(Consortium.name)
            )
        )
