"""A copy released to a reader holds no active content, whatever the applicant's PDF carried.

Every case of the hostile corpus, alone and all together, plain, hidden in compressed object
streams and arriving in an incremental update, is stamped as a reader's copy is; the copy is
then walked object by object (every indirect object the file holds, and every dictionary and
array nested in them) and must hold no script, action, embedded file, form or media, nor any
payload's marker in its bytes or decoded streams. Its pages still show the same text.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from pypdf.generic import StreamObject

from tests.hostile_corpus import (
    CASES,
    PACKINGS,
    PAGES,
    append_update,
    every_object,
    hostile_pdf,
    page_text,
    problems,
)
from vault.documents.disarm import disarm, find_active_content
from vault.documents.watermark import Stamp, stamp_pdf

STAMP = Stamp(name="Reviewer One", user_id="u-42", issued_at=datetime(2025, 3, 1, tzinfo=UTC),
              code="CDR01-00001")
def texts(data: bytes) -> list[str]:
    """Each page's extracted text, whitespace normalised, without the stamp's two lines."""
    pages = PdfReader(io.BytesIO(data)).pages
    shown = []
    for page in pages:
        text = page.extract_text()
        for line in STAMP.lines():
            text = text.replace(line, "")
        shown.append(" ".join(text.split()))
    return shown


def disarmed(data: bytes) -> bytes:
    """The rebuilt copy without a stamp."""
    out = io.BytesIO()
    disarm(PdfReader(io.BytesIO(data), strict=False)).write(out)
    return out.getvalue()


# -- the corpus holds what it says ----------------------------------------------------------

@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_hostile_file_holds_its_active_content(case, packing):
    data = hostile_pdf([case.name], packing=packing)
    found = {item.kind: item.places for item in
             find_active_content(PdfReader(io.BytesIO(data), strict=True))}
    assert set(found) == {case.kind, *case.also}
    assert any(place.startswith(case.place) for place in found[case.kind]), found
    # The marker is in the file (if not in its bytes, in a compressed stream).
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert case.marker.encode() in data or any(
        isinstance(obj, StreamObject) and case.marker.encode() in obj.get_data()
        for _, obj in every_object(reader))


def test_the_walker_sees_active_content_in_the_original():
    data = hostile_pdf([case.name for case in CASES])
    assert len(problems(data, [case.marker for case in CASES])) > len(CASES)


# -- released copies -------------------------------------------------------------------------

@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_released_copy_holds_none_of_each_kind(case, packing):
    data = hostile_pdf([case.name], packing=packing)
    released = stamp_pdf(data, STAMP)
    assert problems(released, [case.marker]) == []
    assert texts(released) == texts(data)
    assert find_active_content(PdfReader(io.BytesIO(released))) == ()


@pytest.mark.parametrize("packing", PACKINGS)
def test_a_released_copy_of_every_kind_combined_holds_none(packing):
    data = hostile_pdf([case.name for case in CASES], packing=packing)
    released = stamp_pdf(data, STAMP)
    assert problems(released, [case.marker for case in CASES]) == []
    assert texts(released) == texts(data)
    assert texts(disarmed(data)) == texts(data)  # the same text, stamp or no stamp
    assert len(texts(released)) == PAGES and released.count(b"%%EOF") == 1
    assert texts(released)[0] == f"{page_text(0)} Form footer"  # a form XObject still draws


def test_a_rebuilt_copy_keeps_images_fonts_and_shared_resources():
    data = hostile_pdf(["xobject_js", "annotation_aa"])
    copy = PdfReader(io.BytesIO(disarmed(data)))
    first = copy.pages[0]
    form = first["/Resources"]["/XObject"]["/X1"]
    assert form["/Subtype"] == "/Form" and "/AA" not in form and "/OpenAction" not in form
    fonts = {page["/Resources"]["/Font"].raw_get("/F1").idnum for page in copy.pages}
    assert len(fonts) == 1  # one font object, shared as in the original
    # The square annotation still draws; its trigger is gone.
    square = first["/Annots"][0].get_object()
    assert square["/Subtype"] == "/Square" and "/AA" not in square


def test_internal_links_are_rewritten_to_the_rebuilt_pages_and_others_are_dropped():
    # An internal link on page 1 to page 3, as a table of contents would have, and a web link.
    data = hostile_pdf(["uri_link"], annotations=[
        b"<< /Type /Annot /Subtype /Link /Rect [72 700 200 720] "
        b"/A << /S /GoTo /D [12 0 R /XYZ 0 800 0] >> >>"])
    copy = PdfReader(io.BytesIO(stamp_pdf(data, STAMP)))
    links = [a.get_object() for a in copy.pages[0]["/Annots"]]
    assert len(links) == 1  # the web link is gone
    destination = links[0]["/Dest"]
    assert destination[0].get_object() == copy.pages[2]  # the copy's own third page
    assert list(destination[1:]) == ["/XYZ", 0, 800, 0]
    assert "/A" not in links[0]


def test_page_labels_survive_with_their_prefix():
    data = hostile_pdf(["open_action_js"],
                       catalog=b"/PageLabels << /Nums [0 << /S /r /P (A-) >>] >>")
    copy = PdfReader(io.BytesIO(stamp_pdf(data, STAMP)))
    assert copy.page_labels == ["A-i", "A-ii", "A-iii"]
    assert "/OpenAction" not in copy.root_object



def test_bookmarks_keep_their_titles_and_internal_destinations_but_no_actions():
    # Outline: "Chapter 1" runs a script (hostile corpus); an update adds "Budget" -> page 3
    # as its sibling, with a child "Web" that opens a web address.
    data = append_update(hostile_pdf(["outline_js"]), {
        30: b"<< /Type /Outlines /First 31 0 R /Last 40 0 R /Count 3 >>",
        31: b"<< /Title (Chapter 1) /Parent 30 0 R /Next 40 0 R /A << /S /JavaScript "
            b"/JS (app.alert\\('MARK-outline-js'\\)) >> >>",
        40: b"<< /Title (Budget) /Parent 30 0 R /Prev 31 0 R /Dest [12 0 R /Fit] "
            b"/First 41 0 R /Last 41 0 R /Count 1 >>",
        41: b"<< /Title (Web) /Parent 40 0 R /A << /S /URI /URI (https://example.org/) >> >>",
    })
    assert [i.title for i in PdfReader(io.BytesIO(data)).outline if not isinstance(i, list)] \
        == ["Chapter 1", "Budget"]
    copy = PdfReader(io.BytesIO(stamp_pdf(data, STAMP)))
    items = [item for item in copy.outline if not isinstance(item, list)]
    assert [item.title for item in items] == ["Chapter 1", "Budget"]
    assert "/Dest" not in items[0] and copy.get_destination_page_number(items[1]) == 2
    children = copy.outline[-1]
    assert [child.title for child in children] == ["Web"]
    assert problems(stamp_pdf(data, STAMP), ["MARK-outline-js", "example.org"]) == []


def test_a_copy_keeps_the_pdf_version_of_its_source():
    data = hostile_pdf(["launch"])
    assert data.startswith(b"%PDF-1.7") and stamp_pdf(data, STAMP).startswith(b"%PDF-1.7")
