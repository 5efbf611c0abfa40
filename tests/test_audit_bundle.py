"""Audit bundles: ``vault audit export`` writes a zip that ``vault audit verify`` checks offline
(entries, signed checkpoints, consistency proofs, manifest), and every kind of damage to it is
refused with a message that names what is wrong."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.test_audit_log import forged_checkpoint, grow, publish_checkpoint
from vault.audit import merkle
from vault.audit.checkpoints import LogIdentity, create_log_identity, published
from vault.audit.models import AuditEvent
from vault.audit.service import AuditLog, Tag
from vault.audit.verify import CSV_COLUMNS, VerificationFailed, verify_bundle
from vault.cli import cli
from vault.crypto import signed_note
from vault.db import unit_of_work
from vault.runtime import Runtime

#: Events before the export; the export itself records one more.
EVENTS = 12
#: An export adds two events before it reads the log: the operator's access decision and the
#: export itself.
EXPORTED = EVENTS + 2


@dataclass
class Exported:
    """A bundle exported from a test vault, and what an auditor needs to check it."""

    app: object
    runtime: Runtime
    identity: LogIdentity
    path: Path
    vkey: str
    workdir: Path


def _invoke(app, *args: str):
    """Run ``vault <args>`` against the test app."""
    return app.test_cli_runner().invoke(cli, [str(arg) for arg in args])


def verify(exported: Exported, bundle: Path | None = None, *extra: object):
    """``vault audit verify BUNDLE --vkey <vkey> [extra]``."""
    return _invoke(exported.app, "audit", "verify", bundle or exported.path, "--vkey",
                   exported.vkey, *extra)


def export(exported: Exported, name: str, *extra: object):
    """``vault audit export --out <workdir>/<name> [extra]``."""
    out = exported.workdir / name
    return _invoke(exported.app, "audit", "export", "--out", out, *extra), out


def leaves(runtime: Runtime) -> list[bytes]:
    """Every leaf in seq order."""
    with unit_of_work(runtime.sessions) as session:
        return list(session.scalars(select(AuditEvent.leaf).order_by(AuditEvent.seq)))


def members(path: Path) -> dict[str, bytes]:
    """Every file in a bundle."""
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def rewrite(source: Path, target: Path, changes: dict[str, bytes | None], *,
            manifest: bool = True) -> Path:
    """A copy of a bundle with some files replaced (``None`` removes one); with ``manifest``
    the MANIFEST is recomputed as a careful forger would."""
    files = members(source)
    for name, data in changes.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    if manifest:
        files["MANIFEST.sha256"] = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {name}\n"
            for name, data in sorted(files.items()) if name != "MANIFEST.sha256").encode()
    with zipfile.ZipFile(target, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return target


def note_file(directory: Path, name: str, note: str) -> Path:
    """A checkpoint saved to a file, as an auditor keeps it."""
    path = directory / name
    path.write_text(note, "utf-8")
    return path


def forked_note(exported: Exported, size: int) -> Path:
    """A checkpoint of a forked log: the real key signed another root at ``size``."""
    return note_file(exported.workdir, f"forked-{size}",
                     forged_checkpoint(exported.identity, size, b"\x13" * 32))


@pytest.fixture
def exported(app, runtime, settings, tmp_path) -> Exported:
    """A log of ``EVENTS`` events with a published checkpoint after each, exported."""
    identity = create_log_identity(settings)
    runtime.log_identity = identity
    grow(runtime, EVENTS)
    workdir = tmp_path / "auditor"
    workdir.mkdir()
    result = _invoke(app, "audit", "export", "--out", workdir / "bundle.zip")
    assert result.exit_code == 0, result.output
    assert f"Exported {EXPORTED} events to" in result.output
    vkey = _invoke(app, "audit", "vkey").output.strip()
    return Exported(app, runtime, identity, workdir / "bundle.zip", vkey, workdir)


# -- export and verify --------------------------------------------------------------------------


def test_an_exported_bundle_verifies_offline(exported):
    result = verify(exported)
    assert result.exit_code == 0, result.output
    with unit_of_work(exported.runtime.sessions) as session:
        root = AuditLog(session, clock=exported.runtime.clock).root(EXPORTED)
    assert result.output == (
        f"OK: {EXPORTED} entries, root {root.hex()}, {EVENTS + 1} checkpoints\n"
        f"full bundle: the log is complete up to the signed checkpoint of size {EXPORTED}: "
        "no entry is missing, altered, reordered or inserted\n")
    key_file = note_file(exported.workdir, "log.vkey", exported.vkey + "\n")
    by_file = _invoke(exported.app, "audit", "verify", exported.path, "--vkey", key_file)
    assert by_file.exit_code == 0 and by_file.output.startswith("OK:")


def test_the_export_is_itself_recorded_and_its_checkpoint_published(exported, settings):
    *_, last = leaves(exported.runtime)
    event = json.loads(last)
    assert event["tag"] == Tag.AUDIT_EXPORTED.value and event["seq"] == EXPORTED - 1
    assert event["target"] == {"file": "bundle.zip"} and event["request"]["client"] == "cli"
    notes = published(settings.published_checkpoints)
    assert len(notes) == EVENTS + 1
    assert notes[-1] == members(exported.path)["checkpoint"].decode()


def test_the_bundle_holds_the_exact_leaves_checkpoints_csv_and_manifest(exported):
    files = members(exported.path)
    assert set(files) == {"entries.jsonl", "checkpoint", "checkpoints", "entries.csv",
                          "MANIFEST.sha256"}
    stored = leaves(exported.runtime)
    lines = files["entries.jsonl"].split(b"\n")
    assert lines.pop() == b""  # every line, the last too, ends with a newline
    assert lines == stored and len(lines) == EXPORTED
    for index, line in enumerate(lines):
        assert line == stored[index]

    final = signed_note.verify_checkpoint(files["checkpoint"].decode(), exported.vkey,
                                          expected_origin=exported.identity.origin)
    assert final.size == EXPORTED
    assert final.root == merkle.root_from_leaf_hashes(merkle.leaf_hash(x) for x in stored)[1]
    history = [json.loads(line) for line in files["checkpoints"].decode().splitlines()]
    sizes = [signed_note.verify_checkpoint(note, exported.vkey).size for note in history]
    assert sizes == list(range(1, EVENTS + 1))

    table = list(csv.reader(io.StringIO(files["entries.csv"].decode())))
    assert table[0] == list(CSV_COLUMNS)
    assert [row[0] for row in table[1:]] == [str(i) for i in range(EXPORTED)]
    events = [json.loads(leaf) for leaf in stored]
    assert [row[2] for row in table[1:]] == [e["tag"] for e in events]
    assert [row[1] for row in table[1:]] == [e["time"] for e in events]

    manifest = files["MANIFEST.sha256"].decode().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in manifest)
    assert set(listed) == set(files) - {"MANIFEST.sha256"}
    for name, digest in listed.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    assert manifest == sorted(manifest, key=lambda line: line.split("  ", 1)[1])


def test_verify_bundle_reports_size_root_and_checkpoints(exported):
    report = verify_bundle(exported.path, exported.vkey)
    assert (report.size, report.checkpoints) == (EXPORTED, EVENTS + 1)


# -- growth: --since and --previous -------------------------------------------------------------


def test_since_adds_consistency_proofs_that_verify(exported, settings):
    earlier = published(settings.published_checkpoints)
    sizes = (1, 4, 5, EVENTS)  # a single leaf, a power of two, and the ordinary cases
    since = [note_file(exported.workdir, f"cp{size}", earlier[size - 1]) for size in sizes]
    grow(exported.runtime, 3)
    result, out = export(exported, "grown.zip", *[arg for p in since for arg in ("--since", p)])
    assert result.exit_code == 0, result.output
    files = members(out)
    final = signed_note.verify_checkpoint(files["checkpoint"].decode(), exported.vkey)
    assert final.size == EXPORTED + 3 + 2
    assert {n for n in files if n.startswith("consistency/")} == {f"consistency/{s}"
                                                                 for s in sizes}
    for size in sizes:
        lines = files[f"consistency/{size}"].decode().splitlines()
        old = signed_note.parse_checkpoint("\n".join(lines[:3]) + "\n")
        assert old == signed_note.verify_checkpoint(earlier[size - 1], exported.vkey)
        proof = [base64.b64decode(line) for line in lines[3:]]
        merkle.verify_consistency(size, final.size, old.root, final.root, proof)
    assert verify(exported, out).exit_code == 0


def test_a_wrong_consistency_proof_is_refused(exported, settings):
    earlier = note_file(exported.workdir, "cp5", published(settings.published_checkpoints)[4])
    result, out = export(exported, "grown.zip", "--since", earlier)
    assert result.exit_code == 0, result.output
    text = members(out)["consistency/5"].decode().splitlines()
    text[3] = base64.b64encode(b"\x07" * 32).decode()
    forged = rewrite(out, exported.workdir / "forged.zip",
                     {"consistency/5": ("\n".join(text) + "\n").encode()})
    result = verify(exported, forged)
    assert result.exit_code == 2
    assert "consistency/5: consistency proof does not verify" in result.output


def test_previous_checkpoint_of_the_same_log_passes(exported, settings):
    previous = note_file(exported.workdir, "previous", published(settings.published_checkpoints)[6])
    grow(exported.runtime, 2)
    result, out = export(exported, "next.zip")
    assert result.exit_code == 0
    checked = verify(exported, out, "--previous", previous)
    assert checked.exit_code == 0, checked.output


def test_previous_checkpoint_from_a_forked_log_is_equivocation(exported):
    forked = forked_note(exported, 7)
    result = verify(exported, exported.path, "--previous", forked)
    assert result.exit_code == 2
    assert "equivocation" in result.output and "size 7" in result.output


def test_since_a_forked_checkpoint_refuses_to_export(exported):
    forked = forked_note(exported, 7)
    result, out = export(exported, "fork.zip", "--since", forked)
    assert result.exit_code == 2 and "equivocation" in result.output
    assert not out.exists()


@pytest.fixture
def sparse(app, runtime, settings, tmp_path) -> Exported:
    """A bundle of a log with checkpoints at sizes 1-4 only (then 8 and 9 by the export)."""
    runtime.log_identity = create_log_identity(settings)
    grow(runtime, 4)
    grow(runtime, 4, checkpoint_each=False)
    out = tmp_path / "sparse.zip"
    assert _invoke(app, "audit", "export", "--out", out).exit_code == 0
    return Exported(app, runtime, runtime.log_identity, out,
                    _invoke(app, "audit", "vkey").output.strip(), tmp_path)


def test_previous_checkpoint_from_a_fork_at_an_unpublished_size_fails(sparse):
    forked = forked_note(sparse, 6)
    result = verify(sparse, sparse.path, "--previous", forked)
    assert result.exit_code == 2 and "FAILED" in result.output


def test_a_fork_at_an_unpublished_size_is_reported_as_equivocation(sparse):
    forked = forked_note(sparse, 6)
    result = verify(sparse, sparse.path, "--previous", forked)
    assert "equivocation" in result.output and "entries 4..5" not in result.output


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["same-name-other-key", "other-name", "malformed"])
def test_a_wrong_verifier_key_fails(exported, which):
    vkey = {
        "same-name-other-key": signed_note.generate_signer(exported.identity.origin)[1],
        "other-name": signed_note.generate_signer("vault.example/other")[1],
        "malformed": "vault.localhost/x+00000000+not-base64",
    }[which]
    result = _invoke(exported.app, "audit", "verify", exported.path, "--vkey", vkey)
    assert result.exit_code == 2, result.output
    assert "verification FAILED" in result.output and "Traceback" not in result.output


def test_a_bundle_signed_by_another_key_fails(exported, tmp_path):
    skey, _vkey = signed_note.generate_signer(exported.identity.origin)
    files = members(exported.path)
    final = signed_note.verify_checkpoint(files["checkpoint"].decode(), exported.vkey)
    resigned = signed_note.sign_note(final.text, skey).encode()
    forged = rewrite(exported.path, tmp_path / "resigned.zip", {"checkpoint": resigned})
    result = verify(exported, forged)
    assert result.exit_code == 2 and "checkpoint does not verify" in result.output


# -- damaged entries (MANIFEST recomputed, as a forger would) -----------------------------------


def _lines(exported: Exported) -> list[bytes]:
    return members(exported.path)["entries.jsonl"].split(b"\n")[:-1]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def edit_a_value(lines: list[bytes]) -> bytes:
    lines[4] = lines[4].replace(b'"id":"r4"', b'"id":"r5"')
    return _join(lines)


def edit_a_byte_breaking_json(lines: list[bytes]) -> bytes:
    lines[4] = b"[" + lines[4][1:]
    return _join(lines)


def delete_a_line(lines: list[bytes]) -> bytes:
    del lines[4]
    return _join(lines)


def swap_two_lines(lines: list[bytes]) -> bytes:
    lines[4], lines[5] = lines[5], lines[4]
    return _join(lines)


def duplicate_the_last_line(lines: list[bytes]) -> bytes:
    return _join([*lines, lines[-1]])


def drop_the_last_lines(lines: list[bytes]) -> bytes:
    return _join(lines[:-3])


def cut_the_last_line(lines: list[bytes]) -> bytes:
    return _join(lines)[:-20]


DAMAGE = [
    (edit_a_value, r"entries 4\.\.4: the root at size 5 does not match"),
    (edit_a_byte_breaking_json, r"\bentry 4: not (JSON|(a )?canonical)"),
    (delete_a_line, r"entry 4: carries sequence number 5"),
    (swap_two_lines, r"entry 4: carries sequence number 5"),
    (duplicate_the_last_line, rf"entry {EXPORTED}: carries sequence number {EXPORTED - 1}"),
    (drop_the_last_lines, rf"has {EXPORTED - 3} entries but a checkpoint covers {EXPORTED - 2}\b"
                          r".*truncated"),
    (cut_the_last_line, rf"\bentry {EXPORTED - 1}\b.*truncated"),
]


@pytest.mark.parametrize(("damage", "message"), DAMAGE,
                         ids=lambda value: getattr(value, "__name__", None))
def test_damaged_entries_fail_naming_the_entry(exported, tmp_path, damage, message):
    damaged = rewrite(exported.path, tmp_path / "damaged.zip",
                      {"entries.jsonl": damage(_lines(exported))})
    result = verify(exported, damaged)
    assert result.exit_code == 2, result.output
    assert "verification FAILED" in result.output and "Traceback" not in result.output
    assert re.search(message, result.output), result.output


def test_damaged_entries_without_a_new_manifest_fail(exported, tmp_path):
    damaged = rewrite(exported.path, tmp_path / "damaged.zip",
                      {"entries.jsonl": edit_a_value(_lines(exported))}, manifest=False)
    result = verify(exported, damaged)
    assert result.exit_code == 2
    assert re.search(r"entries\.jsonl does not match MANIFEST\.sha256|entries 4\.\.4",
                     result.output), result.output


def test_intact_entries_with_a_wrong_manifest_digest_fail(exported, tmp_path):
    manifest = re.sub(rb"^[0-9a-f]{64}(  entries\.jsonl)$", b"0" * 64 + rb"\1",
                      members(exported.path)["MANIFEST.sha256"], flags=re.MULTILINE)
    damaged = rewrite(exported.path, tmp_path / "damaged.zip", {"MANIFEST.sha256": manifest},
                      manifest=False)
    result = verify(exported, damaged)
    assert result.exit_code == 2
    assert "entries.jsonl does not match MANIFEST.sha256" in result.output


# -- the manifest and the zip itself ------------------------------------------------------------


@pytest.mark.parametrize("name", ["checkpoints", "entries.csv", "checkpoint"])
def test_a_file_that_does_not_match_the_manifest_fails(exported, tmp_path, name):
    changed = members(exported.path)[name] + b"\n"
    damaged = rewrite(exported.path, tmp_path / "damaged.zip", {name: changed}, manifest=False)
    result = verify(exported, damaged)
    assert result.exit_code == 2 and f"{name} does not match MANIFEST.sha256" in result.output


def test_a_manifest_naming_a_missing_file_fails(exported, tmp_path):
    manifest = members(exported.path)["MANIFEST.sha256"] + b"0" * 64 + b"  extra.txt\n"
    damaged = rewrite(exported.path, tmp_path / "damaged.zip", {"MANIFEST.sha256": manifest},
                      manifest=False)
    result = verify(exported, damaged)
    assert result.exit_code == 2 and "'extra.txt', which is missing" in result.output


@pytest.mark.parametrize("missing", ["entries.jsonl", "checkpoint", "MANIFEST.sha256"])
def test_a_bundle_without_a_required_file_fails(exported, tmp_path, missing):
    damaged = rewrite(exported.path, tmp_path / "damaged.zip", {missing: None},
                      manifest=missing != "MANIFEST.sha256")
    result = verify(exported, damaged)
    assert result.exit_code == 2 and f"bundle has no {missing}" in result.output


@pytest.mark.parametrize("content", [b"", b"not a zip at all\n", b"PK\x03\x04truncated"])
def test_a_file_that_is_not_a_zip_fails_cleanly(exported, tmp_path, content):
    path = tmp_path / "bundle.zip"
    path.write_bytes(content)
    result = verify(exported, path)
    assert result.exit_code == 2
    assert "not a readable bundle" in result.output and "Traceback" not in result.output
    with pytest.raises(VerificationFailed, match="not a readable bundle"):
        verify_bundle(path, exported.vkey)


def test_a_forged_spreadsheet_does_not_pass_as_verified(exported, tmp_path):
    table = members(exported.path)["entries.csv"].replace(b"user:created", b"user:deleted")
    forged = rewrite(exported.path, tmp_path / "forged.zip", {"entries.csv": table})
    assert verify(exported, forged).exit_code == 2


def test_a_bundle_whose_history_starts_at_the_empty_log_verifies(app, runtime, settings,
                                                                 tmp_path):
    runtime.log_identity = create_log_identity(settings)
    publish_checkpoint(runtime)
    grow(runtime, 3)
    out = tmp_path / "b.zip"
    assert _invoke(app, "audit", "export", "--out", out).exit_code == 0
    vkey = _invoke(app, "audit", "vkey").output.strip()
    result = _invoke(app, "audit", "verify", out, "--vkey", vkey)
    assert result.exit_code == 0, result.output
