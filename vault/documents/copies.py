"""Watermarked copies: each PDF handed to a reader other than its own consortium is stamped
with who received it, when, and a short code, and the copy is recorded so that a leaked page
can be traced back to the person and the request that received it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault import crypto
from vault.documents.errors import DocumentError
from vault.documents.models import DocumentVersion, WatermarkCopy, WatermarkRefusal
from vault.documents.service import DocumentService
from vault.documents.watermark import (
    STAMPER_VERSION,
    Stamp,
    WatermarkError,
    stamp_pdf_limited,
)
from vault.identity.models import User
from vault.sandbox import SandboxError

#: The media type that is stamped.
PDF = "application/pdf"


_UNREADABLE = "This PDF could not be prepared for reading (unreadable: {reason})."


class NotWatermarkable(DocumentError):
    """The PDF could not be stamped (the stamping process failed or hit a limit, or the file is
    not a PDF the stamper can read); an unstamped copy is never released instead.

    ``keep``: the reason to keep as the version's refusal when the failure is of the file
    itself (``None`` for a failure of the moment, or one already kept).
    """

    status = 422
    code = "not_watermarkable"
    keep: str | None = None


def _refused(reason: str, *, keep: bool) -> NotWatermarkable:
    error = NotWatermarkable(_UNREADABLE, reason=reason)
    error.keep = reason if keep else None
    return error


def normalise_code(text: str) -> str:
    """A code as typed by a person (any case, spaces, with or without the dash) in its stored
    form ``XXXXX-XXXXX``; ``""`` if it cannot be one."""
    chars = re.sub(r"[\s-]", "", text).upper().translate(str.maketrans("ILO", "110"))
    if len(chars) != 10 or any(c not in crypto.SHORT_CODE_ALPHABET for c in chars):
        return ""
    return f"{chars[:5]}-{chars[5:]}"


class WatermarkCopies:
    """Issuing and finding watermarked copies on one database session."""

    def __init__(self, session: Session, *, documents: DocumentService,
                 clock: Callable[[], datetime]) -> None:
        self.session = session
        self.documents = documents
        self.clock = clock

    def issue(self, version: DocumentVersion, recipient: User, *, request_id: str,
              release: Callable[[], None] | None = None) -> tuple[bytes, WatermarkCopy]:
        """The version's plaintext, verified in full, stamped for ``recipient``, and the record
        of the copy (flushed). Raises ``ContentIntegrityError``, ``DocumentShredded``,
        ``NotWatermarkable`` (not a PDF the stamper can read, or the stamper failed; its
        ``keep`` says whether to keep it as the version's refusal, see ``keep_refusal``).

        ``release()``, if given, is called once the version is opened and before its bytes
        are read and stamped (seconds for a large file): the caller ends its transaction
        there, so that none is open while the sandbox works. The copy is recorded afterwards,
        in the session's next transaction; the caller commits it before it hands out a byte.
        """
        refusal = self.session.get(WatermarkRefusal, version.id)
        if refusal is not None and refusal.stamper == STAMPER_VERSION:
            raise _refused(refusal.reason, keep=False)
        code = self._new_code()
        # Opened (key unwrap, first chunk verified) while the transaction still holds the
        # rows; the rest of the blob needs no database.
        chunks = self.documents.plaintext(version)
        copy = WatermarkCopy(code=code, user_id=recipient.id, version_id=version.id,
                             issued_at=self.clock(), request_id=request_id)
        stamp = Stamp(name=recipient.display_name, user_id=str(recipient.id),
                      issued_at=copy.issued_at, code=copy.code)
        if release is not None:
            release()
        # Verified to the end before stamping: a tampered blob never reaches the stamper.
        plaintext = b"".join(chunks)
        try:
            stamped = stamp_pdf_limited(plaintext, stamp)
        except SandboxError as error:
            # A limit the file needs more than is kept as its refusal; a crash is tried again.
            raise _refused(error.reason, keep=not error.momentary) from None
        except WatermarkError as error:
            # Raised by the stamper on the file's own structure: it will raise it again.
            raise _refused(str(error), keep=True) from None
        self.session.add(copy)
        self.session.flush()
        return stamped, copy

    def keep_refusal(self, version: DocumentVersion, error: NotWatermarkable) -> bool:
        """Keep ``error`` as the version's refusal if it is of the file (``error.keep``), so the
        next reader is told at once; whether a row was written (flushed). Two readers refused
        at the same moment write one row."""
        if error.keep is None:
            return False
        try:
            with self.session.begin_nested():
                refusal = self.session.get(WatermarkRefusal, version.id)
                if refusal is None:
                    refusal = WatermarkRefusal(version_id=version.id)
                    self.session.add(refusal)
                refusal.stamper = STAMPER_VERSION
                refusal.reason = error.keep[:300]
                refusal.refused_at = self.clock()
        except IntegrityError:
            return False  # another reader's refusal of the same version was kept first
        return True

    def find(self, code: str) -> WatermarkCopy | None:
        """The copy with this code, if any (typed codes are normalised first)."""
        normalised = normalise_code(code)
        return self.session.get(WatermarkCopy, normalised) if normalised else None

    def _new_code(self) -> str:
        while True:  # 50 random bits: a collision is astronomically rare, but never reused
            code = crypto.random_short_code()
            if self.session.get(WatermarkCopy, code) is None:
                return code
