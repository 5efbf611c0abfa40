"""Domain errors of resumable (tus) uploads. Each carries an HTTP status and a stable code.

Messages are English source strings, shown translated (``translations/ko-uploads.toml``); they
name offsets and sizes, never content.
"""

from __future__ import annotations

from vault.documents.errors import DocumentError


class ResumableUploadError(DocumentError):
    """Base class: ``status`` and ``code`` say how the web layer answers."""

    status = 400
    code = "upload_error"
    #: The English message; ``{name}`` placeholders are filled from ``values``.
    template = "The upload cannot continue this way."

    def __init__(self, **values: object) -> None:
        super().__init__(self.template, **values)


class UploadSessionNotFound(ResumableUploadError):
    """No such upload, or it belongs to someone else (existence is not revealed)."""

    status = 404
    code = "upload_not_found"
    template = "No such upload."


class UploadExpired(ResumableUploadError):
    """The upload's time ran out; its bytes are removed by the purge."""

    status = 410
    code = "upload_expired"
    template = "This upload has expired. Please start it again."


class OffsetMismatch(ResumableUploadError):
    """A PATCH that does not continue exactly where the stored bytes end."""

    status = 409
    code = "offset_mismatch"
    template = "The upload has {offset} bytes stored; continue from there."


class UploadBusy(ResumableUploadError):
    """Another request is writing to the upload (or one whose worker stopped, until its lease
    runs out)."""

    status = 409
    code = "upload_busy"
    template = "Another request is writing to this upload. Try again shortly."


class UploadAlreadyComplete(ResumableUploadError):
    """Bytes sent to an upload that has already become a document version."""

    status = 409
    code = "upload_complete"
    template = "This upload is already complete."


class BodyIncomplete(ResumableUploadError):
    """The request body ended before its announced length; nothing of it is kept."""

    status = 400
    code = "incomplete_body"
    template = "The request body ended early; nothing of it was kept. Resume from the offset."


class PastDeclaredLength(ResumableUploadError):
    """A PATCH body that would go past the upload's declared length."""

    status = 413
    code = "past_upload_length"
    template = "The body goes past the upload's length of {length} bytes."


class ProtocolError(ResumableUploadError):
    """A tus header missing or malformed."""

    status = 400
    code = "bad_upload_request"
    template = "The header {header} is missing or malformed."


class LengthRequired(ResumableUploadError):
    """A PATCH without a Content-Length: a cut-off body could not be told from a whole one."""

    status = 411
    code = "length_required"
    template = "Send the Content-Length of each upload request."


class UnsupportedTusVersion(ResumableUploadError):
    """A client speaking another version of the tus protocol."""

    status = 412
    code = "tus_version"
    template = "This server speaks tus {version} only."


class WrongPatchType(ResumableUploadError):
    """A PATCH whose body is not ``application/offset+octet-stream``."""

    status = 415
    code = "patch_content_type"
    template = "Upload bytes as application/offset+octet-stream."
