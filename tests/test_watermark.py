"""Per-reviewer PDF watermarks, and the limited child process they are computed in."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ContentStream,
    DecodedStreamObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    RectangleObject,
)

from tests import sandbox_targets
from vault.documents.watermark import Stamp, WatermarkError, stamp_pdf, stamp_pdf_limited
from vault.sandbox import Limits, SandboxError, run_limited

ISSUED = datetime(2025, 3, 1, 9, 30, 12, tzinfo=UTC)
STAMP = Stamp(name="Zoë Müller", user_id="u-7f3a9c21", issued_at=ISSUED, code="EV-0042")
KOREAN = Stamp(name="김서연", user_id="u-11", issued_at=ISSUED, code="EV-0043")
LIMITS = dict(cpu_seconds=5, memory_bytes=1024**3, wall_seconds=10)
HELVETICA = DictionaryObject({
    NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
    NameObject("/BaseFont"): NameObject("/Helvetica"),
})


@dataclass
class Page:
    """How to build one test page: size, box origin, /Rotate, and content (None: blank)."""

    width: float = 612
    height: float = 792
    origin: tuple[float, float] = (0, 0)
    rotate: int = 0
    content: bytes | None = b""


def text(line: str) -> bytes:
    """Content showing ``line`` in Helvetica."""
    return f"BT /F1 11 Tf 80 700 Td ({line}) Tj ET".encode()


def make_pdf(*pages: Page) -> bytes:
    """A PDF with the given pages; empty content means "Original text of page N"."""
    writer = PdfWriter()
    for number, spec in enumerate(pages, start=1):
        page = writer.add_blank_page(spec.width, spec.height)
        x, y = spec.origin
        page.mediabox = RectangleObject([x, y, x + spec.width, y + spec.height])
        if spec.rotate:
            page.rotate(spec.rotate)
        if spec.content is None:
            continue
        content = spec.content or text(f"Original text of page {number}")
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): HELVETICA})})
        stream = DecodedStreamObject()
        stream.set_data(content)
        page.replace_contents(stream.flate_encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def prose(page: int, lines: int = 40) -> bytes:
    """A page of varied body text (repeated lines would compress to nothing)."""
    words = ("proposal", "model", "compute", "dataset", "evaluation", "budget", "partner",
             "milestone", "safety", "tokens", "cluster", "Korean", "audit", "schedule", "risk")
    shown = []
    for line in range(lines):
        digest = hashlib.sha256(f"{page}-{line}".encode()).digest()
        shown.append("(" + " ".join(words[b % len(words)] for b in digest[:12]) + ") Tj T*")
    return f"BT /F1 11 Tf 14 TL 80 740 Td {' '.join(shown)} ET".encode()


def raw_pdf(*objects: bytes) -> bytes:
    """A PDF written by hand: object N is ``objects[N - 1]``, object 1 the catalog."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def read(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data))


def stamp_ctm(page) -> list[float]:
    """The transformation in force where the page draws the stamp (replaying q, Q and cm)."""
    ctm, stack, found = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [], []
    for operands, operator in ContentStream(page.get_contents(), page.pdf).operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q" and stack:
            ctm = stack.pop()
        elif operator == b"cm":
            m = [float(v) for v in operands]
            ctm = [m[0] * ctm[0] + m[1] * ctm[2], m[0] * ctm[1] + m[1] * ctm[3],
                   m[2] * ctm[0] + m[3] * ctm[2], m[2] * ctm[1] + m[3] * ctm[3],
                   m[4] * ctm[0] + m[5] * ctm[2] + ctm[4], m[4] * ctm[1] + m[5] * ctm[3] + ctm[5]]
        elif operator == b"Do" and operands[0] == "/VaultWm":
            found.append(ctm)
    assert len(found) == 1, "the stamp is drawn exactly once per page"
    return found[0]


# -- the stamp ---------------------------------------------------------------------------

def test_stamp_lines_name_the_reviewer_the_utc_time_and_the_code():
    seoul = timezone(timedelta(hours=9))
    stamp = Stamp(name="Ann", user_id="u-1", issued_at=ISSUED.astimezone(seoul), code="C-9")
    assert stamp.lines() == ("Confidential - issued to Ann (u-1)",
                             "2025-03-01 09:30:12 UTC - copy C-9")


