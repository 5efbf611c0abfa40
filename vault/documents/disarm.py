"""Content disarm and reconstruction: a copy of a PDF that can show its pages and do nothing else.

An applicant's PDF may carry JavaScript, actions that launch programs, open web addresses or
other files, submit forms or play media, and files embedded in it. A copy handed to anyone
outside the consortium must carry none of it, so :func:`disarm` does not clean the original: it
builds a new document from the pages, carrying over only what is on an allowlist, and
:func:`find_active_content` names what the original held, for screening.

What a rebuilt copy keeps:

* a catalog with the page tree, and at most ``/PageLabels`` and ``/Lang`` (no ``/OpenAction``,
  ``/AA``, ``/Names``, ``/AcroForm``, ``/URI``, ``/OCProperties``...);
* per page its boxes, ``/Rotate``, ``/UserUnit``, ``/Group``, ``/Resources`` and ``/Contents``
  (content, images and fonts), inherited attributes resolved;
* the outline (bookmarks): titles, with a destination only where it is a page of the copy;
* annotations of the kinds that only draw (markup, stamps, the appearance of form widgets, but
  no field behind them) with an allowlist of keys, and links *within* the copy: a link whose
  destination is a page of this document is rewritten to a plain ``/Dest`` naming the rebuilt
  page. Such a link moves the view and nothing else (no code, no file, no network), and tables
  of contents keep working; every other link is dropped.

Everything that is carried over is copied object by object, and the copy drops on its way any
action dictionary, file specification, embedded file, script, XFA, rich media or 3D dictionary,
and the keys that hold them, wherever they hide (a form XObject's dictionary, an appearance
stream, an annotation's ``/MK``...). Objects reachable only from older revisions of an
incrementally updated file, or from nowhere, are never copied.

The input is untrusted: run this only in a limited child process (the stamper does).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    EncodedStreamObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

# The allowlists are tuples, not sets: the copy's bytes must not depend on the hash seed.
#: Catalog entries a rebuilt copy keeps (besides its own /Type and /Pages).
CATALOG_KEYS = ("/PageLabels", "/Lang")
#: Page entries a rebuilt copy keeps (/Annots is rebuilt separately).
PAGE_KEYS = ("/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox", "/Rotate",
             "/UserUnit", "/Group", "/Resources", "/Contents")
#: Page entries inherited from the page tree.
INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
#: Annotations that only draw; any other subtype is dropped.
ANNOTATIONS = frozenset({"/Text", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon",
                         "/PolyLine", "/Highlight", "/Underline", "/Squiggly", "/StrikeOut",
                         "/Stamp", "/Caret", "/Ink", "/Widget", "/Watermark", "/Link"})
#: Annotation entries kept: geometry, appearance and the markup's own text. Not kept: /A, /AA,
#: /P, /Popup, /Parent, /IRT, field entries (/FT, /V, /Ff, /Kids...), /FS, /StructParent.
ANNOTATION_KEYS = ("/Type", "/Subtype", "/Rect", "/Contents", "/NM", "/M", "/F", "/AP", "/AS",
                   "/Border", "/C", "/BS", "/BE", "/CA", "/QuadPoints", "/InkList",
                   "/Vertices", "/L", "/LE", "/IC", "/RD", "/DA", "/Q", "/DS", "/Name", "/T",
                   "/Subj", "/CreationDate", "/H", "/MK", "/BM", "/LL", "/LLE", "/LLO", "/CL",
                   "/IT")
#: Action types (``/S``) and the kind of active content each is reported as. A plain /GoTo
#: moves within the document and is not active content; in a copy it survives only as a
#: link's rewritten /Dest.
ACTIONS: dict[str, str | None] = {
    "/JavaScript": "javascript", "/Launch": "launch", "/URI": "uri",
    "/GoToR": "remote_goto", "/GoToE": "remote_goto", "/SubmitForm": "submit_form",
    "/ImportData": "import_data", "/ResetForm": "reset_form",
    "/Rendition": "rich_media", "/Sound": "rich_media", "/Movie": "rich_media",
    "/RichMediaExecute": "rich_media", "/GoTo3DView": "three_d",
    "/Hide": "other_action", "/Named": "other_action", "/SetOCGState": "other_action",
    "/Trans": "other_action", "/Thread": "other_action", "/GoToDp": "other_action",
    "/GoTo": None,
}
#: Annotation subtypes that are active content in themselves.
ACTIVE_ANNOTATIONS = {"/FileAttachment": "embedded_file", "/RichMedia": "rich_media",
                      "/Screen": "rich_media", "/Movie": "rich_media", "/Sound": "rich_media",
                      "/3D": "three_d"}
#: The kinds of active content, in the order screening reports them.
KINDS = ("javascript", "launch", "uri", "remote_goto", "submit_form", "import_data",
         "reset_form", "embedded_file", "xfa", "rich_media", "three_d", "other_action")
#: Keys a copy drops wherever they occur: they hold scripts, actions, files, forms or media.
DROPPED_KEYS = frozenset({
    "/AA", "/OpenAction", "/JS", "/JavaScript", "/Names", "/EmbeddedFiles", "/EmbeddedFile",
    "/EF", "/RF", "/FS", "/XFA", "/AcroForm", "/URI", "/Win", "/Mac", "/Unix",
    "/RichMediaContent", "/RichMediaSettings", "/3DD", "/3DV", "/3DA", "/3DI", "/Sound",
    "/Movie", "/Ref", "/OPI", "/Alternates", "/FFilter", "/FDecodeParms", "/Next",
    "/PieceInfo", "/Threads", "/Collection", "/Perms", "/Parent", "/Popup", "/IRT",
})
#: Dictionaries (by /Type) a copy drops wherever they occur.
DROPPED_TYPES = frozenset({"/Action", "/Filespec", "/EmbeddedFile", "/RichMediaContent",
                           "/RichMediaInstance", "/RichMediaConfiguration", "/3D", "/3DView",
                           "/Rendition", "/MediaClip", "/Sound", "/Movie", "/Annot"})
#: Outline items carried over at most, and how deep they nest.
MAX_OUTLINE_ITEMS = 10_000
MAX_OUTLINE_DEPTH = 32
#: Distinct places listed per kind of active content (the count is always complete).
MAX_PLACES = 5
#: Longest embedded file name reported.
MAX_NAME = 40


@dataclass(frozen=True)
class ActiveContent:
    """One kind of active content found in a PDF: how many places, and the first few."""

    kind: str
    count: int
    places: tuple[str, ...]


def disarm(reader: PdfReader) -> PdfWriter:
    """A new document holding ``reader``'s pages without any active content (see module doc).

    Raises whatever pypdf raises on a malformed file; callers turn that into their own error.
    """
    writer = PdfWriter()
    # The source's version if newer (its pages may use what PDF 1.5 or 2.0 added).
    header, current = reader.pdf_header, writer.pdf_header
    current = current.decode("latin-1") if isinstance(current, bytes) else current
    if re.fullmatch(r"%PDF-[12]\.\d", header) and header > current:
        writer.pdf_header = header
    source_pages = list(reader.pages)
    # Two passes: every rebuilt page exists before any link is rewritten to point at one.
    pages = {}
    targets: list[DictionaryObject] = []
    for source in source_pages:
        page = writer.add_blank_page(1, 1)
        for key in list(page.keys()):
            if key not in ("/Type", "/Parent"):
                del page[key]
        targets.append(page)
        if source.indirect_reference is not None:
            pages[_key(source.indirect_reference)] = page.indirect_reference
    copier = _Copier(writer)
    named = _named_destinations(reader)
    for source, page in zip(source_pages, targets, strict=True):
        for key in PAGE_KEYS:
            value = _inherited(source, key) if key in INHERITED else source.get(key)
            if value is not None:
                copied = copier.copy(value)
                if copied is not None:
                    page[NameObject(key)] = copied
        if "/MediaBox" not in page:  # required; viewers assume US Letter, and so does the stamp
            page[NameObject("/MediaBox")] = ArrayObject(
                [NumberObject(0), NumberObject(0), NumberObject(612), NumberObject(792)])
        annotations = ArrayObject()
        for item in _array(source.get("/Annots")):
            annotation = _annotation(item, copier, pages, named)
            if annotation is not None:
                annotations.append(annotation)
        if annotations:
            page[NameObject("/Annots")] = annotations
    catalog = reader.root_object
    outline = _outline(writer, catalog.get("/Outlines"), pages, named)
    if outline is not None:
        writer.root_object[NameObject("/Outlines")] = outline
    for key in CATALOG_KEYS:
        if isinstance(catalog, DictionaryObject) and key in catalog:
            copied = copier.copy(catalog.raw_get(key))
            if copied is not None:
                writer.root_object[NameObject(key)] = copied
    return writer


def find_active_content(reader: PdfReader) -> tuple[ActiveContent, ...]:
    """Every kind of active content reachable from the document's catalog, and where.

    Places name the page and annotation ("page 3 annotation 2"), the catalog entry
    ("/OpenAction", "/Names/JavaScript"), and for embedded files their name, cleaned of control
    characters and shortened. Every object is visited once, so loops end.
    """
    finder = _Finder()
    catalog = reader.root_object
    if not isinstance(catalog, DictionaryObject):
        return ()
    pages = list(reader.pages)
    # Pages are walked as themselves ("page 3"), not from a link or action that names them.
    for page in pages:
        if page.indirect_reference is not None:
            finder.seen.add(_key(page.indirect_reference))
    for key, value in catalog.items():
        if key in ("/Pages", "/Type"):
            continue
        if key == "/Names" and isinstance(value.get_object(), DictionaryObject):
            for name, tree in value.get_object().items():
                finder.walk(tree, f"/Names/{name[1:]}")
        elif key == "/AcroForm" and isinstance(value.get_object(), DictionaryObject):
            finder.walk(value, "/AcroForm")
        elif key == "/URI":
            finder.add("uri", "catalog /URI")
            finder.walk(value, "catalog /URI")
        else:
            place = {"/OpenAction": "/OpenAction", "/AA": "document /AA",
                     "/Outlines": "outline"}.get(key, f"catalog {key}")
            finder.walk(value, place)
    for number, page in enumerate(pages, start=1):
        for key, value in page.items():
            if key in ("/Parent", "/Annots"):
                continue
            finder.walk(value, f"page {number} /AA" if key == "/AA" else f"page {number}")
        for index, item in enumerate(_array(page.get("/Annots")), start=1):
            finder.walk(item, f"page {number} annotation {index}")
    return finder.result()


# -- copying ------------------------------------------------------------------------------

class _Copier:
    """Copies objects of the source into the writer, dropping active content on the way.

    Each indirect object is copied once (shared fonts and images stay shared, loops end).
    """

    def __init__(self, writer: PdfWriter) -> None:
        self.writer = writer
        self.copied: dict[tuple[int, int], IndirectObject | None] = {}

    def copy(self, value: PdfObject) -> PdfObject | None:
        """``value`` as an object of the writer, or None if it must not be carried over."""
        if isinstance(value, IndirectObject):
            key = _key(value)
            if key in self.copied:
                return self.copied[key]
            target = value.get_object()
            if _dropped(target):
                self.copied[key] = None
                return None
            # Reserve the reference first: an object that refers back to itself ends here.
            reference = self.writer._add_object(NullObject())
            self.copied[key] = reference
            body = self._direct(target)
            if body is None:
                self.copied[key] = None
                return None
            self.writer._objects[reference.idnum - 1] = body
            body.indirect_reference = reference  # as pypdf's own _add_object sets it
            return reference
        if _dropped(value):
            return None
        return self._direct(value)

    def _direct(self, value: PdfObject) -> PdfObject | None:
        if isinstance(value, StreamObject):
            return self._stream(value)
        if isinstance(value, DictionaryObject):
            copy = DictionaryObject()
            self._entries(value, copy)
            return copy
        if isinstance(value, ArrayObject):
            copy = ArrayObject()
            for item in value:
                copied = self.copy(item)
                if copied is not None:
                    copy.append(copied)
            return copy
        if isinstance(value, NullObject | BooleanObject | NumberObject | FloatObject
                      | NameObject | TextStringObject) or _is_bytes_string(value):
            return value
        return None  # nothing else belongs in a PDF object graph

    def _stream(self, stream: StreamObject) -> StreamObject | None:
        if _name(stream, "/Subtype") == "/PS":
            return None  # PostScript XObjects run code in the printer
        copy: StreamObject = EncodedStreamObject() if "/Filter" in stream \
            else DecodedStreamObject()
        # The encoded bytes as they are: nothing is decoded, so nothing is inflated here.
        copy._data = stream._data
        self._entries(stream, copy, skip=("/Length",))
        return copy

    def _entries(self, source: DictionaryObject, target: DictionaryObject,
                 skip: tuple[str, ...] = ()) -> None:
        for key in source:
            if key in DROPPED_KEYS or key in skip:
                continue
            raw = source.raw_get(key)
            resolved = raw.get_object()
            # /A holds an action in annotations and outline items; /F names an external file
            # in a stream or a file specification. Numbers and names under these keys are kept.
            # /P is a page label's prefix (kept) or an annotation's page (dropped).
            if key in ("/A", "/F", "/P") and isinstance(resolved, DictionaryObject):
                continue
            if key == "/F" and isinstance(resolved, TextStringObject | ByteStringObject):
                continue
            copied = self.copy(raw)
            if copied is not None:
                target[NameObject(key)] = copied


def _dropped(value: PdfObject) -> bool:
    """Whether ``value`` (resolved) is a dictionary that is active content in itself."""
    value = value.get_object() if isinstance(value, IndirectObject) else value
    if not isinstance(value, DictionaryObject):
        return False
    if _name(value, "/Type") in DROPPED_TYPES:
        return True
    if _name(value, "/S") in ACTIONS:
        return True
    return _name(value, "/Subtype") in ACTIVE_ANNOTATIONS or "/JS" in value


def _annotation(item: PdfObject, copier: _Copier, pages: dict[tuple[int, int], IndirectObject],
                named: dict[str, tuple[IndirectObject, ...]]) -> IndirectObject | None:
    """The annotation rebuilt with allowlisted entries, as a new indirect object, or None."""
    source = item.get_object()
    if not isinstance(source, DictionaryObject) or _name(source, "/Subtype") not in ANNOTATIONS:
        return None
    annotation = DictionaryObject()
    if _name(source, "/Subtype") == "/Link":
        destination = _internal_destination(source, pages, named)
        if destination is None:
            return None  # web addresses, other files, scripts, named actions: not carried over
        annotation[NameObject("/Dest")] = destination
    for key in ANNOTATION_KEYS:
        if key in source:
            copied = copier.copy(source.raw_get(key))
            if copied is not None:
                annotation[NameObject(key)] = copied
    annotation[NameObject("/Type")] = NameObject("/Annot")
    return copier.writer._add_object(annotation)


def _internal_destination(link: DictionaryObject, pages: dict[tuple[int, int], IndirectObject],
                          named: dict[str, tuple[IndirectObject, ...]]) -> ArrayObject | None:
    """A link's destination as ``[rebuilt page, /XYZ left top zoom]`` or ``[page, /Fit]``, if
    it is a page of this document; None for anything else."""
    destination = link.get("/Dest")
    if destination is None:
        action = link.get("/A")
        action = action.get_object() if action is not None else None
        if not isinstance(action, DictionaryObject) or _name(action, "/S") != "/GoTo":
            return None
        destination = action.get("/D")
    destination = destination.get_object() if destination is not None else None
    if isinstance(destination, NameObject | TextStringObject) or _is_bytes_string(destination):
        target = named.get(str(destination))
        return ArrayObject([target[0], NameObject("/Fit")]) if target else None
    if isinstance(destination, DictionaryObject):  # a named destination's value: << /D [...] >>
        destination = destination.get("/D")
        destination = destination.get_object() if destination is not None else None
    if not isinstance(destination, ArrayObject) or not destination:
        return None
    page = destination[0]
    if not isinstance(page, IndirectObject) or _key(page) not in pages:
        return None
    view = destination[1] if len(destination) > 1 else None
    if view == "/XYZ":
        numbers = [item if isinstance(item, NumberObject | FloatObject) else NullObject()
                   for item in list(destination[2:5])]
        return ArrayObject([pages[_key(page)], NameObject("/XYZ"), *numbers])
    return ArrayObject([pages[_key(page)], NameObject("/Fit")])


def _outline(writer: PdfWriter, source: PdfObject | None,
             pages: dict[tuple[int, int], IndirectObject],
             named: dict[str, tuple[IndirectObject, ...]]) -> IndirectObject | None:
    """The outline (bookmarks) rebuilt: titles, and destinations only where they lead to a page
    of the copy; no actions. None if the document has none."""
    source = source.get_object() if source is not None else None
    if not isinstance(source, DictionaryObject):
        return None
    root = DictionaryObject({NameObject("/Type"): NameObject("/Outlines")})
    reference = writer._add_object(root)
    budget = [MAX_OUTLINE_ITEMS]
    items = _outline_items(writer, source, reference, pages, named, set(), budget, 0)
    if not items:
        writer._objects[reference.idnum - 1] = NullObject()  # written as an empty object
        return None
    _link_outline(root, items)
    root[NameObject("/Count")] = NumberObject(MAX_OUTLINE_ITEMS - budget[0])
    return reference


def _outline_items(writer: PdfWriter, node: DictionaryObject, parent: IndirectObject,
                   pages: dict[tuple[int, int], IndirectObject],
                   named: dict[str, tuple[IndirectObject, ...]], seen: set[tuple[int, int]],
                   budget: list[int], depth: int) -> list[IndirectObject]:
    """The rebuilt children of outline ``node``; each source item is visited once."""
    items: list[IndirectObject] = []
    current = node.get("/First")
    while isinstance(current, IndirectObject) and budget[0] > 0 and _key(current) not in seen:
        seen.add(_key(current))
        source = current.get_object()
        if not isinstance(source, DictionaryObject):
            break
        budget[0] -= 1
        title = source.get("/Title")
        title = title.get_object() if title is not None else None
        item = DictionaryObject({
            NameObject("/Title"): TextStringObject(title if isinstance(title, str) else ""),
            NameObject("/Parent"): parent})
        destination = _internal_destination(source, pages, named)
        if destination is not None:
            item[NameObject("/Dest")] = destination
        reference = writer._add_object(item)
        if depth < MAX_OUTLINE_DEPTH:
            children = _outline_items(writer, source, reference, pages, named, seen, budget,
                                      depth + 1)
            if children:
                _link_outline(item, children)
                item[NameObject("/Count")] = NumberObject(-len(children))  # shown closed
        items.append(reference)
        current = source.get("/Next")
    return items


def _link_outline(parent: DictionaryObject, items: list[IndirectObject]) -> None:
    """Chain ``items`` as the children of ``parent`` (/First, /Last, /Prev, /Next)."""
    parent[NameObject("/First")], parent[NameObject("/Last")] = items[0], items[-1]
    for before, after in itertools.pairwise(items):
        before.get_object()[NameObject("/Next")] = after
        after.get_object()[NameObject("/Prev")] = before


def _named_destinations(reader: PdfReader) -> dict[str, tuple[IndirectObject, ...]]:
    """Named destinations whose page is in the document, for rewriting links to them."""
    try:
        found = reader.named_destinations
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
    # Keep only the page reference; the copy's /Dest is rebuilt from it.
    return {name: (destination.page,) for name, destination in found.items()
            if isinstance(destination.page, IndirectObject)}


def _inherited(page: DictionaryObject, key: str) -> PdfObject | None:
    """``page[key]`` (raw), or the nearest ancestor's in the page tree."""
    node: PdfObject | None = page
    for _ in range(64):  # a page tree deeper than this is not one a viewer draws either
        if not isinstance(node, DictionaryObject):
            return None
        if key in node:
            return node.raw_get(key)
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


