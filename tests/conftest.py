"""Test fixtures: a real database built by migrations (SQLite, or PostgreSQL when
``VAULT_TEST_DATABASE_URL`` is set), a fresh copy per test, an app, a client, a clock, factories.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import pyotp
import pytest
from argon2 import PasswordHasher, Type
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tests.moto_server import CREDENTIALS, moto_s3_server
from vault import crypto, migrate
from vault.app import create_app
from vault.audit.models import AuditEvent
from vault.db import make_engine, unit_of_work
from vault.identity.models import Role, User
from vault.runtime import Runtime
from vault.settings import Settings

PG_URL = os.environ.get("VAULT_TEST_DATABASE_URL", "").strip()
PASSWORD = "insecure-correct-horse-battery"
TEST_SECRETS = {
    "VAULT_SECRET_KEY": "insecure-test-session-key-0123456789abcdef",
    "VAULT_CSRF_KEY": "insecure-test-csrf-key-0123456789abcdefgh",
    "VAULT_FIELD_KEY": "insecure-test-field-key-0123456789abcdefg",
    "VAULT_LOOKUP_KEY": "insecure-test-lookup-key-0123456789abcdef",
    "VAULT_MASTER_KEY": "insecure-test-master-key-0123456789abcdef",
}
_counter = itertools.count()
W = TypeVar("W")


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


#: argon2id at its cheapest, for the tests' own accounts. The vault's parameters cost about
#: 40 ms a hash and as much a sign-in, thousands of times a run; the code is the same either
#: way. ``real_password_hashing`` gives a test the vault's own parameters back.
_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32,
                               salt_len=16, type=Type.ID)
_REAL_HASHING = (crypto._PASSWORD_HASHER, crypto._DUMMY_HASH)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Cheap argon2id parameters for the whole run (subprocesses keep the vault's own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crypto, "_PASSWORD_HASHER", _CHEAP_HASHER)
        patch.setattr(crypto, "_DUMMY_HASH", _CHEAP_HASHER.hash("insecure-dummy-password"))
        yield


@pytest.fixture
def real_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vault's own argon2id parameters for one test."""
    monkeypatch.setattr(crypto, "_PASSWORD_HASHER", _REAL_HASHING[0])
    monkeypatch.setattr(crypto, "_DUMMY_HASH", _REAL_HASHING[1])


def _pg_admin_url() -> str:
    return make_url(PG_URL).set(drivername="postgresql+psycopg").render_as_string(False)


class _PostgresCopies:
    """PostgreSQL copies of template databases, made one ahead and dropped after use by one
    background thread: a test waits for neither (together about 0.2 s a test otherwise).

    Every statement runs on that one thread, in order, so a template is never copied while it
    is being dropped. ``FILE_COPY`` copies a small database faster than the default strategy.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        self._next: dict[str, Future[str]] = {}
        self._drops: list[Future[None]] = []

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(statement))

    def _copy(self, template: str) -> str:
        name = f"vault_t_{os.getpid()}_{next(_counter)}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name

    def _drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self, template: str) -> str:
        """A fresh copy of ``template`` (a database name); the next one is started."""
        made = self._next.pop(template, None) or self._thread.submit(self._copy, template)
        name = made.result()
        self._next[template] = self._thread.submit(self._copy, template)
        return name

    def give_back(self, name: str) -> None:
        """Drop ``name`` in the background."""
        self._drops.append(self._thread.submit(self._drop, name))

    def drop_now(self, name: str) -> None:
        """Drop ``name`` (a template) after every copy made of it ahead is dropped too."""
        for template, made in list(self._next.items()):
            if template == name:
                del self._next[template]
                self.give_back(made.result())
        self._thread.submit(self._drop, name).result()

    def close(self) -> None:
        """Drop what is left; any drop that failed fails the run."""
        for made in self._next.values():
            self.give_back(made.result())
        self._thread.shutdown(wait=True)
        for dropped in self._drops:
            dropped.result()
        self._admin.dispose()


_copies: _PostgresCopies | None = None


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head once per run; tests get copies of it."""
    global _copies
    if PG_URL:
        name = f"vault_tpl_{os.getpid()}"
        admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(_pg_admin_url()).set(database=name).render_as_string(False)
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        _copies = _PostgresCopies()
        try:
            yield url
        finally:
            _copies.close()
            _copies = None
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "vault.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        yield str(path)


