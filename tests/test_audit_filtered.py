"""Filtered exports: one consortium's or one document's events, each with a C2SP tlog-proof
of its inclusion in a signed checkpoint of the whole log."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.test_audit_log import _invoke
from vault.audit import merkle
from vault.audit.checkpoints import create_log_identity
from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.audit.tlog_proof import TlogProofError, format_proof, parse_proof
from vault.audit.verify import VerificationFailed, verify_bundle
from vault.consortia.models import Consortium
from vault.db import unit_of_work
from vault.documents.models import Document
from vault.documents.submissions import SubmissionService
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.service import ProgrammeService

ALPHA, BETA = uuid.uuid4(), uuid.uuid4()
DOCUMENT = uuid.uuid4()


@pytest.fixture
def log(runtime, settings):
    """A log with events of two consortia, one of them about a document (all three exist in
    the vault: an export by an unknown id is refused)."""
    runtime.log_identity = create_log_identity(settings)
    with unit_of_work(runtime.sessions) as session:
        programme, _ = ProgrammeService(session).sync(runtime.definitions["sovereign-ai-2025"])
        lead = OrganizationService(session).get_or_create("Filter Lead Co.",
                                                          OrganizationKind.COMPANY)
        for consortium_id, name in ((ALPHA, "Alpha"), (BETA, "Beta")):
            session.add(Consortium(id=consortium_id, programme=programme, name=name,
                                   lead_organization=lead))
        session.flush()
        submission = SubmissionService(session).open_draft(session.get(Consortium, ALPHA))
        session.add(Document(id=DOCUMENT, submission_id=submission.id, kind="proposal"))
    with unit_of_work(runtime.sessions) as session:
        audit = AuditLog(session, clock=runtime.clock)
        for number in range(12):
            consortium = ALPHA if number % 3 else BETA
            target = {"consortium": consortium, "n": number}
            if number in (4, 7):
                target["document"] = DOCUMENT
            audit.append(Tag.DOCUMENT_DOWNLOADED, target=target,
                         request=RequestInfo(client="test"))
    return runtime


def _export(app, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "filtered.zip"
    result = _invoke(app, "audit", "export", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def _entries(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as bundle:
        return [json.loads(line) for line in bundle.read("entries.jsonl").splitlines()]


def test_a_consortium_export_holds_its_events_each_proven(app, log, tmp_path):
    bundle = _export(app, tmp_path, "--consortium", str(ALPHA))
    entries = _entries(bundle)
    assert entries and {e["target"]["consortium"] for e in entries} == {str(ALPHA)}
    with zipfile.ZipFile(bundle) as archive:
        note = archive.read("checkpoint").decode()
        for entry in entries:
            proof = parse_proof(archive.read(f"proofs/{entry['seq']}.tlog-proof").decode())
            assert proof.index == entry["seq"] and proof.checkpoint == note
    report = verify_bundle(bundle, log.log_identity.vkey)
    assert report.size == len(entries)
    result = _invoke(app, "audit", "verify", str(bundle), "--vkey", log.log_identity.vkey)
    assert result.exit_code == 0 and f"OK: {len(entries)} entries" in result.output


def test_a_document_export_holds_only_that_document(app, log, tmp_path):
    bundle = _export(app, tmp_path, "--document", str(DOCUMENT))
    entries = _entries(bundle)
    assert [e["target"].get("n") for e in entries] == ["4", "7", None]
    # The export's own event names its filter, so the bundle carries the record of its making.
    assert entries[-1]["tag"] == Tag.AUDIT_EXPORTED.value
    assert entries[-1]["target"] == {"document": str(DOCUMENT), "file": "filtered.zip"}
    assert verify_bundle(bundle, log.log_identity.vkey).size == 3


def _rewrite(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as old:
        members = {name: old.read(name) for name in old.namelist()}
    change(members)
    members.pop("MANIFEST.sha256")
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                       for name, data in sorted(members.items()))
    with zipfile.ZipFile(target, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
        new.writestr("MANIFEST.sha256", manifest)
    return target


def _edit_entry(members: dict[str, bytes]) -> None:
    lines = members["entries.jsonl"].split(b"\n")
    lines[0] = lines[0].replace(b'"n":"', b'"n":"9')
    members["entries.jsonl"] = b"\n".join(lines)


def _foreign_entry(members: dict[str, bytes]) -> None:
    lines = members["entries.jsonl"].split(b"\n")
    lines[0] = lines[0].replace(str(ALPHA).encode(), str(BETA).encode())
    members["entries.jsonl"] = b"\n".join(lines)


def _flip_proof(members: dict[str, bytes]) -> None:
    name = next(n for n in members if n.startswith("proofs/"))
    text = members[name].decode().split("\n")
    raw = bytearray(base64.b64decode(text[2]))
    raw[0] ^= 1
    text[2] = base64.b64encode(bytes(raw)).decode()
    members[name] = "\n".join(text).encode()


def _drop_proof(members: dict[str, bytes]) -> None:
    del members[next(n for n in members if n.startswith("proofs/"))]


@pytest.mark.parametrize(("damage", "message"), [
    (_edit_entry, "inclusion proof fails"),
    (_foreign_entry, "does not match the export's filter"),
    (_flip_proof, "inclusion proof fails"),
    (_drop_proof, "no inclusion proof"),
])
def test_damaged_filtered_bundles_fail_naming_the_entry(app, log, tmp_path, damage, message):
    bundle = _export(app, tmp_path, "--consortium", str(ALPHA))
    damaged = _rewrite(bundle, tmp_path / "damaged.zip", damage)
    with pytest.raises(VerificationFailed, match=rf"entry \d+: .*{message}|{message}"):
        verify_bundle(damaged, log.log_identity.vkey, check_csv=False)


def test_both_filters_at_once_are_refused(app, log, tmp_path):
    result = _invoke(app, "audit", "export", "--out", str(tmp_path / "x.zip"),
                     "--consortium", str(ALPHA), "--document", str(DOCUMENT))
    assert result.exit_code == 2


@pytest.mark.parametrize(("option", "message"), [
    ("--consortium", "There is no such consortium to export."),
    ("--document", "There is no such document to export."),
])
def test_an_unknown_filter_id_is_refused_and_nothing_is_written(app, log, tmp_path, option,
                                                                message):
    out = tmp_path / "x.zip"
    with unit_of_work(log.sessions) as session:
        before = AuditLog(session, clock=log.clock).size()
    result = _invoke(app, "audit", "export", "--out", str(out), option, str(uuid.uuid4()))
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()
    with unit_of_work(log.sessions) as session:
        assert AuditLog(session, clock=log.clock).size() == before


def test_tlog_proof_text_round_trips_and_rejects_malformed_input():
    hashes = [merkle.leaf_hash(bytes([n])) for n in range(3)]
    note = "example.com/log\n4\n" + base64.b64encode(b"\0" * 32).decode() + "\n\n— sig x\n"
    text = format_proof(7, hashes, note, extra=b"context")
    parsed = parse_proof(text)
    assert (parsed.index, list(parsed.hashes), parsed.checkpoint, parsed.extra) == (
        7, hashes, note, b"context")
    for bad in (text.replace("c2sp.org/tlog-proof@v1", "tlog-proof"),
                text.replace("index 7", "index 07"),
                text.replace("index 7", "idx 7"),
                text.split("\n\n")[0],
                text.replace(base64.b64encode(hashes[0]).decode(), "not base64!")):
        with pytest.raises(TlogProofError):
            parse_proof(bad)


def _drop_one_entry(members: dict[str, bytes]) -> None:
    """A careful forger's removal: one entry and its proof gone, the count lowered to match."""
    lines = members["entries.jsonl"].split(b"\n")
    removed = json.loads(lines.pop(1))
    members["entries.jsonl"] = b"\n".join(lines)
    del members[f"proofs/{removed['seq']}.tlog-proof"]
    wanted = json.loads(members["filter"])
    if "count" in wanted:
        wanted["count"] -= 1
        members["filter"] = (json.dumps(wanted, sort_keys=True) + "\n").encode()
    csv_lines = members["entries.csv"].split(b"\r\n")
    members["entries.csv"] = b"\r\n".join(csv_lines[:2] + csv_lines[3:])


