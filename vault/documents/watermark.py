"""Per-reviewer PDF watermarks: one shared form XObject drawn on top of every page.

Every copy of a PDF that a reviewer opens or downloads carries who it was issued to, when, and
a short code naming the audit event, so a leaked copy can be traced. The stamp is built once per
request as a form XObject and every page draws that same object, so the file grows by a few
hundred bytes plus a little per page, whatever the page count.

Latin text is set in Helvetica, a standard font every viewer has. Anything else (a Korean
name) is drawn with a subset of Nanum Gothic embedded in the copy: only the glyphs the stamp
uses, a few kilobytes, so every viewer shows the name whether or not it has Korean fonts. A
character that neither font has is drawn as "?", never as a gap.

The input is untrusted (uploaded by applicants): run :func:`stamp_pdf` through
:func:`stamp_pdf_limited` (a child process with CPU, memory and time limits) in the web layer.
This module is pure Python (pypdf, fontTools) and works on bytes in memory; it reads the
packaged font file and writes nothing to disk.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources

from fontTools import subset as font_subset
from fontTools.ttLib import TTFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

from vault.documents.disarm import disarm
from vault.errors import DomainError
from vault.sandbox import Limits, run_limited

#: Changes whenever the stamper may now accept a file an earlier one refused (a refusal kept
#: by an older stamper is tried again): 2 = rebuilt without active content, fonts embedded.
STAMPER_VERSION = "2"
#: Font sizes of the two stamp lines in the form's own units (the page matrix scales them).
_SIZES = (20.0, 14.0)
#: Baseline-to-baseline distance between the lines, in form units.
_LEADING = 21.0
#: The stamp's rotated bounding box fills at most this share of the visible page...
_FILL = 0.85
#: ...and its first line is at most this share of the page's shorter side tall.
_MAX_LINE = 0.075
#: Helvetica advance widths (1/1000 em) of ASCII 32..126, from Adobe's Core 14 AFM files.
_HELVETICA = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722,
    667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944,
    667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222,
    500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334,
    584,
)
#: Graphics-state levels put around the page's own content (see ``_stamp_pages``).
_WRAP = 4
#: The OFL font whose glyphs are embedded for what Helvetica cannot show (see fonts/README.md):
#: all 11,172 Hangul syllables, the Hanja, kana, Greek, Cyrillic and symbols of KS X 1001.
_FONT_FILE = "NanumGothic.ttf"
#: How many font subsets (one per set of characters, in practice per reader) a process keeps.
_SUBSETS_KEPT = 256
#: The subsets cut in this process, oldest first (see ``_subset``); web threads share them.
_SUBSETS: dict[frozenset[str], _Subset | None] = {}
_SUBSETS_LOCK = threading.Lock()


class WatermarkError(DomainError):
    """The file cannot be stamped: not a readable PDF, encrypted, or without pages. Such a
    file is never released unstamped."""

    status = 422
    code = "not_watermarkable"


@dataclass(frozen=True)
class Stamp:
    """Who a copy is issued to, when, and the code of the audit event that issued it."""

    name: str
    user_id: str
    issued_at: datetime
    code: str

    def __post_init__(self) -> None:
        if self.issued_at.utcoffset() is None:
            raise ValueError("Stamp.issued_at must be timezone-aware")

    def lines(self) -> tuple[str, str]:
        """The two lines of text drawn on every page."""
        when = self.issued_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (f"Confidential - issued to {self.name} ({self.user_id})",
                f"{when} - copy {self.code}")


def stamp_pdf(data: bytes, stamp: Stamp) -> bytes:
    """The pages of the PDF ``data``, without active content (:func:`disarm`), with ``stamp``
    drawn over every page; raises :class:`WatermarkError`."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise WatermarkError("The PDF is encrypted or password-protected.")
        if len(reader.pages) == 0:
            raise WatermarkError("The PDF has no pages.")
        # A new document rebuilt from the pages, never the original with a stamp added: no
        # script, action or embedded file reaches the reader, and no unstamped revision is left
        # in the file (recoverable by cutting it at the first %%EOF).
        writer = disarm(reader)
        form, bbox = _form(writer, stamp)
        _stamp_pages(writer, form, bbox)
        out = io.BytesIO()
        writer.write(out)
    except (WatermarkError, MemoryError):
        raise
    except Exception as exc:
        # Malformed input makes pypdf fail in many ways (PdfReadError, but also KeyError,
        # ValueError, RecursionError...): each means the same thing, this file can't be stamped.
        raise WatermarkError("The file is not a readable PDF ({problem}).",
                             problem=type(exc).__name__) from exc
    return out.getvalue()


