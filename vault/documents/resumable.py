"""Resumable uploads (tus 1.0): large documents arrive in pieces, each sealed as it streams in.

Each PATCH body becomes one segment blob: a complete Cobblestone-256 message under the
upload's own data key, whose context binds the upload, the segment's index and its offset, so
segments cannot be reordered, swapped between uploads or cut short. A segment counts (the
offset advances) only once its blob is committed and its row is written; a body that stops
short is discarded. When the last byte arrives, the segments are decrypted in order, verified,
and streamed through the ordinary store pipeline (``plan_upload`` → ``store_content`` →
``record_upload``): the result is a normal document version with the SHA-256 of the whole file.

Why a second pass: the Cobblestone encryptor and the SHA-256 of the whole file both hold their
state in memory with no way to export it, and a resumable upload outlives processes (any
gunicorn worker may receive the next PATCH). Keeping that state between requests would mean
keeping a plaintext tail, which is never written anywhere. So the plaintext exists only in the
memory of the request that streams it, twice: when a PATCH seals it, and in the final pass.

No transaction stays open while a body streams in: a PATCH first claims a short lease on the
row (``SELECT … FOR UPDATE``; on SQLite the write lock), commits, streams, then records the
segment under the row lock again if its lease still holds.

Completing and purging live in ``vault.documents.resumable_completion``; ``ResumableUploads``
is the one class to use.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.crypto import content
from vault.documents import sniff
from vault.documents.errors import (
    ContentIntegrityError,
    DocumentShredded,
    InvalidUpload,
    TooLarge,
)
from vault.documents.models import DocumentVersion, Submission, UploadSegment, UploadSession
from vault.documents.models import UploadState as State
from vault.documents.resumable_completion import (
    Completion,
    Segment,
    UploadCompletion,
    canonical_context,
    segment_context,
)
from vault.documents.service import DocumentService
from vault.documents.service import resolve_media_type as check_media_type
from vault.documents.upload_errors import (
    BodyIncomplete,
    OffsetMismatch,
    PastDeclaredLength,
    UploadAlreadyComplete,
    UploadBusy,
    UploadExpired,
    UploadSessionNotFound,
)
from vault.keys import KeyDestroyed, UnknownKey, UnwrapError
from vault.policy.actions import Actor
from vault.programmes.definition import DocumentKind

__all__ = ["PATCH_LEASE", "UPLOAD_LIFETIME", "Completion", "Lease", "ResumableUploads",
           "Segment", "segment_context", "upload_context"]

#: How long an upload may take from creation to its last byte (tus ``Upload-Expires``).
UPLOAD_LIFETIME = timedelta(hours=24)
#: How long one PATCH (and the final pass) may hold an upload. A worker that dies mid-PATCH
#: blocks the upload (409) until then; a live request normally releases it at once.
PATCH_LEASE = timedelta(minutes=15)
PURPOSE_SEGMENTS = "upload-segments"


@dataclass(frozen=True)
class Lease:
    """A PATCH's claim on an upload: the bytes it may append, from where."""

    upload_id: uuid.UUID
    token: str
    offset: int
    length: int
    seq: int
    #: Whether these bytes complete the upload.
    final: bool
    #: The upload's declared media type and length, read before the transaction ended.
    declared_type: str
    upload_length: int
    #: The segments' data key, unwrapped before streaming (no database access meanwhile).
    data_key: bytes = field(repr=False)


def upload_context(upload: UploadSession, programme: str, consortium_id: uuid.UUID) -> bytes:
    """The associated data of the upload's wrapped data key (canonical JSON)."""
    return canonical_context({"consortium": str(consortium_id), "format": content.FORMAT_VERSION,
                       "programme": programme, "purpose": PURPOSE_SEGMENTS,
                       "upload": str(upload.id)})


