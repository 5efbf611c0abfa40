"""What screening needs to know about one PDF, found in a limited child process.

Applicants' files are untrusted: a PDF can be damaged, encrypted, loop in its object graph or
carry a decompression bomb. :func:`analyse_pdf` runs :func:`examine_pdf` through
:func:`vault.sandbox.run_limited` (CPU, address space and wall-clock limits, no network) and
turns every way that can fail into :class:`PdfFacts` with ``unreadable`` set, so a bad file is a
finding, never an error of the server. pypdf's own limits (e.g. at most 75 MB inflated per
stream) stay at their defaults; together with the memory limit they end a bomb in well under a
second.

The facts hold no text of the document: they are stored unsealed (``pdf_analyses``) and shown
as evidence. Only numbers, the page size, the headings that were *not* found (the programme's
own text), short parser messages (with any quoted file bytes removed) and where active content
sits (kinds, page and annotation numbers, PDF key names, an embedded file's name, shortened and
without control characters) leave the child.
"""

from __future__ import annotations

import io
import json
import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject, NullObject

from vault.documents.disarm import KINDS, MAX_PLACES, ActiveContent, find_active_content
from vault.programmes.definition import PAGE_SIZE_TOLERANCE, PAGE_SIZES, Heading, PdfRules
from vault.sandbox import Limits, SandboxError, run_limited

