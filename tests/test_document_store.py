"""The encrypted document store on a real database, the real keyring and the file blob store.

Uploads are stored as blobs that only decrypt in their own place (consortium, document, version)
with their own data key; tampering with the database rows or the blob files is detected before
the first chunk, or mid-stream without ever releasing the whole document; a destroyed consortium
key makes its documents unreadable for good, even from a restored database backup; and
docs/FORMAT.md is enough to decrypt a blob without the vault's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from sqlalchemy import delete, func, insert, select, text

from tests.conftest import PG_URL, TEST_SECRETS
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.crypto.content import FORMAT_VERSION, content_context, encrypted_size
from vault.db import unit_of_work
from vault.documents.errors import (
    ContentIntegrityError,
    DocumentShredded,
    InvalidUpload,
    TooLarge,
    UnknownKind,
    UnsupportedMediaType,
    UploadClosed,
)
from vault.documents.models import Document, DocumentVersion, Submission
from vault.documents.submissions import SubmissionService
from vault.identity.models import Role
from vault.organizations.models import OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.definition import DocumentKind
from vault.programmes.service import ProgrammeService

KIB = 1024
MIB = 1024 * KIB
PROGRAMME = "sovereign-ai-2025"
#: A string that must never be found in any blob file.
MARKER = b"TOP-SECRET-PROPOSAL-MARKER/"
FORMAT_MD = Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md"
#: Where the blob's first ciphertext chunk starts, and how long a full chunk is (FORMAT.md).
FIRST_CHUNK = 5 + 56
FULL_CHUNK = 16 * KIB + 16


def pdf(size: int, seed: str = "") -> bytes:
    """A ``size``-byte body that sniffs as a PDF and is full of ``MARKER``, unique per seed."""
    head = b"%PDF-1.7\n" + seed.encode() + b"\n"
    out = bytearray(head)
    counter = 0
    while len(out) < size:
        out += MARKER + hashlib.sha256(f"{seed}/{counter}".encode()).hexdigest().encode() + b"\n"
        counter += 1
    return bytes(out[:size])


def pieces(data: bytes, size: int = 64 * KIB) -> Iterator[bytes]:
    """The body as a request stream would deliver it."""
    return (data[i : i + size] for i in range(0, len(data), size))


@dataclass
class Uploaded:
    """The receipt of one upload, detached from its session."""

    id: uuid.UUID
    document_id: uuid.UUID
    version: int
    size_bytes: int
    sha256: str
    blob_name: str
    blob_size: int
    blob_sha256: str
    format_version: int
    key_id: str
    key_version: int
    wrapped_key: bytes
    media_type: str
    original_filename: str
    created_at: datetime


class Store:
    """Uploads and downloads through ``DocumentService``, one unit of work each."""

    def __init__(self, runtime, uploader_id: uuid.UUID) -> None:
        self.runtime = runtime
        self.uploader_id = uploader_id
        self.definition = runtime.definitions[PROGRAMME]
        self.root: Path = runtime.blobs.root

    def upload(self, submission_id: uuid.UUID, body: bytes | Iterable[bytes], *,
               kind: DocumentKind | str = "proposal", slot: str = "",
               filename: str = "proposal.pdf",
               declared_type: str | None = "application/pdf") -> Uploaded:
        """Upload a body; raises what ``DocumentService.upload`` raises (and rolls back)."""
        if isinstance(kind, str):
            kind = self.definition.document_kind(kind)
        chunks = pieces(body) if isinstance(body, bytes) else body
        with unit_of_work(self.runtime.sessions) as session:
            version = self.runtime.documents(session).upload(
                submission=session.get(Submission, submission_id), kind=kind, slot=slot,
                filename=filename, declared_type=declared_type, body=chunks,
                uploader_id=self.uploader_id,
            )
            return Uploaded(**{name: getattr(version, name)
                               for name in Uploaded.__dataclass_fields__})

    def read(self, version_id: uuid.UUID) -> bytes:
        """The whole verified plaintext of a version."""
        with unit_of_work(self.runtime.sessions) as session:
            return b"".join(self.runtime.documents(session).plaintext(
                session.get(DocumentVersion, version_id)))

    def read_until_failure(self, version_id: uuid.UUID) -> tuple[bytes, Exception | None]:
        """What the stream released, and the error it raised (``plaintext()`` itself must not
        raise: these are failures found mid-stream)."""
        released = b""
        with unit_of_work(self.runtime.sessions) as session:
            stream = self.runtime.documents(session).plaintext(
                session.get(DocumentVersion, version_id))
            try:
                for chunk in stream:
                    released += chunk
            except ContentIntegrityError as error:
                return released, error
        return released, None

    def change_rows(self, *changes: tuple[uuid.UUID, dict[str, object]]) -> None:
        """Overwrite columns of version rows, one row at a time (as an attacker with DB access)."""
        with unit_of_work(self.runtime.sessions) as session:
            for version_id, values in changes:
                row = session.get(DocumentVersion, version_id)
                for name, value in values.items():
                    setattr(row, name, value)
                session.flush()

    def swap_blob_names(self, first: Uploaded, second: Uploaded) -> None:
        """Exchange two rows' blob names (via a placeholder: blob names are unique)."""
        self.change_rows((first.id, {"blob_name": "0" * 32}),
                         (second.id, {"blob_name": first.blob_name}),
                         (first.id, {"blob_name": second.blob_name}))

    def blob_path(self, name: str) -> Path:
        """Where the file store keeps a blob (FORMAT.md: ``<root>/ab/cd/<name>``)."""
        return self.root / name[:2] / name[2:4] / name

    def blob_files(self) -> list[Path]:
        """Every committed blob file."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.rglob("*") if p.is_file() and ".tmp" not in p.parts)

    def temp_files(self) -> list[Path]:
        """Every file left in the store's temp directory."""
        temp = self.root / ".tmp"
        return sorted(p for p in temp.iterdir()) if temp.exists() else []

    def counts(self) -> tuple[int, int]:
        """How many documents and document versions the database holds."""
        with unit_of_work(self.runtime.sessions) as session:
            return (session.scalar(select(func.count()).select_from(Document)),
                    session.scalar(select(func.count()).select_from(DocumentVersion)))

    def assert_nothing_stored(self, before: tuple[int, int], blobs: list[Path]) -> None:
        """No rows and no visible blob were added, and no temp file was left behind."""
        assert self.counts() == before
        assert self.blob_files() == blobs
        assert self.temp_files() == []