def test_a_filtered_bundle_states_it_cannot_prove_that_none_is_missing(app, log, tmp_path):
    bundle = _export(app, tmp_path, "--consortium", str(ALPHA))
    kept = len(_entries(bundle)) - 1
    forged = _rewrite(bundle, tmp_path / "forged.zip", _drop_one_entry)
    result = _invoke(app, "audit", "verify", str(forged), "--vkey", log.log_identity.vkey)
    # Nothing in a filtered bundle can show the gap: the verifier must say so, not claim more.
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as archive:
        size = parse_proof(archive.read(next(
            n for n in archive.namelist() if n.startswith("proofs/"))).decode()).checkpoint
    size = int(size.split("\n")[1])
    assert (f"filtered bundle (consortium {ALPHA}): each of the {kept} entries is proved "
            f"included in the log at checkpoint size {size}; this does NOT prove that no other "
            f"entries for consortium {ALPHA} exist — only a full export proves completeness"
            ) in result.output
    assert "full bundle" not in result.output and "is complete" not in result.output


def test_a_filtered_bundle_whose_count_disagrees_with_its_entries_fails(app, log, tmp_path):
    bundle = _export(app, tmp_path, "--document", str(DOCUMENT))
    with zipfile.ZipFile(bundle) as archive:
        wanted = json.loads(archive.read("filter"))
    assert wanted == {"count": 3, "document": str(DOCUMENT), "size": wanted["size"]}

    def drop_without_recount(members: dict[str, bytes]) -> None:
        lines = members["entries.jsonl"].split(b"\n")
        removed = json.loads(lines.pop(0))
        members["entries.jsonl"] = b"\n".join(lines)
        del members[f"proofs/{removed['seq']}.tlog-proof"]

    damaged = _rewrite(bundle, tmp_path / "damaged.zip", drop_without_recount)
    with pytest.raises(VerificationFailed, match="the filter records 3 entries, the bundle "
                                                 "holds 2: an entry was removed"):
        verify_bundle(damaged, log.log_identity.vkey, check_csv=False)


def test_a_filtered_bundle_does_not_pretend_to_check_growth(app, log, tmp_path):
    bundle = _export(app, tmp_path, "--consortium", str(ALPHA))
    previous = tmp_path / "previous"
    with zipfile.ZipFile(bundle) as archive:
        previous.write_text(archive.read("checkpoint").decode(), "utf-8")
    result = _invoke(app, "audit", "verify", str(bundle), "--vkey", log.log_identity.vkey,
                     "--previous", str(previous))
    assert result.exit_code == 2
    assert "a filtered bundle cannot show that the log grew from a previous checkpoint" \
        in result.output