def test_stamp_refuses_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        Stamp(name="Ann", user_id="u-1", issued_at=datetime(2025, 3, 1), code="C-9")


def test_every_page_shows_name_user_time_and_code_and_keeps_its_own_text():
    data = make_pdf(Page(), Page(842, 595), Page(rotate=90), Page(200, 300, origin=(-50, 40)),
                    Page(content=None))
    pages = read(stamp_pdf(data, STAMP)).pages
    assert len(pages) == 5
    for number, page in enumerate(pages, start=1):
        extracted = page.extract_text()
        for part in ("Zoë Müller", "u-7f3a9c21", "2025-03-01 09:30:12 UTC", "EV-0042"):
            assert part in extracted, (number, extracted)
        if number < 5:
            assert f"Original text of page {number}" in extracted


def embedded_font(page) -> tuple[DictionaryObject, DictionaryObject, TTFont]:
    """The stamp's embedded Type0 font, its descendant, and its font program parsed back."""
    fonts = page["/Resources"]["/XObject"]["/VaultWm"]["/Resources"]["/Font"]
    embedded = [font for font in fonts.values() if font.get_object()["/Subtype"] == "/Type0"]
    assert len(embedded) == 1, "one Type0 font holds every glyph the standard font lacks"
    font = embedded[0].get_object()
    descendant = font["/DescendantFonts"][0].get_object()
    descriptor = descendant["/FontDescriptor"]
    program = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
    assert program is not None, "the glyphs are embedded, not left to the viewer"
    return font, descendant, TTFont(io.BytesIO(program.get_object().get_data()))


