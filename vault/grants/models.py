"""Dual-control grant model."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.consortia.models import Consortium
from vault.db import Base, UTCDateTime, new_id, utcnow
from vault.identity.models import User


class DualControlGrant(Base):
    """An officer with a conflict asks to read a consortium's material; a second officer
    approves for a limited time. Both names are recorded; nobody approves their own request.

    The consortium stays in plaintext, next to the officer: a grant is an act two officers
    answer for, and every read under it is an access decision that names the officer and the
    consortium anyway. It says that a conflict was acted on, not what the conflict is: the
    conflict's consortium and details, and every person's organisation, are sealed, so no
    plaintext join leads from a grant to the organisation behind it."""

    __tablename__ = "dual_control_grants"
    __table_args__ = (
        CheckConstraint("approved_by_id IS NULL OR approved_by_id <> requested_by_id",
                        name="not_self_approved"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    consortium_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consortia.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: Sealed text: why the requester needs the material.
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The approval holds until this moment.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    consortium: Mapped[Consortium] = relationship(lazy="joined")
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id], lazy="joined")
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id], lazy="joined")

    def active(self, now: datetime) -> bool:
        """Approved, not revoked and not expired at ``now``."""
        return (self.approved_at is not None and self.revoked_at is None
                and self.expires_at is not None and now < self.expires_at)