class ResumableUploads(UploadCompletion):
    """Resumable upload sessions on one database session; flushes, never commits.

    Creating, appending and ending live here; completing and purging in ``UploadCompletion``
    (``vault.documents.resumable_completion``).
    """

    def __init__(self, session: Session, *, documents: DocumentService, audit: AuditLog,
                 clock: Callable[[], datetime], request: RequestInfo | None = None) -> None:
        self.session = session
        self.documents = documents
        self.audit = audit
        self.clock = clock
        self.request = request

    # -- sessions -----------------------------------------------------------------------------

    def create(self, *, submission: Submission, kind: DocumentKind, slot: str,
               filename: str | None, declared_type: str | None, length: int,
               actor: Actor) -> UploadSession:
        """Open an upload of ``length`` bytes that will become a version of the document.

        Runs every check of an ordinary upload first (open window, kind, partner slot, filename,
        size limit, declared type). Raises ``InvalidUpload``, ``TooLarge``,
        ``UnsupportedMediaType`` and what ``DocumentService.plan_upload`` raises.
        """
        if actor.user_id is None:  # pragma: no cover - the web layer signs everyone in
            raise UploadSessionNotFound()
        if length < 1:
            raise InvalidUpload("The file is empty.")
        if length > kind.max_size_bytes:
            raise TooLarge("The file is larger than the limit of {limit} MiB.",
                           limit=kind.max_size_bytes // 1048576)
        declared = (declared_type or "").split(";", 1)[0].strip().lower()
        if declared not in ("", "application/octet-stream", *kind.media_types):
            check_media_type(declared, b"", kind)  # raises UnsupportedMediaType naming the kind's
        plan = self.documents.plan_upload(submission=submission, kind=kind, slot=slot,
                                          filename=filename, uploader_id=actor.user_id)
        now = self.clock()
        upload = UploadSession(
            id=uuid.uuid4(), submission_id=submission.id, kind=kind.id, slot=slot,
            filename=plan.filename, declared_type=declared, length_bytes=length, offset_bytes=0,
            state=State.OPEN, key_id=plan.key_id, key_version=plan.key_version,
            created_by_id=actor.user_id, created_at=now, expires_at=now + UPLOAD_LIFETIME,
        )
        consortium = submission.consortium
        upload.wrapped_key = self.documents.keys.wrap(
            plan.key_id, plan.key_version, content.new_data_key(),
            upload_context(upload, consortium.programme.code, consortium.id))
        self.session.add(upload)
        self.session.flush()
        self._record(Tag.UPLOAD_CREATED, actor, upload, length=length)
        return upload

    def get(self, upload_id: uuid.UUID, *, owner_id: uuid.UUID | None) -> UploadSession:
        """The upload if ``owner_id`` created it; raises ``UploadSessionNotFound`` otherwise."""
        upload = self.session.get(UploadSession, upload_id)
        if upload is None or owner_id is None or upload.created_by_id != owner_id:
            raise UploadSessionNotFound()
        return upload

    def check_live(self, upload: UploadSession) -> None:
        """Raises ``UploadExpired`` once the upload's time is up (completed ones included)."""
        if self.clock() >= upload.expires_at:
            raise UploadExpired()

    def receipt(self, upload: UploadSession) -> DocumentVersion | None:
        """The document version a completed upload became (``None`` while it is open)."""
        if upload.version_id is None:
            return None
        return self.session.get(DocumentVersion, upload.version_id)

    # -- appending ----------------------------------------------------------------------------

    def begin_append(self, upload: UploadSession, *, offset: int, length: int,
                     kind: DocumentKind) -> Lease:
        """Claim the upload for a PATCH of ``length`` bytes at ``offset`` (the caller commits
        before streaming). Raises ``UploadExpired``, ``UploadAlreadyComplete``, ``UploadBusy``,
        ``OffsetMismatch``, ``PastDeclaredLength`` and what ``check_open`` raises."""
        self.session.refresh(upload, with_for_update={"of": UploadSession})
        self.check_live(upload)
        now = self.clock()
        if upload.state is State.COMPLETED:
            raise UploadAlreadyComplete()
        if upload.lease_token is not None and upload.lease_expires_at is not None \
                and upload.lease_expires_at > now:
            raise UploadBusy()
        if offset != upload.offset_bytes:
            raise OffsetMismatch(offset=upload.offset_bytes)
        if offset + length > upload.length_bytes:
            raise PastDeclaredLength(length=upload.length_bytes)
        self.documents.check_open(upload.submission, kind)
        seq = len(self._segments(upload))
        data_key = self._data_key(upload)
        upload.lease_token = secrets.token_hex(16)
        upload.lease_expires_at = now + PATCH_LEASE
        self.session.flush()
        return Lease(upload.id, upload.lease_token, offset, length, seq,
                     final=offset + length == upload.length_bytes,
                     declared_type=upload.declared_type, upload_length=upload.length_bytes,
                     data_key=data_key)

    def store_segment(self, lease: Lease, body: Iterable[bytes], kind: DocumentKind
                      ) -> Segment:
        """Stream the body, sealed, into a new segment blob; touches no database.

        The first bytes of the upload are checked against the kind's media types at once when
        the first PATCH carries the whole sniff window (or the whole file); a shorter first
        piece is judged with the whole file when it completes (``store_content`` sniffs again).
        Raises ``BodyIncomplete`` (fewer bytes than announced), ``PastDeclaredLength`` or
        ``UnsupportedMediaType``; no blob remains when it raises.
        """
        encryptor = content.ContentEncryptor(
            lease.data_key, segment_context(lease.upload_id, lease.seq, lease.offset))
        head = b"" if lease.offset == 0 else None
        received = blob_size = 0
        writer = self.documents.blobs.writer()
        try:
            writer.write(encryptor.header())
            blob_size += len(content.HEADER)
            for chunk in body:
                received += len(chunk)
                if received > lease.length:
                    raise PastDeclaredLength(length=lease.upload_length)
                if head is not None:
                    head += chunk[: sniff.SNIFF_BYTES - len(head)]
                    if len(head) >= sniff.SNIFF_BYTES:
                        check_media_type(lease.declared_type, head, kind)
                        head = None
                sealed = encryptor.update(chunk)
                blob_size += len(sealed)
                writer.write(sealed)
            if received != lease.length:
                raise BodyIncomplete()
            if head is not None and lease.final:  # a file shorter than the magic bytes
                check_media_type(lease.declared_type, head, kind)
            sealed = encryptor.finalize()
            blob_size += len(sealed)
            writer.write(sealed)
            name = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return Segment(lease.seq, lease.offset, lease.length, name, blob_size)

    def release(self, upload_id: uuid.UUID, token: str) -> None:
        """Give up a lease after a failed PATCH (a no-op if it is no longer ours)."""
        upload = self.session.get(UploadSession, upload_id)
        if upload is None:
            return
        self.session.refresh(upload, with_for_update={"of": UploadSession})
        if upload.lease_token == token:
            upload.lease_token = upload.lease_expires_at = None
            self.session.flush()

    def record_segment(self, upload: UploadSession, lease: Lease, segment: Segment) -> None:
        """Count a committed segment: the offset advances and the lease ends.

        Raises ``UploadBusy`` (and deletes the segment blob) if the lease was lost meanwhile.
        """
        try:
            self._hold(upload, lease)
            self.session.add(UploadSegment(
                upload_id=upload.id, seq=segment.seq, offset_bytes=segment.offset,
                length_bytes=segment.length, blob_name=segment.blob_name,
                blob_size=segment.blob_size))
            upload.offset_bytes = segment.offset + segment.length
            upload.lease_token = upload.lease_expires_at = None
            self.session.flush()
        except BaseException:
            self.documents.blobs.delete(segment.blob_name)
            raise

    # -- ending -------------------------------------------------------------------------------

    def terminate(self, upload: UploadSession, actor: Actor) -> list[str]:
        """End the upload (tus termination): its rows go now, and the returned segment blobs
        are for the caller to delete after the commit. Raises ``UploadBusy``."""
        self.session.refresh(upload, with_for_update={"of": UploadSession})
        if upload.lease_token is not None and upload.lease_expires_at is not None \
                and upload.lease_expires_at > self.clock():
            raise UploadBusy()
        self._record(Tag.UPLOAD_TERMINATED, actor, upload, reason="terminated",
                     offset=upload.offset_bytes)
        return self._remove(upload)

    # -- helpers ------------------------------------------------------------------------------

    def _data_key(self, upload: UploadSession) -> bytes:
        consortium = upload.submission.consortium
        try:
            return self.documents.keys.unwrap(
                upload.key_id, upload.key_version, upload.wrapped_key,
                upload_context(upload, consortium.programme.code, consortium.id))
        except KeyDestroyed:
            raise DocumentShredded("This consortium's documents were destroyed.") from None
        except (UnwrapError, UnknownKey) as error:
            raise ContentIntegrityError(f"the upload's data key does not open: {error}") \
                from None

