"""Domain errors of the document store. Each carries an HTTP status and a stable code."""

from __future__ import annotations

from vault.errors import DomainError


class DocumentError(DomainError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""


class UploadClosed(DocumentError):
    """The programme's submission deadline has passed."""

    status = 409
    code = "deadline_passed"


class SubmissionLocked(DocumentError):
    """The submission is not in a state that accepts uploads (e.g. already submitted)."""

    status = 409
    code = "submission_locked"


class UnknownKind(DocumentError):
    """The programme defines no document of this kind (or this partner slot is wrong)."""

    status = 404
    code = "unknown_kind"


class TooLarge(DocumentError):
    """The upload exceeds the kind's size limit."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(DocumentError):
    """The content is not one of the kind's allowed media types (checked by magic bytes)."""

    status = 415
    code = "unsupported_media_type"


class InvalidUpload(DocumentError):
    """Filename missing or unusable, empty body, or similar."""

    status = 400
    code = "invalid_upload"


class UploadConflict(DocumentError):
    """Another upload of the same document committed first; retrying is safe."""

    status = 409
    code = "upload_conflict"


class DocumentNotFound(DocumentError):
    """No such document or version (or it is not visible to the caller)."""

    status = 404
    code = "not_found"


class DocumentShredded(DocumentError):
    """The consortium's key was destroyed: the content is gone for good."""

    status = 410
    code = "shredded"


class ContentIntegrityError(DocumentError):
    """The stored ciphertext failed authentication (tampering or corruption).

    The message is for the person downloading; ``detail`` (which check failed) is for the
    operators' log and the audit event.
    """

    status = 500
    code = "integrity_failure"

    def __init__(self, detail: str) -> None:
        super().__init__("This document failed its integrity check and cannot be delivered. "
                         "The vault's operators have been alerted.")
        self.detail = detail
