"""Typing uploads by their content: the archive formats training logs arrive in (gzip, zstd,
tar), short files, and mislabelled files refused with 415."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from datetime import UTC, datetime

import pytest

from tests.test_resumable_uploads import _create, _patch, _set_submission, _token
from vault.documents import sniff
from vault.documents.models import SubmissionState

ZSTD_FRAME = b"\x28\xb5\x2f\xfd\x04\x58\x29\x00\x00hello\xa3\x6d\x9f\x88"  # zstd -c of "hello"


def _tar(fmt: int, size: int = 2000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        data = os.urandom(size)
        member = tarfile.TarInfo("logs/step-000100.jsonl")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


GZIP_LOG = gzip.compress(b'{"step": 100, "loss": 2.31}\n' * 200)
TAR_LOG = _tar(tarfile.USTAR_FORMAT)
PLAIN_LOG = b"step 100 loss 2.31\n" * 200


# -- the sniffer ---------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (GZIP_LOG, sniff.GZIP),
    (ZSTD_FRAME, sniff.ZSTD),
    (TAR_LOG, sniff.TAR),
    (_tar(tarfile.GNU_FORMAT), sniff.TAR),
    (_tar(tarfile.PAX_FORMAT), sniff.TAR),
    (b"%PDF-1.7\n", sniff.PDF),
    (b"PK\x03\x04rest", sniff.ZIP),
    (PLAIN_LOG, None),
    (b"", None),
])
def test_formats_are_recognised_by_their_magic_bytes(content, expected):
    assert sniff.sniff(content[: sniff.SNIFF_BYTES]) == expected


def test_the_sniff_window_reaches_the_tar_magic():
    assert sniff.SNIFF_BYTES >= 262
    # Anything shorter than the window misses the tar magic, whatever the file holds.
    assert sniff.sniff(TAR_LOG[:261]) is None


@pytest.mark.parametrize("content", [b"\x1f\x8b", ZSTD_FRAME[:4], b"PK\x03\x04", b"%PDF-"])
def test_files_shorter_than_the_window_are_still_recognised(content):
    assert sniff.sniff(content) is not None


@pytest.mark.parametrize(("declared", "content"), [
    (sniff.ZSTD, GZIP_LOG),
    (sniff.GZIP, ZSTD_FRAME),
    (sniff.TAR, GZIP_LOG),
    (sniff.GZIP, TAR_LOG),
    (sniff.PLAIN, TAR_LOG),  # NUL bytes in its header
    (sniff.PLAIN, GZIP_LOG),
    (sniff.GZIP, PLAIN_LOG),
    (sniff.TAR, PLAIN_LOG),
    (sniff.ZIP, GZIP_LOG),
    (sniff.PDF, TAR_LOG),
])
def test_mislabelled_content_does_not_match_its_declared_type(declared, content):
    assert not sniff.matches(declared, content[: sniff.SNIFF_BYTES])


@pytest.mark.parametrize(("declared", "content"), [
    (sniff.GZIP, GZIP_LOG), (sniff.ZSTD, ZSTD_FRAME), (sniff.TAR, TAR_LOG),
    (sniff.PLAIN, PLAIN_LOG), (sniff.ZIP, b"PK\x03\x04"),
])
def test_correctly_labelled_content_matches(declared, content):
    assert sniff.matches(declared, content[: sniff.SNIFF_BYTES])


# -- training logs through the vault --------------------------------------------------------

@pytest.fixture
def in_stage_1(team, runtime, clock):
    """The team is eligible and in stage_1, inside the window of its artifacts."""
    clock.now = datetime(2027, 8, 20, tzinfo=UTC)
    _set_submission(runtime, team, state=SubmissionState.ELIGIBLE, stage="stage_1")
    return _token(runtime, team.applicant)


@pytest.fixture
def team(make_team):
    return make_team("Team Alpha")


def _put_log(client, token, team, body, media_type, filename="train.log"):
    return client.put(f"/api/v1/submissions/{team.submission_id}/documents/training_log",
                      data=body, headers={
                          "Authorization": f"Bearer {token}", "Content-Type": media_type,
                          "Content-Disposition": f"attachment; filename={filename}"})


@pytest.mark.parametrize(("content", "declared", "stored"), [
    (GZIP_LOG, "application/gzip", "application/gzip"),
    (ZSTD_FRAME, "application/zstd", "application/zstd"),
    (TAR_LOG, "application/x-tar", "application/x-tar"),
    (PLAIN_LOG, "text/plain", "text/plain"),
    # Undeclared: the content decides.
    (GZIP_LOG, "application/octet-stream", "application/gzip"),
    (ZSTD_FRAME, "application/octet-stream", "application/zstd"),
    (TAR_LOG, "application/octet-stream", "application/x-tar"),
])
def test_training_logs_in_archive_formats_are_accepted(client, team, in_stage_1, content,
                                                       declared, stored):
    response = _put_log(client, in_stage_1, team, content, declared)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["media_type"] == stored
    assert response.json["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(("content", "declared"), [
    (GZIP_LOG, "application/zstd"),
    (TAR_LOG, "text/plain"),
    (PLAIN_LOG, "application/gzip"),
    (ZSTD_FRAME, "application/x-tar"),
    (b"%PDF-1.7\n" + b"x" * 400, "application/octet-stream"),  # no type of the kind
])
def test_a_mislabelled_training_log_is_refused_with_415(client, team, in_stage_1, content,
                                                        declared):
    response = _put_log(client, in_stage_1, team, content, declared)
    assert (response.status_code, response.json["error"]) == (415, "unsupported_media_type")
    listing = client.get(f"/api/v1/submissions/{team.submission_id}",
                         headers={"Authorization": f"Bearer {in_stage_1}"}).json
    assert listing["documents"] == []


def test_a_tar_log_in_resumable_pieces_is_checked_once_the_window_has_arrived(
        client, team, in_stage_1):
    body = _tar(tarfile.USTAR_FORMAT, 50_000)
    location = _create(client, in_stage_1, team, len(body), kind="training_log",
                       filename="logs.tar", filetype="application/x-tar").headers["Location"]
    # A first piece shorter than the sniff window, then the rest.
    assert _patch(client, in_stage_1, location, 0, body[:100]).status_code == 204
    done = _patch(client, in_stage_1, location, 100, body[100:])
    assert done.status_code == 204
    assert done.headers["Upload-Receipt-Sha256"] == hashlib.sha256(body).hexdigest()


def test_a_mislabelled_resumable_log_is_refused_at_its_first_patch(client, team, in_stage_1):
    body = GZIP_LOG
    location = _create(client, in_stage_1, team, len(body), kind="training_log",
                       filename="logs.zst", filetype="application/zstd").headers["Location"]
    response = _patch(client, in_stage_1, location, 0, body[:1000])
    assert (response.status_code, response.json["error"]) == (415, "unsupported_media_type")
    head = client.head(location, headers={"Authorization": f"Bearer {in_stage_1}",
                                          "Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "0"


def test_a_mislabelled_log_sent_in_tiny_pieces_is_refused_on_completion(client, team,
                                                                         in_stage_1):
    body = TAR_LOG
    location = _create(client, in_stage_1, team, len(body), kind="training_log",
                       filename="train.log", filetype="text/plain").headers["Location"]
    # The first piece is too short to judge; the whole file is judged when it completes.
    assert _patch(client, in_stage_1, location, 0, body[:200]).status_code == 204
    response = _patch(client, in_stage_1, location, 200, body[200:])
    assert (response.status_code, response.json["error"]) == (415, "unsupported_media_type")
    listing = client.get(f"/api/v1/submissions/{team.submission_id}",
                         headers={"Authorization": f"Bearer {in_stage_1}"}).json
    assert listing["documents"] == []