@contextlib.contextmanager
def database_copy(template_database: str, directory: Path, *,
                  template: bool = False) -> Iterator[str]:
    """A fresh copy of the migrated template: a PostgreSQL database made from it, or a copy of
    the SQLite file in ``directory``; dropped afterwards. A copy that will itself be used as a
    template (``template=True``) is dropped at once, with any copies made of it ahead."""
    if PG_URL:
        assert _copies is not None, "the template_database fixture comes first"
        name = _copies.take(make_url(template_database).database)
        try:
            yield make_url(_pg_admin_url()).set(database=name).render_as_string(False)
        finally:
            if template:
                _copies.drop_now(name)
            else:
                _copies.give_back(name)
    else:
        target = directory / "vault.db"
        shutil.copy(template_database, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with database_copy(template_database, tmp_path) as url:
        yield url


def make_data_dir(parent: Path) -> Path:
    """The vault's data directory, made in ``parent``."""
    path = parent / "instance"
    path.mkdir(mode=0o700)
    return path


def environ_for(database_url: str, data_dir: Path) -> dict[str, str]:
    """A production-mode environment with test secrets."""
    return {
        "VAULT_MODE": "production",
        "VAULT_DATA_DIR": str(data_dir),
        "VAULT_DATABASE_URL": database_url,
        # Sequence audit events after every request, so tests read a settled log.
        "VAULT_AUDIT_SEQUENCE_MS": "0",
        **TEST_SECRETS,
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The vault's data directory for one test."""
    return make_data_dir(tmp_path)


@pytest.fixture
def environ(database_url: str, data_dir: Path) -> dict[str, str]:
    """A production-mode environment with test secrets."""
    return environ_for(database_url, data_dir)


@pytest.fixture
def settings(environ: dict[str, str]) -> Settings:
    """Settings for one test."""
    return Settings.from_env(environ, testing=True)


#: Where every test's clock starts: during the demo programme's call for applications.
CALL_OPEN = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    """The app's clock, during the demo programme's call for applications."""
    return Clock(CALL_OPEN)


class EnglishClient(FlaskClient):
    """A test client whose browser asks for English (the vault defaults to Korean)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@contextlib.contextmanager
def running_app(settings: Settings, clock: Callable[[], datetime]) -> Iterator[Flask]:
    """The web application on ``settings``; its background analyses finished and its engine
    disposed of afterwards."""
    application = create_app(settings, clock=clock)
    application.test_client_class = EnglishClient
    try:
        yield application
    finally:
        application.extensions["vault"].close()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[Flask]:
    """The web application."""
    with running_app(settings, clock) as application:
        yield application


@contextlib.contextmanager
def shared_app(template_database: str, directory: Path,
               clock: Callable[[], datetime]) -> Iterator[Flask]:
    """An app on its own database copy and data directory in ``directory``, for a module whose
    tests only read what it holds (or roll back what they write)."""
    with database_copy(template_database, directory) as url:
        settings = Settings.from_env(environ_for(url, make_data_dir(directory)), testing=True)
        with running_app(settings, clock) as application:
            yield application


@dataclass(frozen=True)
class Snapshot(Generic[W]):
    """A world built once for a module: its database (to copy for each test), its data
    directory (keys and blobs, to copy too), the clock's time when it was built and what the
    builder returned (ids and accounts, no live objects)."""

    database: str
    data_dir: Path
    now: datetime
    world: W

    @contextlib.contextmanager
    def database_copy(self, directory: Path) -> Iterator[str]:
        """A fresh copy of the world's database for one test."""
        with database_copy(self.database, directory) as url:
            yield url

    def data_dir_copy(self, directory: Path) -> Path:
        """A fresh copy of the world's data directory for one test."""
        return Path(shutil.copytree(self.data_dir, directory / "instance"))


@contextlib.contextmanager
def snapshot(template_database: str, directory: Path,
             build: Callable[[Runtime, Clock], W]) -> Iterator[Snapshot[W]]:
    """Build a world on an app of its own in ``directory`` and keep it to be copied: a module
    whose tests each change the same world builds it once, and each test starts from a copy
    (``snapshot_fixtures`` makes the fixtures that do so)."""
    clock = Clock(CALL_OPEN)
    with database_copy(template_database, directory, template=True) as url:
        data_dir = make_data_dir(directory)
        settings = Settings.from_env(environ_for(url, data_dir), testing=True)
        with running_app(settings, clock) as application:
            world = build(application.extensions["vault"], clock)
        # The app's engine is disposed of: nothing holds the database open while it is copied.
        yield Snapshot(url if PG_URL else str(directory / "vault.db"), data_dir, clock.now, world)


def snapshot_fixtures(build: Callable[[Runtime, Clock], W],
                      bind: Callable[[W, Runtime, Clock], W] | None = None
                      ) -> tuple[Any, Any, Any, Any]:
    """The fixtures a module needs to start each test from a copy of one world:
    ``built, database_url, data_dir, world = snapshot_fixtures(build)`` at module level.
    ``world`` is what ``build`` returned, with the test's clock set to the time it ended; a
    world that holds the runtime or the clock is given the test's own by ``bind``, which copies
    what a test may change."""

    @pytest.fixture(scope="module")
    def built(template_database: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Snapshot[W]]:
        with snapshot(template_database, tmp_path_factory.mktemp("world"), build) as made:
            yield made

    @pytest.fixture
    def database_url(built: Snapshot[W], tmp_path: Path) -> Iterator[str]:
        with built.database_copy(tmp_path) as url:
            yield url

    @pytest.fixture
    def data_dir(built: Snapshot[W], tmp_path: Path) -> Path:
        return built.data_dir_copy(tmp_path)

    @pytest.fixture
    def world(built: Snapshot[W], clock: Clock, request: pytest.FixtureRequest) -> W:
        clock.now = built.now
        if bind is None:
            return copy.deepcopy(built.world)  # what one test changes, the next never sees
        return bind(built.world, request.getfixturevalue("runtime"), clock)

    return built, database_url, data_dir, world


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    """The app's runtime (engine, sessions, keys, clock)."""
    return app.extensions["vault"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like client (cookies kept between requests)."""
    return app.test_client()


@dataclass
class Account:
    """A created test account and what is needed to sign in as it."""

    id: uuid.UUID
    email: str
    password: str
    role: Role
    totp_secret: str | None = None

    def totp(self, clock: Clock, offset_steps: int = 0) -> str:
        """The TOTP code at the clock's time (plus some 30-second steps)."""
        assert self.totp_secret
        return pyotp.TOTP(self.totp_secret).at(clock() + timedelta(seconds=30 * offset_steps))


@pytest.fixture
def make_user(runtime: Runtime, clock: Clock):
    """Factory: ``make_user(role, mfa=False, email=None, demo=False)`` → ``Account``."""
    return user_factory(runtime, clock)


def user_factory(runtime: Runtime, clock: Callable[[], datetime]):
    """The ``make_user`` factory for a given runtime (also for apps a test builds itself)."""

    def make(role: Role = Role.APPLICANT, *, mfa: bool = False, email: str | None = None,
             demo: bool = False, password: str = PASSWORD) -> Account:
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@test.example"
        with unit_of_work(runtime.sessions) as session:
            identity = runtime.identity(session)
            user = identity.create_user(email=email, display_name=f"Test {role.value}",
                                        role=role, password=password, demo_account=demo)
            secret = None
            if mfa:
                secret = identity.begin_totp_enrolment(user)
                # Enrol with the code of the previous step so that the current step's code
                # is still unused for the sign-in under test.
                code = pyotp.TOTP(secret).at(clock() - timedelta(seconds=30))
                identity.confirm_totp_enrolment(user, code)
            return Account(user.id, email, password, role, secret)

    return make


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def audit_events(runtime: Runtime, tag: str) -> list[dict]:
    """The audit log's events with ``tag`` (a ``Tag`` or its value), oldest first; events still
    waiting for the sequencer are placed first."""
    with unit_of_work(runtime.sessions) as session:
        runtime.audit(session).sequence()
    with unit_of_work(runtime.sessions) as session:
        leaves = session.scalars(select(AuditEvent.leaf).where(AuditEvent.tag == str(tag))
                                 .order_by(AuditEvent.seq))
        return [json.loads(leaf) for leaf in leaves]


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``, as a browser would read it."""
    response = client.get(path)
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def sign_in(client: FlaskClient, account: Account, clock: Clock | None = None):
    """Sign in through the real forms (password, then the TOTP code if enrolled)."""
    token = csrf_from(client, "/login")
    response = client.post("/login", data={"email": account.email, "password": account.password,
                                           "csrf_token": token})
    if account.totp_secret and response.status_code == 302 and "/login/code" in response.location:
        assert clock is not None
        token = csrf_from(client, "/login/code")
        response = client.post("/login/code", data={"code": account.totp(clock),
                                                    "csrf_token": token})
    return response


def get_user(runtime: Runtime, user_id: uuid.UUID) -> User:
    """A fresh copy of a user row."""
    with unit_of_work(runtime.sessions) as session:
        user = session.get(User, user_id)
        assert user is not None
        return user


@dataclass
class Team:
    """A consortium of the demo programme with a draft submission and one applicant."""

    consortium_id: uuid.UUID
    submission_id: uuid.UUID
    applicant: Account
    partner_ids: list[uuid.UUID]
    name: str


@pytest.fixture
def make_team(runtime: Runtime, make_user):
    """Factory: ``make_team(name, partners=("University A",))`` → ``Team``."""
    return team_factory(runtime, make_user)


def team_factory(runtime: Runtime, make_user):
    """The ``make_team`` factory for a given runtime and user factory."""
    from vault.consortia.models import Consortium
    from vault.consortia.service import ConsortiumService
    from vault.documents.submissions import SubmissionService
    from vault.organizations.models import OrganizationKind
    from vault.organizations.service import OrganizationService
    from vault.programmes.service import ProgrammeService

    def make(name: str = "Team Alpha", partners: tuple[str, ...] = ("Alpha University",)) -> Team:
        applicant = make_user(Role.APPLICANT)
        with unit_of_work(runtime.sessions) as session:
            programme, _ = ProgrammeService(session).sync(
                runtime.definitions["sovereign-ai-2025"])
            lead = OrganizationService(session).get_or_create(f"{name} Lead Co.",
                                                              OrganizationKind.COMPANY)
            consortia = ConsortiumService(session, cipher=runtime.cipher)
            consortium = consortia.create(programme, name, lead)
            consortia.add_member(consortium, name=lead.name, kind=lead.kind, role="lead",
                                 contribution="training")
            partner_ids = [
                consortia.add_member(consortium, name=partner, kind=OrganizationKind.UNIVERSITY,
                                     role="partner", contribution="evaluation").id
                for partner in partners
            ]
            consortia.add_contact(session.get(Consortium, consortium.id),
                                  session.get(User, applicant.id), lead=True)
            submission = SubmissionService(session).open_draft(consortium)
            return Team(consortium.id, submission.id, applicant, partner_ids, name)

    return make


def pdf_bytes(size: int, marker: bytes = b"") -> bytes:
    """A body of ``size`` bytes that starts like a PDF (the upload check reads magic bytes)."""
    head = b"%PDF-1.7\n" + marker
    return (head + b"x" * max(0, size - len(head)))[:size] if size >= len(head) else head[:size]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for the whole session, with fake credentials and no ambient config."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        # Keep a developer's ~/.aws and the instance metadata service out of the tests.
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        # Loopback only, even where a proxy is configured.
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("no_proxy", "127.0.0.1,localhost")
        with moto_s3_server() as endpoint:
            yield endpoint