def shown_glyphs(page, font_name: str) -> list[int]:
    """The glyph ids the stamp shows with ``font_name`` (two bytes each: Identity-H)."""
    form = page["/Resources"]["/XObject"]["/VaultWm"]
    shown, current = [], None
    for operands, operator in ContentStream(form, page.pdf).operations:
        if operator == b"Tf":
            current = operands[0]
        elif operator == b"Tj" and current == font_name:
            data = bytes(operands[0].original_bytes)
            shown += [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return shown


@pytest.mark.parametrize("name", ["김서연", "Kim 김서연 (연구원)"])
def test_a_korean_name_is_drawn_with_an_embedded_font_subset_and_extracts_as_written(name):
    stamp = Stamp(name=name, user_id="u-11", issued_at=ISSUED, code="EV-0043")
    page = read(stamp_pdf(make_pdf(Page()), stamp)).pages[0]
    assert f"Confidential - issued to {name} (u-11)" in page.extract_text()

    font, descendant, program = embedded_font(page)
    assert font["/Encoding"] == "/Identity-H" and "/ToUnicode" in font
    assert descendant["/Subtype"] in ("/CIDFontType2", "/CIDFontType0")
    assert descendant["/CIDSystemInfo"]["/Ordering"] == "Identity"
    assert re.fullmatch(r"/[A-Z]{6}\+[A-Za-z0-9-]+", descendant["/BaseFont"])
    assert font["/BaseFont"] == descendant["/BaseFont"]
    # Every Korean character has a glyph with an outline in the subset, and the stamp draws
    # exactly those glyphs, in order.
    korean = [ch for ch in name if "\uac00" <= ch <= "\ud7a3"]
    cmap, glyphs = program.getBestCmap(), program.getGlyphSet()
    for ch in korean:
        pen = BoundsPen(glyphs)
        glyphs[cmap[ord(ch)]].draw(pen)
        assert pen.bounds is not None, f"{ch} has an empty glyph"
    font_name = next(key for key, value in page["/Resources"]["/XObject"]["/VaultWm"]
                     ["/Resources"]["/Font"].items() if value.get_object() is font)
    order = program.getGlyphOrder()
    assert [order[gid] for gid in shown_glyphs(page, font_name)] == [
        cmap[ord(ch)] for ch in korean]
    # A subset: the glyphs used and .notdef, not the font's 20,000.
    assert program["maxp"].numGlyphs <= len(set(korean)) + 1
    # /W gives the font's own advances, so the line is measured (and centred) right.
    scale = 1000 / program["head"].unitsPerEm
    widths = descendant["/W"]
    declared = {}
    for start, values in zip(widths[::2], widths[1::2], strict=True):
        declared.update({start + i: float(w) for i, w in enumerate(values)})
    for ch in korean:
        gid = order.index(cmap[ord(ch)])
        assert declared[gid] == pytest.approx(program["hmtx"][cmap[ord(ch)]][0] * scale)


def test_a_korean_line_is_centred_on_the_advances_of_its_glyphs():
    def line_start(name: str) -> float:
        stamp = Stamp(name=name, user_id="u-11", issued_at=ISSUED, code="EV-0043")
        page = read(stamp_pdf(make_pdf(Page()), stamp)).pages[0]
        form = page["/Resources"]["/XObject"]["/VaultWm"]
        starts = [float(operands[4]) for operands, operator
                  in ContentStream(form, page.pdf).operations if operator == b"Tm"]
        _, _, program = embedded_font(page)
        advance = program["hmtx"][program.getBestCmap()[ord("김")]][0]
        return starts[0], advance / program["head"].unitsPerEm

    one, advance = line_start("김")
    two, _ = line_start("김김")
    # One more glyph on the 20-unit first line moves its start left by half the advance.
    assert one - two == pytest.approx(advance * 20 / 2, abs=1e-3)
    assert advance < 1  # the real advance, not a nominal 1 em


def test_characters_no_font_has_are_drawn_as_question_marks():
    # Thai and Devanagari are in neither the standard font nor the embedded one: each shows
    # as "?" rather than as nothing, next to the Korean that is drawn. Controls, format
    # characters (a right-to-left override) and characters beyond the BMP stay "?" as well.
    stamp = Stamp(name="김 ก क\u202e서\x07연\U0001f600", user_id="u-11", issued_at=ISSUED,
                  code="EV-0043")
    page = read(stamp_pdf(make_pdf(Page()), stamp)).pages[0]
    assert "issued to 김 ? ??서?연? (u-11)" in page.extract_text()
    _, _, program = embedded_font(page)
    assert program["maxp"].numGlyphs == 4  # .notdef, 김, 서 and 연


def test_an_invisible_hangul_filler_is_shown_as_a_question_mark():
    # U+3164 is a letter (so it passes as text) whose glyph is empty: a name padded with it
    # would read the same as another. The font maps it, but with nothing to draw it is "?".
    stamp = Stamp(name="김\u3164연", user_id="u-11", issued_at=ISSUED, code="EV-0043")
    page = read(stamp_pdf(make_pdf(Page()), stamp)).pages[0]
    assert "issued to 김?연 (u-11)" in page.extract_text()
    _, _, program = embedded_font(page)
    assert ord("\u3164") not in program.getBestCmap()


def test_a_latin_name_embeds_nothing():
    page = read(stamp_pdf(make_pdf(Page()), STAMP)).pages[0]
    fonts = page["/Resources"]["/XObject"]["/VaultWm"]["/Resources"]["/Font"]
    assert [font.get_object()["/BaseFont"] for font in fonts.values()] == ["/Helvetica"]


def test_a_korean_name_adds_a_few_kilobytes_per_copy():
    data = make_pdf(Page())
    latin = len(stamp_pdf(data, STAMP))
    korean = len(stamp_pdf(data, Stamp(name="Kim 김서연 (연구원)", user_id="u-7f3a9c21",
                                       issued_at=ISSUED, code="EV-0042")))
    assert korean - latin < 12_000, (latin, korean)


def test_all_pages_share_one_form_xobject():
    data = make_pdf(*[Page(), Page(842, 595), Page(rotate=270), Page(content=None)] * 5)
    pages = read(stamp_pdf(data, STAMP)).pages
    references = {page["/Resources"]["/XObject"].raw_get("/VaultWm") for page in pages}
    assert len(references) == 1
    reference = references.pop()
    assert isinstance(reference, IndirectObject)
    assert reference.get_object()["/Subtype"] == "/Form"


def test_inherited_and_shared_resources_keep_working_on_every_page():
    content = b"BT /F1 12 Tf 72 700 Td (Shared text) Tj ET"
    data = raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        # Page 3 inherits resources and media box from the page tree; page 4 names the same
        # resources itself. The XObject dictionary is a shared indirect object too.
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /Resources 5 0 R /MediaBox 7 0 R >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 6 0 R >>",
        b"<< /Type /Page /Parent 2 0 R /Contents [6 0 R] /Resources 5 0 R /Rotate 90 >>",
        b"<< /Font << /F1 8 0 R >> /XObject 9 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"[0 0 595 842]",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< >>",
    )
    pages = read(stamp_pdf(data, STAMP)).pages
    for page in pages:
        extracted = page.extract_text()
        assert "Shared text" in extracted and "EV-0042" in extracted
        assert set(page["/Resources"]["/Font"]) == {"/F1"}
        assert page["/Resources"]["/XObject"]["/VaultWm"]["/Subtype"] == "/Form"


