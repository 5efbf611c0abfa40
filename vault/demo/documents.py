"""The demo's documents: proposal-like PDFs written by hand, and each demo consortium's set.

:func:`text_pdf` writes a PDF object by object with a correct cross-reference table, so that
pypdf opens it in strict mode without a warning: pages of compressed body text, the headings
asked for (Korean ones included, with a ``/ToUnicode`` map that gives them back to text
extraction), optionally a signature field and incompressible image data for realistic sizes.
The same arguments give the same bytes on every call.

:func:`consortium_documents` is what one demo consortium uploads (``vault init --demo`` and the
screening benchmark build the same programme from it), with a deliberate :class:`Flaw` for the
screening to find where the demo plants one.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

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
    noise = random.Random(pages * 7919 + padding_kb)  # noqa: S311 - demo data, not secrets
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


# -- each demo consortium's documents ----------------------------------------------------------

class Flaw(StrEnum):
    """A deliberate problem of one demo consortium's submission, for screening to find."""

    #: The proposal has ``OVER_LIMIT_PAGES`` pages, more than the programme allows (40).
    OVER_PAGE_LIMIT = "over-page-limit"
    #: The proposal lacks the last of the programme's required headings.
    MISSING_HEADING = "missing-heading"
    #: The last partner's letter of commitment was never uploaded.
    MISSING_LETTER = "missing-letter"
    #: The first partner's letter of commitment has no signature field at all.
    LETTER_WITHOUT_SIGNATURE = "letter-without-signature"
    #: The first partner's NDA has a signature field left empty (signed on paper): a warning.
    UNSIGNED_NDA = "unsigned-nda"
    #: Still being prepared: only the proposal and the company registration so far; a draft.
    IN_PROGRESS = "in-progress"


OVER_LIMIT_PAGES = 46
#: Image data per document at scale 1, in KB: PDFs of realistic size (100 KB to 2 MB).
_PADDING_KB = {"proposal": 1200, "budget_plan": 300, "business_registration": 120,
               "data_management_plan": 400, "letter_of_commitment": 150, "partner_nda": 250}


@dataclass(frozen=True)
class DemoDocument:
    """One file a demo consortium uploads."""

    kind: str
    #: The partner it is for: its index among the partners (list position minus one), or None.
    partner: int | None
    data: bytes

    @property
    def filename(self) -> str:
        """The name it is uploaded under, e.g. ``letter_of_commitment-partner-2.pdf``."""
        if self.partner is None:
            return f"{self.kind}.pdf"
        return f"{self.kind}-partner-{self.partner + 1}.pdf"


def consortium_documents(index: int, partners: int, headings: Sequence[Heading], *,
                         scale: float = 1.0, flaw: Flaw | None = None) -> list[DemoDocument]:
    """What the ``index``-th demo consortium, with ``partners`` partners, uploads.

    Every required document: the proposal (24 to 38 A4 pages with the programme's
    ``headings``, in Korean for every third consortium), the budget plan, the company
    registration and, per partner, a signed letter of commitment and a signed NDA; and the
    optional data management plan, left out by every fourth consortium. ``flaw`` changes them
    as it says. ``scale`` multiplies the image data: 1 gives realistic sizes (growing from one
    consortium to the next), less gives smaller files with the same pages.
    """
    def pad(kind: str, extra: int) -> int:
        return int((_PADDING_KB[kind] + extra) * scale)

    grow = index * 40  # KB
    titles = [h.ko for h in headings] if index % 3 == 2 else [h.en for h in headings]
    if flaw is Flaw.MISSING_HEADING:
        titles = titles[:-1]
    pages = OVER_LIMIT_PAGES if flaw is Flaw.OVER_PAGE_LIMIT else 24 + index * 7 % 15
    found = [DemoDocument("proposal", None, text_pdf(
                 pages, headings=titles, padding_kb=pad("proposal", grow))),
             DemoDocument("business_registration", None, text_pdf(
                 2, padding_kb=pad("business_registration", grow // 4)))]
    if flaw is Flaw.IN_PROGRESS:
        return found
    found.append(DemoDocument("budget_plan", None, text_pdf(
        8, padding_kb=pad("budget_plan", grow))))
    if index % 4 != 3:
        found.append(DemoDocument("data_management_plan", None, text_pdf(
            10, padding_kb=pad("data_management_plan", grow))))
    for partner in range(partners):
        first = partner == 0
        if not (flaw is Flaw.MISSING_LETTER and partner == partners - 1):
            found.append(DemoDocument("letter_of_commitment", partner, text_pdf(
                2, signature=not (first and flaw is Flaw.LETTER_WITHOUT_SIGNATURE),
                signed=not (first and flaw is Flaw.LETTER_WITHOUT_SIGNATURE),
                padding_kb=pad("letter_of_commitment", partner * 10))))
        found.append(DemoDocument("partner_nda", partner, text_pdf(
            6, signature=True, signed=not (first and flaw is Flaw.UNSIGNED_NDA),
            padding_kb=pad("partner_nda", grow))))
    return found
