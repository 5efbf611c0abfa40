"""Blob store in an S3 bucket (AWS or an S3-compatible service).

Objects are stored under ``<prefix>/<name>``. A blob smaller than one part is sent with a
single ``PutObject`` at commit; a larger one becomes a multipart upload, which S3 makes
visible only when ``CompleteMultipartUpload`` succeeds. The writer buffers at most one part.

Credentials come from the usual boto3 sources (``AWS_ACCESS_KEY_ID`` …, profiles, instance
roles). Blobs are already encrypted, so nothing here asks for server-side encryption; a bucket
default (SSE-S3 / SSE-KMS) still applies and is harmless.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vault.storage import BlobError, BlobNotFound

log = logging.getLogger(__name__)

#: Names are 128 random bits in lowercase hex; anything else is rejected before it can
#: become part of an object key.
NAME_PATTERN = re.compile(r"[0-9a-f]{32}")
#: S3 rejects non-final parts under 5 MiB and parts over 5 GiB, and allows 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


class S3BlobWriter:
    """A blob being uploaded; nothing is visible under its key until ``commit`` returns.

    Also a context manager: leaving the ``with`` block without a successful ``commit`` (by an
    exception or otherwise) aborts. A writer dropped without commit, or a crashed process, can
    leave an invisible multipart upload behind: ``S3BlobStore.sweep`` or a
    bucket lifecycle rule (``AbortIncompleteMultipartUpload``) removes it.
    """

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._client = store.client
        self._name = secrets.token_hex(16)
        self._key = store.key(self._name)
        self._part_size = store.part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._state = "open"

    @property
    def buffered(self) -> int:
        """Bytes held in memory, waiting for a full part or the commit; never above part_size."""
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        """Append ciphertext; raises ``BlobError`` (and aborts) if an upload fails."""
        self._require_open()
        view = memoryview(data)
        while view:
            # A full buffer is sent only once more data arrives, so the last part of a
            # multipart upload is never empty and a blob of exactly one part is one PutObject.
            if len(self._buffer) == self._part_size:
                self._upload_part()
            room = self._part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]

    def commit(self) -> str:
        """Make the blob visible; returns its name. Raises ``BlobError``."""
        self._require_open()
        bucket = self._store.bucket
        try:
            if self._upload_id is None:
                self._client.put_object(Bucket=bucket, Key=self._key, Body=self._buffer)
            else:
                self._upload_part()
                self._client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise BlobError("could not store blob") from exc
        self._buffer = bytearray()
        self._state = "committed"
        return self._name

    def abort(self) -> None:
        """Discard the buffer and any multipart upload; idempotent, a no-op after commit."""
        if self._state == "committed":
            return
        self._state = "aborted"
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._key, UploadId=upload_id
            )
        except (BotoCoreError, ClientError):
            # Invisible either way; the sweep or a lifecycle rule reclaims the parts.
            log.warning("could not abort multipart upload of %s", self._key, exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _upload_part(self) -> None:
        """Send the buffer as the next part, starting the multipart upload if needed."""
        store = self._store
        if len(self._parts) >= MAX_PARTS:
            self.abort()
            raise BlobError(f"blob exceeds {MAX_PARTS} parts of {self._part_size} bytes")
        try:
            if self._upload_id is None:
                created = self._client.create_multipart_upload(
                    Bucket=store.bucket, Key=self._key, **store.checksum_args
                )
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            response = self._client.upload_part(
                Bucket=store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=self._buffer,
                **store.checksum_args,
            )
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise BlobError("could not upload blob part") from exc
        part = {"ETag": response["ETag"], "PartNumber": number}
        # A multipart upload created with a checksum algorithm needs each part's checksum.
        if "ChecksumCRC32" in response and store.checksum_args:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        self._parts.append(part)
        self._buffer = bytearray()

    def _require_open(self) -> None:
        if self._state != "open":
            raise BlobError(f"blob writer is {self._state}")


class S3BlobStore:
    """Ciphertext blobs as objects ``<prefix>/<name>`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str | None,
        region: str | None = None,
        part_size: int = 8 * 1024 * 1024,
        client: Any = None,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        if client is None:
            config = Config(
                retries={"mode": "standard"},
                # S3-compatible services behind a custom endpoint rarely do virtual hosts.
                s3={"addressing_style": "path"} if endpoint_url else {},
            )
            client = boto3.client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        self.client = client
        # Same rule as s3transfer: when the client computes checksums by default, a
        # multipart upload must declare the algorithm and list each part's checksum.
        calculation = getattr(client.meta.config, "request_checksum_calculation", None)
        self.checksum_args: dict[str, str] = (
            {"ChecksumAlgorithm": "CRC32"} if calculation == "when_supported" else {}
        )

    def key(self, name: str) -> str:
        """The object key for a blob name; raises ``BlobNotFound`` for a malformed name."""
        if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
            raise BlobNotFound(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def writer(self) -> S3BlobWriter:
        """Start a new blob under a fresh random name."""
        return S3BlobWriter(self)

    def read(self, name: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The blob's bytes, in chunks; raises ``BlobNotFound`` or ``BlobError``."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        key = self.key(name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise BlobNotFound(name) from None
            raise BlobError(f"could not read blob {name}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"could not read blob {name}") from exc
        return self._chunks(name, response["Body"], chunk_size)

    def size(self, name: str) -> int:
        """The blob's size in bytes; raises ``BlobNotFound`` or ``BlobError``."""
        head = self._head(name)
        if head is None:
            raise BlobNotFound(name)
        return int(head["ContentLength"])

    def delete(self, name: str) -> None:
        """Remove the blob if it exists; raises ``BlobNotFound`` only for a malformed name."""
        key = self.key(name)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise BlobError(f"could not delete blob {name}") from exc

    def exists(self, name: str) -> bool:
        """Whether a committed blob has this name; raises ``BlobNotFound`` for a malformed name."""
        return self._head(name) is not None

    def sweep(
        self, older_than: timedelta, *, now: datetime | None = None
    ) -> int:
        """Abort multipart uploads under the prefix started more than ``older_than`` ago.

        These are crash leftovers: invisible, but stored (and billed) until aborted. Choose
        ``older_than`` well above the longest upload. Returns how many were aborted; raises
        ``BlobError``.
        """
        cutoff = (now or datetime.now(UTC)) - older_than
        prefix = f"{self.prefix}/" if self.prefix else ""
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= cutoff:
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        except (BotoCoreError, ClientError) as exc:
            raise BlobError("could not sweep incomplete uploads") from exc
        return aborted

    def _head(self, name: str) -> dict[str, Any] | None:
        key = self.key(name)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise BlobError(f"could not look up blob {name}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"could not look up blob {name}") from exc

    @staticmethod
    def _chunks(name: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(chunk_size)
        except BotoCoreError as exc:
            raise BlobError(f"could not read blob {name}") from exc
        finally:
            body.close()
