"""The screening and evaluation rules of a definition: read as written, and every broken
variant refused with the file, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_programme_definition import FILE, SHIPPED, _variant
from vault.programmes.definition import DefinitionError, load_definition
from vault.programmes.rules import (
    PAGE_SIZES,
    ConsortiumRules,
    Decision,
    GpuModel,
    Heading,
    PdfRules,
    Range,
)


def test_shipped_screening_rules_per_document_kind() -> None:
    definition = load_definition(SHIPPED)

    proposal = definition.document_kind("proposal").screening
    assert (proposal.min_pages, proposal.max_pages, proposal.page_size) == (5, 40, "A4")
    assert proposal.headings[0] == Heading(ko="사업 개요", en="Project overview")
    assert len(proposal.headings) == 5
    assert proposal.signature_required is False
    letter = definition.document_kind("letter_of_commitment").screening
    assert letter == PdfRules(max_pages=5, signature_required=True)
    assert definition.document_kind("partner_nda").screening.signature_required is True
    assert "A4" in PAGE_SIZES and "Letter" in PAGE_SIZES


def test_shipped_consortium_rules_and_resource_form() -> None:
    definition = load_definition(SHIPPED)

    assert definition.consortium == ConsortiumRules(min_universities=1, max_members=10)
    form = definition.resources
    assert form is not None
    assert form.gpu_model("b200") == GpuModel("b200", "NVIDIA B200", 1024)
    assert form.gpu_model("a100") is None
    assert form.gpu_count == Range(0, 2048)
    assert form.data_budget_krw == Range(0, 30_000_000_000)
    assert 200 in form.talent_headcount and 201 not in form.talent_headcount
    assert True not in form.talent_headcount  # a bool is not a headcount


def test_shipped_stages_have_criteria_weights_and_decisions() -> None:
    definition = load_definition(SHIPPED)

    written = definition.stage("written")
    assert written.decision == Decision("top", 10)
    assert sum(criterion.weight for criterion in written.criteria) == 100
    assert written.criteria[0].title("ko") == "기술 역량"
    assert written.criteria[0].description("en").startswith("People, infrastructure")
    assert definition.stage("presentation").decision == Decision("top", 5)
    assert definition.stage("stage_1").decision == Decision("eliminate", 1)
    assert definition.stage("additional_call").decision == Decision("majority")


def test_a_definition_without_the_new_tables_has_no_rules(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    path = _variant(tmp_path, "[consortium]\n", "[ignored]\n")
    # Drop everything from the consortium table on (consortium and resources are last).
    path.write_text(text[: text.index("[consortium]\n")], encoding="utf-8")

    definition = load_definition(path)

    assert definition.consortium == ConsortiumRules()
    assert definition.resources is None


#: A sixth criterion of 5 %, which takes a stage's weights past 100.
EXTRA_CRITERION = """
[[stages.criteria]]
id = "extra"
title_ko = "추가"
title_en = "Extra"
description_ko = "추가 기준"
description_en = "An extra criterion"
weight = 5
"""
BROKEN = [
    ("pages-reversed", "min_pages = 5\nmax_pages = 40\n", "min_pages = 50\nmax_pages = 40\n",
     "document_kinds[0].screening.max_pages", "must not be less than min_pages (50)"),
    ("pages-zero", "min_pages = 5\n", "min_pages = 0\n",
     "document_kinds[0].screening.min_pages", "must be a whole number from 1 to"),
    ("pages-bool", "min_pages = 5\n", "min_pages = true\n",
     "document_kinds[0].screening.min_pages", "must be a whole number"),
    ("page-size-unknown", 'page_size = "A4"\nsignature_required = false\n',
     'page_size = "B5"\nsignature_required = false\n',
     "document_kinds[0].screening.page_size", 'must be one of "A4", "Letter"'),
    ("screening-typo", "max_pages = 30\n", "max_page = 30\n",
     "document_kinds[1].screening.max_page", 'did you mean "max_pages"?'),
    ("heading-missing-language", '{ ko = "사업 개요", en = "Project overview" }',
     '{ ko = "사업 개요" }', "document_kinds[0].screening.headings[0].en",
     "required key is missing"),
    ("heading-not-a-table", '{ ko = "사업 개요", en = "Project overview" }', '"사업 개요"',
     "document_kinds[0].screening.headings[0]", "must be a table"),
    ("signature-not-bool", "max_pages = 5\nsignature_required = true\n",
     'max_pages = 5\nsignature_required = "yes"\n',
     "document_kinds[2].screening.signature_required", "must be true or false"),
    ("universities-negative", "min_universities = 1", "min_universities = -1",
     "consortium.min_universities", "must be a whole number from 0 to 50"),
    ("consortium-typo", "max_members = 10", "max_member = 10",
     "consortium.max_member", 'did you mean "max_members"?'),
    ("range-reversed", "gpu_count = { min = 0, max = 2048 }",
     "gpu_count = { min = 4096, max = 2048 }",
     "resources.gpu_count.max", "must not be less than min (4096)"),
    ("range-missing", "talent_headcount = { min = 0, max = 200 }\n", "",
     "resources.talent_headcount", "required key is missing"),
    ("gpu-model-duplicate", 'id = "h200"', 'id = "b200"',
     "resources.gpu_models[1].id", "duplicate id 'b200'"),
    ("gpu-model-count-zero", "max_count = 2048", "max_count = 0",
     "resources.gpu_models[2].max_count", "must be a whole number from 1 to"),
    ("weights-not-100", "keep = 5\n", "keep = 5\n" + EXTRA_CRITERION,
     "stages[1].criteria", "weights must add up to 100, got 105"),
    ("decision-unknown", 'decision = "majority"', 'decision = "vote"',
     "stages[3].decision", 'must be one of "top", "eliminate", "majority"'),
    ("keep-with-eliminate", '2027-09-24T18:00:00+09:00\npublish_scores = true\n',
     '2027-09-24T18:00:00+09:00\nkeep = 3\npublish_scores = true\n',
     "stages[2].keep", "does not apply"),
    ("keep-without-decision", 'decision = "majority"\n', 'keep = 2\n',
     "stages[3].keep", "needs a decision rule"),
]


@pytest.mark.parametrize(("old", "new", "field", "problem"),
                         [pytest.param(*case[1:], id=case[0]) for case in BROKEN])
def test_broken_rules_name_file_and_field(tmp_path: Path, old: str, new: str, field: str,
                                          problem: str) -> None:
    path = _variant(tmp_path, old, new)

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert caught.value.file == FILE
    assert caught.value.field == field
    assert problem in str(caught.value)


def test_screening_rules_need_a_pdf_kind(tmp_path: Path) -> None:
    path = _variant(tmp_path, '    "application/pdf",\n    "application/vnd',
                    '    "application/vnd')

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert caught.value.field == "document_kinds[1].screening"
    assert "accepts no application/pdf" in str(caught.value)


def _written_scoring(tmp_path: Path, old: str, new: str) -> Path:
    """The shipped file with ``old`` replaced in the written stage's scoring (the first one)."""
    path = _variant(tmp_path, 'code = "sovereign-ai-2025"', 'code = "sovereign-ai-2025"')
    text = path.read_text(encoding="utf-8")
    start = text.index("[stages.scoring]")
    assert old in text[start:start + 300], old
    path.write_text(text[:start] + text[start:].replace(old, new, 1), encoding="utf-8")
    return path