def stamp_pdf_limited(data: bytes, stamp: Stamp, *, limits: Limits | None = None) -> bytes:
    """:func:`stamp_pdf` in a limited child process; raises WatermarkError or SandboxError."""
    limits = limits or Limits()
    # The font subset depends only on the reader's name and the packaged font, never on the
    # untrusted file, so it is cut here, where it is kept for the process's next copies for
    # the same reader, and handed to the child (a fresh process that would cut it again).
    chars = _font_chars(stamp)
    fonts = {chars: _subset(chars)} if chars else {}
    return run_limited(_stamp_with_fonts, data, stamp, fonts, cpu_seconds=limits.cpu_seconds,
                       memory_bytes=limits.memory_bytes, wall_seconds=limits.wall_seconds,
                       passthrough=(WatermarkError,))


def _stamp_with_fonts(data: bytes, stamp: Stamp, fonts: dict[frozenset[str], _Subset | None]
                      ) -> bytes:
    """In the sandboxed child: :func:`stamp_pdf` with the font subsets the parent has cut."""
    with _SUBSETS_LOCK:
        _SUBSETS.update(fonts)
    return stamp_pdf(data, stamp)


# -- the form XObject --------------------------------------------------------------------

def _clean(text: str) -> str:
    """``text`` with controls, format characters and characters beyond the BMP as ``?``."""
    return "".join("?" if ord(ch) > 0xFFFF or unicodedata.category(ch)[0] == "C" else ch
                   for ch in text)


def _winansi(ch: str) -> bytes | None:
    """``ch`` in Helvetica's WinAnsi encoding, or None if Helvetica cannot show it."""
    try:
        return ch.encode("cp1252")
    except UnicodeEncodeError:
        return None


def _latin_width(ch: str) -> int:
    """Helvetica width of a WinAnsi character (accented letters as their base letter)."""
    base = unicodedata.normalize("NFD", ch)[0]
    return _HELVETICA[ord(base) - 32] if 32 <= ord(base) < 127 else 556


def _runs(text: str, subset: _Subset | None) -> list[tuple[str, bytes, float]]:
    """``text`` split into (font, encoded bytes, width in em) runs.

    WinAnsi characters use Helvetica (/F1); the others the embedded ``subset`` (/F2), whose
    Identity-H encoding takes two-byte glyph ids, at their real advances. A character neither
    has is drawn as "?": a reader sees that something is there, never a gap.
    """
    runs: list[tuple[str, bytes, float]] = []
    for ch in text:
        code = _winansi(ch)
        if code is not None:
            font, width = "/F1", _latin_width(ch) / 1000
        elif subset is not None and ch in subset.glyphs:
            glyph = subset.glyphs[ch]
            code, font, width = glyph.to_bytes(2, "big"), "/F2", subset.widths[glyph] / 1000
        else:
            code, font, width = b"?", "/F1", _latin_width("?") / 1000
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + code, runs[-1][2] + width)
        else:
            runs.append((font, code, width))
    return runs


def _font_chars(stamp: Stamp) -> frozenset[str]:
    """The characters of the stamp that Helvetica cannot show (the embedded font's job)."""
    return frozenset(ch for line in stamp.lines() for ch in _clean(line) if _winansi(ch) is None)


