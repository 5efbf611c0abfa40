"""Database plumbing: the declarative base, shared column types, engines and the unit of work.

Services only ``flush``; ``unit_of_work`` (one per request or CLI command) commits or rolls back.

SQLite has one writer at a time, and how a transaction gets the write lock decides whether
readers stall one another:

* Sessions from :func:`make_session_factory` begin with ``BEGIN IMMEDIATE``: the write lock is
  taken up front, so a transaction that reads and then changes what it read is serialised with
  every other writer (no lost update, no deadlock between two readers upgrading).
* Sessions from :func:`make_session_factory` with ``deferred=True`` (safe requests: GET and
  HEAD) begin with a plain ``BEGIN``: their reads take no lock at all (WAL readers never block
  writers nor each other). Such a request still records audit events; its *first write* takes
  the lock late. Upgrading a read snapshot in place would fail with ``SQLITE_BUSY_SNAPSHOT``
  whenever another writer committed since the snapshot began (the busy handler does not help:
  the snapshot can never become current), so instead the read transaction, which has written
  nothing, is ended and a ``BEGIN IMMEDIATE`` starts a fresh one that waits its turn for the
  lock like any writer (:func:`take_write_lock`). The price is that the reads before the first
  write and the writes are not one snapshot; that is why only safe requests use these
  sessions: what they write (audit events of what was read, cached facts) is appended, never
  decided from what they read. Code that must read and write atomically (the audit log's
  sequencer) calls :func:`take_write_lock` before it reads. Deferred sessions do not autoflush,
  so their writes go out together at commit and the lock is held only for that moment.

PostgreSQL needs neither: reads never block writers, and writers lock only the rows they change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

#: Constraint names are stable across SQLite and PostgreSQL so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every vault model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        """Return aware UTC datetimes whatever the engine stored."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A random primary key: ids reveal neither counts nor order of creation."""
    return uuid.uuid4()


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_before_write)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling is disabled so that BEGIN is ours (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers unless this is on:
    # the audit log's append-only triggers must see every removal.
    cursor.execute("PRAGMA recursive_triggers=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


#: Execution option of the engine that deferred sessions are bound to.
DEFERRED = "vault_deferred_begin"
#: ``connection.info`` key: whether the connection's transaction holds SQLite's write lock.
_WRITING = "vault_writing"
#: Statements that write (or open a savepoint, which only ever surrounds writes).
_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP",
                   "ALTER")


def _sqlite_begin(connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two workers never deadlock upgrading
    # a read lock; SQLite serialises writers anyway. Deferred sessions take it late (see the
    # module's docstring).
    deferred = bool(connection.get_execution_options().get(DEFERRED))
    connection.info[_WRITING] = not deferred
    connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _sqlite_before_write(connection, _cursor, statement, _parameters, _context,
                         _executemany) -> None:
    # The first write of a deferred transaction: take the lock in a fresh transaction.
    if connection.info.get(_WRITING, True):
        return
    if statement.lstrip()[:9].upper().startswith(_WRITE_PREFIXES):
        _restart_immediate(connection)


def _restart_immediate(connection) -> None:
    """End the (so far read-only) deferred transaction and begin one holding the write lock."""
    raw = connection.connection.dbapi_connection
    # The raw cursor bypasses the engine's events: these two statements are ours alone.
    cursor = raw.cursor()
    try:
        cursor.execute("COMMIT")  # nothing was written: this only drops the read snapshot
        cursor.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for the writer ahead of us
    finally:
        cursor.close()
    connection.info[_WRITING] = True


def take_write_lock(session: Session) -> None:
    """Make the session's transaction hold SQLite's write lock from now on (nothing to do on
    PostgreSQL, or when it already does). Call it *before* reading what the transaction will
    write from; reads made earlier in a deferred session may be older than the lock."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.info.get(_WRITING, True):
        _restart_immediate(connection)


def make_session_factory(engine: Engine, *, deferred: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (templates render after commit).

    ``deferred`` sessions are for safe requests: on SQLite their reads take no lock and their
    writes, flushed together at commit, take the write lock only then (see the module's
    docstring).
    """
    if deferred:
        return sessionmaker(bind=engine.execution_options(**{DEFERRED: True}),
                            expire_on_commit=False, autoflush=False)
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def enum_type(enum_class: type, name: str) -> SAEnum:
    """An enum stored by value as text, with a named CHECK constraint on every engine."""
    return SAEnum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_class),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