@pytest.fixture
def make_submission(runtime):
    """Factory: ``make_submission(name)`` → the id of a new consortium's draft submission."""

    def make(name: str = "Team Alpha") -> uuid.UUID:
        with unit_of_work(runtime.sessions) as session:
            programme, _ = ProgrammeService(session).sync(runtime.definitions[PROGRAMME])
            lead = OrganizationService(session).get_or_create(f"{name} Lead Co.",
                                                              OrganizationKind.COMPANY)
            consortium = ConsortiumService(session, cipher=runtime.cipher).create(
                programme, name, lead)
            return SubmissionService(session).open_draft(consortium).id

    return make


@pytest.fixture
def store(runtime, make_user) -> Store:
    """The document store with an applicant as the uploader."""
    return Store(runtime, make_user(Role.APPLICANT).id)


def consortium_of(runtime, submission_id: uuid.UUID) -> Consortium:
    """The submission's consortium (detached, attributes loaded)."""
    with unit_of_work(runtime.sessions) as session:
        consortium = session.get(Submission, submission_id).consortium
        _ = consortium.programme.code
        return consortium


# -- uploads that are refused -------------------------------------------------------------------

@pytest.mark.parametrize("body", [[], [b""], [b"", b""]], ids=["no-chunks", "empty", "empties"])
def test_an_empty_upload_is_refused(store, make_submission, body):
    submission = make_submission()
    before, blobs = store.counts(), store.blob_files()
    with pytest.raises(InvalidUpload, match="empty"):
        store.upload(submission, iter(body))
    store.assert_nothing_stored(before, blobs)


@pytest.mark.parametrize("declared", ["application/pdf", None, "application/octet-stream"])
def test_a_one_byte_body_is_not_a_pdf(store, make_submission, declared):
    submission = make_submission()
    before, blobs = store.counts(), store.blob_files()
    with pytest.raises(UnsupportedMediaType):
        store.upload(submission, b"%", declared_type=declared)
    store.assert_nothing_stored(before, blobs)


def test_an_upload_after_the_deadline_is_refused_and_stores_nothing(store, make_submission,
                                                                    clock):
    submission = make_submission()
    store.upload(submission, pdf(1000))  # open before the deadline
    clock.now = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)  # 18:00 KST: the deadline itself
    before, blobs = store.counts(), store.blob_files()
    with pytest.raises(UploadClosed):
        store.upload(submission, pdf(1000, "late"))
    clock.advance(days=30)
    with pytest.raises(UploadClosed):
        store.upload(submission, pdf(1000, "later"), kind="business_registration")
    store.assert_nothing_stored(before, blobs)


