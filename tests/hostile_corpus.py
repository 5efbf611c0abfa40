"""PDFs that carry active content, for the content-disarm and screening tests.

:func:`hostile_pdf` builds a three-page text PDF carrying any combination of the :data:`CASES`
(JavaScript on opening, in the name tree, in an outline item, in page and annotation
triggers; launch, web, remote-file, form-submission and data-import actions; embedded and
attached files; XFA; rich media; 3D; scripts hidden in a form XObject's dictionary). Every
payload carries a marker (``MARK-...``) that must not occur in a released copy, in its bytes or
in any of its decoded streams.

Each file can be packed three ways: as plain objects, with every non-stream object inside a
compressed object stream (``packing="objstm"``), or as a clean file whose active content
arrives in an appended incremental update (``packing="incremental"``).
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from vault.demo.documents import assemble

PAGES = 3
#: Object numbers: 1 catalog, 2 page tree, 3 font, 4 a form XObject, 10+i page i, 20+i its
#: content; each case's own objects from 30 on (see ``_Build.add``).
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
PACKINGS = ("plain", "objstm", "incremental")


@dataclass(frozen=True)
class Case:
    """One kind of active content: its name, the kind screening reports, where, its marker."""

    name: str
    kind: str
    place: str
    marker: str
    #: Other kinds the case holds as well (a rich media asset is an embedded file).
    also: tuple[str, ...] = ()


#: Every case, with the kind and the place screening must report for it.
CASES: tuple[Case, ...] = (
    Case("open_action_js", "javascript", "/OpenAction", "MARK-open-action-js"),
    Case("names_javascript", "javascript", "/Names/JavaScript", "MARK-names-javascript"),
    Case("launch", "launch", "page 3 annotation", "MARK-launch"),
    Case("uri_link", "uri", "page 1 annotation", "MARK-uri-link"),
    Case("gotor", "remote_goto", "page 2 annotation", "MARK-gotor"),
    Case("gotoe", "remote_goto", "page 2 annotation", "MARK-gotoe"),
    Case("submit_form", "submit_form", "/AcroForm", "MARK-submit-form"),
    Case("import_data", "import_data", "page 2 annotation", "MARK-import-data"),
    Case("reset_form", "reset_form", "page 1 annotation", "MARK-reset-form"),
    Case("named_action", "other_action", "page 3 annotation", "MARK-named-action"),
    Case("page_aa", "javascript", "page 2 /AA", "MARK-page-aa"),
    Case("annotation_aa", "javascript", "page 1 annotation", "MARK-annotation-aa"),
    Case("embedded_files", "embedded_file", "/Names/EmbeddedFiles 'x.exe'", "MARK-embedded"),
    Case("file_attachment", "embedded_file", "page 2 annotation", "MARK-attachment"),
    Case("xfa", "xfa", "/AcroForm/XFA", "MARK-xfa"),
    Case("rich_media", "rich_media", "page 1 annotation", "MARK-rich-media", ("embedded_file",)),
    Case("three_d", "three_d", "page 3 annotation", "MARK-three-d"),
    Case("outline_js", "javascript", "outline", "MARK-outline-js"),
    Case("uri_base", "uri", "catalog /URI", "MARK-uri-base"),
    Case("xobject_js", "javascript", "page 1", "MARK-xobject-js"),
    Case("indirect_action", "launch", "page 1 annotation", "MARK-indirect-action"),
)
BY_NAME = {case.name: case for case in CASES}


def page_text(index: int) -> str:
    """The text drawn on page ``index`` (0-based)."""
    return f"Hostile corpus page {index + 1} body text"


@dataclass
class _Build:
    """The objects of one file, as cases add to them."""

    objects: dict[int, bytes] = field(default_factory=dict)
    catalog: list[bytes] = field(default_factory=list)
    names: list[bytes] = field(default_factory=list)
    form: list[bytes] = field(default_factory=list)
    fields: list[bytes] = field(default_factory=list)
    pages: list[list[bytes]] = field(default_factory=lambda: [[] for _ in range(PAGES)])
    annotations: list[list[bytes]] = field(default_factory=lambda: [[] for _ in range(PAGES)])
    xobjects: list[bytes] = field(default_factory=list)
    next_number: int = 30

    def add(self, body: bytes) -> bytes:
        """``body`` as a new object; its reference."""
        number = self.next_number
        self.next_number += 1
        self.objects[number] = body
        return b"%d 0 R" % number

    def annotate(self, page: int, body: bytes) -> None:
        self.annotations[page].append(self.add(body))

    def link(self, page: int, action: bytes) -> None:
        self.annotate(page, b"<< /Type /Annot /Subtype /Link /Rect [0 0 595 842] /Border [0 0 0]"
                            b" /A " + action + b" >>")


def stream(data: bytes, entries: bytes = b"") -> bytes:
    """A Flate-compressed stream object with ``entries``."""
    packed = zlib.compress(data)
    return b"<< %s /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        entries, len(packed), packed)


def _js(marker: str) -> bytes:
    return b"<< /Type /Action /S /JavaScript /JS (app.alert\\('%s'\\)) >>" % marker.encode()


def _apply(build: _Build, case: Case) -> None:
    """Add ``case``'s active content to ``build``."""
    mark = case.marker.encode()
    match case.name:
        case "open_action_js":
            build.catalog.append(b"/OpenAction " + build.add(_js(case.marker)))
        case "names_javascript":
            script = build.add(stream(b"app.launchURL('https://%s.example/');" % mark))
            action = build.add(b"<< /S /JavaScript /JS " + script + b" >>")
            build.names.append(b"/JavaScript << /Names [(init) " + action + b"] >>")
        case "launch":
            build.link(2, b"<< /S /Launch /F (%s.exe) /Win << /F (cmd.exe) /P (/c %s) >> >>"
                       % (mark, mark))
        case "uri_link":
            build.link(0, b"<< /S /URI /URI (https://%s.example/collect) >>" % mark)
        case "gotor":
            build.link(1, b"<< /S /GoToR /F (%s.pdf) /D [0 /Fit] /NewWindow true >>" % mark)
        case "gotoe":
            build.link(1, b"<< /S /GoToE /T << /R /C /N (%s) >> /D [0 /Fit] >>" % mark)
        case "submit_form":
            widget = build.add(
                b"<< /Type /Annot /Subtype /Widget /FT /Btn /Ff 65536 /T (send) "
                b"/Rect [72 72 200 100] /A << /S /SubmitForm /F << /FS /URL "
                b"/F (https://%s.example/) >> /Flags 4 >> >>" % mark)
            build.fields.append(widget)
            build.annotations[0].append(widget)
        case "import_data":
            build.link(1, b"<< /S /ImportData /F (%s.fdf) >>" % mark)
        case "reset_form":
            build.link(0, b"<< /S /ResetForm /Fields [(%s)] >>" % mark)
        case "named_action":
            build.link(2, b"<< /S /Named /N /Print /Next << /S /Named /N /NextPage /Marker "
                          b"(%s) >> >>" % mark)
        case "page_aa":
            build.pages[1].append(b"/AA << /O " + _js(case.marker) + b" /C "
                                  + _js(case.marker) + b" >>")
        case "annotation_aa":
            build.annotate(0, b"<< /Type /Annot /Subtype /Square /Rect [300 300 400 400] "
                              b"/C [1 0 0] /AA << /E " + _js(case.marker) + b" >> >>")
        case "embedded_files":
            data = build.add(stream(b"MZ %s payload" % mark, b"/Type /EmbeddedFile"))
            spec = build.add(b"<< /Type /Filespec /F (x.exe) /UF (x.exe) /EF << /F " + data
                             + b" >> >>")
            build.names.append(b"/EmbeddedFiles << /Names [(x.exe) " + spec + b"] >>")
        case "file_attachment":
            data = build.add(stream(b"%s attached" % mark, b"/Type /EmbeddedFile"))
            build.annotate(1, b"<< /Type /Annot /Subtype /FileAttachment /Rect [72 72 90 90] "
                              b"/Name /PushPin /Contents (see attached) /FS << /Type /Filespec "
                              b"/F (report.exe) /EF << /F " + data + b" >> >> >>")
        case "xfa":
            xfa = build.add(stream(b"<xdp:xdp><template><script>%s</script></template>"
                                   b"</xdp:xdp>" % mark))
            build.form.append(b"/XFA " + xfa)
        case "rich_media":
            asset = build.add(stream(b"FWS %s" % mark))
            build.annotate(0, b"<< /Type /Annot /Subtype /RichMedia /Rect [72 400 300 600] "
                              b"/RichMediaContent << /Assets << /Names [(movie.swf) << "
                              b"/Type /Filespec /F (movie.swf) /EF << /F " + asset + b" >> >>] >>"
                              b" /Configurations [] >> /RichMediaSettings << >> >>")
        case "three_d":
            model = build.add(stream(b"U3D %s" % mark, b"/Type /3D /Subtype /U3D"))
            build.annotate(2, b"<< /Type /Annot /Subtype /3D /Rect [72 400 300 600] /3DD "
                              + model + b" /3DA << /A /PO >> >>")
        case "outline_js":
            item = build.next_number + 1
            outlines = build.add(b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count 1 >>"
                                 % (item, item))
            build.add(b"<< /Title (Chapter 1) /Parent " + outlines + b" /A "
                      + _js(case.marker) + b" >>")
            build.catalog.append(b"/Outlines " + outlines)
        case "uri_base":
            build.catalog.append(b"/URI << /Base (https://%s.example/) >>" % mark)
        case "xobject_js":
            # A form XObject whose own dictionary carries script entries: viewers ignore them,
            # a copy must not carry them along with the drawing.
            build.xobjects.append(b"/X1 " + build.add(stream(
                b"BT /F1 9 Tf 72 60 Td (Form footer) Tj ET",
                b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font "
                b"<< /F1 3 0 R >> >> /AA << /O " + _js(case.marker) + b" >> /OpenAction "
                + _js(case.marker))))
        case "indirect_action":
            # The action's type behind a reference, on an annotation that is kept (a square).
            kind = build.add(b"/Launch")
            build.annotate(0, b"<< /Type /Annot /Subtype /Square /Rect [100 100 200 200] "
                              b"/A << /S " + kind + b" /F (%s.exe) >> >>" % mark)
        case _:
            raise ValueError(case.name)