def _form(writer: PdfWriter, stamp: Stamp) -> tuple[IndirectObject, tuple[float, ...]]:
    """The stamp as a form XObject in ``writer``: two centred lines of grey text, and its box."""
    chars = _font_chars(stamp)
    subset = _subset(chars) if chars else None
    lines = [_runs(_clean(line), subset) for line in stamp.lines()]
    widths = [sum(width for _, _, width in runs) * size
              for runs, size in zip(lines, _SIZES, strict=True)]
    # Vertical extent from the line-2 descender to the line-1 ascender, centred on 0.
    bottom, top = -0.25 * _SIZES[1], _LEADING + 0.9 * _SIZES[0]
    shift = -(bottom + top) / 2
    ops = [b"q /VaultGS gs 0.45 g BT"]
    for runs, size, width, y in zip(lines, _SIZES, widths, (_LEADING + shift, shift), strict=True):
        ops.append(f"1 0 0 1 {_num(-width / 2)} {_num(y)} Tm".encode())
        for font, code, _ in runs:
            ops.append(f"{font} {_num(size)} Tf <".encode() + code.hex().encode() + b"> Tj")
    ops.append(b"ET Q")
    half_width, half_height = max(widths) / 2 + 2, (top - bottom) / 2 + 2
    fonts: dict[str, PdfObject] = {"/F1": _add(writer, _pdf({
        # A standard-14 font: every viewer has it, nothing is embedded.
        "/Type": "/Font", "/Subtype": "/Type1", "/BaseFont": "/Helvetica",
        "/Encoding": "/WinAnsiEncoding"}))}
    if subset is not None:
        fonts["/F2"] = _embed(writer, subset)
    bbox = (-half_width, -half_height, half_width, half_height)
    form = _stream(b"\n".join(ops), {
        "/Type": "/XObject", "/Subtype": "/Form", "/BBox": bbox,
        "/Resources": {"/Font": fonts, "/ExtGState": {"/VaultGS": {
            "/Type": "/ExtGState", "/ca": 0.35}}},  # see-through: never hides the page
    })
    return _add(writer, form), bbox


def _add(writer: PdfWriter, obj: PdfObject) -> IndirectObject:
    """``obj`` as a new indirect object of ``writer`` (pypdf has no public call for this)."""
    return writer._add_object(obj)


# -- the embedded font -------------------------------------------------------------------

@dataclass(frozen=True)
class _Subset:
    """A TrueType program holding only the glyphs a stamp draws, and its metrics for PDF.

    Lengths are in 1/1000 em, as PDF font dictionaries want them.
    """

    program: bytes
    name: str  # the PostScript name with its subset tag, e.g. "KQWZRB+NanumGothic"
    glyphs: dict[str, int]  # character -> glyph id in ``program``
    widths: dict[int, int]  # glyph id -> advance width
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int


@lru_cache(maxsize=1)
def _font_file() -> bytes:
    """The packaged font file (4.7 MB), read once per process."""
    return resources.files(__package__).joinpath("fonts", _FONT_FILE).read_bytes()


def _subset(chars: frozenset[str]) -> _Subset | None:
    """The embedded font cut down to those of ``chars`` it can draw; None if it has none.

    Kept per process (the last :data:`_SUBSETS_KEPT` sets of characters): cutting one takes
    about 60 ms of CPU and 20 MB while it runs (``bench/watermark_font.py``), the result is a
    few kilobytes. Caching the parsed font instead would not pay: subsetting a font parsed in
    advance still takes about 45 ms, and a font parsed by the sandbox's fork server would add
    46 MB to the address space of every child (screening's too), counted against its limit.
    """
    with _SUBSETS_LOCK:
        if chars in _SUBSETS:
            return _SUBSETS[chars]
    subset = _cut(chars)
    with _SUBSETS_LOCK:
        _SUBSETS[chars] = subset
        while len(_SUBSETS) > _SUBSETS_KEPT:
            del _SUBSETS[next(iter(_SUBSETS))]  # the oldest first
    return subset