def test_a_deadline_that_passes_during_the_upload_stores_nothing(store, make_submission, clock):
    submission = make_submission()
    clock.now = datetime(2027, 1, 15, 8, 59, 59, tzinfo=UTC)
    before, blobs = store.counts(), store.blob_files()

    def slow_body() -> Iterator[bytes]:
        yield from pieces(pdf(100 * KIB)[: 50 * KIB])
        clock.advance(seconds=2)  # the rest arrives after 18:00 KST
        yield from pieces(pdf(100 * KIB)[50 * KIB :])

    with pytest.raises(UploadClosed):
        store.upload(submission, slow_body())
    store.assert_nothing_stored(before, blobs)


SMALL_PROPOSAL = DocumentKind(id="proposal", title_ko="x", title_en="x",
                              media_types=("application/pdf",), max_size_bytes=1000,
                              required=True, per="consortium")


@pytest.mark.parametrize("size", [1001, 5000])
@pytest.mark.parametrize("piece", [1, 100, 64 * KIB])
def test_a_body_over_the_kind_limit_is_refused_and_stores_nothing(store, make_submission,
                                                                  size, piece):
    submission = make_submission()
    before, blobs = store.counts(), store.blob_files()
    with pytest.raises(TooLarge):
        store.upload(submission, pieces(pdf(size), piece), kind=SMALL_PROPOSAL)
    store.assert_nothing_stored(before, blobs)


def test_a_body_exactly_at_the_kind_limit_is_accepted(store, make_submission):
    submission = make_submission()
    receipt = store.upload(submission, pieces(pdf(1000), 7), kind=SMALL_PROPOSAL)
    assert receipt.size_bytes == 1000
    assert store.read(receipt.id) == pdf(1000)


@pytest.fixture
def partners(runtime, make_submission):
    """Two consortia with a lead and a partner each: (submission, {name: member id})."""
    made = {}
    for team in ("Team Alpha", "Team Beta"):
        submission = make_submission(team)
        with unit_of_work(runtime.sessions) as session:
            consortium = session.get(Submission, submission).consortium
            service = ConsortiumService(session, cipher=runtime.cipher)
            lead = service.add_member(consortium, name=f"{team} Lead Co.",
                                      kind=OrganizationKind.COMPANY, role="lead",
                                      contribution="model")
            partner = service.add_member(consortium, name=f"{team} University",
                                         kind=OrganizationKind.UNIVERSITY, role="partner",
                                         contribution="data")
            made[team] = (submission, {"lead": str(lead.id), "partner": str(partner.id)})
    return made


@pytest.mark.parametrize(
    "slot",
    ["", "not-a-uuid", "random", "lead", "other-consortium",
     "partner-upper",
     "partner-hex",
     "partner-urn"],
)
def test_a_per_partner_document_needs_a_partner_of_this_consortium(store, partners, slot):
    submission, members = partners["Team Alpha"]
    _, others = partners["Team Beta"]
    partner = uuid.UUID(members["partner"])
    value = {
        "random": str(uuid.uuid4()),
        "lead": members["lead"],  # the lead is entry 0, not a partner
        "other-consortium": others["partner"],
        "partner-upper": str(partner).upper(),
        "partner-hex": partner.hex,
        "partner-urn": partner.urn,
    }.get(slot, slot)
    before, blobs = store.counts(), store.blob_files()
    with pytest.raises(UnknownKind):
        store.upload(submission, pdf(2000), kind="letter_of_commitment", slot=value)
    store.assert_nothing_stored(before, blobs)


def test_a_per_partner_document_is_stored_for_its_partner(store, partners):
    submission, members = partners["Team Alpha"]
    receipt = store.upload(submission, pdf(2000), kind="letter_of_commitment",
                           slot=members["partner"])
    assert store.read(receipt.id) == pdf(2000)


def test_a_consortium_document_takes_no_slot(store, partners):
    submission, members = partners["Team Alpha"]
    with pytest.raises(UnknownKind):
        store.upload(submission, pdf(2000), slot=members["partner"])


# -- round trips and receipts -------------------------------------------------------------------

