"""NDA models: the texts a programme published and who accepted which one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.db import Base, UTCDateTime, new_id, utcnow
from vault.identity.models import User


class NdaVersion(Base):
    """One published NDA text of a programme (Korean and English in one text).

    The version is the SHA-256 of the text's UTF-8 bytes: a changed text is a new version and
    needs accepting again.
    """

    __tablename__ = "nda_versions"
    __table_args__ = (
        UniqueConstraint("programme_id", "sha256", name="uq_nda_versions_programme_sha256"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    #: When the vault first loaded this text from the programme definition.
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NdaAcceptance(Base):
    """A reviewer's acceptance of one NDA version: typed name, time, address and user agent."""

    __tablename__ = "nda_acceptances"
    __table_args__ = (
        Index("ix_nda_acceptances_user_programme", "user_id", "programme_id"),
        CheckConstraint("length(nda_sha256) = 64", name="nda_sha256_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programmes.id", ondelete="RESTRICT"), index=True
    )
    #: The version accepted (``NdaVersion.sha256``).
    nda_sha256: Mapped[str] = mapped_column(String(64))
    #: The full name as the reviewer typed it, as a signature.
    typed_name: Mapped[str] = mapped_column(String(200))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The acceptance holds until this moment (the programme's configured date).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    client_address: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300))
    #: ``web`` or ``api``.
    channel: Mapped[str] = mapped_column(String(8))

    user: Mapped[User] = relationship(lazy="joined")