def _objects(build: _Build) -> dict[int, bytes]:
    """All objects of the file, the catalog and pages with what the cases added."""
    objects = dict(build.objects)
    catalog = [b"/Type /Catalog /Pages 2 0 R", *build.catalog]
    if build.names:
        catalog.append(b"/Names << " + b" ".join(build.names) + b" >>")
    if build.form or build.fields:
        catalog.append(b"/AcroForm << /Fields [" + b" ".join(build.fields) + b"] "
                       + b" ".join(build.form) + b" >>")
    objects[1] = b"<< " + b" ".join(catalog) + b" >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % (10 + i) for i in range(PAGES)), PAGES)
    objects[3] = FONT
    for i in range(PAGES):
        xobjects = b" ".join(build.xobjects) if i == 0 else b""
        draw = b" /X1 Do" if i == 0 and build.xobjects else b""
        annots = b" /Annots [" + b" ".join(build.annotations[i]) + b"]" \
            if build.annotations[i] else b""
        objects[10 + i] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << %s >> >>%s %s >>"
            % (20 + i, xobjects, annots, b" ".join(build.pages[i])))
        objects[20 + i] = stream(b"BT /F1 12 Tf 72 760 Td (%s) Tj ET%s"
                                 % (page_text(i).encode(), draw))
    return objects


