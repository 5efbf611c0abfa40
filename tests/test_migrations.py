"""Migrations are tested code: the models equal ``upgrade head``, and every revision goes down
and up again, with data in the tables."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from vault import migrate
from vault.db import Base, make_engine


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config(make_engine("sqlite://")))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_models_match_the_migrated_schema(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_there_is_one_head():
    script = ScriptDirectory.from_config(migrate.alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1


def test_every_revision_downgrades_and_upgrades_again_with_data(database_url):
    engine = make_engine(database_url)
    revisions = _revisions()
    try:
        # From head, step down one revision at a time to base, with a row in place each time.
        for index in range(len(revisions) - 1, -1, -1):
            with engine.begin() as connection:
                if inspect(connection).has_table("organizations"):
                    connection.execute(
                        text("INSERT INTO organizations (id, name, kind, created_at) "
                             "VALUES (:id, :name, 'company', CURRENT_TIMESTAMP)"),
                        {"id": uuid.uuid4().hex if engine.dialect.name == "sqlite"
                         else str(uuid.uuid4()), "name": f"Org {index}"},
                    )
            target = revisions[index - 1] if index > 0 else "base"
            migrate.downgrade(engine, target)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        for revision in revisions:
            migrate.upgrade(engine, revision)
        assert migrate.is_initialised(engine)
        assert "users" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
