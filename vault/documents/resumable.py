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
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
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
from vault.documents.service import DocumentService, StoredContent, UploadPlan
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
from vault.storage import BlobError

log = logging.getLogger(__name__)

#: How long an upload may take from creation to its last byte (tus ``Upload-Expires``).
UPLOAD_LIFETIME = timedelta(hours=24)
#: How long one PATCH (and the final pass) may hold an upload. A worker that dies mid-PATCH
#: blocks the upload (409) until then; a live request normally releases it at once.
PATCH_LEASE = timedelta(minutes=15)
PURPOSE_SEGMENTS = "upload-segments"
PURPOSE_SEGMENT = "upload-segment"


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


@dataclass(frozen=True)
class Completion:
    """Everything the final pass needs, read before the transaction ends."""

    upload_id: uuid.UUID
    upload_length: int
    declared_type: str
    plan: UploadPlan
    segments: list[Segment]
    data_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Segment:
    """A committed segment blob, not yet (or already) recorded in ``upload_segments``."""

    seq: int
    offset: int
    length: int
    blob_name: str
    blob_size: int


def _canonical(value: dict[str, object]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def upload_context(upload: UploadSession, programme: str, consortium_id: uuid.UUID) -> bytes:
    """The associated data of the upload's wrapped data key (canonical JSON)."""
    return _canonical({"consortium": str(consortium_id), "format": content.FORMAT_VERSION,
                       "programme": programme, "purpose": PURPOSE_SEGMENTS,
                       "upload": str(upload.id)})


def segment_context(upload_id: uuid.UUID, seq: int, offset: int) -> bytes:
    """The encryption context of one segment: its upload, index and offset."""
    return _canonical({"format": content.FORMAT_VERSION, "offset": offset,
                       "purpose": PURPOSE_SEGMENT, "segment": seq, "upload": str(upload_id)})


class ResumableUploads:
    """Resumable upload sessions on one database session; flushes, never commits."""

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

        The first bytes of the upload are checked against the kind's media types at once.
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

    # -- completing ---------------------------------------------------------------------------

    def prepare_document(self, upload: UploadSession, lease: Lease, kind: DocumentKind,
                         last: Segment) -> Completion:
        """Fix the document version the complete upload becomes (every check of an ordinary
        upload runs again) and read the segments (``last`` is the one not yet recorded).

        Writes nothing; raises what ``DocumentService.plan_upload`` raises.
        """
        plan = self.documents.plan_upload(submission=upload.submission, kind=kind,
                                          slot=upload.slot, filename=upload.filename,
                                          uploader_id=upload.created_by_id)
        segments = [Segment(s.seq, s.offset_bytes, s.length_bytes, s.blob_name, s.blob_size)
                    for s in self._segments(upload)]
        return Completion(upload.id, upload.length_bytes, upload.declared_type, plan,
                          [*segments, last], lease.data_key)

    def store_document(self, completion: Completion) -> StoredContent:
        """Decrypt and verify every segment in order and store the whole as the planned
        version's blob. Touches no database: call it with no transaction open. Raises what
        ``store_content`` raises and ``ContentIntegrityError`` when a segment does not
        verify."""
        return self.documents.store_content(
            completion.plan, declared_type=completion.declared_type or None,
            body=self._plaintext(completion.upload_id, completion.upload_length,
                                 completion.data_key, completion.segments))

    def record_document(self, upload: UploadSession, lease: Lease, plan: UploadPlan,
                        stored: StoredContent, last: Segment, actor: Actor) -> DocumentVersion:
        """Record the stored blob as the planned version and the upload as completed, with
        the ordinary upload event and the completion event; returns the version (the receipt).

        Raises ``UploadBusy`` and what ``record_upload`` raises; the new blob is deleted then.
        """
        try:
            self._hold(upload, lease)
        except BaseException:
            self.documents.blobs.delete(stored.blob_name)
            raise
        version = self.documents.record_upload(plan, stored)
        # The last segment's row, so that a crash before the segments are removed leaves
        # nothing the purge cannot find.
        self.session.add(UploadSegment(
            upload_id=upload.id, seq=last.seq, offset_bytes=last.offset,
            length_bytes=last.length, blob_name=last.blob_name, blob_size=last.blob_size))
        upload.offset_bytes = upload.length_bytes
        upload.state = State.COMPLETED
        upload.version_id = version.id
        upload.lease_token = upload.lease_expires_at = None
        self.session.flush()
        submission = upload.submission
        self.audit.record(Tag.DOCUMENT_UPLOADED, actor=actor, request=self.request, target={
            "consortium": submission.consortium_id, "submission": submission.id,
            "document": version.document_id, "version": version.version,
            "blob_sha256": version.blob_sha256, "size": version.size_bytes})
        self._record(Tag.UPLOAD_COMPLETED, actor, upload, document=version.document_id,
                     version=version.version)
        return version

    def discard_segments(self, upload: UploadSession) -> None:
        """Delete the segments of a completed upload: blobs first, then rows (flushed).

        A blob store failure leaves them for ``purge_expired`` (logged, not raised): the
        upload itself is complete.
        """
        try:
            for segment in self._segments(upload):
                self.documents.blobs.delete(segment.blob_name)
        except (BlobError, OSError):
            log.warning("segments of upload %s left for the purge", upload.id, exc_info=True)
            return
        self.session.execute(delete(UploadSegment).where(UploadSegment.upload_id == upload.id))
        self.session.flush()

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

    def purge_expired(self, limit: int = 1000) -> int:
        """Remove expired uploads and the segments completed uploads left behind (a crash
        between completion and cleanup); returns how many uploads were removed.

        Blobs are deleted before rows: an interrupted purge leaves rows whose blobs are gone,
        which the next purge removes (deleting a missing blob is no error).
        """
        now = self.clock()
        leftovers = select(UploadSegment.upload_id).join(UploadSession).where(
            UploadSession.state == State.COMPLETED)
        uploads = list(self.session.scalars(
            select(UploadSession).where(or_(UploadSession.expires_at <= now,
                                            UploadSession.id.in_(leftovers)))
            .order_by(UploadSession.expires_at).limit(limit).with_for_update()))
        removed = 0
        for upload in uploads:
            if upload.expires_at > now:
                self.discard_segments(upload)
                continue
            if upload.state is State.OPEN:
                self._record(Tag.UPLOAD_TERMINATED, None, upload, reason="expired",
                             offset=upload.offset_bytes)
            for name in self._remove(upload):
                self.documents.blobs.delete(name)
            removed += 1
        self.session.flush()
        return removed

    # -- helpers ------------------------------------------------------------------------------

    def _remove(self, upload: UploadSession) -> list[str]:
        names = [segment.blob_name for segment in self._segments(upload)]
        self.session.execute(delete(UploadSegment).where(UploadSegment.upload_id == upload.id))
        self.session.delete(upload)
        self.session.flush()
        return names

    def _hold(self, upload: UploadSession, lease: Lease) -> None:
        """Lock the row and make sure the lease is still ours and nothing moved."""
        self.session.refresh(upload, with_for_update={"of": UploadSession})
        if upload.lease_token != lease.token or upload.offset_bytes != lease.offset:
            raise UploadBusy()

    def _segments(self, upload: UploadSession) -> list[UploadSegment]:
        return list(self.session.scalars(
            select(UploadSegment).where(UploadSegment.upload_id == upload.id)
            .order_by(UploadSegment.seq)))

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

    def _plaintext(self, upload_id: uuid.UUID, length: int, data_key: bytes,
                   segments: list[Segment]) -> Iterator[bytes]:
        """The upload's bytes, segment by segment, each verified to its end."""
        expected = 0
        for index, segment in enumerate(segments):
            if segment.seq != index or segment.offset != expected:
                raise ContentIntegrityError(f"upload segment {index} is missing or misplaced")
            decryptor = content.ContentDecryptor(
                data_key, segment_context(upload_id, segment.seq, segment.offset))
            produced = 0
            try:
                for chunk in self.documents.blobs.read(segment.blob_name):
                    plain = decryptor.update(chunk)
                    produced += len(plain)
                    if plain:
                        yield plain
                last = decryptor.finalize()
            except (content.IntegrityError, BlobError) as error:
                raise ContentIntegrityError(
                    f"upload segment {index} failed authentication: {error}") from None
            produced += len(last)
            if produced != segment.length:
                raise ContentIntegrityError(f"upload segment {index} has the wrong length")
            if last:
                yield last
            expected += segment.length
        if expected != length:
            raise ContentIntegrityError("the upload's segments do not add up to its length")

    def _record(self, tag: Tag, actor: Actor | None, upload: UploadSession,
                **extra: object) -> None:
        submission = upload.submission
        self.audit.record(tag, actor=actor, request=self.request, target={
            "consortium": submission.consortium_id, "submission": submission.id,
            "upload": upload.id, "kind": upload.kind, **extra})
