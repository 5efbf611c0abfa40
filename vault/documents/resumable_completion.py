"""Completing resumable uploads, and what appending and completing share.

When the last byte of an upload is in, its segments are decrypted in order, each verified to
its end, and streamed through the ordinary store pipeline; the result is recorded as a normal
document version and the segments are discarded. ``purge_expired`` removes what expired
uploads, and completions cut short by a crash, left behind. ``UploadCompletion`` is the base of
``vault.documents.resumable.ResumableUploads``: use that class, not this one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from vault.audit.service import AuditLog, RequestInfo, Tag
from vault.crypto import content
from vault.documents.errors import ContentIntegrityError
from vault.documents.models import DocumentVersion, UploadSegment, UploadSession
from vault.documents.models import UploadState as State
from vault.documents.service import DocumentService, StoredContent, UploadPlan
from vault.documents.upload_errors import UploadBusy
from vault.policy.actions import Actor
from vault.programmes.definition import DocumentKind
from vault.storage import BlobError

if TYPE_CHECKING:
    from vault.documents.resumable import Lease

# The logger of resumable uploads as a whole: where their log lines go does not depend on
# which half of the class wrote them.
log = logging.getLogger("vault.documents.resumable")

PURPOSE_SEGMENT = "upload-segment"


@dataclass(frozen=True)
class Segment:
    """A committed segment blob, not yet (or already) recorded in ``upload_segments``."""

    seq: int
    offset: int
    length: int
    blob_name: str
    blob_size: int


@dataclass(frozen=True)
class Completion:
    """Everything the final pass needs, read before the transaction ends."""

    upload_id: uuid.UUID
    upload_length: int
    declared_type: str
    plan: UploadPlan
    segments: list[Segment]
    data_key: bytes = field(repr=False)


def canonical_context(value: dict[str, object]) -> bytes:
    """An encryption context as canonical JSON (sorted keys, no spaces, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def segment_context(upload_id: uuid.UUID, seq: int, offset: int) -> bytes:
    """The encryption context of one segment: its upload, index and offset."""
    return canonical_context({"format": content.FORMAT_VERSION, "offset": offset,
                              "purpose": PURPOSE_SEGMENT, "segment": seq,
                              "upload": str(upload_id)})


class UploadCompletion:
    """The completion and purge of resumable uploads, and the row helpers both halves use."""

    session: Session
    documents: DocumentService
    audit: AuditLog
    clock: Callable[[], datetime]
    request: RequestInfo | None

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
