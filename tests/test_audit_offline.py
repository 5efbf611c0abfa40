"""An auditor verifies a bundle on their own machine with the bundle and the verifier key
only: no settings, no data directory, no database, nothing written, and the verifier
importable without the web framework or the database layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_audit_bundle import rewrite
from tests.test_audit_log import _invoke, grow
from vault.audit.checkpoints import create_log_identity

#: The two ways to run the verifier: the small module entry point and the operators' command.
ENTRY_POINTS = {
    "module": [sys.executable, "-m", "vault.audit.verify"],
    "vault": [str(Path(sys.executable).with_name("vault")), "audit", "verify"],
}


@pytest.fixture
def handed_over(app, runtime, settings, tmp_path) -> tuple[Path, Path]:
    """A bundle and the verifier key as the auditor receives them, in a folder of their own
    (away from the vault's data directory)."""
    runtime.log_identity = create_log_identity(settings)
    grow(runtime, 5)
    folder = tmp_path / "received"
    folder.mkdir()
    bundle = folder / "bundle.zip"
    result = _invoke(app, "audit", "export", "--out", str(bundle))
    assert result.exit_code == 0, result.output
    vkey = folder / "log.vkey"
    vkey.write_text(runtime.log_identity.vkey + "\n", "utf-8")
    return bundle, vkey


def _offline(command: list[str], workdir: Path, extra_env: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``workdir`` with no ``VAULT_*`` variable but ``extra_env``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VAULT_")}
    env.update(extra_env)
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _tampered(bundle: Path) -> Path:
    """The bundle with one entry's value edited and the manifest recomputed."""
    with zipfile.ZipFile(bundle) as archive:
        lines = archive.read("entries.jsonl").split(b"\n")
    lines[2] = lines[2].replace(b'"n":"2"', b'"n":"7"')
    assert b'"n":"7"' in lines[2]
    return rewrite(bundle, bundle.with_name("tampered.zip"), {"entries.jsonl": b"\n".join(lines)})


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("extra_env", [{}, {"VAULT_MODE": "development"}],
                         ids=["no-settings", "development-mode"])
def test_the_verifier_needs_only_the_bundle_and_key_and_writes_nothing(
        handed_over, tmp_path, entry_point, extra_env):
    bundle, vkey = handed_over
    tampered = _tampered(bundle)
    empty = tmp_path / "laptop"
    empty.mkdir()
    command = ENTRY_POINTS[entry_point]

    good = _offline([*command, str(bundle), "--vkey", str(vkey)], empty, extra_env)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("OK: ")
    assert "full bundle" in good.stdout

    bad = _offline([*command, str(tampered), "--vkey", str(vkey)], empty, extra_env)
    assert bad.returncode == 2, bad.stdout
    assert "verification FAILED: entries " in bad.stderr
    assert "does not match the signed checkpoint" in bad.stderr
    assert "OK" not in bad.stdout

    assert list(empty.iterdir()) == []


def test_the_module_entry_point_takes_the_key_inline_and_a_previous_checkpoint(
        handed_over, tmp_path):
    bundle, vkey = handed_over
    empty = tmp_path / "laptop"
    empty.mkdir()
    with zipfile.ZipFile(bundle) as archive:
        first = archive.read("checkpoints").decode().splitlines()[0]
    previous = tmp_path / "first.checkpoint"
    previous.write_text(json.loads(first), "utf-8")
    inline = vkey.read_text("utf-8").strip()
    result = _offline([*ENTRY_POINTS["module"], str(bundle), "--vkey", inline,
                       "--previous", str(previous)], empty, {})
    assert result.returncode == 0, result.stderr
    assert "grew from the previous checkpoint of size 1" in result.stdout
    missing = _offline([*ENTRY_POINTS["module"], str(tmp_path / "nothing.zip"), "--vkey",
                        inline], empty, {})
    assert missing.returncode == 2 and "not a readable bundle" in missing.stderr
    assert list(empty.iterdir()) == []


def test_importing_the_verifier_loads_neither_flask_nor_sqlalchemy(tmp_path):
    probe = ("import sys\n"
             "import vault.audit.verify\n"
             "print(sorted(m for m in sys.modules\n"
             "             if m.split('.')[0] in ('flask', 'sqlalchemy', 'werkzeug')))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
