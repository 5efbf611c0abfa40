"""The vault's settings: one frozen object, read once from the environment, failing closed.

Every setting is a ``VAULT_*`` environment variable. A malformed value stops start-up with a
``SettingsError`` that names the variable. In ``production`` mode every secret must be given;
in ``development`` mode missing secrets are generated once into ``<data dir>/secrets.json``
(mode 0600) and reused, so a local vault keeps its sessions across restarts.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

#: The secrets, one per purpose. Each must be at least ``MIN_SECRET_LENGTH`` characters.
SECRET_VARIABLES = {
    "secret_key": "VAULT_SECRET_KEY",  # signs the session cookie
    "csrf_key": "VAULT_CSRF_KEY",  # signs CSRF tokens
    "field_key": "VAULT_FIELD_KEY",  # encrypts confidential columns (TOTP seeds, partner lists)
    "lookup_key": "VAULT_LOOKUP_KEY",  # keys HMAC lookups (login throttling by e-mail)
    "master_key": "VAULT_MASTER_KEY",  # seals the keyring's consortium keys (keyring provider)
}
KEY_PROVIDERS = ("keyring", "pkcs11")
MIN_SECRET_LENGTH = 32
MODES = ("production", "development")
SECRETS_FILE = "secrets.json"
DEMO_MARKER = "demo-mode"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the vault reads from its environment, validated."""

    mode: str
    data_dir: Path
    #: Not in the repr: a PostgreSQL URL may carry a password.
    database_url: str = field(repr=False)
    secret_key: str = field(repr=False)
    csrf_key: str = field(repr=False)
    field_key: str = field(repr=False)
    lookup_key: str = field(repr=False)
    master_key: str = field(repr=False)
    programmes_dir: Path
    #: ``vault.cedarschema`` and the ``*.cedar`` access policies.
    policies_dir: Path
    #: ``file:///path`` or ``s3://bucket/prefix``.
    blob_url: str
    s3_endpoint: str | None = None
    key_provider: str = "keyring"
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    #: A lock file serialising HSM access across processes (SoftHSM2 needs it).
    pkcs11_lock: str | None = None
    #: The audit log's origin line; default ``vault.localhost/<instance id>``.
    log_origin: str | None = None
    #: The log's Ed25519 signing key (signed-note ``PRIVATE+KEY+…`` form); default: the file
    #: ``<data dir>/log-signing.key`` that ``vault init`` creates.
    log_signing_key: str | None = field(default=None, repr=False)
    #: A checkpoint is issued after this many events, or this many seconds, whichever first.
    checkpoint_every: int = 1000
    checkpoint_seconds: int = 3600
    #: Seconds between two runs of a worker's audit sequencer after its requests (events
    #: recorded in between wait, committed, for the next run or the next reader).
    audit_sequence_interval: float = 0.02
    #: Wall-clock (and CPU) seconds one sandboxed PDF analysis may take; a file that needs
    #: longer is "unreadable: timed out", kept like any other finding.
    analysis_seconds: int = 30
    #: How long the page of a pre-check waits (with no transaction open) for analyses it has
    #: just queued before it shows them as pending.
    precheck_wait: float = 2.0
    session_lifetime: timedelta = timedelta(hours=8)
    login_max_failures: int = 5
    login_lockout: timedelta = timedelta(minutes=15)
    #: The longest lifetime an API token may be given, in days (web, API and command line).
    token_max_days: int = 90
    trusted_proxies: int = 0
    force_https_cookies: bool = False
    testing: bool = False

    @property
    def demo(self) -> bool:
        """Whether the data directory was initialised with demo data (``vault init --demo``)."""
        return (self.data_dir / DEMO_MARKER).exists()

    @property
    def keyring_file(self) -> Path:
        """The keyring of the ``keyring`` key provider (mode 0600)."""
        return self.data_dir / "keyring.json"

    @property
    def log_key_file(self) -> Path:
        """The audit log's signing key, created by ``vault init`` (mode 0600)."""
        return self.data_dir / "log-signing.key"

    @property
    def instance_file(self) -> Path:
        """A random id for this vault, created by ``vault init``; names the default origin."""
        return self.data_dir / "instance-id"

    @property
    def published_checkpoints(self) -> Path:
        """Every checkpoint issued, appended outside the database (see ``vault.audit``)."""
        return self.data_dir / "checkpoints.log"

    @property
    def credentials_file(self) -> Path:
        """Where ``vault init --demo`` writes the demo logins (mode 0600)."""
        return self.data_dir / "demo-credentials.txt"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read and validate the settings; raises ``SettingsError`` naming the bad variable."""
        env = os.environ if environ is None else environ
        mode = env.get("VAULT_MODE", "production").strip()
        if mode not in MODES:
            raise SettingsError(f"VAULT_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        data_dir = Path(env.get("VAULT_DATA_DIR", "instance")).expanduser().resolve()
        database_url = env.get("VAULT_DATABASE_URL", "").strip() or (
            f"sqlite:///{data_dir / 'vault.db'}"
        )
        if "://" not in database_url:
            raise SettingsError("VAULT_DATABASE_URL must be a URL such as sqlite:///path or "
                                "postgresql+psycopg://user@host/db")
        default_policies = Path(__file__).resolve().parent.parent / "policies"
        default_programmes = default_policies / "programmes"
        values: dict[str, object] = {
            "mode": mode,
            "data_dir": data_dir,
            "database_url": _normalise_database_url(database_url),
            "programmes_dir": Path(env.get("VAULT_PROGRAMMES_DIR", default_programmes)).resolve(),
            "policies_dir": Path(env.get("VAULT_POLICIES_DIR", default_policies)).resolve(),
            "session_lifetime": timedelta(
                minutes=_int(env, "VAULT_SESSION_MINUTES", 480, minimum=5, maximum=24 * 60)),
            "login_max_failures": _int(env, "VAULT_LOGIN_MAX_FAILURES", 5, minimum=1, maximum=100),
            "login_lockout": timedelta(
                seconds=_int(env, "VAULT_LOGIN_LOCKOUT_SECONDS", 900, minimum=1, maximum=86400)),
            "token_max_days": _int(env, "VAULT_TOKEN_MAX_DAYS", 90, minimum=1, maximum=366),
            "trusted_proxies": _int(env, "VAULT_TRUSTED_PROXIES", 0, minimum=0, maximum=5),
            "force_https_cookies": _bool(env, "VAULT_SECURE_COOKIES", False),
            "blob_url": _blob_url(env, data_dir),
            "log_origin": _origin(env),
            "log_signing_key": env.get("VAULT_LOG_SIGNING_KEY", "").strip() or None,
            "checkpoint_every": _int(env, "VAULT_CHECKPOINT_EVERY", 1000, minimum=1,
                                     maximum=1_000_000),
            "checkpoint_seconds": _int(env, "VAULT_CHECKPOINT_SECONDS", 3600, minimum=1,
                                       maximum=7 * 86400),
            "audit_sequence_interval": _int(env, "VAULT_AUDIT_SEQUENCE_MS", 20, minimum=0,
                                            maximum=10_000) / 1000,
            "analysis_seconds": _int(env, "VAULT_ANALYSIS_SECONDS", 30, minimum=1,
                                     maximum=600),
            "precheck_wait": _int(env, "VAULT_PRECHECK_WAIT_MS", 2000, minimum=0,
                                  maximum=30_000) / 1000,
            "s3_endpoint": env.get("VAULT_S3_ENDPOINT", "").strip() or None,
            **_key_provider(env),
        }
        env = _with_master_key_file(env)
        values.update(_secrets(env, mode, data_dir))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (the only PostgreSQL driver installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _origin(env: Mapping[str, str]) -> str | None:
    origin = env.get("VAULT_LOG_ORIGIN", "").strip()
    if not origin:
        return None
    if any(c.isspace() or c == "+" for c in origin) or len(origin) > 200:
        raise SettingsError("VAULT_LOG_ORIGIN must be one line without spaces or '+', "
                            f"at most 200 characters, not {origin!r}")
    return origin


def _blob_url(env: Mapping[str, str], data_dir: Path) -> str:
    url = env.get("VAULT_BLOB_URL", "").strip() or (data_dir / "blobs").as_uri()
    if url.startswith("file:///") or (url.startswith("s3://") and len(url) > len("s3://")):
        return url
    raise SettingsError(
        f"VAULT_BLOB_URL must be file:///absolute/path or s3://bucket[/prefix], not {url!r}"
    )


def _key_provider(env: Mapping[str, str]) -> dict[str, object]:
    provider = env.get("VAULT_KEY_PROVIDER", "keyring").strip() or "keyring"
    if provider not in KEY_PROVIDERS:
        raise SettingsError(
            f"VAULT_KEY_PROVIDER must be one of {', '.join(KEY_PROVIDERS)}, not {provider!r}"
        )
    values: dict[str, object] = {"key_provider": provider}
    if provider == "pkcs11":
        for name, attribute in (("VAULT_PKCS11_MODULE", "pkcs11_module"),
                                ("VAULT_PKCS11_TOKEN", "pkcs11_token"),
                                ("VAULT_PKCS11_PIN", "pkcs11_pin")):
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is required when VAULT_KEY_PROVIDER=pkcs11")
            values[attribute] = value
    values["pkcs11_lock"] = env.get("VAULT_PKCS11_LOCK", "").strip() or None
    return values


def _with_master_key_file(env: Mapping[str, str]) -> Mapping[str, str]:
    """``VAULT_MASTER_KEY_FILE`` (a 0600 file) is an alternative to ``VAULT_MASTER_KEY``."""
    path = env.get("VAULT_MASTER_KEY_FILE", "").strip()
    if not path or env.get("VAULT_MASTER_KEY"):
        return env
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise SettingsError(f"VAULT_MASTER_KEY_FILE {path} must not be readable by others "
                                "(chmod 600)")
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as error:
        raise SettingsError(f"VAULT_MASTER_KEY_FILE {path} is unreadable: {error}") from None
    return {**env, "VAULT_MASTER_KEY": value}


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _secrets(env: Mapping[str, str], mode: str, data_dir: Path) -> dict[str, str]:
    """Secrets from the environment; in development mode missing ones come from a 0600 file."""
    stored: dict[str, str] = {}
    missing = [var for var in SECRET_VARIABLES.values() if not env.get(var)]
    if missing and mode == "production":
        raise SettingsError(
            f"{missing[0]} is not set; production mode needs every secret "
            f"({', '.join(SECRET_VARIABLES.values())}). "
            "For a local vault set VAULT_MODE=development."
        )
    if missing:
        stored = _development_secrets(data_dir)
    result = {}
    for attribute, var in SECRET_VARIABLES.items():
        value = env.get(var) or stored[var]
        if len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(f"{var} must be at least {MIN_SECRET_LENGTH} characters long")
        result[attribute] = value
    return result


def _development_secrets(data_dir: Path) -> dict[str, str]:
    """Load the development secrets file, creating it once (mode 0600) when it is missing."""
    path = data_dir / SECRETS_FILE
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with path.open(encoding="utf-8") as handle:
            stored = json.load(handle)
    except FileNotFoundError:
        stored = {}
    except (OSError, ValueError) as error:
        raise SettingsError(
            f"{path} is unreadable ({error}); remove it to generate new secrets"
        ) from None
    changed = False
    for var in SECRET_VARIABLES.values():
        if not isinstance(stored.get(var), str):
            stored[var] = secrets.token_urlsafe(48)
            changed = True
    if changed:
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    return stored
