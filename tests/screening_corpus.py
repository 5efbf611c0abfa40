"""Generated PDFs (and files that only pretend to be PDFs) for the screening tests and benchmark.

Every generator returns the file's bytes and, except :func:`encrypted_pdf` (whose encryption
draws random salts), the same bytes on every call. The PDFs are written by hand, object by
object with a correct cross-reference table, so that each one is exactly what its name says:
pypdf opens the valid ones in strict mode without a warning, and the broken ones are broken
in one known way.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Iterable, Mapping

from pypdf import PdfReader, PdfWriter

from vault.programmes.definition import PAGE_SIZES, Heading

#: Syllables the body text is made of; varied enough to compress like prose (about 3:1).
_SYLLABLES = ("ka", "ron", "te", "mi", "sol", "an", "der", "vi", "po", "lu", "ha", "gen",
              "tri", "bo", "nu", "sei", "ma", "ko", "ral", "fin", "du", "xe", "zo", "pri")
#: Where the first line of a page starts, and the distance between lines, in points.
_TOP = 60.0
_LEADING = 16.0


def text_pdf(pages: int, *, headings: Iterable[str | Heading] = (), size: str = "A4",
             signature: bool = False, signed: bool = False, filler_lines: int = 40,
             padding_kb: int = 0, rotate: int = 0,
             page_sizes: Mapping[int, str | tuple[float, float]] | None = None) -> bytes:
    """A proposal-like PDF: ``pages`` pages of Helvetica body text, compressed with Flate.

    ``headings`` are shown as lines of their own, heading j at the top of page j mod ``pages``
    (a :class:`Heading` by its English text; text beyond WinAnsi, Korean for instance, in a font
    whose ``/ToUnicode`` map gives the characters back to text extraction). ``size`` is a key
    of ``PAGE_SIZES``; ``page_sizes`` overrides it for some 1-based pages (a key or ``(width,
    height)``).
    ``signature`` adds an AcroForm with a signature field, ``signed`` gives it a value.
    ``padding_kb`` adds that many KB of incompressible image data, spread over the pages, for
    files of realistic size; ``rotate`` sets ``/Rotate`` on every page.
    """
    titles = [h.en if isinstance(h, Heading) else h for h in headings]
    overrides = page_sizes or {}
    signature = signature or signed
    # Objects: 1 catalog, 2 page tree, 3 font, 4 form, 5 field, 6 signature value, then for
    # page i (0-based) its page (7 + 3i), content (8 + 3i) and image (9 + 3i), then a font.
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R%s >>" % (b" /AcroForm 4 0 R" if signature else b""),
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
            b" ".join(b"%d 0 R" % (7 + 3 * i) for i in range(pages)), pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    wide = sorted({ch for title in titles if not _winansi(title) for ch in title})
    wide_font = 7 + 3 * pages  # after the pages' objects, its ToUnicode map next
    if wide:
        objects[wide_font] = _to_unicode_font(wide, wide_font + 1)
        objects[wide_font + 1] = _stream(_to_unicode_map(wide))
    if signature:
        objects[4] = b"<< /Fields [5 0 R] /SigFlags 3 >>"
        objects[5] = (b"<< /FT /Sig /T (Signature1) /Type /Annot /Subtype /Widget "
                      b"/Rect [0 0 0 0] /F 132 /P 7 0 R%s >>" % (b" /V 6 0 R" if signed else b""))
        if signed:
            objects[6] = (b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached"
                          b" /Name (Applicant) /M (D:20261201090000Z) /ByteRange [0 0 0 0]"
                          b" /Contents <%s> >>" % (b"0" * 512))
    padding = padding_kb * 1024 // pages if pages else 0
    noise = random.Random(pages * 7919 + padding_kb)  # noqa: S311 - test data, not secrets
    for index in range(pages):
        width, height = _size(overrides.get(index + 1, size))
        number = 7 + 3 * index
        content = _page_text(index, height, titles[index::pages], filler_lines, wide)
        resources = b"/Font << /F1 3 0 R%s >>" % (
            b" /F2 %d 0 R" % wide_font if wide else b"")
        if padding:
            side = max(1, int(padding**0.5))
            objects[number + 2] = _stream(
                noise.randbytes(side * side),
                b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                b"/BitsPerComponent 8" % (side, side), compress=False)
            resources += b" /XObject << /Im1 %d 0 R >>" % (number + 2)
            content += b"\nq 120 0 0 90 %d 40 cm /Im1 Do Q" % int(width - 180)
        annots = b" /Annots [5 0 R]" if signature and index == 0 else b""
        objects[number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << %s >> "
            b"/Contents %d 0 R%s%s >>" % (_num(width), _num(height), resources, number + 1,
                                         b" /Rotate %d" % rotate if rotate else b"", annots))
        objects[number + 1] = _stream(content)
    return assemble(objects)


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


def assemble(objects: Mapping[int, bytes], *, root: int = 1) -> bytes:
    """A PDF of the given numbered objects (numbers may skip) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    size = max(objects) + 1
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[number] if number in offsets
                else b"0000000000 65535 f \n")
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def _page_text(index: int, height: float, titles: list[str], lines: int,
               wide: list[str]) -> bytes:
    """The content stream of page ``index``: heading lines, then body text.

    A heading WinAnsi cannot encode is shown in font F2, character ``wide[i]`` as code i + 1.
    """
    shown = [b"BT /F1 10 Tf %d TL 72 %s Td" % (_LEADING, _num(height - _TOP))]
    for title in titles:
        if _winansi(title):
            shown.append(b"/F1 14 Tf (%s) Tj T* T* /F1 10 Tf" % _escape(title))
        else:
            codes = bytes(wide.index(ch) + 1 for ch in title)
            shown.append(b"/F2 14 Tf <%s> Tj T* T* /F1 10 Tf" % codes.hex().encode())
    for line in range(lines):
        digest = hashlib.sha256(b"%d-%d" % (index, line)).digest()
        words = [b"".join(_SYLLABLES[b % len(_SYLLABLES)].encode()
                          for b in digest[i:i + 3]) for i in range(0, 30, 3)]
        shown.append(b"(%s) Tj T*" % b" ".join(words))
    shown.append(b"ET")
    return b"\n".join(shown)


