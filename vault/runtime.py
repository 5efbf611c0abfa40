"""The vault's collaborators, built once from the settings and shared by the web app and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vault.crypto import FieldCipher, LookupKey
from vault.db import make_engine, make_session_factory, utcnow
from vault.identity.service import IdentityService, ThrottlePolicy
from vault.programmes.definition import ProgrammeDefinition, load_definitions
from vault.settings import Settings


@dataclass
class Runtime:
    """Engine, session factory, keys, clock and programme definitions for one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: FieldCipher
    lookup: LookupKey
    definitions: dict[str, ProgrammeDefinition]
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime] = utcnow) -> Runtime:
        """Build the collaborators; programme definitions are loaded and validated here."""
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            cipher=FieldCipher(settings.field_key),
            lookup=LookupKey(settings.lookup_key),
            definitions=load_definitions(settings.programmes_dir),
            clock=clock,
        )

    def identity(self, session: Session) -> IdentityService:
        """The identity service on ``session``."""
        return IdentityService(
            session,
            cipher=self.cipher,
            lookup=self.lookup,
            throttle=ThrottlePolicy(
                self.settings.login_max_failures, self.settings.login_lockout
            ),
            clock=self.clock,
        )
