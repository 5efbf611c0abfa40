"""``vault keys``, ``vault shred`` and ``vault token``: rotation, rewrap, retirement, shredding."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PG_URL, pdf_bytes
from vault.cli import cli
from vault.db import unit_of_work
from vault.documents.errors import DocumentShredded
from vault.documents.models import DocumentVersion, Submission
from vault.keys.service import KeyService


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _upload(runtime, team, marker: bytes) -> bytes:
    body = pdf_bytes(50_000, marker)
    with unit_of_work(runtime.sessions) as session:
        submission = session.get(Submission, team.submission_id)
        runtime.documents(session).upload(
            submission=submission,
            kind=runtime.definitions["sovereign-ai-2025"].document_kind("proposal"),
            slot="", filename="p.pdf", declared_type="application/pdf", body=[body],
            uploader_id=team.applicant.id)
    return body


def _read_all(runtime) -> list[bytes]:
    with unit_of_work(runtime.sessions) as session:
        documents = runtime.documents(session)
        rows = session.scalars(select(DocumentVersion).order_by(DocumentVersion.version))
        return [b"".join(documents.plaintext(row)) for row in rows]


def _key_versions(runtime) -> list[int]:
    with unit_of_work(runtime.sessions) as session:
        return sorted(v.key_version for v in session.scalars(select(DocumentVersion)))


def test_rotate_rewrap_retire(runner, runtime, make_team, clock):
    team = make_team()
    first = _upload(runtime, team, b"one")
    result = runner.invoke(cli, ["keys", "rotate", "--consortium", str(team.consortium_id)])
    assert result.exit_code == 0 and "now v2" in result.output
    second = _upload(runtime, team, b"two")
    assert _key_versions(runtime) == [1, 2]
    assert _read_all(runtime) == [first, second]  # old documents still decrypt

    refused = runner.invoke(cli, ["keys", "retire", "--below", "2"])
    assert refused.exit_code == 2 and "rewrap" in refused.output
    assert runtime.keys.versions(f"consortium-{team.consortium_id}") == [1, 2]

    status = runner.invoke(cli, ["keys", "status"])
    assert "v1: 1, v2: 1" in status.output

    with unit_of_work(runtime.sessions) as session:
        blobs_before = {v.blob_name: v.blob_sha256 for v in session.scalars(
            select(DocumentVersion))}
    rewrap = runner.invoke(cli, ["keys", "rewrap"])
    assert rewrap.exit_code == 0 and "Rewrapped 1 data keys" in rewrap.output
    assert _key_versions(runtime) == [2, 2]
    with unit_of_work(runtime.sessions) as session:
        blobs_after = {v.blob_name: v.blob_sha256 for v in session.scalars(
            select(DocumentVersion))}
    assert blobs_after == blobs_before  # no blob was rewritten
    assert runner.invoke(cli, ["keys", "rewrap"]).output.strip().endswith("Rewrapped 0 data keys.")

    retired = runner.invoke(cli, ["keys", "retire", "--below", "2"])
    assert retired.exit_code == 0 and "retired v1" in retired.output
    assert runtime.keys.versions(f"consortium-{team.consortium_id}") == [2]
    assert _read_all(runtime) == [first, second]


def test_rewrap_is_resumable_in_batches(runtime, make_team):
    team = make_team()
    bodies = [_upload(runtime, team, bytes([65 + i])) for i in range(5)]
    runtime.keys.rotate(f"consortium-{team.consortium_id}")
    with unit_of_work(runtime.sessions) as session:
        assert KeyService(session, keys=runtime.keys, clock=runtime.clock).rewrap_batch(2) == 2
    # "Interrupted" here: a fresh run picks up the rest.
    with unit_of_work(runtime.sessions) as session:
        service = KeyService(session, keys=runtime.keys, clock=runtime.clock)
        assert service.stale_count() == 3
        assert service.rewrap_batch() == 3
    assert _key_versions(runtime) == [2] * 5
    assert _read_all(runtime) == bodies


def test_shred_needs_the_typed_name(runner, runtime, make_team):
    team = make_team("Team Delta")
    body = _upload(runtime, team, b"x")
    wrong = runner.invoke(cli, ["shred", "--consortium", str(team.consortium_id)],
                          input="Team Omega\n")
    assert wrong.exit_code == 2 and "nothing was destroyed" in wrong.output
    assert _read_all(runtime) == [body]
    unknown = runner.invoke(cli, ["shred", "--consortium", "00000000-0000-4000-8000-000000000000",
                                  "--confirm", "x"])
    assert unknown.exit_code == 2


def test_shredded_documents_stay_unreadable_after_restoring_a_database_backup(
        runner, runtime, make_team, database_url, tmp_path):
    team = make_team("Team Echo")
    _upload(runtime, team, b"secret")
    other = make_team("Team Foxtrot", partners=("Foxtrot University",))
    kept = _upload(runtime, other, b"kept")
    backup = None
    if not PG_URL:
        runtime.engine.dispose()
        database = Path(database_url.removeprefix("sqlite:///"))
        backup = tmp_path / "backup.db"
        shutil.copy(database, backup)
    result = runner.invoke(cli, ["shred", "--consortium", str(team.consortium_id),
                                 "--confirm", "Team Echo"])
    assert result.exit_code == 0, result.output
    if backup is not None:
        runtime.engine.dispose()
        shutil.copy(backup, database)  # the pre-shred database is back, wrapped keys and all
    with unit_of_work(runtime.sessions) as session:
        documents = runtime.documents(session)
        rows = list(session.scalars(select(DocumentVersion)))
        readable = []
        for row in rows:
            try:
                readable.append(b"".join(documents.plaintext(row)))
            except DocumentShredded:
                readable.append(None)
    assert sorted(readable, key=lambda v: v is None) == [kept, None]
    status = runner.invoke(cli, ["keys", "status"])
    assert "SHREDDED" in status.output


def test_token_commands(runner, runtime, make_user):
    account = make_user()
    created = runner.invoke(cli, ["token", "create", "--email", account.email, "--name", "ci",
                                  "--days", "7"])
    assert created.exit_code == 0
    token = created.output.splitlines()[0]
    assert token.startswith("vault_")
    with unit_of_work(runtime.sessions) as session:
        assert runtime.identity(session).authenticate_token(token) is not None
    listing = runner.invoke(cli, ["token", "list"])
    assert token[:12] in listing.output and "active" in listing.output
    assert token not in listing.output
    revoked = runner.invoke(cli, ["token", "revoke", token[:12]])
    assert revoked.exit_code == 0
    with unit_of_work(runtime.sessions) as session:
        assert runtime.identity(session).authenticate_token(token) is None
    assert runner.invoke(cli, ["token", "create", "--email", "nobody@x.example", "--name",
                               "n"]).exit_code == 2
    assert runner.invoke(cli, ["token", "create", "--email", account.email, "--name", "n",
                               "--days", "9999"]).exit_code == 2


def test_init_refuses_a_master_key_that_does_not_open_the_keyring(environ, clock):
    from vault.app import create_app
    from vault.keys import KeyProviderError
    from vault.settings import Settings

    first = create_app(Settings.from_env(environ, testing=True), clock=clock)
    try:
        assert first.test_cli_runner().invoke(cli, ["init"]).exit_code == 0
    finally:
        first.extensions["vault"].engine.dispose()
    keyring = Settings.from_env(environ).keyring_file
    assert keyring.stat().st_mode & 0o777 == 0o600
    wrong = {**environ, "VAULT_MASTER_KEY": "insecure-some-other-master-key-0123456789"}
    # The CLI builds the same app: it refuses at start-up, before any command runs
    # (tests/test_startup_keys.py runs the command itself).
    with pytest.raises(KeyProviderError, match="VAULT_MASTER_KEY"):
        create_app(Settings.from_env(wrong, testing=True), clock=clock)


def test_operator_commands_are_audited(runner, runtime, make_team, make_user):
    from vault.audit.models import AuditEvent

    team = make_team("Team Golf")
    _upload(runtime, team, b"g")
    account = make_user()
    runner.invoke(cli, ["user", "add", "--email", "new.officer@test.example", "--name", "N",
                        "--role", "officer", "--password-stdin"],
                  input="insecure-a-long-passphrase\n")
    runner.invoke(cli, ["user", "deactivate", "--email", account.email])
    token = runner.invoke(cli, ["token", "create", "--email", team.applicant.email,
                                "--name", "ci"]).output.splitlines()[0]
    runner.invoke(cli, ["token", "revoke", token[:12]])
    runner.invoke(cli, ["keys", "rotate"])
    runner.invoke(cli, ["keys", "rewrap"])
    runner.invoke(cli, ["keys", "retire", "--below", "2"])
    runner.invoke(cli, ["shred", "--consortium", str(team.consortium_id), "--confirm",
                        "Team Golf"])
    with unit_of_work(runtime.sessions) as session:
        tags = [tag for tag, in session.execute(select(AuditEvent.tag).order_by(AuditEvent.seq))]
        leaves = session.scalars(select(AuditEvent.leaf)).all()
    # Each command's access decision (the operator policy) precedes what it did.
    assert [t for t in tags if t != "access:decided"] == [
        "user:created", "user:deactivated", "token:created", "token:revoked",
        "key:rotated", "key:rewrapped", "key:retired", "key:shredded"]
    assert tags[:2] == ["access:decided", "user:created"]
    assert tags.count("access:decided") >= 8
    assert all(b'"client":"cli"' in leaf for leaf in leaves)
    assert not any(token.encode() in leaf for leaf in leaves)  # only the token's prefix


def test_blobs_sweep_discards_only_old_abandoned_writes(runner, runtime):
    writer = runtime.blobs.writer()
    writer.write(b"ciphertext of an upload whose worker crashed")
    temporary = next((runtime.settings.data_dir / "blobs" / ".tmp").iterdir())
    result = runner.invoke(cli, ["blobs", "sweep"])
    assert result.exit_code == 0 and "Discarded 0" in result.output
    old = time.time() - 2 * 86400
    os.utime(temporary, (old, old))
    result = runner.invoke(cli, ["blobs", "sweep", "--older-than-hours", "24"])
    assert "Discarded 1" in result.output and not temporary.exists()
    writer.abort()
