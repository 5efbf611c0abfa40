"""Registering and finding organisations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.organizations.models import Organization, OrganizationKind


class OrganizationService:
    """Organisation operations on one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_or_create(self, name: str, kind: OrganizationKind) -> Organization:
        """The organisation with this name, registering it with ``kind`` if it is new."""
        organization = self.find(name)
        if organization is None:
            organization = Organization(name=name.strip(), kind=kind)
            self.session.add(organization)
            self.session.flush()
        return organization

    def find(self, name: str) -> Organization | None:
        """The organisation with exactly this name, if registered."""
        return self.session.scalar(select(Organization).where(Organization.name == name.strip()))
