"""Consortium models. The partner list is confidential: its columns hold sealed values only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.db import Base, UTCDateTime, new_id, utcnow
from vault.identity.models import User
from vault.organizations.models import Organization
from vault.programmes.models import Programme


class Consortium(Base):
    """An applicant team in one programme, known by its name and its lead organisation."""

    __tablename__ = "consortia"
    __table_args__ = (UniqueConstraint("programme_id", "name", name="uq_consortia_programme_name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    lead_organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the consortium's key was destroyed (its documents are unreadable from then on).
    #: The key provider is the authority; this column only lets pages say so.
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    programme: Mapped[Programme] = relationship(lazy="joined")

    @property
    def key_id(self) -> str:
        """The key provider's id of this consortium's key."""
        return f"consortium-{self.id}"
    lead_organization: Mapped[Organization] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Consortium {self.name!r}>"


class ConsortiumMember(Base):
    """One entry of a consortium's confidential partner list (the lead is entry 0).

    Who the partners are reveals a consortium's strategy, so the organisation, its role and its
    contribution are sealed (AES-256-GCM, associated data = table, column and row id). Nothing
    here links a partner to a registered ``Organization`` in plaintext.
    """

    __tablename__ = "consortium_members"
    __table_args__ = (
        UniqueConstraint("consortium_id", "position", name="uq_consortium_members_position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    consortium_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consortia.id", ondelete="CASCADE"), index=True
    )
    #: Order in the list as the consortium declared it.
    position: Mapped[int] = mapped_column(Integer)
    #: Sealed JSON: ``{"name", "kind", "organization_id"}`` (id only for registered ones).
    organization_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed text: the member's role in the consortium (lead, partner, university, …).
    role_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Sealed text: what the member contributes.
    contribution_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsortiumContact(Base):
    """An applicant account that acts for a consortium."""

    __tablename__ = "consortium_contacts"

    consortium_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consortia.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    #: The consortium's lead contact for the ministry.
    is_lead_contact: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    consortium: Mapped[Consortium] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")
