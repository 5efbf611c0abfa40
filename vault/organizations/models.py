"""Organisation model."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, enum_type, new_id, utcnow


class OrganizationKind(StrEnum):
    """What kind of body an organisation is (consortium rules count universities)."""

    COMPANY = "company"
    UNIVERSITY = "university"
    RESEARCH_INSTITUTE = "research_institute"
    PUBLIC_BODY = "public_body"


class Organization(Base):
    """A registered organisation: a consortium lead, or the affiliation of a user.

    Partner organisations known only from a consortium's confidential partner list are *not*
    registered here; they live sealed inside that list (see ``ConsortiumMember``).
    """

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: Legal name, unique.
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[OrganizationKind] = mapped_column(enum_type(OrganizationKind, "organization_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Organization {self.name!r} ({self.kind.value})>"
