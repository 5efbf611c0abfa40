"""Files that only pretend to be good PDFs, for the screening tests: encrypted, cut off,
garbage, decompression bombs, looping object graphs, PNG and HTML named ``.pdf``.

Every generator returns the file's bytes and, except :func:`encrypted_pdf` (whose encryption
draws random salts), the same bytes on every call. Each is broken in one known way. The valid,
proposal-like PDFs (:func:`text_pdf`) and the object-by-object writer (:func:`assemble`) are the
demo's own, in ``vault.demo.documents``.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

from pypdf import PdfReader, PdfWriter

from vault.demo.documents import assemble, text_pdf

__all__ = ["assemble", "bomb_pdf", "corrupt_pdf", "encrypted_pdf", "field_loop_pdf",
           "garbage_pdf", "html_as_pdf", "loop_pdf", "png_as_pdf", "text_pdf"]


def encrypted_pdf(pages: int = 2) -> bytes:
    """A text PDF encrypted with AES-256 under a user password (not the same bytes each time)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(pages)), strict=True))
    writer.encrypt(user_password="secret", owner_password="insecure-owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """A valid header and the first part of a real PDF, cut off before its cross-references."""
    data = text_pdf(3)
    return data[: len(data) * 3 // 5]


def garbage_pdf() -> bytes:
    """A PDF header followed by bytes that are no PDF syntax at all."""
    return b"%PDF-1.7\n" + hashlib.sha256(b"garbage").digest() * 64


def bomb_pdf(inflated_bytes: int = 4 * 1024**3) -> bytes:
    """A one-page PDF whose content stream inflates to ``inflated_bytes`` zeros (4 GiB: ~4 MB).

    The deflate data is a repeated block: after a full flush, compressing the same chunk again
    gives the same bytes, so the stream is built from three compressions, not four gigabytes of
    work. The zlib checksum of ``n`` zeros is ``(n mod 65521) << 16 | 1``, so the stream is valid
    to its end.
    """
    chunk = 1024 * 1024
    if inflated_bytes % chunk or inflated_bytes < 3 * chunk:
        raise ValueError("inflated_bytes must be a multiple of 1 MiB, at least 3 MiB")
    zeros = bytes(chunk)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeated = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = deflate.compress(zeros) + deflate.flush()
    body = first + repeated * (inflated_bytes // chunk - 2) + last
    checksum = (inflated_bytes % 65521) << 16 | 1
    data = b"\x78\xda" + body + struct.pack(">I", checksum)
    return assemble({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.276 841.89] /Contents 4 0 R >>",
        4: b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data),
    })


def loop_pdf() -> bytes:
    """A PDF whose page tree contains itself: the root node's only kid is the root node."""
    return assemble({
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
    })


def field_loop_pdf(*, signature: bool = True) -> bytes:
    """A one-page PDF whose form field is its own kid (the pages themselves are fine).

    With ``signature`` the looping field is a signature field.
    """
    kind = b"/Sig" if signature else b"/Tx"
    return assemble({
        1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 4 0 R] >> >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.276 841.89] >>",
        4: b"<< /FT %s /T (Loop) /Kids [4 0 R 5 0 R] >>" % kind,
        5: b"<< /Parent 4 0 R /Kids [4 0 R] >>",
    })


def png_as_pdf() -> bytes:
    """A real one-pixel PNG image (as a file named ``.pdf`` would carry it)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) + chunk(b"IEND", b""))


def html_as_pdf() -> bytes:
    """A small HTML page (as a file named ``.pdf`` would carry it)."""
    return (b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            b"<title>Proposal</title></head><body><h1>Project overview</h1>"
            b"<p>Not a PDF.</p></body></html>\n")
