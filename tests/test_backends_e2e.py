"""The whole vault on its scale-out parts: documents uploaded and downloaded over the API with
blobs in S3 (a moto server over HTTP) and keys in an HSM (a SoftHSM2 token over PKCS#11)."""

from __future__ import annotations

import hashlib
import uuid

import boto3
import pytest
from botocore.config import Config
from flask import Flask

from tests.conftest import EnglishClient, pdf_bytes, team_factory, user_factory
from tests.softhsm import softhsm_token
from vault.app import create_app
from vault.db import unit_of_work
from vault.identity.models import User
from vault.settings import Settings


def _round_trip(app: Flask, make_team) -> tuple[bytes, dict]:
    team = make_team()
    runtime = app.extensions["vault"]
    with unit_of_work(runtime.sessions) as session:
        token, _ = runtime.identity(session).create_token(
            session.get(User, team.applicant.id), "e2e", 1)
    client = app.test_client()
    body = pdf_bytes(6 * 1024 * 1024 + 123, b"scale-out")
    receipt = client.put(
        f"/api/v1/submissions/{team.submission_id}/documents/proposal", data=body,
        headers={"Authorization": f"Bearer {token}",
                 "Content-Disposition": "attachment; filename=p.pdf"},
        content_type="application/pdf")
    assert receipt.status_code == 201, receipt.json
    download = client.get(receipt.json["content_url"],
                          headers={"Authorization": f"Bearer {token}"})
    assert download.status_code == 200 and download.data == body
    assert receipt.json["sha256"] == hashlib.sha256(body).hexdigest()
    return body, receipt.json


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    name = f"vault-e2e-{uuid.uuid4().hex[:12]}"
    _s3(s3_endpoint).create_bucket(Bucket=name)
    return name


def _s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def test_documents_live_in_s3_as_ciphertext(environ, clock, s3_endpoint, s3_bucket, tmp_path):
    settings = Settings.from_env({**environ, "VAULT_BLOB_URL": f"s3://{s3_bucket}/vault-blobs",
                                  "VAULT_S3_ENDPOINT": s3_endpoint}, testing=True)
    app = create_app(settings, clock=clock)
    app.test_client_class = EnglishClient
    try:
        body, _receipt = _round_trip(app, _team_factory(app))
        objects = _s3(s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]
        assert len(objects) == 1 and objects[0]["Key"].startswith("vault-blobs/")
        stored = _s3(s3_endpoint).get_object(Bucket=s3_bucket, Key=objects[0]["Key"])["Body"]
        ciphertext = stored.read()
        assert ciphertext.startswith(b"VLTB\x01") and b"scale-out" not in ciphertext
        assert len(ciphertext) > len(body)
    finally:
        app.extensions["vault"].engine.dispose()


def test_keys_live_in_the_hsm(environ, clock, tmp_path):
    with softhsm_token() as (module, label, pin):
        settings = Settings.from_env({
            **environ, "VAULT_KEY_PROVIDER": "pkcs11", "VAULT_PKCS11_MODULE": module,
            "VAULT_PKCS11_TOKEN": label, "VAULT_PKCS11_PIN": pin,
            "VAULT_PKCS11_LOCK": str(tmp_path / "hsm.lock")}, testing=True)
        app = create_app(settings, clock=clock)
        try:
            runtime = app.extensions["vault"]
            assert runtime.keys.name == "pkcs11"
            runtime.keys.check()
            _round_trip(app, _team_factory(app))
            assert not settings.keyring_file.exists()  # nothing went to the keyring
            assert any(key.startswith("consortium-") for key in runtime.keys.key_ids())
        finally:
            app.extensions["vault"].engine.dispose()


def _team_factory(app: Flask):
    """The conftest team factory, bound to an app the test built itself."""
    runtime = app.extensions["vault"]
    return team_factory(runtime, user_factory(runtime, runtime.clock))