#: Limits of one analysis: a 40-page proposal needs well under a second and 100 MB.
ANALYSIS_LIMITS = Limits(cpu_seconds=20, memory_bytes=768 * 1024**2, wall_seconds=30.0)
#: How many off-size page numbers the facts list (the count is always complete).
MAX_LISTED_PAGES = 20
#: Longest parser message kept in an "unreadable" reason.
MAX_REASON_LENGTH = 200
#: Python bytes literals in pypdf messages quote the file (``b'...'``); they are cut out.
_QUOTED_BYTES = re.compile(r"""b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


@dataclass(frozen=True)
class PdfFacts:
    """The outcome of analysing one PDF against one kind's :class:`PdfRules`."""

    #: ``None`` when the file opened; otherwise why not ("not a PDF", "damaged: ...", ...).
    unreadable: str | None
    encrypted: bool = False
    page_count: int | None = None
    #: The size of the first page off ``rules.page_size``, or of page 1 ("595×842 pt").
    page_size: str | None = None
    #: 1-based numbers of (at most the first 20) pages whose size is not ``rules.page_size``.
    off_size_pages: tuple[int, ...] = ()
    off_size_count: int = 0
    #: The rules' headings of which neither language's text occurs in the document.
    headings_missing: tuple[Heading, ...] = ()
    has_signature_field: bool = False
    #: A signature field has a value (``/V``): the document was signed.
    signed: bool = False
    #: Each kind of active content found (scripts, actions, embedded files...) and where.
    active_content: tuple[ActiveContent, ...] = ()

    def to_json(self) -> str:
        """The facts as compact JSON (for the ``pdf_analyses`` cache)."""
        return json.dumps({
            "unreadable": self.unreadable, "encrypted": self.encrypted,
            "page_count": self.page_count, "page_size": self.page_size,
            "off_size_pages": list(self.off_size_pages), "off_size_count": self.off_size_count,
            "headings_missing": [[h.ko, h.en] for h in self.headings_missing],
            "has_signature_field": self.has_signature_field, "signed": self.signed,
            "active_content": [[a.kind, a.count, list(a.places)] for a in self.active_content],
        }, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PdfFacts:
        """Facts from :meth:`to_json`; raises ValueError if ``text`` is not such JSON.

        Facts cached before active content was looked for lack its key and are refused (so
        analysed again), never read as "none found".
        """
        try:
            raw = json.loads(text)
            facts = cls(
                unreadable=_typed(raw["unreadable"], str, optional=True),
                encrypted=_typed(raw["encrypted"], bool),
                page_count=_typed(raw["page_count"], int, optional=True),
                page_size=_typed(raw["page_size"], str, optional=True),
                off_size_pages=tuple(_typed(n, int) for n in raw["off_size_pages"]),
                off_size_count=_typed(raw["off_size_count"], int),
                headings_missing=tuple(Heading(ko=_typed(ko, str), en=_typed(en, str))
                                       for ko, en in raw["headings_missing"]),
                has_signature_field=_typed(raw["has_signature_field"], bool),
                signed=_typed(raw["signed"], bool),
                active_content=tuple(_active(item) for item in raw["active_content"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not PDF facts: {exc}") from None
        return facts


def analyse_pdf(data: bytes, rules: PdfRules, *, limits: Limits = ANALYSIS_LIMITS) -> PdfFacts:
    """The facts of ``data`` against ``rules``, found in a limited child process.

    Never raises for bad input: a file that is no PDF, damaged, too costly to read (a limit or
    the timeout hit) or that crashes the child gives facts whose ``unreadable`` says why.
    """
    try:
        text = run_limited(examine_pdf, data, rules, cpu_seconds=limits.cpu_seconds,
                           memory_bytes=limits.memory_bytes, wall_seconds=limits.wall_seconds)
    except SandboxError as exc:
        return PdfFacts(unreadable=exc.reason)
    try:
        # The child parsed untrusted input: its answer is checked, not taken on trust.
        return PdfFacts.from_json(text if isinstance(text, str) else "")
    except ValueError:
        return PdfFacts(unreadable="failed: the analysis gave no facts")


def examine_pdf(data: bytes, rules: PdfRules) -> str:
    """In the child: :func:`facts_of` as JSON (for :func:`analyse_pdf`; run it only there)."""
    return facts_of(data, rules).to_json()


def facts_of(data: bytes, rules: PdfRules) -> PdfFacts:
    """The facts of ``data`` against ``rules``, in this process: only for a limited child.

    A ``MemoryError`` is left to the sandbox (it reports "memory limit exceeded"); any other
    failure of the parser means the file is damaged.
    """
    # Outside the parser's ``try``: a rule naming an unknown size is a bug, not a damaged file.
    wanted = PAGE_SIZES[rules.page_size] if rules.page_size else None
    if not data.startswith(b"%PDF-"):
        return PdfFacts(unreadable="not a PDF")
    # pypdf logs and warns about oddities it tolerates; the child's stderr is the server's, and
    # its messages can quote the file.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _read(PdfReader(io.BytesIO(data), strict=True), rules, wanted)
    except MemoryError:
        raise
    except RecursionError:
        return PdfFacts(unreadable="damaged: the object graph nests too deeply or loops")
    except Exception as exc:  # the parser's errors on untrusted input are many and untyped
        return PdfFacts(unreadable=f"damaged: {_short(exc)}")


def _read(reader: PdfReader, rules: PdfRules, wanted: tuple[float, float] | None) -> PdfFacts:
    """The facts of an opened PDF; ``wanted`` is the page size the rules ask for."""
    if reader.is_encrypted:
        # Not decrypted, not even with an empty password: the rule is "not encrypted".
        return PdfFacts(unreadable=None, encrypted=True)
    pages = reader.pages
    page_count = len(pages)
    if not page_count:
        # pypdf reads a page tree whose kids are no pages as empty: nothing to screen.
        return PdfFacts(unreadable="damaged: no pages")
    first_size: str | None = None
    off_size: list[int] = []
    needles = {h: _needles(h) for h in rules.headings}
    missing = [h for h in rules.headings if needles[h]]
    for number, page in enumerate(pages, start=1):
        box = page.mediabox
        width, height = abs(float(box.width)), abs(float(box.height))
        if page.rotation % 180 == 90:
            width, height = height, width
        if number == 1:
            first_size = _size_label(width, height)
        if wanted is not None and not _matches(width, height, wanted):
            if not off_size:
                first_size = _size_label(width, height)
            off_size.append(number)
        # Decoding every content stream proves the pages readable (and trips a bomb) even
        # when no heading is looked for; it costs microseconds per page, text extraction ms.
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
        if missing:
            text = _normalise(page.extract_text())
            missing = [h for h in missing if not any(n in text for n in needles[h])]
    has_field, signed = _signature(reader)
    return PdfFacts(
        unreadable=None, page_count=page_count, page_size=first_size,
        off_size_pages=tuple(off_size[:MAX_LISTED_PAGES]), off_size_count=len(off_size),
        headings_missing=tuple(missing),
        has_signature_field=has_field, signed=signed,
        active_content=find_active_content(reader))


def _signature(reader: PdfReader) -> tuple[bool, bool]:
    """Whether the form has a signature field, and whether one has a value.

    ``/FT`` is inherited by a field's kids; every object is visited once, so a field tree that
    loops (a kid naming its ancestor) ends.
    """
    form = _resolve(reader.root_object.get("/AcroForm"))
    if not isinstance(form, DictionaryObject):
        return False, False
    pending: list[tuple[Any, Any]] = [(field, None) for field in _items(form.get("/Fields"))]
    seen: set[tuple[int, int]] = set()
    has_field = signed = False
    while pending:
        item, inherited = pending.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
        node = _resolve(item)
        if not isinstance(node, DictionaryObject):
            continue
        kind = node.get("/FT", inherited)
        if kind == "/Sig":
            has_field = True
            value = node.get("/V")
            signed = signed or not (value is None or isinstance(_resolve(value), NullObject))
        pending.extend((kid, kind) for kid in _items(node.get("/Kids")))
    return has_field, signed


def _resolve(item: Any) -> Any:
    """The object an indirect reference points to (or the item itself)."""
    return item.get_object() if isinstance(item, IndirectObject) else item


def _items(value: Any) -> list[Any]:
    """The entries of an array (resolved once), or none if ``value`` is not an array."""
    value = _resolve(value)
    return list(value) if isinstance(value, list) else []


def _matches(width: float, height: float, wanted: tuple[float, float]) -> bool:
    """Whether a page is ``wanted`` in either orientation, within the tolerance."""
    return any(abs(width - w) <= PAGE_SIZE_TOLERANCE and abs(height - h) <= PAGE_SIZE_TOLERANCE
               for w, h in (wanted, wanted[::-1]))


def _size_label(width: float, height: float) -> str:
    """A page size as shown to people, e.g. "595×842 pt" (as displayed, rotation applied)."""  # noqa: RUF002
    return f"{round(width)}×{round(height)} pt"


def _normalise(text: str) -> str:
    """Text compared for headings: NFKC, case-folded, without any whitespace.

    Whitespace is dropped rather than collapsed because text extraction splits and joins words
    unpredictably (a heading laid out glyph by glyph comes out with spaces inside words, and
    Korean spacing varies); a heading then still matches.
    """
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _needles(heading: Heading) -> tuple[str, ...]:
    """A heading's texts as compared, leaving out empty ones (which would match anything)."""
    return tuple(n for n in (_normalise(heading.ko), _normalise(heading.en)) if n)


def _short(exc: Exception) -> str:
    """A parser error as a short reason, without quoted bytes of the file."""
    message = _QUOTED_BYTES.sub("b'…'", str(exc))
    message = " ".join(message.split()) or type(exc).__name__
    if not _is_pypdf(exc):
        message = f"{type(exc).__name__}: {message}"
    if len(message) > MAX_REASON_LENGTH:
        message = message[: MAX_REASON_LENGTH - 1] + "…"
    return message


def _is_pypdf(exc: Exception) -> bool:
    """Whether pypdf raised ``exc`` on purpose (its own error types say what is wrong)."""
    return type(exc).__module__.startswith("pypdf")


def _active(item: Any) -> ActiveContent:
    """One kind of active content from its JSON ``[kind, count, [places]]``."""
    kind, count, places = item
    if _typed(kind, str) not in KINDS or _typed(count, int) < 1 \
            or not 0 < len(_typed(places, list)) <= min(count, MAX_PLACES):
        raise ValueError(f"not active content: {item!r}")
    return ActiveContent(kind, count, tuple(_typed(place, str) for place in places))


def _typed(value: Any, kind: type, *, optional: bool = False) -> Any:
    """``value`` if it is of ``kind`` (bool is no int here), else raise ValueError."""
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