@pytest.mark.parametrize("size", [9, 100, 16 * KIB, 16 * KIB + 1, 3 * MIB + 7])
def test_an_upload_round_trips_with_a_correct_receipt(runtime, store, make_submission, clock,
                                                      size):
    submission = make_submission()
    body = pdf(size)
    receipt = store.upload(submission, body, filename="../../사업계획서 v1.pdf")
    consortium = consortium_of(runtime, submission)

    assert store.read(receipt.id) == body
    assert receipt.size_bytes == size
    assert receipt.sha256 == hashlib.sha256(body).hexdigest()
    assert receipt.version == 1
    assert receipt.format_version == FORMAT_VERSION == 1
    assert receipt.media_type == "application/pdf"
    assert receipt.original_filename == "사업계획서 v1.pdf"
    assert receipt.created_at == clock()
    assert receipt.key_id == f"consortium-{consortium.id}" == consortium.key_id
    assert receipt.key_version == 1
    assert re.fullmatch(r"[0-9a-f]{32}", receipt.blob_name)

    # The data key exists only wrapped: nonce (12) || AES-256-GCM(32-byte key) || tag (16).
    context = content_context(programme=PROGRAMME, consortium_id=consortium.id,
                              document_id=receipt.document_id, version=1)
    data_key = runtime.keys.unwrap(receipt.key_id, receipt.key_version, receipt.wrapped_key,
                                   context)
    assert len(data_key) == 32
    assert len(receipt.wrapped_key) == 12 + 32 + 16
    assert data_key not in receipt.wrapped_key

    path = store.blob_path(receipt.blob_name)
    blob = path.read_bytes()
    assert store.blob_files() == [path]
    assert receipt.blob_size == len(blob) == encrypted_size(size)
    assert receipt.blob_sha256 == hashlib.sha256(blob).hexdigest()
    assert blob.startswith(b"VLTB\x01")
    assert path.stat().st_mode & 0o777 == 0o600
    assert store.temp_files() == []


def test_repeated_uploads_add_versions_1_2_3_each_with_its_own_blob_and_key(runtime, store,
                                                                          make_submission):
    submission = make_submission()
    bodies = [pdf(20 * KIB, f"v{n}") for n in (1, 2, 3)]
    receipts = [store.upload(submission, body) for body in bodies]

    assert [r.version for r in receipts] == [1, 2, 3]
    assert len({r.document_id for r in receipts}) == 1
    assert len({r.blob_name for r in receipts}) == 3
    assert len({r.wrapped_key for r in receipts}) == 3
    for receipt, body in zip(receipts, bodies, strict=True):
        assert store.read(receipt.id) == body
        assert receipt.sha256 == hashlib.sha256(body).hexdigest()
    assert len(store.blob_files()) == 3


def test_no_blob_file_contains_recognisable_plaintext(store, make_submission):
    submission = make_submission()
    store.upload(submission, pdf(300 * KIB), filename="secret-proposal-name.pdf")
    store.upload(submission, pdf(5 * KIB, "budget"), kind="business_registration")
    files = store.blob_files()
    assert len(files) == 2
    for path in files:
        raw = path.read_bytes()
        for needle in (MARKER, MARKER[:10], b"%PDF-", b"secret-proposal-name"):
            assert needle not in raw
        assert "secret-proposal-name" not in str(path)


# -- tampering with rows and blobs --------------------------------------------------------------

def test_blobs_swapped_between_documents_of_one_consortium_do_not_decrypt(store,
                                                                        make_submission):
    submission = make_submission()
    proposal = store.upload(submission, pdf(40 * KIB, "proposal"))
    registration = store.upload(submission, pdf(40 * KIB, "registration"),
                                kind="business_registration")
    store.swap_blob_names(proposal, registration)
    for receipt in (proposal, registration):
        with pytest.raises(ContentIntegrityError):
            store.read(receipt.id)  # raised by plaintext() itself: before any chunk


def test_blobs_swapped_across_consortia_do_not_decrypt(store, make_submission):
    ours = store.upload(make_submission("Team Alpha"), pdf(40 * KIB, "alpha"))
    theirs = store.upload(make_submission("Team Beta"), pdf(40 * KIB, "beta"))
    store.swap_blob_names(ours, theirs)
    for receipt in (ours, theirs):
        with pytest.raises(ContentIntegrityError):
            store.read(receipt.id)