def test_a_hundred_text_pages_grow_by_less_than_ten_percent():
    data = make_pdf(*[Page(content=prose(n)) for n in range(100)])
    stamped = stamp_pdf(data, STAMP)
    assert len(stamped) < len(data) * 1.10, (len(data), len(stamped))


def test_state_left_modified_or_unbalanced_by_a_page_does_not_reach_the_stamp():
    # Open levels with a scaling and a clip, a stray Q, or a plain transformation left set.
    contents = [b"q 3 0 0 3 0 0 cm q 0 0 10 10 re W n 1 1 1 rg " + text("Open levels"),
                b"Q 2 0 0 2 50 50 cm " + text("Stray Q"),
                b"0.5 0 0 0.5 0 0 cm 1 1 1 rg " + text("Left set")]
    plain = read(stamp_pdf(make_pdf(Page()), STAMP)).pages[0]
    stamped = read(stamp_pdf(make_pdf(*[Page(content=c) for c in contents]), STAMP))
    for page in stamped.pages:
        assert stamp_ctm(page) == pytest.approx(stamp_ctm(plain))
        assert "EV-0042" in page.extract_text()


@pytest.mark.parametrize(("spec", "seen"), [
    (Page(), (612, 792)),
    (Page(842, 595), (842, 595)),
    (Page(rotate=90), (792, 612)),
    (Page(rotate=180), (612, 792)),
    (Page(rotate=270, origin=(100, 200)), (792, 612)),
    (Page(300, 2000, origin=(-300, -1000)), (300, 2000)),
])
def test_stamp_is_upright_rising_and_inside_the_visible_page(spec, seen):
    page = read(stamp_pdf(make_pdf(spec), STAMP)).pages[0]
    a, b, c, d, e, f = stamp_ctm(page)
    box = page.mediabox
    # The form is centred on its origin: the stamp's centre is the page's.
    assert (e, f) == pytest.approx(((box.left + box.right) / 2, (box.bottom + box.top) / 2))
    # The text direction as the reader sees it (the viewer turns the page by /Rotate).
    dx, dy = {0: (a, b), 90: (b, -a), 180: (-a, -b), 270: (-b, a)}[spec.rotate]
    assert dx > 0 and dy > 0
    assert dy / dx == pytest.approx(seen[1] / seen[0], rel=1e-3)  # along the diagonal
    x1, y1, x2, y2 = (float(v) for v in page["/Resources"]["/XObject"]["/VaultWm"]["/BBox"])
    for x, y in ((x1, y1), (x1, y2), (x2, y1), (x2, y2)):
        assert box.left <= a * x + c * y + e <= box.right
        assert box.bottom <= b * x + d * y + f <= box.top


def test_stamping_a_stamped_copy_keeps_both_stamps():
    first = stamp_pdf(make_pdf(Page()), STAMP)
    second = Stamp(name="Bo Lee", user_id="u-2", issued_at=ISSUED, code="EV-0099")
    page = read(stamp_pdf(first, second)).pages[0]
    assert set(page["/Resources"]["/XObject"]) == {"/VaultWm", "/VaultWm1"}
    assert "EV-0042" in page.extract_text() and "EV-0099" in page.extract_text()