# -- finding ------------------------------------------------------------------------------

class _Finder:
    """Walks the object graph once, recording each kind of active content and where."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()
        self.found: dict[str, list[str]] = {}

    def add(self, kind: str, place: str) -> None:
        places = self.found.setdefault(kind, [])
        if place not in places:
            places.append(place)

    def walk(self, start: PdfObject, place: str) -> None:
        pending: list[PdfObject] = [start]
        while pending:
            item = pending.pop()
            try:
                if isinstance(item, IndirectObject):
                    if _key(item) in self.seen:
                        continue
                    self.seen.add(_key(item))
                    item = item.get_object()
                if isinstance(item, ArrayObject):
                    pending.extend(reversed(item))
                elif isinstance(item, DictionaryObject):
                    self._examine(item, place)
                    pending.extend(reversed([item.raw_get(key) for key in item
                                             if key not in ("/Parent", "/P")]))
            except (PyPdfError, ValueError, KeyError, TypeError):
                # A broken object outside the pages (a dangling reference in a name tree...)
                # does not make the file unreadable; it holds nothing a viewer would run
                # either, and a reader's copy never carries it.
                continue

    def _examine(self, item: DictionaryObject, place: str) -> None:
        action = _name(item, "/S")
        if action is not None and action in ACTIONS:
            kind = ACTIONS[action]
            if kind == "other_action":
                self.add(kind, f"{place} ({action[1:]})")
            elif kind is not None:
                self.add(kind, place)
        if "/JS" in item:
            self.add("javascript", place)
        subtype = _name(item, "/Subtype")
        if subtype == "/FileAttachment":
            self.add("embedded_file", _named(place, item.get("/FS")))
        elif subtype in ACTIVE_ANNOTATIONS:
            self.add(ACTIVE_ANNOTATIONS[subtype], place)
        if "/EF" in item:
            self.add("embedded_file", _named(place, item))
        elif _name(item, "/Type") == "/EmbeddedFile" and not any(
                found.startswith(place) for found in self.found.get("embedded_file", ())):
            self.add("embedded_file", place)  # a file stream outside any file specification
        if "/XFA" in item:
            self.add("xfa", f"{place}/XFA")

    def result(self) -> tuple[ActiveContent, ...]:
        return tuple(ActiveContent(kind, len(self.found[kind]),
                                   tuple(self.found[kind][:MAX_PLACES]))
                     for kind in KINDS if kind in self.found)


def _named(place: str, spec: PdfObject | None) -> str:
    """``place`` followed by the quoted name of the file specification ``spec``, if it has one."""
    name = _file_name(spec.get_object()) if spec is not None else ""
    return f"{place} '{name}'" if name else place


def _file_name(spec: PdfObject) -> str:
    """An embedded file's name as shown in evidence: no control or format characters (which
    could reorder the text shown), at most 40 characters."""
    if not isinstance(spec, DictionaryObject):
        return ""
    for key in ("/UF", "/F"):
        value = spec.get(key)
        value = value.get_object() if value is not None else None
        if isinstance(value, str):
            text = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
            text = text.replace("'", "")
            return text if len(text) <= MAX_NAME else text[:MAX_NAME - 1] + "…"
    return ""


# -- small helpers ------------------------------------------------------------------------

def _name(dictionary: DictionaryObject, key: str) -> str | None:
    """``dictionary[key]`` if it is a name, through a reference: an action type behind a
    reference (``/S 12 0 R``) is still that action."""
    value = dictionary.get(key)
    value = value.get_object() if isinstance(value, IndirectObject) else value
    return value if isinstance(value, NameObject) else None


def _key(reference: IndirectObject) -> tuple[int, int]:
    return reference.idnum, reference.generation


def _array(value: PdfObject | None) -> Iterator[PdfObject]:
    value = value.get_object() if value is not None else None
    return iter(value) if isinstance(value, ArrayObject) else iter(())


def _is_bytes_string(value: object) -> bool:
    return isinstance(value, ByteStringObject)