def _cut(chars: frozenset[str]) -> _Subset | None:
    """:func:`_subset` without the cache."""
    font = TTFont(io.BytesIO(_font_file()), lazy=True, recalcTimestamp=False)
    cmap, glyf = font.getBestCmap(), font["glyf"]
    # A glyph without contours draws nothing: some fonts map characters they do not design to
    # an empty glyph. Only spaces may be empty; anything else then falls back to "?".
    drawable = {ch for ch in chars if ord(ch) in cmap
                and (glyf[cmap[ord(ch)]].numberOfContours != 0 or ch.isspace())}
    if not drawable:
        return None
    options = font_subset.Options()
    options.hinting = False  # hints are for screen pixels at small sizes; the stamp is large
    options.layout_features = []  # precomposed syllables need no shaping
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # keeps the copyright notice and the names
    # No PDF viewer reads these from an embedded font (TSI*: the font maker's hinting sources).
    options.drop_tables += ["kern", "gasp", "TSI0", "TSI1", "TSI2", "TSI3", "TSI5"]
    subsetter = font_subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(ch) for ch in sorted(drawable)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    cmap, order = font.getBestCmap(), font.getGlyphOrder()
    ids = {glyph: number for number, glyph in enumerate(order)}
    scale = 1000 / font["head"].unitsPerEm
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    # The tag is six capitals derived from the characters: the same subset gets the same name
    # (stamped copies stay reproducible) and different subsets get different ones.
    digest = hashlib.sha256("".join(sorted(drawable)).encode()).digest()
    tag = "".join(chr(ord("A") + byte % 26) for byte in digest[:6])
    return _Subset(
        program=out.getvalue(),
        name=f"{tag}+{font['name'].getDebugName(6) or 'NanumGothic'}",
        glyphs={ch: ids[cmap[ord(ch)]] for ch in drawable},
        widths={ids[glyph]: round(font["hmtx"][glyph][0] * scale) for glyph in order},
        bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
        ascent=round(hhea.ascent * scale), descent=round(hhea.descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", 0) * scale) or round(hhea.ascent * scale))


def _embed(writer: PdfWriter, subset: _Subset) -> IndirectObject:
    """``subset`` as a Type0 font (Identity-H, a CIDFontType2 descendant) in ``writer``.

    Codes are glyph ids, /W gives each glyph's advance, and the /ToUnicode CMap maps each
    glyph back to its character, so text extraction (and copy and paste) gives the name as
    written.
    """
    by_glyph: dict[int, str] = {}
    for ch in sorted(subset.glyphs):  # one character per glyph, the lowest if several share it
        by_glyph.setdefault(subset.glyphs[ch], ch)
    pairs = [f"<{glyph:04X}> <{ch.encode('utf-16-be').hex().upper()}>"
             for glyph, ch in sorted(by_glyph.items())]
    blocks = [f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar"
              for chunk in (pairs[i:i + 100] for i in range(0, len(pairs), 100))]
    to_unicode = "\n".join([
        "/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
        "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange", *blocks,
        "endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end",
    ]).encode()
    program = _stream(subset.program, {"/Length1": len(subset.program)})
    descriptor = _add(writer, _pdf({
        # Flags 4 (symbolic): the glyphs are outside the standard Latin set.
        "/Type": "/FontDescriptor", "/FontName": "/" + subset.name, "/Flags": 4,
        "/FontBBox": subset.bbox, "/ItalicAngle": 0, "/Ascent": subset.ascent,
        "/Descent": subset.descent, "/CapHeight": subset.cap_height, "/StemV": 80,
        "/FontFile2": _add(writer, program)}))
    glyphs = sorted(subset.widths)
    return _add(writer, _pdf({
        "/Type": "/Font", "/Subtype": "/Type0", "/BaseFont": "/" + subset.name,
        "/Encoding": "/Identity-H",
        "/DescendantFonts": [_add(writer, _pdf({
            "/Type": "/Font", "/Subtype": "/CIDFontType2", "/BaseFont": "/" + subset.name,
            "/CIDSystemInfo": {"/Registry": "Adobe", "/Ordering": "Identity", "/Supplement": 0},
            "/FontDescriptor": descriptor, "/CIDToGIDMap": "/Identity",
            # One run of consecutive glyph ids (the subset numbers them 0..n-1).
            "/W": [glyphs[0], [subset.widths[glyph] for glyph in glyphs]],
        }))],
        "/ToUnicode": _add(writer, _stream(to_unicode, {})),
    }))


def _pdf(value: object) -> PdfObject:
    """A PDF object from plain Python: "/X" is a name, other strings text, dicts dictionaries,
    lists and tuples arrays; PDF objects stay as they are."""
    if isinstance(value, PdfObject):
        return value
    if isinstance(value, dict):
        return DictionaryObject({NameObject(key): _pdf(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return ArrayObject(_pdf(item) for item in value)
    if isinstance(value, str):
        return NameObject(value) if value.startswith("/") else TextStringObject(value)
    if isinstance(value, int):
        return NumberObject(value)
    return FloatObject(_num(float(value)))


def _stream(content: bytes, entries: dict[str, object]) -> StreamObject:
    """A stream with ``entries``, Flate-compressed unless that makes it larger."""
    stream = DecodedStreamObject()
    stream.update(_pdf(entries))
    stream.set_data(content)
    packed = stream.flate_encode(level=9)
    return packed if len(packed.get_data()) + 20 < len(content) else stream


def _num(value: float) -> str:
    """A number as PDF content wants it: short, no exponent."""
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


# -- placing it on the pages -------------------------------------------------------------

def _stamp_pages(writer: PdfWriter, form: IndirectObject,
                 bbox: tuple[float, ...]) -> None:
    """Make every page draw ``form`` last, above its own content, sized for the page."""
    pages = writer.pages
    name = _free_name(pages)
    shared: dict[bytes, IndirectObject] = {}

    def stream(content: bytes) -> IndirectObject:
        # Pages of one geometry share the same small streams: one object each.
        if content not in shared:
            shared[content] = _add(writer, _stream(content, {}))
        return shared[content]

    for number, page in enumerate(pages, start=1):
        _register(page, name, form)
        matrix = _placement(page, bbox, number)
        draw = (b"/Artifact <</Type /Pagination /Subtype /Watermark>> BDC q "
                + " ".join(_num(v) for v in matrix).encode()
                + b" cm " + name.encode() + b" Do Q EMC\n")
        contents = [ref if isinstance(ref, IndirectObject) else _add(writer, ref)
                    for ref in _content_refs(page)]
        # The page's own content runs inside q ... Q, so nothing it does to the graphics state
        # (a clip, a transformation, a white fill) reaches the stamp. Four levels, not one:
        # some producers leave a q open or close one they never opened. With up to three of
        # those, our last Q still restores a state saved by one of our own q: the page's
        # initial state. (Counting them exactly would mean decoding and scanning every content
        # stream, a third of the stamping time.)
        page[NameObject("/Contents")] = ArrayObject(
            [stream(b"q " * _WRAP + b"\n"), *contents, stream(b"Q " * _WRAP + b"\n" + draw)]
            if contents else [stream(draw)])


def _free_name(pages: list) -> str:
    """An XObject resource name that no page uses yet (a re-uploaded stamped copy would)."""
    used: set[str] = set()
    for page in pages:
        xobjects = _entry(_entry(page, "/Resources"), "/XObject")
        if isinstance(xobjects, DictionaryObject):
            used.update(xobjects.keys())
    name, counter = "/VaultWm", 0
    while name in used:
        counter += 1
        name = f"/VaultWm{counter}"
    return name


def _register(page: DictionaryObject, name: str, form: IndirectObject) -> None:
    """Add ``name`` -> ``form`` to the page's XObject resources.

    The resources may be shared with other pages (inherited from the page tree, or one
    indirect dictionary for all pages). Adding the entry there is safe: the name is unused
    everywhere and means the same object for every page, and each page gets stamped anyway.
    """
    resources = _entry(page, "/Resources")
    if not isinstance(resources, DictionaryObject):
        resources = DictionaryObject()
        page[NameObject("/Resources")] = resources
    xobjects = _entry(resources, "/XObject")
    if not isinstance(xobjects, DictionaryObject):
        xobjects = DictionaryObject()
        resources[NameObject("/XObject")] = xobjects
    xobjects[NameObject(name)] = form


def _content_refs(page: DictionaryObject) -> list[PdfObject]:
    """The page's content streams, as references in drawing order."""
    raw = page.raw_get("/Contents") if "/Contents" in page else None
    resolved = _entry(page, "/Contents")
    if isinstance(resolved, ArrayObject):
        return [ref for ref in resolved if isinstance(ref.get_object(), StreamObject)]
    return [raw] if isinstance(resolved, StreamObject) else []


def _placement(page: DictionaryObject, bbox: tuple[float, ...],
               number: int) -> tuple[float, ...]:
    """The matrix putting the form, centred and upright, along the visible page's diagonal."""
    left, bottom, right, top = _visible_box(page, number)
    rotate = _rotation(page)
    width, height = right - left, top - bottom
    if rotate in (90, 270):
        width, height = height, width  # as the reader sees the page
    form_width, form_height = bbox[2] - bbox[0], bbox[3] - bbox[1]
    angle = math.atan2(height, width)
    cos, sin = math.cos(angle), math.sin(angle)
    scale = min(_FILL * width / (form_width * cos + form_height * sin),
                _FILL * height / (form_width * sin + form_height * cos),
                _MAX_LINE * min(width, height) / _SIZES[0])
    centre_x, centre_y = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    # Form -> upright view: move the form's centre to 0, rotate to the diagonal, scale,
    # move to the view's centre.
    a, b, c, d = scale * cos, scale * sin, -scale * sin, scale * cos
    e = width / 2 - (a * centre_x + c * centre_y)
    f = height / 2 - (b * centre_x + d * centre_y)
    # Upright view -> user space: undo the page's /Rotate (shown turned clockwise).
    view = {
        0: (1, 0, 0, 1, left, bottom),
        90: (0, 1, -1, 0, right, bottom),
        180: (-1, 0, 0, -1, right, top),
        270: (0, -1, 1, 0, left, top),
    }[rotate]
    return _multiply((a, b, c, d, e, f), view)


def _visible_box(page: DictionaryObject, number: int) -> tuple[float, float, float, float]:
    """The crop box clipped to the media box (what a viewer shows), normalised."""
    media = _rectangle(_entry(page, "/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _rectangle(_entry(page, "/CropBox")) or media
    box = (max(media[0], crop[0]), max(media[1], crop[1]),
           min(media[2], crop[2]), min(media[3], crop[3]))
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        box = media
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        # Fail closed: a page we cannot place the stamp on is not delivered unstamped.
        raise WatermarkError("Page {number} has an empty page box.", number=number)
    return box


def _entry(dictionary: PdfObject | None, key: str) -> PdfObject | None:
    """``dictionary[key]``, following a reference; None if absent or not a dictionary.

    (pypdf's ``get`` returns references unresolved, unlike its ``[]``.)
    """
    if not isinstance(dictionary, DictionaryObject):
        return None
    value = dictionary.get(key)
    return None if value is None else value.get_object()


def _rotation(page: DictionaryObject) -> int:
    """The page's /Rotate as 0, 90, 180 or 270 (viewers ignore a value that is none of them)."""
    try:
        rotate = int(_entry(page, "/Rotate") or 0) % 360
    except (TypeError, ValueError):
        return 0
    return rotate if rotate in (0, 90, 180, 270) else 0


def _rectangle(value: object) -> tuple[float, float, float, float] | None:
    """A page box as (left, bottom, right, top), or None if it is not four numbers."""
    if not isinstance(value, ArrayObject) or len(value) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(v.get_object()) for v in value)
    except (TypeError, ValueError):
        return None
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _multiply(m: tuple[float, ...], n: tuple[float, ...]) -> tuple[float, ...]:
    """The PDF matrix product m x n (apply m, then n)."""
    return (m[0] * n[0] + m[1] * n[2], m[0] * n[1] + m[1] * n[3],
            m[2] * n[0] + m[3] * n[2], m[2] * n[1] + m[3] * n[3],
            m[4] * n[0] + m[5] * n[2] + n[4], m[4] * n[1] + m[5] * n[3] + n[5])