@pytest.mark.parametrize("across_consortia", [False, True])
def test_a_whole_version_moved_to_another_document_does_not_decrypt(store, make_submission,
                                                                   across_consortia):
    """Blob, wrapped key and key reference all copied: the wrap's context names the source."""
    submission = make_submission("Team Alpha")
    target_submission = make_submission("Team Beta") if across_consortia else submission
    source = store.upload(submission, pdf(40 * KIB, "source"))
    target = store.upload(target_submission, pdf(40 * KIB, "target"),
                          kind="business_registration")
    store.change_rows((source.id, {"blob_name": "0" * 32}), (target.id, {
        "blob_name": source.blob_name, "wrapped_key": source.wrapped_key,
        "key_id": source.key_id, "key_version": source.key_version,
    }))
    with pytest.raises(ContentIntegrityError):
        store.read(target.id)


def test_version_2_pointed_at_version_1s_blob_does_not_decrypt(store, make_submission):
    submission = make_submission()
    first = store.upload(submission, pdf(40 * KIB, "v1"))
    second = store.upload(submission, pdf(40 * KIB, "v2"))
    store.swap_blob_names(first, second)  # the row of version 2 now names version 1's blob
    with pytest.raises(ContentIntegrityError):
        store.read(second.id)


def test_version_2_rolled_back_with_version_1s_key_and_blob_does_not_decrypt(store,
                                                                            make_submission):
    submission = make_submission()
    first = store.upload(submission, pdf(40 * KIB, "v1"))
    second = store.upload(submission, pdf(40 * KIB, "v2"))
    store.change_rows((first.id, {"blob_name": "0" * 32}), (second.id, {
        "blob_name": first.blob_name, "wrapped_key": first.wrapped_key,
        "size_bytes": first.size_bytes, "sha256": first.sha256,
    }))
    with pytest.raises(ContentIntegrityError):
        store.read(second.id)


def test_version_1s_blob_file_copied_over_version_2s_does_not_decrypt(store, make_submission):
    submission = make_submission()
    first = store.upload(submission, pdf(40 * KIB, "v1"))
    second = store.upload(submission, pdf(40 * KIB, "v2"))
    shutil.copyfile(store.blob_path(first.blob_name), store.blob_path(second.blob_name))
    with pytest.raises(ContentIntegrityError):
        store.read(second.id)
    assert store.read(first.id) == pdf(40 * KIB, "v1")


def test_a_flipped_byte_in_a_large_blob_stops_the_stream_part_way(store, make_submission):
    submission = make_submission()
    body = pdf(3 * MIB + 7)
    receipt = store.upload(submission, body)
    path = store.blob_path(receipt.blob_name)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    path.write_bytes(bytes(blob))

    released, error = store.read_until_failure(receipt.id)
    assert isinstance(error, ContentIntegrityError)
    assert 0 < len(released) < len(body) // 2 + FULL_CHUNK
    assert body.startswith(released)  # only authenticated chunks came out


@pytest.mark.parametrize("cut", ["chunk-boundary", "mid-chunk", "last-byte"])
def test_a_truncated_blob_file_stops_the_stream_short(store, make_submission, cut):
    submission = make_submission()
    body = pdf(100 * KIB)
    receipt = store.upload(submission, body)
    path = store.blob_path(receipt.blob_name)
    blob = path.read_bytes()
    end = {"chunk-boundary": FIRST_CHUNK + 3 * FULL_CHUNK,
           "mid-chunk": FIRST_CHUNK + 3 * FULL_CHUNK + 100, "last-byte": len(blob) - 1}[cut]
    path.write_bytes(blob[:end])
    released, error = store.read_until_failure(receipt.id)
    assert isinstance(error, ContentIntegrityError)
    assert body.startswith(released) and len(released) < len(body)


def test_a_tampered_ending_never_releases_the_whole_document(store, make_submission):
    submission = make_submission()
    body = pdf(32 * KIB)
    receipt = store.upload(submission, body)
    path = store.blob_path(receipt.blob_name)
    path.write_bytes(path.read_bytes()[:-16])  # drop the empty final chunk
    released, error = store.read_until_failure(receipt.id)
    assert isinstance(error, ContentIntegrityError)
    assert released != body


def test_a_truncated_blob_of_whole_chunks_still_fails(store, make_submission):
    submission = make_submission()
    body = pdf(32 * KIB)
    receipt = store.upload(submission, body)
    path = store.blob_path(receipt.blob_name)
    path.write_bytes(path.read_bytes()[:-16])  # drop the empty final chunk
    released, error = store.read_until_failure(receipt.id)
    assert isinstance(error, ContentIntegrityError)
    assert body.startswith(released)