def test_shipped_scoring_of_the_written_stage() -> None:
    scoring = load_definition(SHIPPED).stage("written").scoring

    assert scoring is not None
    assert scoring.scale == Range(0, 100)
    assert scoring.trim_from == 5
    assert scoring.tie_break == ("criterion:excellence", "criterion:capability",
                                 "earliest_submission")
    assert load_definition(SHIPPED).stage("additional_call").scoring is None


@pytest.mark.parametrize(("old", "new", "field", "problem"), [
    pytest.param("scale = { min = 0, max = 100 }", "scale = { min = 5, max = 5 }",
                 "stages[0].scoring.scale", "max must be greater than min", id="flat-scale"),
    pytest.param("trim_from = 5", "trim_from = 2", "stages[0].scoring.trim_from",
                 "must be 0 (never) or at least 3", id="trim-two"),
    pytest.param('"criterion:capability"', '"criterion:charisma"',
                 "stages[0].scoring.tie_break[1]", "'criterion:charisma' is neither",
                 id="unknown-criterion"),
    pytest.param('"criterion:capability"', '"criterion:excellence"',
                 "stages[0].scoring.tie_break[1]", "duplicate rule", id="duplicate-rule"),
    pytest.param("tie_break = [", "tie_brake = [", "stages[0].scoring.tie_brake",
                 'did you mean "tie_break"?', id="typo"),
])
def test_broken_scoring_names_file_and_field(tmp_path: Path, old: str, new: str, field: str,
                                             problem: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(_written_scoring(tmp_path, old, new))

    assert caught.value.field == field
    assert problem in str(caught.value)


def test_scoring_needs_criteria(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'decision = "majority"\n',
                    'decision = "majority"\n\n[stages.scoring]\nscale = { min = 0, max = 10 }\n')

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert caught.value.field == "stages[3].scoring.scale"
    assert "needs [[stages.criteria]]" in str(caught.value)


def test_a_misspelt_criterion_key_is_named(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'code = "sovereign-ai-2025"', 'code = "sovereign-ai-2025"')
    text = path.read_text(encoding="utf-8")
    first = text.index('[[stages.criteria]]\nid = "capability"')
    path.write_text(text[:first] + text[first:].replace("id =", "ident =", 1), encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert caught.value.field == "stages[0].criteria[0].ident"
    assert "unknown key" in str(caught.value)
