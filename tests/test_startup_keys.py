"""The app, the CLI and every web worker prove at start-up that the key provider opens the keys
the database depends on, and refuse to start with a message naming the problem: a wrong master
key, a keyring that lost keys, an HSM token without the key handles. (Before, only ``vault init``
noticed; the web app started and every download answered 500 with a false integrity alarm.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass
from sqlalchemy import func, select

from tests.conftest import pdf_bytes, team_factory, user_factory
from tests.softhsm import softhsm_token
from vault.app import create_app
from vault.audit.models import AuditEvent
from vault.db import unit_of_work
from vault.documents.models import Submission
from vault.keys import KeyProviderError
from vault.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WRONG_MASTER = "insecure-some-other-master-key-0123456789"


def _upload(app) -> None:
    """One applicant uploads one document: the database now holds a wrapped data key."""
    runtime = app.extensions["vault"]
    team = team_factory(runtime, user_factory(runtime, runtime.clock))()
    with unit_of_work(runtime.sessions) as session:
        runtime.documents(session).upload(
            submission=session.get(Submission, team.submission_id),
            kind=runtime.definitions["sovereign-ai-2025"].document_kind("proposal"),
            slot="", filename="p.pdf", declared_type="application/pdf",
            body=[pdf_bytes(20_000, b"startup")], uploader_id=team.applicant.id)


def _events(app) -> int:
    with unit_of_work(app.extensions["vault"].sessions) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _refused(environ: dict[str, str], clock) -> str:
    """The message with which the app refuses to start on ``environ``."""
    with pytest.raises(KeyProviderError) as refused:
        create_app(Settings.from_env(environ, testing=True), clock=clock)
    return str(refused.value)


def test_the_app_refuses_a_master_key_that_does_not_open_the_keyring(app, environ, clock):
    _upload(app)
    app.extensions["vault"].keys.check()  # what `vault init` does: the keyring gets its canary
    before = _events(app)

    message = _refused({**environ, "VAULT_MASTER_KEY": WRONG_MASTER}, clock)

    assert "VAULT_MASTER_KEY" in message
    assert _events(app) == before  # no false integrity alarm, nothing recorded


def test_the_app_refuses_a_master_key_that_does_not_open_the_keys_even_without_a_canary(
        app, environ, clock):
    # A keyring written before canaries existed (or by uploads alone): the data keys tell.
    _upload(app)
    message = _refused({**environ, "VAULT_MASTER_KEY": WRONG_MASTER}, clock)
    assert "does not open" in message and "consortium-" in message


def test_the_app_refuses_a_keyring_that_lost_the_keys_the_database_needs(
        app, settings, environ, clock):
    _upload(app)
    settings.keyring_file.unlink()

    message = _refused(environ, clock)

    assert "consortium-" in message and "data key" in message
    assert not settings.keyring_file.exists()  # start-up never writes a new, empty keyring


def test_the_app_starts_with_the_right_key_and_after_a_shred(app, environ, clock):
    _upload(app)
    runtime = app.extensions["vault"]
    with unit_of_work(runtime.sessions) as session:
        from vault.keys.service import KeyService

        consortium = session.scalars(select(Submission)).one().consortium
        KeyService(session, keys=runtime.keys, clock=clock).shred(consortium.id)
    again = create_app(Settings.from_env(environ, testing=True), clock=clock)
    again.extensions["vault"].engine.dispose()


def test_an_app_on_an_empty_data_directory_starts_and_writes_nothing(tmp_path, environ, clock):
    data_dir = tmp_path / "fresh"
    fresh = {**environ, "VAULT_DATA_DIR": str(data_dir),
             "VAULT_DATABASE_URL": f"sqlite:///{data_dir}/vault.db"}
    app = create_app(Settings.from_env(fresh, testing=True), clock=clock)
    app.extensions["vault"].engine.dispose()
    assert not (data_dir / "vault.db").exists() and not (data_dir / "keyring.json").exists()


def _process_env(environ: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    return {**keep, **environ}


def test_web_workers_and_the_cli_refuse_to_start_with_a_wrong_master_key(app, environ):
    _upload(app)
    app.extensions["vault"].keys.check()
    wrong = _process_env({**environ, "VAULT_MASTER_KEY": WRONG_MASTER})

    worker = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=wrong,
                            capture_output=True, text=True, timeout=120, check=False)
    assert worker.returncode != 0
    assert "VAULT_MASTER_KEY" in worker.stderr

    command = subprocess.run([str(Path(sys.executable).with_name("vault")), "keys", "status"],
                             cwd=ROOT, env=wrong, capture_output=True, text=True, timeout=120,
                             check=False)
    assert command.returncode == 2
    assert command.stderr.startswith("error: ") and "VAULT_MASTER_KEY" in command.stderr
    assert "Traceback" not in command.stderr


def test_the_app_refuses_an_hsm_token_without_the_key_handles(environ, clock, tmp_path):
    with softhsm_token() as token:
        hsm = {**environ, "VAULT_KEY_PROVIDER": "pkcs11", "VAULT_PKCS11_MODULE": token.module_path,
               "VAULT_PKCS11_TOKEN": token.label, "VAULT_PKCS11_PIN": token.pin,
               "VAULT_PKCS11_LOCK": str(tmp_path / "hsm.lock")}
        app = create_app(Settings.from_env(hsm, testing=True), clock=clock)
        try:
            _upload(app)
        finally:
            app.extensions["vault"].engine.dispose()
        # The token now answers the log-in but lacks the keys: as if another token (or a
        # re-initialised one) had been configured.
        library = pkcs11.lib(token.module_path)
        with library.get_token(token_label=token.label).open(
                rw=True, user_pin=token.pin) as session:
            for key in list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})):
                key.destroy()

        message = _refused(hsm, clock)

        assert "pkcs11" in message and "consortium-" in message