@pytest.mark.parametrize("how", ["deleted", "emptied", "name-outside-store"])
def test_a_missing_blob_fails_before_the_first_chunk(store, make_submission, how):
    submission = make_submission()
    receipt = store.upload(submission, pdf(40 * KIB))
    path = store.blob_path(receipt.blob_name)
    if how == "deleted":
        path.unlink()
    elif how == "emptied":
        path.write_bytes(b"")
    else:
        store.change_rows((receipt.id, {"blob_name": "../../../keyring.json"}))
    with pytest.raises(ContentIntegrityError):
        store.read(receipt.id)


@pytest.mark.parametrize("how", ["bit-flipped", "truncated", "extended", "empty",
                                 "other-version", "unknown-version"])
def test_a_tampered_wrapped_key_fails_before_the_first_chunk(runtime, store, make_submission,
                                                              how):
    submission = make_submission()
    receipt = store.upload(submission, pdf(40 * KIB))
    other = store.upload(submission, pdf(40 * KIB, "v2"))
    wrapped = bytearray(receipt.wrapped_key)
    wrapped[20] ^= 0x01
    changes = {
        "bit-flipped": {"wrapped_key": bytes(wrapped)},
        "truncated": {"wrapped_key": receipt.wrapped_key[:-1]},
        "extended": {"wrapped_key": receipt.wrapped_key + b"\x00"},
        "empty": {"wrapped_key": b""},
        "other-version": {"wrapped_key": other.wrapped_key},
        "unknown-version": {"key_version": 2},
    }[how]
    store.change_rows((receipt.id, changes))
    with pytest.raises(ContentIntegrityError):
        store.read(receipt.id)


# -- crypto-shredding ---------------------------------------------------------------------------

def test_destroying_the_consortium_key_shreds_its_documents(runtime, store, make_submission):
    ours, theirs = make_submission("Team Alpha"), make_submission("Team Beta")
    receipts = [store.upload(ours, pdf(40 * KIB, f"v{n}")) for n in (1, 2)]
    kept = store.upload(theirs, pdf(40 * KIB, "beta"))
    key_id = receipts[0].key_id
    keyring = runtime.settings.keyring_file
    sealed = json.loads(keyring.read_text())["keys"][key_id]["versions"]["1"]

    runtime.keys.destroy(key_id)

    for receipt in receipts:
        with pytest.raises(DocumentShredded):
            store.read(receipt.id)
    with pytest.raises(DocumentShredded):
        store.upload(ours, pdf(1000, "after"))
    assert store.read(kept.id) == pdf(40 * KIB, "beta")  # other consortia are untouched
    assert sealed not in keyring.read_text()  # the key material is gone from the keyring


def _snapshot_database(runtime, database_url: str, backup: Path) -> list[dict]:
    """A backup: the SQLite files, or (PostgreSQL) every document_versions row."""
    if PG_URL:
        with runtime.engine.connect() as connection:
            return [dict(row._mapping) for row in
                    connection.execute(select(DocumentVersion.__table__))]
    runtime.engine.dispose()  # SQLite uses no pool; nothing may hold the file open
    database = Path(database_url.removeprefix("sqlite:///"))
    backup.mkdir()
    for path in database.parent.glob(database.name + "*"):
        shutil.copy2(path, backup / path.name)
    return []


def _restore_database(runtime, database_url: str, backup: Path, rows: list[dict]) -> None:
    """Put the backup back in place."""
    if PG_URL:
        table = DocumentVersion.__table__
        with runtime.engine.begin() as connection:
            connection.execute(delete(table))
            connection.execute(insert(table), rows)
        return
    runtime.engine.dispose()
    database = Path(database_url.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.unlink()
    for path in backup.iterdir():
        shutil.copy2(path, database.parent / path.name)


def test_a_database_backup_restored_after_shredding_does_not_bring_documents_back(
    runtime, store, make_submission, database_url, tmp_path
):
    submission = make_submission()
    receipt = store.upload(submission, pdf(40 * KIB))
    assert store.read(receipt.id) == pdf(40 * KIB)
    rows = _snapshot_database(runtime, database_url, tmp_path / "backup")

    runtime.keys.destroy(receipt.key_id)
    with pytest.raises(DocumentShredded):
        store.read(receipt.id)

    _restore_database(runtime, database_url, tmp_path / "backup", rows)
    assert store.counts() == (1, 1)
    with pytest.raises(DocumentShredded):
        store.read(receipt.id)
    # The wrapped key in the restored row is intact; only the key that opens it is gone.
    with unit_of_work(runtime.sessions) as session:
        assert session.get(DocumentVersion, receipt.id).wrapped_key == receipt.wrapped_key


# -- docs/FORMAT.md is enough to decrypt --------------------------------------------------------
# The functions below are copied verbatim from docs/FORMAT.md (the test checks that they still
# are); they use only the standard library and `cryptography`, never the vault's code.

HEADER = b"VLTB\x01"  # magic and format version 1
COBBLESTONE_PREFIX = 24 + 32  # salt, key commitment
CHUNK_CIPHERTEXT = 16 * 1024 + 16  # a full chunk: 16 KiB of plaintext and the GCM tag


def keyring_consortium_key(master_secret: str, keyring: dict, key_id: str, version: int) -> bytes:
    """Step 1 (keyring provider): open one version of a consortium key from keyring.json."""
    master = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault/keyring-master"
    ).derive(master_secret.encode())
    sealed = base64.b64decode(keyring["keys"][key_id]["versions"][str(version)])
    if sealed[:1] != b"\x01":
        raise ValueError("unknown sealed-key format")
    aad = f"vault-keyring/v1\x00{key_id}\x00{version}".encode()
    return AESGCM(master).decrypt(sealed[1:13], sealed[13:], aad)


