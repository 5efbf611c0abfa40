"""Schema migrations with Alembic, run by ``vault init`` / ``vault db upgrade`` and the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that runs on ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A transaction for migrations.

    On SQLite, ALTER TABLE is done by copying the table and dropping the original; with foreign
    keys enforced that drop would cascade-delete rows of other tables. So enforcement is off
    during the migration (the pragma only works outside a transaction) and the result is
    checked with ``PRAGMA foreign_key_check`` before the transaction commits.
    """
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if problems:
                        raise RuntimeError(f"migration broke foreign keys: {problems[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head", *, field_key: str | None = None) -> None:
    """Migrate the database up to ``revision``. ``field_key`` (``VAULT_FIELD_KEY``) is needed
    by revisions that seal existing rows; without it they refuse to run on a database that has
    such rows."""
    with _migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        config.attributes["field_key"] = field_key
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str, *, field_key: str | None = None) -> None:
    """Migrate the database down to ``revision`` (``base`` removes every table); see
    ``upgrade`` for ``field_key``."""
    with _migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        config.attributes["field_key"] = field_key
        command.downgrade(config, revision)


def new_revision(engine: Engine, message: str) -> str:
    """Autogenerate a revision against ``engine`` (which must be at head); returns its path."""
    with _migration_connection(engine) as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        script = command.revision(config, message=message, autogenerate=True)
    return script.path if script is not None and not isinstance(script, list) else ""


def is_initialised(engine: Engine) -> bool:
    """Whether the database has been migrated at least once."""
    return inspect(engine).has_table("alembic_version")
