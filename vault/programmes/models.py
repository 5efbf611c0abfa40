"""Programme model: the database record of a loaded programme definition."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db import Base, UTCDateTime, new_id, utcnow


class Programme(Base):
    """A call for applications, created from its definition file."""

    __tablename__ = "programmes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: The definition's ``code``, e.g. ``sovereign-ai-2025``; names the TOML file.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title_ko: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300))
    submission_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Id of the stage the programme is in (a stage id of the definition).
    current_stage: Mapped[str] = mapped_column(String(64))
    #: SHA-256 of the definition file the programme was created or last updated from.
    definition_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if locale == "ko" else self.title_en

    def __repr__(self) -> str:
        return f"<Programme {self.code!r}>"
