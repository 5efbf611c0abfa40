"""Composite stages, disqualification rules, stage artifacts, publication flags and retention
in a definition: read as written, and every broken variant refused with the field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_programme_definition import FILE, POLICY_DIR, SHIPPED
from vault.programmes.definition import (
    Component,
    DefinitionError,
    Retention,
    load_definition,
)
from vault.programmes.rules import Range


def _first(tmp_path: Path, old: str, new: str) -> Path:
    """The shipped file with the first occurrence of ``old`` (stage_1's, for stage keys)
    replaced by ``new``."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text, f"{old!r} must occur in {FILE}"
    path = tmp_path / FILE
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    nda = POLICY_DIR / "sovereign-ai-2025.nda.txt"
    (tmp_path / nda.name).write_bytes(nda.read_bytes())
    return path


def test_the_first_stage_evaluation_is_composite_with_a_disqualification_rule() -> None:
    stage = load_definition(SHIPPED).stage("stage_1")

    assert [(c.id, c.weight, c.source) for c in stage.components] == [
        ("benchmark", 40, "import"), ("expert", 35, "panel"), ("user", 25, "import")]
    assert stage.component("expert").scale == stage.scoring.scale == Range(0, 100)
    assert stage.component("benchmark") == Component(
        "benchmark", "벤치마크 평가", "Benchmark evaluation", 40, "import", Range(0, 100))
    assert [rule.id for rule in stage.disqualifications] == ["from_scratch"]
    assert stage.disqualification("from_scratch").title("ko") == "독자성 요건 미충족"
    assert stage.publish_scores and stage.disclose_panel
    assert stage.uploads_close < stage.review_opens
    with pytest.raises(KeyError):
        stage.component("nothing")


def test_stage_artifacts_are_not_call_documents_and_retention_is_read() -> None:
    definition = load_definition(SHIPPED)

    report = definition.document_kind("technical_report")
    assert report.stages == ("stage_1", "stage_2", "stage_3") and not report.for_call
    assert report.max_size_bytes == 4096 * 1024 * 1024
    assert "technical_report" not in {kind.id for kind in definition.call_kinds}
    assert definition.document_kind("proposal").for_call
    assert definition.retention == Retention(shred_after_days=365, notice_days=30)


def test_teams_that_pass_skip_the_majority_stage() -> None:
    definition = load_definition(SHIPPED)

    assert definition.next_stage("written").id == "presentation"
    assert definition.next_stage("stage_1").id == "stage_2"  # not additional_call
    assert definition.next_stage("additional_call").id == "stage_2"
    assert definition.next_stage("stage_3") is None


BROKEN = [
    ("weights-not-100", "weight = 40\nsource", "weight = 45\nsource",
     "stages[2].components", "weights must add up to 100, got 105"),
    ("unknown-source", 'source = "panel"', 'source = "agency"',
     "stages[2].components[1].source", 'must be "panel" or "import"'),
    ("two-panels", 'weight = 40\nsource = "import"', 'weight = 40\nsource = "panel"',
     "stages[2].components[0].scale", "uses the stage's scoring scale"),
    ("import-without-scale", 'source = "import"\nscale = { min = 0, max = 100 }\n',
     'source = "import"\n', "stages[2].components[0].scale", "required key is missing"),
    ("empty-scale", "scale = { min = 0, max = 100 }\n\n[[stages.components]]\nid = \"expert\"",
     "scale = { min = 5, max = 5 }\n\n[[stages.components]]\nid = \"expert\"",
     "stages[2].components[0].scale.max", "must be greater than min (5)"),
    ("panel-without-scoring",
     '[stages.scoring]\nscale = { min = 0, max = 100 }\ntrim_from = 5\n'
     'tie_break = ["criterion:independence", "criterion:performance", "earliest_submission"]\n',
     "", "stages[2].components[1].source", "needs the stage's [stages.scoring]"),
    ("scoring-without-panel", 'id = "expert"\ntitle_ko = "전문가 평가"\ntitle_en = "Expert review"'
     '\nweight = 35\nsource = "panel"\n',
     'id = "expert"\ntitle_ko = "전문가 평가"\ntitle_en = "Expert review"\nweight = 35\n'
     'source = "import"\nscale = { min = 0, max = 10 }\n',
     "stages[2].components", 'needs a "panel" component'),
    ("duplicate-disqualification", 'id = "from_scratch"', 'id = "from_scratch"\n'
     'title_ko = "a"\ntitle_en = "b"\ndescription_ko = "c"\ndescription_en = "d"\n\n'
     '[[stages.disqualifications]]\nid = "from_scratch"',
     "stages[2].disqualifications[1].id", "duplicate id 'from_scratch'"),
    ("artifacts-after-review", "artifacts_due = 2027-09-03T18:00:00+09:00",
     "artifacts_due = 2027-09-30T18:00:00+09:00",
     "stages[2].artifacts_due", "must not be after review_closes"),
    ("publish-not-bool", "publish_scores = true", 'publish_scores = "yes"',
     "stages[0].publish_scores", "must be true or false"),
    ("kind-unknown-stage", 'stages = ["stage_1", "stage_2", "stage_3"]',
     'stages = ["stage_1", "stage_9"]', "document_kinds[6].stages[1]", "no stage 'stage_9'"),
    ("kind-stages-not-list", 'stages = ["stage_1", "stage_2", "stage_3"]', 'stages = "stage_1"',
     "document_kinds[6].stages", "must be a list of distinct stage ids"),
    ("artifact-with-screening", 'stages = ["stage_1", "stage_2", "stage_3"]\n',
     'stages = ["stage_1", "stage_2", "stage_3"]\n\n[document_kinds.screening]\nmax_pages = 9\n',
     "document_kinds[6].screening", "a stage artifact has none"),
    ("majority-with-scoring", 'decision = "majority"\n',
     'decision = "majority"\n\n[[stages.criteria]]\nid = "fit"\ntitle_ko = "a"\ntitle_en = "b"'
     '\ndescription_ko = "c"\ndescription_en = "d"\nweight = 100\n\n[stages.scoring]\n'
     'scale = { min = 0, max = 10 }\n', "stages[3].scoring", 'does not apply to decision = '
     '"majority"'),
    ("notice-too-long", "notice_days = 30", "notice_days = 365",
     "retention.notice_days", "must be less than shred_after_days (365)"),
    ("retention-typo", "shred_after_days = 365", "shred_after_day = 365",
     "retention.shred_after_day", 'did you mean "shred_after_days"?'),
]


@pytest.mark.parametrize(("old", "new", "field", "problem"),
                         [pytest.param(*case[1:], id=case[0]) for case in BROKEN])
def test_broken_evaluation_rules_name_file_and_field(tmp_path: Path, old: str, new: str,
                                                     field: str, problem: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(_first(tmp_path, old, new))

    assert caught.value.file == FILE
    assert caught.value.field == field
    assert problem in caught.value.problem
