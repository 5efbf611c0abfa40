"""The vault's collaborators, built once from the settings and shared by the web app and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from vault.audit.checkpoints import LogIdentity, load_log_identity
from vault.audit.service import AuditLog, RequestInfo
from vault.crypto import FieldCipher, LookupKey
from vault.db import make_engine, make_session_factory, utcnow
from vault.documents.service import DocumentService
from vault.identity.service import IdentityService, ThrottlePolicy
from vault.keys import KeyProvider
from vault.keys.keyring import KeyringProvider
from vault.keys.service import KeyService
from vault.policy.engine import PolicyEngine
from vault.policy.service import Authorizer, DenialRecorder
from vault.programmes.definition import ProgrammeDefinition, load_definitions
from vault.sandbox import Limits
from vault.screening.analyses import AnalysisQueue
from vault.screening.analysis import ANALYSIS_LIMITS
from vault.settings import Settings
from vault.storage import BlobStore
from vault.storage.factory import blob_store_from_url


def make_key_provider(settings: Settings) -> KeyProvider:
    """The key provider the settings name."""
    if settings.key_provider == "pkcs11":
        from vault.keys.pkcs11 import Pkcs11KeyProvider  # needs python-pkcs11 and an HSM

        assert settings.pkcs11_module and settings.pkcs11_token and settings.pkcs11_pin
        return Pkcs11KeyProvider(settings.pkcs11_module, settings.pkcs11_token,
                                 settings.pkcs11_pin, lock_path=settings.pkcs11_lock)
    return KeyringProvider(settings.keyring_file, settings.master_key)


def analysis_limits(seconds: int) -> Limits:
    """The limits of one PDF analysis allowed ``seconds`` of wall-clock time (two thirds of it
    CPU time, as the default 30 s allows 20 s)."""
    return Limits(cpu_seconds=max(1, seconds * 2 // 3),
                  memory_bytes=ANALYSIS_LIMITS.memory_bytes, wall_seconds=float(seconds))


@dataclass
class Runtime:
    """Engine, session factory, keys, clock and programme definitions for one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: FieldCipher
    lookup: LookupKey
    definitions: dict[str, ProgrammeDefinition]
    keys: KeyProvider
    blobs: BlobStore
    log_identity: LogIdentity | None
    policy: PolicyEngine
    clock: Callable[[], datetime] = field(default=utcnow)
    #: When this process last ran the audit sequencer (``time.monotonic``).
    last_sequenced: float = 0.0
    #: Sessions for safe (read) requests: on SQLite they take the write lock only at commit.
    read_sessions: sessionmaker[Session] | None = None
    #: The sandbox's limits for one PDF analysis (``VAULT_ANALYSIS_SECONDS``).
    analysis_limits: Limits = ANALYSIS_LIMITS
    _analyses: AnalysisQueue | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime] = utcnow) -> Runtime:
        """Build the collaborators; programme definitions and the access policies are loaded and
        validated here (``DefinitionError``, ``PolicyError``)."""
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_session_factory(engine, deferred=True),
            analysis_limits=analysis_limits(settings.analysis_seconds),
            cipher=FieldCipher(settings.field_key),
            lookup=LookupKey(settings.lookup_key),
            definitions=load_definitions(settings.programmes_dir),
            keys=make_key_provider(settings),
            blobs=blob_store_from_url(settings.blob_url, s3_endpoint=settings.s3_endpoint),
            log_identity=load_log_identity(settings),
            policy=PolicyEngine.load(settings.policies_dir),
            clock=clock,
        )

    def verify_keys(self) -> None:
        """Refuse to start unless the key provider opens the keys the database depends on
        (``KeyService.verify_provider``); raises ``KeyProviderError`` naming the problem.

        Writes nothing: a SQLite file that does not exist yet is not created, and a database
        that is unreachable or not yet migrated leaves only the provider's own check (the
        health check and ``vault init`` report those).
        """
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and not Path(database).exists():
            self.keys.verify()
            return
        try:
            # A read session: on SQLite the check takes no write lock from running workers.
            with (self.read_sessions or self.sessions)() as session:
                KeyService(session, keys=self.keys, clock=self.clock).verify_provider()
                session.rollback()
        except (OperationalError, ProgrammingError):
            self.keys.verify()

    def documents(self, session: Session) -> DocumentService:
        """The document store on ``session``."""
        return DocumentService(session, keys=self.keys, blobs=self.blobs, clock=self.clock,
                               definitions=self.definitions)

    @property
    def analyses(self) -> AnalysisQueue:
        """This process's queue of PDF analyses (started on first use)."""
        if self._analyses is None:
            self._analyses = AnalysisQueue(
                sessions=self.sessions, read_sessions=self.read_sessions or self.sessions,
                documents=self.documents, limits=self.analysis_limits, clock=self.clock)
        return self._analyses

    def close(self) -> None:
        """Wait for this process's background analyses, then close the database connections."""
        if self._analyses is not None:
            self._analyses.shutdown()
        self.engine.dispose()

    def authorizer(self, session: Session, *, request: RequestInfo | None = None,
                   record_denial: DenialRecorder | None = None) -> Authorizer:
        """The access chokepoint on ``session``."""
        return Authorizer(session, engine=self.policy, definitions=self.definitions,
                          clock=self.clock, cipher=self.cipher, request=request,
                          record_denial=record_denial)

    def audit(self, session: Session) -> AuditLog:
        """The audit log on ``session``."""
        return AuditLog(session, clock=self.clock)

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
            token_max_days=self.settings.token_max_days,
        )