def test_encrypted_pdf_is_refused():
    writer = PdfWriter(clone_from=read(make_pdf(Page())))
    writer.encrypt("insecure-password", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(WatermarkError, match="encrypted"):
        stamp_pdf(out.getvalue(), STAMP)


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\x01garbage" * 100,
    b"<!DOCTYPE html><html><body>not a pdf</body></html>",
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF",
], ids=["empty", "garbage", "html", "truncated"])
def test_unreadable_file_is_refused(data):
    with pytest.raises(WatermarkError):
        stamp_pdf(data, STAMP)


def test_pdf_without_pages_is_refused():
    out = io.BytesIO()
    PdfWriter().write(out)
    with pytest.raises(WatermarkError, match="no pages"):
        stamp_pdf(out.getvalue(), STAMP)


# -- the limited child process -----------------------------------------------------------

def test_stamping_in_the_sandbox_gives_the_same_stamped_pdf():
    data = make_pdf(Page(), Page(rotate=90))
    stamped = stamp_pdf_limited(data, KOREAN)
    assert stamped == stamp_pdf(data, KOREAN)


def test_watermark_error_in_the_sandbox_comes_back_as_itself():
    with pytest.raises(WatermarkError, match="not a readable PDF") as raised:
        stamp_pdf_limited(b"<html></html>", STAMP)
    # The template and its values come back too, so the message can be shown translated.
    assert raised.value.message_template == "The file is not a readable PDF ({problem})."
    assert set(raised.value.values) == {"problem"}
    with pytest.raises(WatermarkError, match=r"^broken on page 3$"):
        run_limited(sandbox_targets.raise_watermark_error, "broken on page 3", **LIMITS,
                    passthrough=(WatermarkError,))


def test_sandbox_returns_the_result_of_a_large_round_trip():
    data = bytes(range(256)) * 40_000  # 10 MB
    assert run_limited(sandbox_targets.echo, data, **LIMITS) == data


def test_sandbox_serves_concurrent_calls_from_threads():
    # As a gunicorn worker with several threads does.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: run_limited(sandbox_targets.echo, n, **LIMITS),
                                range(8)))
    assert results == list(range(8))


def test_sandbox_kills_a_call_that_outlasts_the_wall_limit(tmp_path: Path):
    pid_file = tmp_path / "pid"
    with pytest.raises(SandboxError, match=r"^timed out after 0.5 s$"):
        run_limited(sandbox_targets.sleep_after_writing_pid, str(pid_file), 30,
                    cpu_seconds=5, memory_bytes=1024**3, wall_seconds=0.5)
    pid = int(pid_file.read_text(encoding="ascii"))
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped, not a zombie
    assert multiprocessing.active_children() == []


def test_sandbox_reports_the_memory_limit():
    with pytest.raises(SandboxError, match=r"^memory limit exceeded$"):
        run_limited(sandbox_targets.allocate, 1024**3, cpu_seconds=5,
                    memory_bytes=512 * 1024**2, wall_seconds=10)


def test_sandbox_reports_the_cpu_limit():
    with pytest.raises(SandboxError, match=r"^cpu limit exceeded$"):
        run_limited(sandbox_targets.spin, cpu_seconds=1, memory_bytes=1024**3, wall_seconds=10)


@pytest.mark.parametrize(("func", "args", "reason"), [
    (sandbox_targets.exit_abruptly, (3,), r"^crashed \(exit code 3\)$"),
    (sandbox_targets.crash, (), r"^crashed \(signal 11\)$"),
    (sandbox_targets.raise_value_error, ("odd input",), r"^failed: ValueError: odd input$"),
])
def test_sandbox_turns_crashes_and_unexpected_errors_into_sandbox_errors(func, args, reason):
    with pytest.raises(SandboxError, match=reason):
        run_limited(func, *args, **LIMITS)
    assert multiprocessing.active_children() == []


def test_default_limits_are_generous_enough_for_documents():
    assert Limits() == Limits(cpu_seconds=20, memory_bytes=1024**3, wall_seconds=30)
