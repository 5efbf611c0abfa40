"""Settings: read once from the environment, frozen, failing closed with the variable named."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRETS
from vault.settings import SECRET_VARIABLES, SECRETS_FILE, Settings, SettingsError

SECRET_NAMES = list(SECRET_VARIABLES.values())


def _production(data_dir: Path, **extra: str) -> dict[str, str]:
    """A complete production environment with test secrets, plus ``extra`` variables."""
    return {"VAULT_MODE": "production", "VAULT_DATA_DIR": str(data_dir), **TEST_SECRETS, **extra}


def _development(data_dir: Path, **extra: str) -> dict[str, str]:
    """A development environment without secrets, plus ``extra`` variables."""
    return {"VAULT_MODE": "development", "VAULT_DATA_DIR": str(data_dir), **extra}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- secrets in production ------------------------------------------------------------------


@pytest.mark.parametrize("variable", SECRET_NAMES)
def test_production_refuses_each_missing_secret_naming_it(tmp_path, variable):
    environ = _production(tmp_path)
    del environ[variable]
    with pytest.raises(SettingsError, match=rf"^{variable} is not set"):
        Settings.from_env(environ)


@pytest.mark.parametrize("variable", SECRET_NAMES)
def test_production_treats_an_empty_secret_as_missing(tmp_path, variable):
    with pytest.raises(SettingsError, match=rf"^{variable} is not set"):
        Settings.from_env(_production(tmp_path, **{variable: ""}))


@pytest.mark.parametrize("variable", SECRET_NAMES)
def test_too_short_secret_is_refused_naming_it(tmp_path, variable):
    short = "insecure-" + "x" * 22  # 31 characters, one below the minimum
    with pytest.raises(SettingsError, match=rf"^{variable} must be at least 32 characters"):
        Settings.from_env(_production(tmp_path, **{variable: short}))


def test_mode_defaults_to_production_so_missing_secrets_fail(tmp_path):
    with pytest.raises(SettingsError, match="VAULT_SECRET_KEY is not set"):
        Settings.from_env({"VAULT_DATA_DIR": str(tmp_path)})


def test_production_never_writes_a_secrets_file(tmp_path):
    with pytest.raises(SettingsError):
        Settings.from_env({"VAULT_MODE": "production", "VAULT_DATA_DIR": str(tmp_path)})
    Settings.from_env(_production(tmp_path))
    assert not (tmp_path / SECRETS_FILE).exists()


def test_each_secret_is_read_from_its_own_variable(tmp_path):
    settings = Settings.from_env(_production(tmp_path))
    for attribute, variable in SECRET_VARIABLES.items():
        assert getattr(settings, attribute) == TEST_SECRETS[variable]


# -- other values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VAULT_SESSION_MINUTES", "eight hours"),
        ("VAULT_SESSION_MINUTES", "4"),
        ("VAULT_SESSION_MINUTES", "1441"),
        ("VAULT_LOGIN_MAX_FAILURES", "many"),
        ("VAULT_LOGIN_MAX_FAILURES", "0"),
        ("VAULT_LOGIN_MAX_FAILURES", "101"),
        ("VAULT_LOGIN_LOCKOUT_SECONDS", "0"),
        ("VAULT_TRUSTED_PROXIES", "1.5"),
        ("VAULT_TRUSTED_PROXIES", "-1"),
        ("VAULT_TRUSTED_PROXIES", "6"),
        ("VAULT_SECURE_COOKIES", "maybe"),
        ("VAULT_SECURE_COOKIES", "2"),
        ("VAULT_TOKEN_MAX_DAYS", "ninety"),
        ("VAULT_TOKEN_MAX_DAYS", "0"),
        ("VAULT_TOKEN_MAX_DAYS", "367"),
    ],
)
def test_malformed_or_out_of_range_value_is_refused_naming_it(tmp_path, variable, value):
    with pytest.raises(SettingsError, match=rf"^{variable} must be "):
        Settings.from_env(_production(tmp_path, **{variable: value}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("yes", True), (" ON ", True), ("true", True),
     ("0", False), ("no", False), ("Off", False), ("FALSE", False), ("", False)],
)
def test_secure_cookies_accepts_the_usual_boolean_words(tmp_path, value, expected):
    settings = Settings.from_env(_production(tmp_path, VAULT_SECURE_COOKIES=value))
    assert settings.force_https_cookies is expected


def test_integer_settings_within_range_are_used(tmp_path):
    settings = Settings.from_env(_production(
        tmp_path, VAULT_SESSION_MINUTES="60", VAULT_LOGIN_MAX_FAILURES="3",
        VAULT_LOGIN_LOCKOUT_SECONDS="120", VAULT_TRUSTED_PROXIES="1",
        VAULT_TOKEN_MAX_DAYS="30",
    ))
    assert settings.token_max_days == 30
    assert settings.session_lifetime == timedelta(minutes=60)
    assert settings.login_max_failures == 3
    assert settings.login_lockout == timedelta(seconds=120)
    assert settings.trusted_proxies == 1


def test_defaults_apply_when_optional_variables_are_absent(tmp_path):
    settings = Settings.from_env(_production(tmp_path))
    assert settings.mode == "production"
    assert settings.session_lifetime == timedelta(hours=8)
    assert settings.login_max_failures == 5
    assert settings.login_lockout == timedelta(minutes=15)
    assert settings.trusted_proxies == 0
    assert settings.force_https_cookies is False
    assert settings.token_max_days == 90
    assert settings.testing is False


@pytest.mark.parametrize("mode", ["staging", "dev", ""])
def test_unknown_mode_is_refused_naming_the_variable(tmp_path, mode):
    with pytest.raises(SettingsError, match=r"^VAULT_MODE must be one of"):
        Settings.from_env(_production(tmp_path, VAULT_MODE=mode))


def test_overrides_replace_values_read_from_the_environment(tmp_path):
    settings = Settings.from_env(_production(tmp_path), testing=True, trusted_proxies=2)
    assert settings.testing is True
    assert settings.trusted_proxies == 2


# -- database URL ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/var/lib/vault/vault.db", "vault.db", "localhost:5432/vault"])
def test_database_url_without_scheme_is_refused_naming_the_variable(tmp_path, url):
    with pytest.raises(SettingsError, match=r"^VAULT_DATABASE_URL must be a URL"):
        Settings.from_env(_production(tmp_path, VAULT_DATABASE_URL=url))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://vault@db.internal/vault", "postgresql+psycopg://vault@db.internal/vault"),
        ("postgres://vault@db.internal/vault", "postgresql+psycopg://vault@db.internal/vault"),
        ("postgresql+psycopg://vault@db.internal/vault",
         "postgresql+psycopg://vault@db.internal/vault"),
        ("sqlite:////srv/vault/vault.db", "sqlite:////srv/vault/vault.db"),
    ],
)
def test_postgresql_urls_are_normalised_to_psycopg(tmp_path, given, expected):
    settings = Settings.from_env(_production(tmp_path, VAULT_DATABASE_URL=given))
    assert settings.database_url == expected


def test_default_database_is_sqlite_inside_the_data_dir(tmp_path):
    settings = Settings.from_env(_production(tmp_path / "instance"))
    assert settings.data_dir == (tmp_path / "instance").resolve()
    assert settings.database_url == f"sqlite:///{settings.data_dir / 'vault.db'}"


def test_blank_database_url_falls_back_to_the_default(tmp_path):
    settings = Settings.from_env(_production(tmp_path, VAULT_DATABASE_URL="  "))
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'vault.db'}"


# -- development mode -----------------------------------------------------------------------


def test_development_creates_a_private_secrets_file_once_and_reuses_it(tmp_path):
    data_dir = tmp_path / "instance"
    first = Settings.from_env(_development(data_dir))
    secrets_file = data_dir / SECRETS_FILE
    assert _mode(secrets_file) == 0o600
    assert _mode(data_dir) == 0o700
    content = secrets_file.read_bytes()

    second = Settings.from_env(_development(data_dir))

    assert secrets_file.read_bytes() == content
    for attribute in SECRET_VARIABLES:
        assert getattr(second, attribute) == getattr(first, attribute)
    assert set(json.loads(content)) == set(SECRET_NAMES)
    assert not list(data_dir.glob("*.tmp"))


def test_development_generates_a_distinct_long_secret_per_purpose(tmp_path):
    settings = Settings.from_env(_development(tmp_path))
    values = [getattr(settings, attribute) for attribute in SECRET_VARIABLES]
    assert len(set(values)) == len(values)
    assert all(len(value) >= 32 for value in values)


def test_development_honours_secrets_given_in_the_environment(tmp_path):
    given = TEST_SECRETS["VAULT_SECRET_KEY"]
    settings = Settings.from_env(_development(tmp_path, VAULT_SECRET_KEY=given))
    stored = json.loads((tmp_path / SECRETS_FILE).read_text(encoding="utf-8"))
    assert settings.secret_key == given
    assert settings.csrf_key == stored["VAULT_CSRF_KEY"]


def test_development_with_every_secret_given_writes_no_file(tmp_path):
    settings = Settings.from_env(_development(tmp_path, **TEST_SECRETS))
    assert settings.field_key == TEST_SECRETS["VAULT_FIELD_KEY"]
    assert not (tmp_path / SECRETS_FILE).exists()


def test_development_still_refuses_a_short_secret_from_the_environment(tmp_path):
    with pytest.raises(SettingsError, match=r"^VAULT_LOOKUP_KEY must be at least"):
        Settings.from_env(_development(tmp_path, VAULT_LOOKUP_KEY="insecure-short"))


def test_development_refuses_an_unreadable_secrets_file_naming_it(tmp_path):
    (tmp_path / SECRETS_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(SECRETS_FILE)):
        Settings.from_env(_development(tmp_path))


# -- the object itself ----------------------------------------------------------------------


def test_settings_are_frozen(tmp_path):
    settings = Settings.from_env(_production(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.secret_key = "insecure-replaced-secret-0123456789abcdef"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mode = "development"  # type: ignore[misc]


def test_repr_does_not_contain_secret_values(tmp_path):
    production = Settings.from_env(_production(tmp_path / "p"))
    development = Settings.from_env(_development(tmp_path / "d"))
    for settings in (production, development):
        text = repr(settings) + str(settings)
        for attribute in SECRET_VARIABLES:
            assert getattr(settings, attribute) not in text


def test_repr_does_not_contain_the_database_password(tmp_path):
    url = "postgresql://vault:insecure-db-password@db.internal/vault"
    settings = Settings.from_env(_production(tmp_path, VAULT_DATABASE_URL=url))
    assert "insecure-db-password" not in repr(settings)


# -- the console script ---------------------------------------------------------------------


def _run_vault(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the installed ``vault`` script with exactly ``environ`` (plus PATH)."""
    script = Path(sys.executable).with_name("vault")
    return subprocess.run(
        [str(script), *args], env={"PATH": os.environ["PATH"], **environ},
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_cli_without_secrets_in_production_exits_2_naming_the_variable(tmp_path):
    result = _run_vault(
        "user", "list", environ={"VAULT_MODE": "production", "VAULT_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: VAULT_SECRET_KEY is not set")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_help_without_secrets_prints_no_traceback(tmp_path):
    result = _run_vault(
        "--help", environ={"VAULT_MODE": "production", "VAULT_DATA_DIR": str(tmp_path)}
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"VAULT_KEY_PROVIDER": "vault"}, "VAULT_KEY_PROVIDER"),
        ({"VAULT_KEY_PROVIDER": "pkcs11"}, "VAULT_PKCS11_MODULE"),
        ({"VAULT_KEY_PROVIDER": "pkcs11", "VAULT_PKCS11_MODULE": "/x.so"}, "VAULT_PKCS11_TOKEN"),
        ({"VAULT_KEY_PROVIDER": "pkcs11", "VAULT_PKCS11_MODULE": "/x.so",
          "VAULT_PKCS11_TOKEN": "t"}, "VAULT_PKCS11_PIN"),
        ({"VAULT_BLOB_URL": "blobs/relative"}, "VAULT_BLOB_URL"),
        ({"VAULT_BLOB_URL": "ftp://host/x"}, "VAULT_BLOB_URL"),
        ({"VAULT_BLOB_URL": "s3://"}, "VAULT_BLOB_URL"),
    ],
)
def test_storage_and_key_settings_are_validated(tmp_path, overrides, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(_production(tmp_path, **overrides))


def test_master_key_may_come_from_a_private_file(tmp_path):
    path = tmp_path / "master.key"
    path.write_text("insecure-master-key-from-a-file-0123456789\n")
    environ = _production(tmp_path)
    del environ["VAULT_MASTER_KEY"]
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="VAULT_MASTER_KEY_FILE"):
        Settings.from_env({**environ, "VAULT_MASTER_KEY_FILE": str(path)})
    path.chmod(0o600)
    settings = Settings.from_env({**environ, "VAULT_MASTER_KEY_FILE": str(path)})
    assert settings.master_key == "insecure-master-key-from-a-file-0123456789"


def test_default_blob_store_is_a_directory_in_the_data_dir(tmp_path):
    settings = Settings.from_env(_production(tmp_path))
    assert settings.blob_url == (tmp_path.resolve() / "blobs").as_uri()
