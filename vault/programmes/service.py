"""Programme records, kept in step with their definition files."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.programmes.definition import ProgrammeDefinition
from vault.programmes.models import Programme


class ProgrammeService:
    """Programme operations on one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def sync(self, definition: ProgrammeDefinition) -> tuple[Programme, bool]:
        """Create or update the programme from its definition; returns it and whether it changed."""
        programme = self.by_code(definition.code)
        if programme is None:
            # The definition gives the stage a new programme starts in; afterwards the stage
            # moves with the programme's workflow, not with edits of the file.
            programme = Programme(code=definition.code, current_stage=definition.current_stage)
            self.session.add(programme)
        changed = programme.definition_sha256 != definition.sha256
        programme.title_ko = definition.title_ko
        programme.title_en = definition.title_en
        programme.submission_deadline = definition.submission_deadline
        programme.definition_sha256 = definition.sha256
        self.session.flush()
        # The NDA text is published as a version here (at ``vault init`` and wherever the
        # definitions are synced), so reviewers accept a hash whose text is on record. A new
        # text is a change even when the TOML file (which names the text file) is unchanged.
        from vault.db import utcnow  # imported here: this change is confined to ``sync``
        from vault.nda.service import NdaService

        nda = NdaService(self.session, clock=utcnow)
        if definition.nda is not None and not nda.is_published(programme, definition.nda.sha256):
            nda.publish(programme, definition)
            changed = True
        return programme, changed

    def by_code(self, code: str) -> Programme | None:
        """The programme with this code, if any."""
        return self.session.scalar(select(Programme).where(Programme.code == code))

    def list(self) -> list[Programme]:
        """Every programme, newest deadline first."""
        return list(
            self.session.scalars(select(Programme).order_by(Programme.submission_deadline.desc()))
        )
