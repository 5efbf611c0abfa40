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


def test_rows_survive_every_downgrade_and_upgrade_of_altered_tables(database_url):
    """Altering a table on SQLite copies it; rows that reference it must not be cascaded away."""
    engine = make_engine(database_url)
    revisions = _revisions()
    uid = (lambda: uuid.uuid4().hex) if engine.dialect.name == "sqlite" else (
        lambda: str(uuid.uuid4()))
    org, programme, consortium, member = uid(), uid(), uid(), uid()
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO organizations (id, name, kind, created_at) "
                "VALUES (:id, 'Lead', 'company', CURRENT_TIMESTAMP)"), {"id": org})
            connection.execute(text(
                "INSERT INTO programmes (id, code, title_ko, title_en, submission_deadline, "
                "current_stage, definition_sha256, created_at) VALUES (:id, 'p', 'ko', 'en', "
                "CURRENT_TIMESTAMP, 'call', :sha, CURRENT_TIMESTAMP)"),
                {"id": programme, "sha": "0" * 64})
            connection.execute(text(
                "INSERT INTO consortia (id, programme_id, lead_organization_id, name, created_at)"
                " VALUES (:id, :p, :o, 'Team', CURRENT_TIMESTAMP)"),
                {"id": consortium, "p": programme, "o": org})
            connection.execute(text(
                "INSERT INTO consortium_members (id, consortium_id, position, "
                "organization_sealed, role_sealed, contribution_sealed, created_at) "
                "VALUES (:id, :c, 0, :b, :b, :b, CURRENT_TIMESTAMP)"),
                {"id": member, "c": consortium, "b": b"sealed"})
        for target in [*reversed(revisions[:-1]), "base"][:-1]:
            migrate.downgrade(engine, target)
            with engine.connect() as connection:
                count = connection.execute(text("SELECT count(*) FROM consortium_members"))
                assert count.scalar() == 1, f"partner rows lost at {target}"
        migrate.upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM consortium_members")).scalar() == 1
    finally:
        engine.dispose()


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
