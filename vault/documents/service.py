"""Submissions and the encrypted document store.

An upload streams through the encryptor into the blob store in bounded memory: the plaintext is
hashed and counted on the way, checked by its magic bytes, and never touches disk. Each upload
adds a version with its own data key, wrapped under the consortium's current key version with
the encryption context as associated data. A download streams back through the decryptor; a
chunk or an ending that does not authenticate raises ``ContentIntegrityError`` mid-stream.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session

from vault.consortia.models import Consortium, ConsortiumMember
from vault.crypto import content
from vault.documents import sniff
from vault.documents.errors import (
    ContentIntegrityError,
    DocumentNotFound,
    DocumentShredded,
    InvalidUpload,
    SubmissionLocked,
    TooLarge,
    UnknownKind,
    UnsupportedMediaType,
    UploadClosed,
    UploadConflict,
)
from vault.documents.hashing import BackgroundDigest
from vault.documents.models import Document, DocumentVersion, Submission, SubmissionState
from vault.keys import KeyDestroyed, KeyProvider, UnknownKey, UnwrapError
from vault.programmes.definition import DocumentKind, ProgrammeDefinition
from vault.storage import BlobError, BlobStore, BlobWriter

#: Submissions in these states accept new document versions.
EDITABLE_STATES = frozenset({SubmissionState.DRAFT, SubmissionState.RETURNED})
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\\\]")


@dataclass(frozen=True)
class UploadPlan:
    """What an upload will become, decided before its body is read."""

    submission_id: uuid.UUID
    kind: DocumentKind
    slot: str
    filename: str
    uploader_id: uuid.UUID
    document_id: uuid.UUID
    #: Whether the document row must be created along with this first version.
    new_document: bool
    version: int
    context: bytes
    key_id: str
    key_version: int
    data_key: bytes = field(repr=False)
    wrapped_key: bytes = field(repr=False)


@dataclass(frozen=True)
class StoredContent:
    """A committed blob and what was measured while it streamed in."""

    blob_name: str
    media_type: str
    size: int
    sha256: str
    blob_size: int
    blob_sha256: str


@dataclass(frozen=True)
class Listed:
    """A document with its newest version, for listings."""

    document: Document
    latest: DocumentVersion


def clean_filename(raw: str | None) -> str:
    """The user's filename reduced to a safe display name; raises ``InvalidUpload``."""
    name = unicodedata.normalize("NFC", (raw or "").strip())
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # never a path, from any OS
    name = _UNSAFE_FILENAME.sub("", name).strip(" .")
    if not name:
        raise InvalidUpload("A filename is required.")
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 250 - len(extension)] + dot + extension) if dot else name[:255]
    return name


def resolve_media_type(declared: str | None, head: bytes, kind: DocumentKind) -> str:
    """The media type of the upload, from the declared type and the magic bytes.

    Raises ``UnsupportedMediaType`` when the content is not one of the kind's types.
    """
    declared = (declared or "").split(";", 1)[0].strip().lower()
    allowed = ", ".join(kind.media_types)
    if declared in kind.media_types:
        if sniff.matches(declared, head):
            return declared
        raise UnsupportedMediaType("The content is not a real {media_type} file.",
                                   media_type=declared)
    if declared in ("", "application/octet-stream"):
        candidates = [t for t in kind.media_types if sniff.matches(t, head)]
        if len(candidates) == 1:
            return candidates[0]
    raise UnsupportedMediaType("Only {allowed} can be uploaded as this document.", allowed=allowed)


