"""Conflict-of-interest models. What a conflict is about is confidential: details are sealed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow
from vault.identity.models import User


class ConflictKind(StrEnum):
    """What ties a person to a consortium."""

    EMPLOYMENT = "employment"  # employment or affiliation
    ADVISOR = "advisor"  # advisor or student
    COLLABORATOR = "collaborator"
    FAMILY = "family"
    FINANCIAL = "financial"
    OTHER = "other"


class ConflictSource(StrEnum):
    """How the vault learned of a conflict."""

    DECLARED = "declared"  # the person declared it (회피)
    DETECTED = "detected"  # an affiliation matches the consortium's lead or a partner (제척)
    CHALLENGED = "challenged"  # an applicant challenged the person (기피)


class ConflictStatus(StrEnum):
    """Where a conflict stands. Pending conflicts are in effect: access is denied until an
    officer dismisses them."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class ConflictDeclaration(Base):
    """What a person declared (회피): against a named consortium, or against an organisation by
    name. An organisation declaration stands: it creates a conflict with every consortium that
    lists the organisation, now or when a partner list names it later."""

    __tablename__ = "conflict_declarations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: Sealed JSON: kind, description, period, and the consortium id or the organisation name.
    details_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Conflict(Base):
    """A person (reviewer or officer) has, or may have, a conflict with one consortium.

    Which consortium is sealed: a plain (person, consortium) row — above all a detected one —
    says "an organisation of this person's is listed by this consortium", which names a
    confidential partner to anyone who knows where the person works. ``link_digest`` lets the
    vault ask "does this person have a conflict with that consortium" in one indexed lookup
    (see ``vault.conflicts.links``).
    """

    __tablename__ = "conflicts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: The consortium's id, sealed (associated data = table, column, row id).
    consortium_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: Keyed digest of (person, consortium) under the field secret's link key: equal for every
    #: conflict of the same pair, computable only with the key, so it joins nothing.
    link_digest: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[ConflictSource] = mapped_column(enum_type(ConflictSource, "conflict_source"))
    status: Mapped[ConflictStatus] = mapped_column(
        enum_type(ConflictStatus, "conflict_status"), default=ConflictStatus.PENDING
    )
    #: Sealed JSON: kind, description, period, evidence of a detection, a challenge's reason.
    details_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: The declaration this conflict comes from (declared conflicts only).
    declaration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conflict_declarations.id", ondelete="RESTRICT"), index=True
    )
    #: Who declared or challenged (``None`` when the vault detected it).
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Sealed text: the officer's reason for confirming or dismissing.
    decision_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class Affiliation(Base):
    """A past (or additional) affiliation of a person; the current one is sealed in ``users``."""

    __tablename__ = "affiliations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: The organisation's id, sealed (associated data = table, column, row id) for the same
    #: reason as ``User.organization_sealed``: a plain person-to-organisation link joins to
    #: whatever links the person to a consortium, and names a confidential partner.
    organization_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    starts_on: Mapped[date | None] = mapped_column(Date)
    #: ``None`` while it lasts.
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Sanction(Base):
    """A disciplinary sanction of an evaluator; recent ones exclude the person from reviewing."""

    __tablename__ = "sanctions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    imposed_on: Mapped[date] = mapped_column(Date)
    #: Sealed text.
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