def hostile_pdf(names: Iterable[str], *, packing: str = "plain", catalog: bytes = b"",
                annotations: Iterable[bytes] = ()) -> bytes:
    """A three-page PDF carrying the named cases' active content, packed as asked.

    ``catalog`` is added to the catalog's entries, ``annotations`` (dictionaries) to page 1.
    """
    build = _Build()
    for name in names:
        _apply(build, BY_NAME[name])
    if catalog:
        build.catalog.append(catalog)
    for annotation in annotations:
        build.annotate(0, annotation)
    objects = _objects(build)
    if packing == "plain":
        return assemble(objects)
    if packing == "objstm":
        return compressed(objects)
    if packing == "incremental":
        clean = _objects(_Build())
        return append_update(assemble(clean), {n: body for n, body in objects.items()
                                               if clean.get(n) != body})
    raise ValueError(packing)


def compressed(objects: dict[int, bytes]) -> bytes:
    """The objects as a PDF 1.5 file: every non-stream object inside one compressed object
    stream, found through a cross-reference stream."""
    inside = sorted(n for n, body in objects.items() if b"\nstream\n" not in body)
    outside = sorted(n for n in objects if n not in inside)
    holder, xref_number = max(objects) + 1, max(objects) + 2
    header = b" ".join(b"%d %d" % pair for pair in _offsets(inside, objects))
    body = header + b" " + b" ".join(objects[n] for n in inside)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in outside:
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    offsets[holder] = len(out)
    out += b"%d 0 obj\n%s\nendobj\n" % (holder, stream(
        body, b"/Type /ObjStm /N %d /First %d" % (len(inside), len(header) + 1)))
    rows = []
    for number in range(xref_number + 1):
        if number in inside:
            rows.append(b"\x02" + holder.to_bytes(4, "big") + inside.index(number).to_bytes(2,
                                                                                      "big"))
        elif number in offsets:
            rows.append(b"\x01" + offsets[number].to_bytes(4, "big") + b"\x00\x00")
        elif number == xref_number:
            rows.append(b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00")
        else:
            rows.append(b"\x00" + b"\x00" * 4 + b"\xff\xff")
    xref = len(out)
    out += b"%d 0 obj\n%s\nendobj\n" % (xref_number, stream(
        b"".join(rows), b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R" % (xref_number + 1)))
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _offsets(inside: list[int], objects: dict[int, bytes]) -> list[tuple[int, int]]:
    """(number, offset) pairs of an object stream's header, offsets after the header."""
    pairs, offset = [], 0
    for number in inside:
        pairs.append((number, offset))
        offset += len(objects[number]) + 1
    return pairs


def append_update(original: bytes, changed: dict[int, bytes]) -> bytes:
    """``original`` with an incremental update appended that adds or replaces ``changed``."""
    previous = int(re.findall(rb"startxref\s+(\d+)", original)[-1])
    size = int(re.findall(rb"/Size (\d+)", original)[-1])
    out = bytearray(original)
    offsets = {}
    for number in sorted(changed):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, changed[number])
    xref = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"  # from 0: pypdf "corrects" other tables
    for number in sorted(offsets):
        out += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        max(size, max(changed) + 1), previous, xref)
    return bytes(out)


# -- inspecting a released copy ----------------------------------------------------------

#: Keys that hold scripts, actions, triggers, files, forms or media: none may be in a copy.
FORBIDDEN_KEYS = frozenset({
    "/JS", "/JavaScript", "/AA", "/OpenAction", "/A", "/Launch", "/URI", "/EmbeddedFile",
    "/EmbeddedFiles", "/EF", "/RF", "/FS", "/XFA", "/AcroForm", "/Names",
    "/RichMediaContent", "/RichMediaSettings", "/3DD", "/3DA", "/3DV", "/Win", "/Mac", "/Unix",
})
#: Values of /S, /Type and /Subtype that are active content.
FORBIDDEN_NAMES = frozenset({
    "/JavaScript", "/Launch", "/URI", "/GoToR", "/GoToE", "/SubmitForm", "/ImportData",
    "/ResetForm", "/Rendition", "/Sound", "/Movie", "/Hide", "/Named", "/SetOCGState",
    "/Trans", "/GoTo3DView", "/RichMediaExecute", "/Action", "/Filespec", "/EmbeddedFile",
    "/FileAttachment", "/RichMedia", "/3D", "/Screen", "/U3D", "/PRC", "/GoTo",
})
#: The catalog of a copy holds its page tree and nothing that acts.
CATALOG_KEYS = {"/Type", "/Pages", "/PageLabels", "/Lang", "/Outlines"}


def every_object(reader: PdfReader):
    """Every indirect object the file holds: in its cross-reference table(s), compressed ones
    in object streams included, whether or not anything refers to it."""
    numbers = {(number, generation) for generation, table in reader.xref.items()
               for number in table}
    numbers |= {(number, 0) for number in reader.xref_objStm}
    for number, generation in sorted(numbers):
        yield (number, generation), reader.get_object(IndirectObject(number, generation, reader))


def problems(data: bytes, markers: list[str]) -> list[str]:
    """What in ``data`` is active content, as readable lines (empty for an inert file)."""
    found = [f"marker {m} in the file's bytes" for m in markers if m.encode() in data]
    reader = PdfReader(io.BytesIO(data), strict=True)
    if set(reader.root_object) - CATALOG_KEYS:
        found.append(f"catalog keys {sorted(set(reader.root_object) - CATALOG_KEYS)}")
    for reference, obj in every_object(reader):
        pending = [(obj, f"object {reference}")]
        while pending:
            item, where = pending.pop()
            if isinstance(item, StreamObject):
                decoded = item.get_data()
                found += [f"marker {m} in {where}'s stream" for m in markers
                          if m.encode() in decoded]
            if isinstance(item, DictionaryObject):
                found += [f"{key} in {where}" for key in item if key in FORBIDDEN_KEYS]
                if "/Next" in item and "/Title" not in item:  # an action chain, not a bookmark
                    found.append(f"/Next in {where}")
                found += [f"{key} {item[key]} in {where}" for key in ("/S", "/Type", "/Subtype")
                          if key in item and item[key] in FORBIDDEN_NAMES]  # [] resolves
                # Nested direct objects; indirect ones are visited as objects of their own.
                pending += [(value, f"{where} {key}") for key, value in item.items()
                            if not isinstance(value, IndirectObject)]
            elif isinstance(item, ArrayObject):
                pending += [(value, f"{where}[{i}]") for i, value in enumerate(item)
                            if not isinstance(value, IndirectObject)]
    return found