class DocumentService:
    """The encrypted document store on one database session."""

    def __init__(
        self,
        session: Session,
        *,
        keys: KeyProvider,
        blobs: BlobStore,
        clock: Callable[[], datetime],
        definitions: Mapping[str, ProgrammeDefinition] | None = None,
    ) -> None:
        self.session = session
        self.keys = keys
        self.blobs = blobs
        self.clock = clock
        #: The programme definitions by code: stage artifacts need their stage's deadline.
        #: Without them no stage artifact is accepted (the check fails closed).
        self.definitions = definitions or {}

    # -- reading metadata -----------------------------------------------------------------

    def get(self, document_id: uuid.UUID) -> Document:
        """The document; raises ``DocumentNotFound``."""
        document = self.session.get(Document, document_id)
        if document is None:
            raise DocumentNotFound("No such document.")
        return document

    def version(self, document: Document, number: int | None = None) -> DocumentVersion:
        """A version of the document (the newest when ``number`` is None)."""
        query = select(DocumentVersion).where(DocumentVersion.document_id == document.id)
        if number is None:
            query = query.order_by(DocumentVersion.version.desc()).limit(1)
        else:
            query = query.where(DocumentVersion.version == number)
        found = self.session.scalar(query)
        if found is None:
            raise DocumentNotFound("No such document version.")
        return found

    def listing(self, submission: Submission) -> list[Listed]:
        """Every document of the submission with its newest version, by kind and slot."""
        newest = (
            select(DocumentVersion.document_id, func.max(DocumentVersion.version).label("v"))
            .group_by(DocumentVersion.document_id)
            .subquery()
        )
        rows = self.session.execute(
            select(Document, DocumentVersion)
            .join(newest, newest.c.document_id == Document.id)
            .join(
                DocumentVersion,
                (DocumentVersion.document_id == Document.id)
                & (DocumentVersion.version == newest.c.v),
            )
            .where(Document.submission_id == submission.id)
            .order_by(Document.kind, Document.slot)
        )
        return [Listed(document, latest) for document, latest in rows]

    def is_shredded(self, consortium: Consortium) -> bool:
        """Whether the consortium's key was destroyed (its documents are unreadable)."""
        return self.keys.is_destroyed(consortium.key_id)

    # -- upload ---------------------------------------------------------------------------

    def upload(
        self,
        *,
        submission: Submission,
        kind: DocumentKind,
        slot: str,
        filename: str | None,
        declared_type: str | None,
        body: Iterable[bytes],
        uploader_id: uuid.UUID,
    ) -> DocumentVersion:
        """Store a new version of a document, encrypted; returns it (the receipt).

        The three steps below in one go; the web layer runs them with a commit after the first,
        so no transaction stays open while a large body streams in. Raises what they raise;
        nothing is stored when it raises.
        """
        plan = self.plan_upload(submission=submission, kind=kind, slot=slot,
                                filename=filename, uploader_id=uploader_id)
        stored = self.store_content(plan, declared_type=declared_type, body=body)
        return self.record_upload(plan, stored)

    def plan_upload(
        self,
        *,
        submission: Submission,
        kind: DocumentKind,
        slot: str,
        filename: str | None,
        uploader_id: uuid.UUID,
    ) -> UploadPlan:
        """Check that the upload may happen and fix its document id, version and data key.

        Writes nothing. Raises ``UploadClosed``, ``SubmissionLocked``, ``UnknownKind``,
        ``InvalidUpload`` or ``DocumentShredded``.
        """
        consortium = submission.consortium
        self.check_open(submission, kind)
        name = clean_filename(filename)
        self._check_slot(consortium, kind, slot)
        if self.keys.is_destroyed(consortium.key_id):
            raise DocumentShredded("This consortium's documents were destroyed.")
        document = self._find_document(submission, kind.id, slot)
        document_id = document.id if document else uuid.uuid4()
        number = (self.session.scalar(
            select(func.max(DocumentVersion.version))
            .where(DocumentVersion.document_id == document_id)) or 0) + 1
        context = content.content_context(
            programme=consortium.programme.code, consortium_id=consortium.id,
            document_id=document_id, version=number,
        )
        key_version = self.keys.ensure(consortium.key_id)
        data_key = content.new_data_key()
        return UploadPlan(
            submission_id=submission.id, kind=kind, slot=slot, filename=name,
            uploader_id=uploader_id, document_id=document_id, new_document=document is None,
            version=number, context=context, key_id=consortium.key_id,
            key_version=key_version, data_key=data_key,
            wrapped_key=self.keys.wrap(consortium.key_id, key_version, data_key, context),
        )

    def store_content(self, plan: UploadPlan, *, declared_type: str | None,
                      body: Iterable[bytes]) -> StoredContent:
        """Check the type, then stream the body through the encryptor into a new blob.

        Touches no database: call it with no transaction open. Raises ``InvalidUpload``,
        ``UnsupportedMediaType`` or ``TooLarge``; no blob remains when it raises.
        """
        chunks = iter(body)
        head, first = self._head(chunks)
        media_type = resolve_media_type(declared_type, head, plan.kind)
        writer = self.blobs.writer()
        try:
            size, digest, blob_size, blob_digest = self._encrypt_into(
                writer, plan.data_key, plan.context, first, chunks, plan.kind.max_size_bytes
            )
            blob_name = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return StoredContent(blob_name, media_type, size, digest, blob_size, blob_digest)

    def record_upload(self, plan: UploadPlan, stored: StoredContent) -> DocumentVersion:
        """Record the stored blob as the planned version; the blob is deleted if this fails.

        The deadline and the submission state are checked again: the whole document must have
        arrived in time. Raises ``UploadClosed``, ``SubmissionLocked`` or ``UploadConflict``.
        """
        try:
            submission = self.session.get(Submission, plan.submission_id)
            if submission is None:  # pragma: no cover - submissions are never deleted
                raise DocumentNotFound("No such submission.")
            # Locked until the commit: a submit racing this upload sees it or refuses it.
            self.session.refresh(submission, with_for_update={"of": Submission})
            self.check_open(submission, plan.kind)
            version = DocumentVersion(
                id=uuid.uuid4(), document_id=plan.document_id, version=plan.version,
                original_filename=plan.filename, media_type=stored.media_type,
                size_bytes=stored.size, sha256=stored.sha256, blob_name=stored.blob_name,
                blob_size=stored.blob_size, blob_sha256=stored.blob_sha256,
                format_version=content.FORMAT_VERSION, key_id=plan.key_id,
                key_version=plan.key_version, wrapped_key=plan.wrapped_key,
                created_by_id=plan.uploader_id, created_at=self.clock(),
            )
            try:
                with self.session.begin_nested():
                    if plan.new_document:
                        self.session.add(Document(
                            id=plan.document_id, submission_id=plan.submission_id,
                            kind=plan.kind.id, slot=plan.slot, created_at=self.clock()))
                        self.session.flush()
                    self.session.add(version)
                    self.session.flush()
            except DatabaseIntegrityError:
                raise UploadConflict(
                    "Another upload of this document finished first. Please upload again."
                ) from None
        except BaseException:
            self.blobs.delete(stored.blob_name)
            raise
        return version

    def accepts_changes(self, submission: Submission) -> bool:
        """Whether uploads and partner-list changes are possible now (see ``check_open``)."""
        try:
            self.check_open(submission)
        except (UploadClosed, SubmissionLocked):
            return False
        return True

    def check_open(self, submission: Submission, kind: DocumentKind | None = None) -> None:
        """Whether the submission accepts changes now (an upload of ``kind``, or any change of
        the application when ``kind`` is None or one of the call's kinds): a draft until the
        programme's deadline, a returned submission until its correction deadline (even after
        the programme's). A stage artifact (a kind with ``stages``) is accepted from an
        eligible submission while it is in one of the kind's stages, until that stage's
        ``uploads_close``.

        Raises ``UploadClosed`` when the deadline that applies has passed or the submission is
        in no stage of the kind, ``SubmissionLocked`` in any other state.
        """
        if kind is not None and kind.stages:
            self._check_stage_open(submission, kind)
            return
        now = self.clock()
        if submission.state is SubmissionState.RETURNED:
            deadline = submission.correction_deadline
            if deadline is None or now >= deadline:
                raise UploadClosed("The correction deadline has passed.")
            return
        if now >= submission.consortium.programme.submission_deadline:
            raise UploadClosed("The submission deadline has passed.")
        if submission.state not in EDITABLE_STATES:
            raise SubmissionLocked("The submission is {state} and cannot be changed.",
                                   state=submission.state.value)

    def _check_stage_open(self, submission: Submission, kind: DocumentKind) -> None:
        # The state first: a withdrawn, ineligible or unscreened submission is locked whatever
        # its stage says.
        if submission.state is not SubmissionState.ELIGIBLE:
            raise SubmissionLocked("Stage documents are accepted only from eligible "
                                   "submissions; this one is {state}.",
                                   state=submission.state.value)
        if submission.stage not in kind.stages:
            raise UploadClosed("This document is accepted only during the stages {stages}; "
                               "the submission is in {stage}.",
                               stages=", ".join(kind.stages), stage=submission.stage)
        definition = self.definitions.get(submission.consortium.programme.code)
        try:
            closes = definition.stage(submission.stage).uploads_close if definition else None
        except KeyError:
            closes = None
        if closes is None or self.clock() >= closes:
            raise UploadClosed("The deadline for this stage's documents has passed.")

    def _check_slot(self, consortium: Consortium, kind: DocumentKind, slot: str) -> None:
        if kind.per == "consortium":
            if slot:
                raise UnknownKind("{kind} is one document for the whole consortium.", kind=kind.id)
            return
        try:
            member_id = uuid.UUID(slot)
        except ValueError:
            raise UnknownKind("{kind} is required once per partner: name the partner.",
                              kind=kind.id) \
                from None
        member = self.session.get(ConsortiumMember, member_id)
        # Only the canonical spelling: one partner must never have two slots for one kind.
        if (slot != str(member_id) or member is None or member.consortium_id != consortium.id
                or member.position == 0):
            raise UnknownKind("No such partner in this consortium.")

    @staticmethod
    def _head(chunks: Iterator[bytes]) -> tuple[bytes, bytes]:
        """Enough leading bytes to recognise the media type (and all bytes read so far)."""
        read = b""
        while len(read) < sniff.SNIFF_BYTES:
            chunk = next(chunks, None)
            if chunk is None:
                break
            read += chunk
        if not read:
            raise InvalidUpload("The file is empty.")
        return read[: sniff.SNIFF_BYTES], read

    def _find_document(self, submission: Submission, kind: str, slot: str) -> Document | None:
        return self.session.scalar(select(Document).where(
            Document.submission_id == submission.id, Document.kind == kind, Document.slot == slot
        ))

    @staticmethod
    def _encrypt_into(
        writer: BlobWriter,
        data_key: bytes,
        context: bytes,
        first: bytes,
        rest: Iterator[bytes],
        limit: int,
    ) -> tuple[int, str, int, str]:
        # Both digests are computed on helper threads while this one reads, encrypts and writes.
        plain_hash, blob_hash = BackgroundDigest(), BackgroundDigest()
        size = blob_size = 0
        encryptor = content.ContentEncryptor(data_key, context)

        def emit(data: bytes) -> None:
            nonlocal blob_size
            if data:
                blob_hash.update(data)
                blob_size += len(data)
                writer.write(data)

        try:
            emit(encryptor.header())
            chunk: bytes | None = first
            while chunk is not None:
                size += len(chunk)
                if size > limit:
                    raise TooLarge("The file is larger than the limit of {limit} MiB.",
                                   limit=limit // 1048576)
                plain_hash.update(chunk)
                emit(encryptor.update(chunk))
                chunk = next(rest, None)
            emit(encryptor.finalize())
            return size, plain_hash.hexdigest(), blob_size, blob_hash.hexdigest()
        finally:
            plain_hash.close()
            blob_hash.close()

    # -- download -------------------------------------------------------------------------

    def plaintext(self, version: DocumentVersion) -> Iterator[bytes]:
        """The version's plaintext, verified, as a stream of chunks.

        Raises ``DocumentShredded`` or ``ContentIntegrityError`` before the first chunk when
        the key or the start of the blob is wrong; a later failure raises mid-stream, so a
        consumer never sees a clean end of a tampered document.
        """
        document = version.document
        consortium = document.submission.consortium
        context = content.content_context(
            programme=consortium.programme.code, consortium_id=consortium.id,
            document_id=document.id, version=version.version,
            format_version=version.format_version,
        )
        try:
            data_key = self.keys.unwrap(version.key_id, version.key_version,
                                        version.wrapped_key, context)
        except KeyDestroyed:
            raise DocumentShredded("This document was destroyed with its consortium's key.") \
                from None
        except (UnwrapError, UnknownKey) as error:
            raise ContentIntegrityError(f"the data key does not open: {error}") from None
        stream = self._decrypt(version, data_key, context)
        # Verify the start before anyone commits to a response: swapped or rolled-back blobs
        # and wrong keys fail here, on the first chunk.
        first = next(stream, None)

        def chained() -> Iterator[bytes]:
            if first is not None:
                yield first
            yield from stream

        return chained()

    def _decrypt(self, version: DocumentVersion, data_key: bytes,
                 context: bytes) -> Iterator[bytes]:
        decryptor = content.ContentDecryptor(data_key, context)
        try:
            for chunk in self.blobs.read(version.blob_name):
                plain = decryptor.update(chunk)
                if plain:
                    yield plain
            last = decryptor.finalize()
        except (content.IntegrityError, BlobError) as error:
            raise ContentIntegrityError(f"the blob failed authentication: {error}") from None
        if last:
            yield last