def encryption_context(programme: str, consortium_id: object, document_id: object,
                       version: int, format_version: int = 1) -> bytes:
    """Step 2: the canonical encryption context of one document version."""
    return json.dumps(
        {
            "consortium": str(uuid.UUID(str(consortium_id))),  # lowercase, hyphenated
            "document": str(uuid.UUID(str(document_id))),
            "format": format_version,
            "programme": programme,
            "purpose": "document-content",
            "version": version,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def unwrap_data_key(consortium_key: bytes, wrapped_key: bytes, context: bytes) -> bytes:
    """Step 3: the version's data key; wrapped_key is nonce (12) || ciphertext || tag (16)."""
    return AESGCM(consortium_key).decrypt(wrapped_key[:12], wrapped_key[12:], context)


def decrypt_blob(data_key: bytes, context: bytes, blob: bytes) -> bytes:
    """Step 4: check the header, then decrypt Cobblestone-256 (c2sp.org/chunked-encryption)."""
    if blob[:5] != HEADER:
        raise ValueError("not a vault blob of format version 1")
    body = blob[5:]
    if len(body) < COBBLESTONE_PREFIX + 16:
        raise ValueError("blob is truncated")
    salt, commitment = body[:24], body[24:56]
    derived = HKDFExpand(
        algorithm=hashes.SHA512(),
        length=32 + 12 + 32,
        info=b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00" + salt + context,
    ).derive(data_key)
    key, base_nonce, expected = derived[:32], derived[32:44], derived[44:]
    if not hmac.compare_digest(commitment, expected):
        raise ValueError("wrong data key or wrong context")
    aead = AESGCM(key)
    plaintext, offset, counter = [], COBBLESTONE_PREFIX, 0
    while True:
        chunk = body[offset : offset + CHUNK_CIPHERTEXT]
        nonce = (int.from_bytes(base_nonce, "big") ^ counter).to_bytes(12, "big")
        plaintext.append(aead.decrypt(nonce, chunk, None))  # raises InvalidTag if altered
        offset, counter = offset + len(chunk), counter + 1
        if len(chunk) < CHUNK_CIPHERTEXT:  # the last chunk is the short (maybe empty) one
            return b"".join(plaintext)


def decrypt_version(row, keyring: dict, master_secret: str, blob: bytes) -> bytes:
    """Steps 1-4 for one row of VERSION_QUERY (keyring provider)."""
    consortium_key = keyring_consortium_key(master_secret, keyring, row["key_id"],
                                            row["key_version"])
    context = encryption_context(row["programme"], row["consortium_id"], row["document_id"],
                                 row["version"], row["format_version"])
    data_key = unwrap_data_key(consortium_key, bytes(row["wrapped_key"]), context)
    return decrypt_blob(data_key, context, blob)


def open_field(field_secret: str, sealed: bytes, table: str, column: str, row_id: object) -> bytes:
    """A confidential column value (seal_field format) from its row."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"vault/field-encryption"
    ).derive(field_secret.encode())
    if sealed[:1] != b"\x01":
        raise ValueError("unknown sealed-value format")
    aad = f"vault-field/v1\x00{table}\x00{column}\x00{uuid.UUID(str(row_id))}".encode()
    return AESGCM(key).decrypt(sealed[1:13], sealed[13:], aad)


#: The query of FORMAT.md's worked example (the inputs of one document version).
VERSION_QUERY = """
SELECT p.code AS programme, c.id AS consortium_id, d.id AS document_id, v.version,
       v.format_version, v.key_id, v.key_version, v.wrapped_key, v.blob_name
FROM document_versions v
JOIN documents d ON d.id = v.document_id
JOIN submissions s ON s.id = d.submission_id
JOIN consortia c ON c.id = s.consortium_id
JOIN programmes p ON p.id = c.programme_id
WHERE v.blob_name = :blob_name
"""

_DOCUMENTED = [keyring_consortium_key, encryption_context, unwrap_data_key, decrypt_blob,
               decrypt_version, open_field]


def _documented_code() -> str:
    """The Python blocks of docs/FORMAT.md."""
    return "\n".join(re.findall(r"```python\n(.*?)```", FORMAT_MD.read_text(), re.DOTALL))


def test_the_format_document_carries_the_tested_code():
    code = _documented_code()
    for function in _DOCUMENTED:
        assert inspect.getsource(function) in code, f"{function.__name__} differs from FORMAT.md"
    assert VERSION_QUERY.strip() in FORMAT_MD.read_text()
    assert "import vault" not in code and "from vault" not in code


@pytest.mark.parametrize("size", [9, 32 * KIB, 40 * KIB + 3])
def test_format_document_is_enough_to_decrypt(runtime, store, make_submission, size):
    """Decrypt with nothing but the master secret, keyring.json, the row and the blob file."""
    submission = make_submission()
    store.upload(submission, pdf(size, "older"))
    runtime.keys.rotate(f"consortium-{consortium_of(runtime, submission).id}")  # key version 2
    receipt = store.upload(submission, pdf(size))
    assert (receipt.version, receipt.key_version) == (2, 2)

    with runtime.engine.connect() as connection:
        row = connection.execute(text(VERSION_QUERY),
                                 {"blob_name": receipt.blob_name}).mappings().one()
    keyring = json.loads(runtime.settings.keyring_file.read_text())
    blob = (runtime.blobs.root / row["blob_name"][:2] / row["blob_name"][2:4]
            / row["blob_name"]).read_bytes()

    # The same steps twice: with the functions above, and executing FORMAT.md's own code.
    documented: dict[str, object] = {"__name__": "format_md"}
    exec(compile(_documented_code(), str(FORMAT_MD), "exec"), documented)  # noqa: S102
    for steps in ({f.__name__: f for f in _DOCUMENTED}, documented):
        master = TEST_SECRETS["VAULT_MASTER_KEY"]
        assert steps["decrypt_version"](row, keyring, master, blob) == pdf(size)

        consortium_key = steps["keyring_consortium_key"](master, keyring, row["key_id"], 2)
        context = steps["encryption_context"](
            row["programme"], row["consortium_id"], row["document_id"], 2, 1)
        data_key = steps["unwrap_data_key"](consortium_key, bytes(row["wrapped_key"]), context)
        # ... and the documented steps refuse what the vault refuses.
        tampered = bytearray(blob)
        tampered[-1] ^= 1
        with pytest.raises(InvalidTag):
            steps["decrypt_blob"](data_key, context, bytes(tampered))
        for bad in (blob[:-16], blob[:-1], blob + b"\x00", blob[: FIRST_CHUNK + 16], blob[:60]):
            with pytest.raises((InvalidTag, ValueError)):
                steps["decrypt_blob"](data_key, context, bad)
        rolled_back = steps["encryption_context"](
            row["programme"], row["consortium_id"], row["document_id"], 1, 1)
        with pytest.raises(ValueError, match="wrong data key or wrong context"):
            steps["decrypt_blob"](data_key, rolled_back, blob)
        with pytest.raises(InvalidTag):
            steps["unwrap_data_key"](consortium_key, bytes(row["wrapped_key"]), rolled_back)
        old_key = steps["keyring_consortium_key"](master, keyring, row["key_id"], 1)
        with pytest.raises(InvalidTag):
            steps["unwrap_data_key"](old_key, bytes(row["wrapped_key"]), context)


def test_format_document_is_enough_to_open_a_confidential_column(runtime, partners):
    with runtime.engine.connect() as connection:
        sealed = connection.execute(
            text("SELECT id, role_sealed FROM consortium_members WHERE position = 1")
        ).all()
    assert len(sealed) == 2  # one partner in each consortium
    for row_id, value in sealed:
        assert open_field(TEST_SECRETS["VAULT_FIELD_KEY"], bytes(value), "consortium_members",
                          "role", row_id) == b"partner"
