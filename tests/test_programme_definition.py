"""Tests for loading and validating programme definition files."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vault.programmes.definition import (
    CALL,
    DefinitionError,
    ProgrammeDefinition,
    load_definition,
    load_definitions,
)

POLICY_DIR = Path(__file__).resolve().parents[1] / "policies" / "programmes"
SHIPPED = POLICY_DIR / "sovereign-ai-2025.toml"
FILE = SHIPPED.name
MIB = 1024 * 1024


def _variant(tmp_path: Path, old: str, new: str, name: str = FILE) -> Path:
    """Write the shipped file with one exact, unique substitution to ``tmp_path/name``."""
    text = SHIPPED.read_text(encoding="utf-8")
    # A substitution that matches nothing would test the valid file and pass for the wrong reason.
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {FILE}"
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    # The NDA text the definition names lives next to it.
    nda = POLICY_DIR / "sovereign-ai-2025.nda.txt"
    (tmp_path / nda.name).write_bytes(nda.read_bytes())
    return path


def test_shipped_definition_loads_with_expected_code_and_titles() -> None:
    definition = load_definition(SHIPPED)

    assert definition.code == "sovereign-ai-2025"
    assert definition.title("ko") == "독자 AI 파운데이션 모델 2025"
    assert definition.title("ko-KR") == "독자 AI 파운데이션 모델 2025"
    assert definition.title("en") == "Sovereign AI Foundation Model 2025"
    assert definition.current_stage == CALL
    assert definition.source == SHIPPED
    assert definition.sha256 == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()


def test_shipped_definition_keeps_the_demo_call_open_after_2026_11_29() -> None:
    definition = load_definition(SHIPPED)

    assert definition.submission_opens == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert definition.submission_deadline == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    assert definition.submission_deadline > datetime(2026, 11, 29, tzinfo=UTC)
    assert definition.submission_deadline.utcoffset() is not None


def test_shipped_definition_has_expected_document_kinds() -> None:
    definition = load_definition(SHIPPED)

    assert [kind.id for kind in definition.document_kinds] == [
        "proposal",
        "budget_plan",
        "letter_of_commitment",
        "partner_nda",
        "business_registration",
        "data_management_plan",
        "technical_report",
        "training_log",
    ]
    assert [kind.id for kind in definition.call_kinds] == [
        kind.id for kind in definition.document_kinds[:6]]
    assert definition.document_kind("technical_report").stages == (
        "stage_1", "stage_2", "stage_3")
    proposal = definition.document_kind("proposal")
    assert proposal.title("ko") == "사업계획서"
    assert proposal.title("en") == "Project proposal"
    assert proposal.media_types == ("application/pdf",)
    assert proposal.max_size_bytes == 50 * MIB
    assert proposal.required is True
    assert proposal.per == "consortium"
    budget = definition.document_kind("budget_plan")
    assert budget.media_types == (
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    assert budget.max_size_bytes == 20 * MIB
    assert definition.document_kind("letter_of_commitment").per == "partner"
    assert definition.document_kind("letter_of_commitment").title("ko") == "참여확약서"
    assert definition.document_kind("partner_nda").per == "partner"
    assert definition.document_kind("business_registration").title("ko") == "사업자등록증"
    assert definition.document_kind("data_management_plan").required is False
    assert all(kind.title_ko and kind.title_en for kind in definition.document_kinds)


def test_shipped_definition_has_ordered_stages_after_the_deadline() -> None:
    definition = load_definition(SHIPPED)

    assert [stage.id for stage in definition.stages] == [
        "written",
        "presentation",
        "stage_1",
        "additional_call",
        "stage_2",
        "stage_3",
    ]
    assert definition.stage("written").title("ko") == "서면평가"
    assert definition.stage("presentation").title("en") == "Presentation evaluation"
    assert definition.stage("stage_1").title("ko") == "1차 단계평가"
    for stage in definition.stages:
        assert definition.submission_deadline <= stage.review_opens < stage.review_closes
        assert stage.review_opens.year in (2027, 2028)


def test_unknown_kind_or_stage_raises_key_error() -> None:
    definition = load_definition(SHIPPED)

    with pytest.raises(KeyError):
        definition.document_kind("cv")
    with pytest.raises(KeyError):
        definition.stage(CALL)


def test_definition_is_frozen() -> None:
    definition = load_definition(SHIPPED)

    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.code = "other"  # type: ignore[misc]


def test_load_definitions_keys_every_file_by_code() -> None:
    definitions = load_definitions(POLICY_DIR)

    assert "sovereign-ai-2025" in definitions
    assert all(isinstance(value, ProgrammeDefinition) for value in definitions.values())
    assert all(code == value.code for code, value in definitions.items())


def test_load_definitions_reads_only_toml_files(tmp_path: Path) -> None:
    _variant(tmp_path, 'code = "sovereign-ai-2025"', 'code = "sovereign-ai-2025"')
    (tmp_path / "README.md").write_text("not a definition", encoding="utf-8")

    assert list(load_definitions(tmp_path)) == ["sovereign-ai-2025"]


def test_load_definitions_fails_on_any_broken_file(tmp_path: Path) -> None:
    _variant(tmp_path, 'code = "sovereign-ai-2025"', 'code = "sovereign-ai-2025"')
    (tmp_path / "broken.toml").write_text("code = ", encoding="utf-8")

    with pytest.raises(DefinitionError, match=r"^broken\.toml: invalid TOML"):
        load_definitions(tmp_path)


def test_load_definitions_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="is not a directory"):
        load_definitions(tmp_path / "absent")


def test_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"^absent\.toml: cannot read file"):
        load_definition(tmp_path / "absent.toml")


def test_required_defaults_to_true(tmp_path: Path) -> None:
    path = _variant(tmp_path, "max_size_mb = 50\nrequired = true\n", "max_size_mb = 50\n")

    assert load_definition(path).document_kind("proposal").required is True


def test_current_stage_may_name_a_stage(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'current_stage = "call"', 'current_stage = "presentation"')

    assert load_definition(path).current_stage == "presentation"


BROKEN_VARIANTS = [
    # (test id, old text, new text, field named in the message, fragment of the problem)
    (
        "missing-top-level-key",
        'title_en = "Sovereign AI Foundation Model 2025"\n',
        "",
        "title_en",
        "required key is missing",
    ),
    (
        "missing-kind-key",
        "max_size_mb = 50\n",
        "",
        "document_kinds[0].max_size_mb",
        "required key is missing",
    ),
    (
        "missing-stage-key",
        "review_closes = 2027-02-12T18:00:00+09:00\n",
        "",
        "stages[0].review_closes",
        "required key is missing",
    ),
    (
        "unknown-top-level-key",
        'current_stage = "call"',
        'curent_stage = "call"',
        "curent_stage",
        'unknown key; did you mean "current_stage"?',
    ),
    (
        "unknown-kind-key",
        "max_size_mb = 50\n",
        "max_size_mb = 50\nmax_size = 50\n",
        "document_kinds[0].max_size",
        "unknown key",
    ),
    (
        "unknown-stage-key",
        'title_en = "Written evaluation"\n',
        'title_en = "Written evaluation"\nweight = 30\n',
        "stages[0].weight",
        "unknown key",
    ),
    (
        "naive-datetime",
        "submission_deadline = 2027-01-15T18:00:00+09:00",
        "submission_deadline = 2027-01-15T18:00:00",
        "submission_deadline",
        "must have a UTC offset",
    ),
    (
        "plain-date",
        "review_opens = 2027-01-25T09:00:00+09:00",
        "review_opens = 2027-01-25",
        "stages[0].review_opens",
        "got a date",
    ),
    (
        "datetime-as-string",
        "submission_opens = 2026-11-01T09:00:00+09:00",
        'submission_opens = "2026-11-01T09:00:00+09:00"',
        "submission_opens",
        "must be a date-time with a UTC offset",
    ),
    (
        "deadline-before-opens",
        "submission_deadline = 2027-01-15T18:00:00+09:00",
        "submission_deadline = 2026-10-15T18:00:00+09:00",
        "submission_deadline",
        "must be after submission_opens",
    ),
    (
        "duplicate-kind-id",
        'id = "budget_plan"',
        'id = "proposal"',
        "document_kinds[1].id",
        "duplicate id 'proposal'",
    ),
    (
        "kind-id-not-a-slug",
        'id = "budget_plan"',
        'id = "Budget Plan"',
        "document_kinds[1].id",
        "must be a lowercase identifier",
    ),
    (
        "bad-media-type",
        'media_types = ["application/pdf"]\nmax_size_mb = 50',
        'media_types = ["pdf"]\nmax_size_mb = 50',
        "document_kinds[0].media_types[0]",
        'is not a lowercase media type like "application/pdf"',
    ),
    (
        "media-type-with-parameters",
        'media_types = ["application/pdf"]\nmax_size_mb = 50',
        'media_types = ["text/plain; charset=utf-8"]\nmax_size_mb = 50',
        "document_kinds[0].media_types[0]",
        "is not a lowercase media type",
    ),
    (
        "empty-media-types",
        'media_types = ["application/pdf"]\nmax_size_mb = 50',
        "media_types = []\nmax_size_mb = 50",
        "document_kinds[0].media_types",
        'must be a non-empty list of media types like "application/pdf"',
    ),
    (
        "zero-size",
        "max_size_mb = 50\n",
        "max_size_mb = 0\n",
        "document_kinds[0].max_size_mb",
        "must be a whole number of MiB",
    ),
    (
        "oversized-limit",
        "max_size_mb = 50\n",
        "max_size_mb = 100001\n",
        "document_kinds[0].max_size_mb",
        "from 1 to 100000",
    ),
    (
        "boolean-size",
        "max_size_mb = 50\n",
        "max_size_mb = true\n",
        "document_kinds[0].max_size_mb",
        "must be a whole number of MiB",
    ),
    (
        "required-not-bool",
        "max_size_mb = 50\nrequired = true",
        'max_size_mb = 50\nrequired = "yes"',
        "document_kinds[0].required",
        "must be true or false",
    ),
    (
        "bad-per",
        'max_size_mb = 50\nrequired = true\nper = "consortium"',
        'max_size_mb = 50\nrequired = true\nper = "team"',
        "document_kinds[0].per",
        'must be "consortium" or "partner"',
    ),
    (
        "empty-title",
        'title_ko = "사업계획서"',
        'title_ko = "  "',
        "document_kinds[0].title_ko",
        "must be a non-empty string",
    ),
    (
        "code-not-filename",
        'code = "sovereign-ai-2025"',
        'code = "sovereign-ai-2026"',
        "code",
        "must equal the file name",
    ),
    (
        "code-not-a-slug",
        'code = "sovereign-ai-2025"',
        'code = "Sovereign_AI"',
        "code",
        "must be a lowercase slug",
    ),
    (
        "stage-window-before-deadline",
        "review_opens = 2027-01-25T09:00:00+09:00",
        "review_opens = 2027-01-10T09:00:00+09:00",
        "stages[0].review_opens",
        "must not be before submission_deadline",
    ),
    (
        "stage-closes-before-it-opens",
        "review_closes = 2027-02-12T18:00:00+09:00",
        "review_closes = 2027-01-20T18:00:00+09:00",
        "stages[0].review_closes",
        "must be after review_opens",
    ),
    (
        "stages-out-of-order",
        "review_opens = 2027-09-06T09:00:00+09:00",
        "review_opens = 2027-02-01T09:00:00+09:00",
        "stages[2].review_opens",
        "must not be before the previous stage's review_opens",
    ),
    (
        "duplicate-stage-id",
        'id = "stage_2"',
        'id = "stage_1"',
        "stages[4].id",
        "duplicate id 'stage_1'",
    ),
    (
        "stage-id-call-is-reserved",
        'id = "written"',
        'id = "call"',
        "stages[0].id",
        "reserved",
    ),
    (
        "unknown-current-stage",
        'current_stage = "call"',
        'current_stage = "written_evaluation"',
        "current_stage",
        'must be one of "call", "written"',
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [pytest.param(*variant[1:], id=variant[0]) for variant in BROKEN_VARIANTS],
)
def test_broken_variant_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, problem: str
) -> None:
    path = _variant(tmp_path, old, new)

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    error = caught.value
    assert isinstance(error, ValueError)
    assert error.file == FILE
    assert error.field == field
    assert str(error).startswith(f"{FILE}: {field}: ")
    assert problem in str(error)


def test_invalid_toml_syntax_names_file_and_position(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'current_stage = "call"', 'current_stage = "call')

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert caught.value.file == FILE
    assert str(caught.value).startswith(f"{FILE}: invalid TOML: ")
    # The parser's position is the "field" of a syntax error: it says where to look.
    assert "line 19" in str(caught.value)


def test_non_utf8_file_is_a_definition_error(tmp_path: Path) -> None:
    path = tmp_path / FILE
    path.write_bytes(SHIPPED.read_bytes().replace("사업계획서".encode(), b"\xff\xfe"))

    with pytest.raises(DefinitionError, match=rf"^{re.escape(FILE)}: is not UTF-8 text"):
        load_definition(path)


def test_document_kinds_must_be_an_array_of_tables(tmp_path: Path) -> None:
    # Keep only the scalar keys: everything before the first [[document_kinds]] header line.
    head = SHIPPED.read_text(encoding="utf-8").split("\n[[document_kinds]]\n")[0]
    path = tmp_path / FILE
    path.write_text(head + 'document_kinds = "proposal"\n', encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        load_definition(path)

    assert str(caught.value).startswith(f"{FILE}: document_kinds: must be an array of tables")


# -- NDA and conflict rules -----------------------------------------------------------------

def test_the_nda_version_is_the_sha256_of_its_text() -> None:
    definition = load_definition(SHIPPED)
    nda = POLICY_DIR / "sovereign-ai-2025.nda.txt"

    assert definition.nda is not None
    assert definition.nda.sha256 == hashlib.sha256(nda.read_bytes()).hexdigest()
    assert "비밀유지" in definition.nda.text and "Non-Disclosure" in definition.nda.text
    assert definition.nda.accepted_until.utcoffset() is not None


def test_a_changed_nda_text_is_a_new_version(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'code = "sovereign-ai-2025"', 'code = "sovereign-ai-2025"')
    (tmp_path / "sovereign-ai-2025.nda.txt").write_text("A different pledge.\n", encoding="utf-8")

    assert load_definition(path).nda.sha256 != load_definition(SHIPPED).nda.sha256


def test_a_missing_nda_file_names_the_field(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'text = "sovereign-ai-2025.nda.txt"', 'text = "missing.txt"')

    with pytest.raises(DefinitionError, match=r"nda\.text: cannot read missing\.txt"):
        load_definition(path)


@pytest.mark.parametrize("name", ["../secrets.txt", "/etc/passwd", ""])
def test_the_nda_file_must_sit_next_to_the_definition(tmp_path: Path, name: str) -> None:
    path = _variant(tmp_path, 'text = "sovereign-ai-2025.nda.txt"', f'text = "{name}"')

    with pytest.raises(DefinitionError, match=r"nda\.text: must be the name of a text file"):
        load_definition(path)


def test_conflict_rules_are_read_and_checked(tmp_path: Path) -> None:
    rules = load_definition(SHIPPED).conflicts
    assert (rules.affiliation_years, rules.sanction_years, rules.dual_control_hours) == (3, 3, 8)

    path = _variant(tmp_path, "sanction_years = 3", "sanction_years = -1")
    with pytest.raises(DefinitionError, match=r"conflicts\.sanction_years: must be a whole"):
        load_definition(path)
    path = _variant(tmp_path, "sanction_years = 3", "sanction_yeras = 3")
    with pytest.raises(DefinitionError, match=r'did you mean "sanction_years"'):
        load_definition(path)