def _to_unicode_font(chars: list[str], cmap: int) -> bytes:
    """A simple font showing code i + 1 as ``chars[i]`` (drawn as Helvetica's glyphs)."""
    widths = b" ".join(b"1000" for _ in chars)
    return (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FirstChar 1 /LastChar %d "
            b"/Widths [%s] /ToUnicode %d 0 R >>" % (len(chars), widths, cmap))


def _to_unicode_map(chars: list[str]) -> bytes:
    """The ``/ToUnicode`` CMap of :func:`_to_unicode_font`."""
    if len(chars) > 255:
        raise ValueError("at most 255 characters beyond WinAnsi")
    entries = b"\n".join(b"<%02x> <%s>" % (code, ch.encode("utf-16-be").hex().encode())
                         for code, ch in enumerate(chars, start=1))
    return (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            b"1 begincodespacerange\n<01> <ff>\nendcodespacerange\n"
            b"%d beginbfchar\n%s\nendbfchar\n"
            b"endcmap CMapName currentdict /CMap defineresource pop end end" % (
                len(chars), entries))


def _winansi(text: str) -> bool:
    """Whether ``text`` can be shown in a WinAnsi-encoded standard font."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _stream(data: bytes, entries: bytes = b"", *, compress: bool = True) -> bytes:
    """A stream object's body, Flate-compressed unless ``compress`` is false."""
    if compress:
        data = zlib.compress(data, 6)
        entries += b" /Filter /FlateDecode"
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), entries.strip(), data)


def _size(size: str | tuple[float, float]) -> tuple[float, float]:
    return PAGE_SIZES[size] if isinstance(size, str) else size


def _num(value: float) -> bytes:
    """A PDF number: an integer when it is one, otherwise with up to three decimals."""
    return (b"%d" % value if float(value).is_integer()
            else (b"%.3f" % value).rstrip(b"0").rstrip(b"."))


def _escape(text: str) -> bytes:
    """``text`` as the inside of a PDF literal string in WinAnsi encoding."""
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
