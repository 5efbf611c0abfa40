"""Both blob stores behave alike: the file store in a temp directory and the S3 store talking
HTTP to a real moto server on loopback.
"""

from __future__ import annotations

import gc
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from vault.storage import BlobError, BlobNotFound
from vault.storage.factory import blob_store_from_url
from vault.storage.file import TEMP_DIR, FileBlobStore
from vault.storage.s3 import MIN_PART_SIZE, S3BlobStore

#: The smallest part S3 (and moto) accept, to keep the multipart cases quick.
PART = MIN_PART_SIZE
NAME = re.compile(r"[0-9a-f]{32}")
SIZES = [0, 1, 5, PART - 1, PART, PART + 1, PART * 7 // 2]
MALFORMED = [
    "../etc/passwd",
    "ab",
    "",
    "0123456789ABCDEF0123456789ABCDEF",
    "0123456789abcdef0123456789abcde",
    "0123456789abcdef0123456789abcdef0",
    "0123456789abcdef0123456789abcdef\n",
    "01/23456789abcdef0123456789abcde",
    "../../0123456789abcdef0123456789",
    "g123456789abcdef0123456789abcdef",
]
_data_cache: dict[int, bytes] = {}


def payload(size: int) -> bytes:
    """Random-looking bytes (like ciphertext), generated once per size."""
    if size not in _data_cache:
        _data_cache[size] = os.urandom(size)
    return _data_cache[size]


def write_in_chunks(writer: Any, data: bytes, chunk: int = 1024 * 1024 + 7) -> None:
    """Write with a chunk size that never lines up with part boundaries."""
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    """A plain boto3 client on the moto server, to inspect what the store left behind."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket per test."""
    name = f"vault-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


def make_s3_store(endpoint: str, bucket: str, prefix: str = "blobs") -> S3BlobStore:
    """An S3 store with the smallest legal part size."""
    return S3BlobStore(bucket, prefix, endpoint_url=endpoint, part_size=PART)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileBlobStore | S3BlobStore:
    """Each store under test."""
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    return make_s3_store(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("bucket"))


@pytest.fixture
def file_store(tmp_path: Path) -> FileBlobStore:
    """A file store in a fresh temp directory."""
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def s3_store(s3_endpoint: str, bucket: str) -> S3BlobStore:
    """An S3 store in a fresh bucket."""
    return make_s3_store(s3_endpoint, bucket)


def visible(store: FileBlobStore | S3BlobStore) -> list[str]:
    """Everything a reader could see: files outside the temp dir, or objects in the bucket."""
    if isinstance(store, FileBlobStore):
        if not store.root.exists():
            return []
        return sorted(
            str(path.relative_to(store.root))
            for path in store.root.rglob("*")
            if path.is_file() and path.relative_to(store.root).parts[0] != TEMP_DIR
        )
    listing = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def pending(store: FileBlobStore | S3BlobStore) -> list[str]:
    """Writes in progress: temp files, or multipart uploads."""
    if isinstance(store, FileBlobStore):
        temp = store.root / TEMP_DIR
        return sorted(path.name for path in temp.iterdir()) if temp.exists() else []
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket)
    return sorted(upload["Key"] for upload in uploads.get("Uploads", []))


# --- both stores ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_returns_the_same_bytes(store: Any, size: int) -> None:
    data = payload(size)
    writer = store.writer()
    write_in_chunks(writer, data)
    name = writer.commit()

    assert NAME.fullmatch(name)
    assert store.exists(name)
    assert store.size(name) == size
    chunks = list(store.read(name, chunk_size=1024 * 1024))
    assert all(0 < len(chunk) <= 1024 * 1024 for chunk in chunks)
    assert b"".join(chunks) == data
    assert visible(store) != []
    assert pending(store) == []


def test_names_are_random_and_chosen_by_the_store(store: Any) -> None:
    names = set()
    for _ in range(3):
        writer = store.writer()
        writer.write(b"same ciphertext")
        names.add(writer.commit())
    assert len(names) == 3
    assert all(NAME.fullmatch(name) for name in names)


