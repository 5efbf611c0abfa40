"""Screening names each kind of active content an applicant's PDF holds, and where.

Every case of the hostile corpus (plain, in object streams, in an incremental update) is
analysed in the sandbox as screening does it; the facts name the kind and the place, and the
checks turn each kind into a warning of its own whose evidence says which kind and where, in
English and Korean. A file without any gets a pass.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.hostile_corpus import CASES, PACKINGS, hostile_pdf
from tests.screening_corpus import text_pdf
from tests.test_screening_checks import DEFINITION, complete, good_pdf, one, replaced
from vault.documents.disarm import ActiveContent
from vault.programmes.definition import PdfRules
from vault.screening.analysis import PdfFacts, analyse_pdf
from vault.screening.checks import Finding
from vault.screening.evaluate import evaluate
from vault.screening.models import CheckResult

RULES = PdfRules()


def findings_for(facts: PdfFacts) -> list[Finding]:
    """The proposal's active content findings for a submission whose proposal has ``facts``."""
    pdf = dataclasses.replace(good_pdf("proposal"), active_content=facts.active_content)
    return [f for f in evaluate(DEFINITION, complete(documents=replaced("proposal", pdf=pdf)))
            if f.kind == "proposal" and f.check_id == "pdf.active_content"]


@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_kind_of_active_content_is_a_warning_naming_the_kind_and_where(case, packing):
    facts = analyse_pdf(hostile_pdf([case.name], packing=packing), RULES)
    assert facts.unreadable is None
    assert {found.kind for found in facts.active_content} == {case.kind, *case.also}
    found = findings_for(facts)
    assert {f.result for f in found} == {CheckResult.WARNING}
    assert len(found) == len({case.kind, *case.also})  # one finding per kind
    [finding] = [f for f in found if f.values["active_kind"] == case.kind]
    english = finding.evidence("en")
    what, _, places = english.partition(" in ")
    assert places.startswith(case.place), english
    assert what and what in finding.message("en")
    assert finding.evidence("ko") != english and finding.message("ko") != finding.message("en")


def test_every_kind_combined_gives_one_finding_per_kind_in_english_and_korean():
    facts = analyse_pdf(hostile_pdf([case.name for case in CASES], packing="objstm"), RULES)
    found = findings_for(facts)
    kinds = [f.values["active_kind"] for f in found]
    assert sorted(kinds) == sorted({case.kind for case in CASES}) and len(set(kinds)) == len(kinds)
    evidence = {f.values["active_kind"]: (f.evidence("en"), f.evidence("ko")) for f in found}
    assert evidence["javascript"][0].startswith("JavaScript in /OpenAction")
    # OpenAction, name tree, outline, form XObject, annotation /AA, page /AA: five listed.
    assert evidence["javascript"][0].endswith(", … (6 places)")
    assert "1쪽 주석 4" in evidence["javascript"][1]
    assert evidence["javascript"][1].endswith("(모두 6곳)에서 발견: 자바스크립트")
    assert evidence["embedded_file"][0] == (
        "embedded file in /Names/EmbeddedFiles 'x.exe', page 1 annotation 5 'movie.swf', "
        "page 2 annotation 4 'report.exe'")
    assert evidence["launch"][1] == ("1쪽 주석 6, 3쪽 주석 1에서 발견: "
                                     "실행 동작(프로그램 실행·파일 열기)")
    assert evidence["uri"][0] == "web link (URI action) in catalog /URI, page 1 annotation 1"


def test_a_file_without_active_content_passes():
    facts = analyse_pdf(text_pdf(3, signature=True), RULES)
    assert facts.active_content == ()
    [finding] = findings_for(facts)
    assert finding.result is CheckResult.PASS
    assert finding.evidence("en") == "no active content"
    assert finding.evidence("ko") == "능동 콘텐츠 없음"


def test_many_places_are_counted_and_the_first_five_listed():
    links = [b"<< /Type /Annot /Subtype /Link /Rect [0 %d 100 %d] /A << /S /URI "
             b"/URI (https://example.org/%d) >> >>" % (i * 20, i * 20 + 10, i) for i in range(12)]
    facts = analyse_pdf(hostile_pdf([], annotations=links), RULES)
    assert facts.active_content == (ActiveContent("uri", 12, tuple(
        f"page 1 annotation {i}" for i in range(1, 6))),)
    [finding] = findings_for(facts)
    assert finding.evidence("en").endswith("page 1 annotation 5, … (12 places)")
    assert finding.evidence("ko").startswith("1쪽 주석 1, ")
    assert "모두 12곳" in finding.evidence("ko")


def test_an_embedded_files_name_is_shown_without_control_characters():
    name = "report\u202efdp.exe" + "x" * 60
    spec = (b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 10 10] /FS << /Type /Filespec "
            b"/UF <" + ("\ufeff" + name).encode("utf-16-be").hex().encode() + b"> >> >>")
    facts = analyse_pdf(hostile_pdf([], annotations=[spec]), RULES)
    [found] = facts.active_content
    assert found.kind == "embedded_file"
    shown = found.places[0].split("'")[1]
    assert "\u202e" not in shown and shown.startswith("reportfdp.exe") and len(shown) == 40


def test_active_content_round_trips_through_the_cached_facts():
    facts = analyse_pdf(hostile_pdf(["launch", "embedded_files"]), RULES)
    assert len(facts.active_content) == 2
    assert PdfFacts.from_json(facts.to_json()) == facts


def test_facts_cached_before_active_content_was_looked_for_are_analysed_again():
    old = json.loads(good_pdf("proposal").to_json())
    del old["active_content"]
    with pytest.raises(ValueError, match="not PDF facts"):
        PdfFacts.from_json(json.dumps(old))


@pytest.mark.parametrize("active", [
    [["javascript", 0, []]], [["worm", 1, ["page 1"]]], [["javascript", 1, "page 1"]],
    [["javascript", 2, ["a", "b", "c"]]], [["javascript", 1, [1]]], [["uri"]],
])
def test_malformed_active_content_in_cached_facts_is_refused(active):
    text = json.loads(good_pdf("proposal").to_json())
    text["active_content"] = active
    with pytest.raises(ValueError, match="not PDF facts"):
        PdfFacts.from_json(json.dumps(text))


def test_the_check_is_in_the_catalogue_and_the_complete_submission_passes_it():
    finding = one(evaluate(DEFINITION, complete()), "pdf.active_content", "proposal")
    assert finding.result is CheckResult.PASS
    assert finding.title("ko") == "능동 콘텐츠 없음"


def test_a_broken_object_outside_the_pages_leaves_the_file_readable():
    data = hostile_pdf(["launch"], catalog=b"/Names << /JavaScript << /Names [(x) 99 0 R] >> "
                                           b"/Dests 98 0 R >>")
    facts = analyse_pdf(data, RULES)
    assert facts.unreadable is None and facts.page_count == 3
    assert [found.kind for found in facts.active_content] == ["launch"]