def test_nothing_is_visible_before_commit_or_after_abort(store: Any) -> None:
    writer = store.writer()
    write_in_chunks(writer, payload(PART * 3 // 2))
    assert visible(store) == []
    assert len(pending(store)) == 1  # a temp file, or a multipart upload

    writer.abort()
    writer.abort()  # idempotent

    assert visible(store) == []
    assert pending(store) == []
    with pytest.raises(BlobError):
        writer.write(b"more")
    with pytest.raises(BlobError):
        writer.commit()


def test_an_exception_inside_the_writer_block_leaves_nothing(store: Any) -> None:
    with pytest.raises(RuntimeError, match="encryptor failed"), store.writer() as writer:
        write_in_chunks(writer, payload(PART * 3 // 2))
        raise RuntimeError("encryptor failed")
    assert visible(store) == []
    assert pending(store) == []


def test_leaving_the_writer_block_without_commit_aborts(store: Any) -> None:
    with store.writer() as writer:
        writer.write(b"forgotten")
    assert visible(store) == []
    assert pending(store) == []


def test_a_committed_blob_survives_the_end_of_the_writer_block(store: Any) -> None:
    with store.writer() as writer:
        writer.write(b"kept")
        name = writer.commit()
    writer.abort()  # a no-op after commit
    assert b"".join(store.read(name)) == b"kept"
    with pytest.raises(BlobError):
        writer.commit()


def test_a_dropped_writer_leaves_no_visible_blob(store: Any) -> None:
    writer = store.writer()
    writer.write(b"half a document")
    del writer
    gc.collect()
    assert visible(store) == []
    if isinstance(store, FileBlobStore):
        assert pending(store) == []  # the writer's finalizer removed its temp file


def test_unknown_names_are_not_found(store: Any) -> None:
    name = "0123456789abcdef0123456789abcdef"
    assert not store.exists(name)
    with pytest.raises(BlobNotFound):
        store.read(name)
    with pytest.raises(BlobNotFound):
        store.size(name)


@pytest.mark.parametrize("name", MALFORMED)
@pytest.mark.parametrize("operation", ["read", "size", "delete", "exists"])
def test_malformed_names_are_rejected_as_not_found(store: Any, operation: str, name: str) -> None:
    with pytest.raises(BlobNotFound):
        getattr(store, operation)(name)


def test_delete_is_idempotent(store: Any) -> None:
    writer = store.writer()
    writer.write(b"to be shredded")
    name = writer.commit()
    store.delete(name)
    store.delete(name)
    store.delete("0123456789abcdef0123456789abcdef")
    assert not store.exists(name)
    with pytest.raises(BlobNotFound):
        store.read(name)
    assert visible(store) == []


def test_read_rejects_a_nonpositive_chunk_size(store: Any) -> None:
    writer = store.writer()
    writer.write(b"x")
    name = writer.commit()
    with pytest.raises(ValueError, match="chunk_size"):
        store.read(name, chunk_size=0)


# --- file store -----------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0, so the modes seen are the ones the store asked for."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_file_store_keeps_blobs_private_and_fanned_out(file_store: FileBlobStore) -> None:
    writer = file_store.writer()
    writer.write(b"ciphertext")
    (temp,) = (file_store.root / TEMP_DIR).iterdir()
    assert _mode(temp) == 0o600
    name = writer.commit()

    path = file_store.root / name[:2] / name[2:4] / name
    assert path.read_bytes() == b"ciphertext"
    assert _mode(path) == 0o600
    for directory in (file_store.root, file_store.root / TEMP_DIR, path.parent, path.parent.parent):
        assert _mode(directory) == 0o700, directory
    assert list((file_store.root / TEMP_DIR).iterdir()) == []


def test_file_store_writes_through_the_temp_dir(file_store: FileBlobStore) -> None:
    writer = file_store.writer()
    writer.write(b"in progress")
    temp_files = list((file_store.root / TEMP_DIR).iterdir())
    assert len(temp_files) == 1
    assert temp_files[0].name.endswith(".part")
    assert visible(file_store) == []
    writer.commit()
    assert list((file_store.root / TEMP_DIR).iterdir()) == []


def test_sweep_temporary_removes_only_old_temp_files(file_store: FileBlobStore) -> None:
    assert file_store.sweep(timedelta(hours=1)) == 0  # nothing written yet

    committed = file_store.writer()
    committed.write(b"keep me")
    name = committed.commit()
    in_progress = file_store.writer()
    in_progress.write(b"still uploading")
    temp = file_store.root / TEMP_DIR
    stale = [temp / "a.part", temp / "b.part"]
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for path in stale:
        path.write_bytes(b"crash leftover")
        os.utime(path, (two_days_ago, two_days_ago))
    old_directory = temp / "not-a-temp-file"
    old_directory.mkdir()
    os.utime(old_directory, (two_days_ago, two_days_ago))

    assert file_store.sweep(timedelta(hours=1)) == 2

    assert not any(path.exists() for path in stale)
    assert old_directory.is_dir()
    assert file_store.exists(name)
    in_progress.write(b" and done")
    assert b"".join(file_store.read(in_progress.commit())) == b"still uploading and done"
    # A later clock makes the survivors old enough.
    later = datetime.now(UTC) + timedelta(days=1)
    assert file_store.sweep(timedelta(hours=1), now=later) == 0


def test_a_crashed_writer_leaves_only_a_temp_file_that_sweep_removes(
    file_store: FileBlobStore,
) -> None:
    crash = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from vault.storage.file import FileBlobStore\n"
        "writer = FileBlobStore(Path(sys.argv[1])).writer()\n"
        "writer.write(b'x' * 100_000)\n"
        "os._exit(9)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash, str(file_store.root)], check=False, timeout=30
    )
    assert result.returncode == 9
    assert visible(file_store) == []
    assert len(pending(file_store)) == 1

    later = datetime.now(UTC) + timedelta(days=1)
    assert file_store.sweep(timedelta(hours=1), now=later) == 1
    assert pending(file_store) == []


def test_file_store_does_not_touch_disk_until_a_write(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    assert not store.exists("0123456789abcdef0123456789abcdef")
    assert not (tmp_path / "blobs").exists()


# --- S3 store -------------------------------------------------------------------------------


def _record_calls(store: S3BlobStore) -> list[tuple[str, int]]:
    """Every S3 operation the store makes, with its body size."""
    calls: list[tuple[str, int]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, len(params.get("Body", b""))))

    store.client.meta.events.register("provide-client-params.s3.*", record)
    return calls


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, [("PutObject", 0)]),
        (PART, [("PutObject", PART)]),
        (
            PART + 1,
            [
                ("CreateMultipartUpload", 0),
                ("UploadPart", PART),
                ("UploadPart", 1),
                ("CompleteMultipartUpload", 0),
            ],
        ),
    ],
)
def test_s3_sends_one_put_up_to_a_part_and_multipart_above(
    s3_store: S3BlobStore, size: int, expected: list[tuple[str, int]]
) -> None:
    calls = _record_calls(s3_store)
    writer = s3_store.writer()
    write_in_chunks(writer, payload(size))
    writer.commit()
    assert calls == expected


def test_s3_writer_buffers_at_most_one_part(s3_store: S3BlobStore) -> None:
    calls = _record_calls(s3_store)
    data = payload(PART * 7 // 2)
    writer = s3_store.writer()
    for chunk in (1, 4096, PART - 1, 2 * PART, 3):  # odd sizes, one larger than two parts
        writer.write(data[:chunk])
        assert writer.buffered <= PART
        data = data[chunk:]
    writer.write(data)
    assert writer.buffered <= PART
    writer.commit()
    assert writer.buffered == 0
    parts = [size for operation, size in calls if operation == "UploadPart"]
    assert parts == [PART, PART, PART, PART // 2]


def test_s3_keys_carry_the_prefix(s3_endpoint: str, bucket: str) -> None:
    for prefix, expected in [("tenant/blobs/", "tenant/blobs/{}"), ("", "{}")]:
        store = make_s3_store(s3_endpoint, bucket, prefix)
        writer = store.writer()
        writer.write(b"ciphertext")
        name = writer.commit()
        assert expected.format(name) in visible(store)
        store.delete(name)


def test_moto_enforces_the_minimum_part_size(s3_client: Any, bucket: str) -> None:
    """Proves the multipart tests above would catch parts that real S3 rejects."""
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    parts = [
        {
            "PartNumber": number,
            "ETag": s3_client.upload_part(
                Bucket=bucket, Key="small", UploadId=upload, PartNumber=number, Body=b"tiny"
            )["ETag"],
        }
        for number in (1, 2)
    ]
    with pytest.raises(ClientError, match="EntityTooSmall"):
        s3_client.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    s3_client.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload)


def test_s3_store_refuses_a_part_size_s3_would_reject(s3_endpoint: str) -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3BlobStore("bucket", "", endpoint_url=s3_endpoint, part_size=PART - 1)


@pytest.mark.parametrize("failing", ["UploadPart", "CompleteMultipartUpload"])
def test_s3_failure_mid_upload_aborts_the_multipart_upload(
    s3_store: S3BlobStore, failing: str
) -> None:
    seen = []

    def fail_second_time(**_: Any) -> None:
        seen.append(failing)
        if failing == "CompleteMultipartUpload" or len(seen) == 2:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    s3_store.client.meta.events.register(f"before-call.s3.{failing}", fail_second_time)
    writer = s3_store.writer()
    with pytest.raises(BlobError):
        write_in_chunks(writer, payload(PART * 7 // 2))
        writer.commit()
    assert visible(s3_store) == []
    assert pending(s3_store) == []
    with pytest.raises(BlobError):
        writer.commit()


def test_s3_commit_to_a_missing_bucket_is_a_blob_error(s3_endpoint: str) -> None:
    store = make_s3_store(s3_endpoint, f"missing-{uuid.uuid4().hex[:12]}")
    writer = store.writer()
    writer.write(b"ciphertext")
    with pytest.raises(BlobError):
        writer.commit()


def test_s3_sweep_aborts_only_old_uploads_under_the_prefix(s3_endpoint: str, bucket: str) -> None:
    store = make_s3_store(s3_endpoint, bucket, "mine")
    other = make_s3_store(s3_endpoint, bucket, "other")
    for owner in (store, other):
        dropped = owner.writer()
        write_in_chunks(dropped, payload(PART * 3 // 2))
        del dropped  # a crash: the multipart upload stays behind, invisible
    assert visible(store) == []
    assert len(pending(store)) == 2

    # moto reports every upload as initiated at 2010-11-10T20:48:33Z, so the clock is pinned
    # around that instant instead of relying on the real start time.
    initiated = datetime(2010, 11, 10, 20, 48, 33, tzinfo=UTC)
    assert store.sweep(timedelta(hours=1), now=initiated) == 0
    later = initiated + timedelta(hours=2)
    assert store.sweep(timedelta(hours=1), now=later) == 1
    assert [key.split("/")[0] for key in pending(store)] == ["other"]
    assert other.sweep(timedelta(hours=1)) == 1


# --- factory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("file:///srv/vault/blobs", "/srv/vault/blobs"),
        ("file://localhost/srv/vault", "/srv/vault"),
        ("file:///srv/vault%20blobs/", "/srv/vault blobs"),
        (" file:///srv/vault ", "/srv/vault"),
    ],
)
def test_factory_builds_a_file_store(url: str, root: str) -> None:
    store = blob_store_from_url(url)
    assert isinstance(store, FileBlobStore)
    assert store.root == Path(root)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://vault-blobs", "vault-blobs", ""),
        ("s3://vault-blobs/", "vault-blobs", ""),
        ("s3://vault-blobs/prod/docs/", "vault-blobs", "prod/docs"),
        ("s3://vault.blobs.gov/v1", "vault.blobs.gov", "v1"),
    ],
)
def test_factory_builds_an_s3_store(s3_endpoint: str, url: str, bucket: str, prefix: str) -> None:
    store = blob_store_from_url(url, s3_endpoint=s3_endpoint)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    assert store.client.meta.endpoint_url == s3_endpoint


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/srv/vault",
        "file:relative/path",
        "file://relative/path",
        "file:///",
        "file:///srv/../etc",
        "file:///srv/vault?mode=rw",
        "http://example.org/blobs",
        "gs://bucket/prefix",
        "s3://",
        "s3:///prefix-only",
        "s3://AKIAEXAMPLE:insecure-secret@bucket/prefix",
        "s3://bucket:9000/prefix",
        "s3://Upper-Case",
        "s3://ab",
        "s3://bucket/../escape",
        "s3://bucket/a//b",
        "s3://bucket/prefix#fragment",
    ],
)
def test_factory_rejects_other_urls_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="VAULT_BLOB_URL") as caught:
        blob_store_from_url(url)
    assert "insecure-secret" not in str(caught.value)
