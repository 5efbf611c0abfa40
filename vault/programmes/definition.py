"""Programme definitions: the TOML files in ``policies/programmes`` that describe a call.

A definition is data an officer edits, so loading is strict: every error names the file, the
field (a dotted path with 0-based indices, e.g. ``document_kinds[1].media_types``) and the
problem, and unknown keys are errors so a typo cannot silently drop a rule. To add a key later,
add it to the matching ``*_KEYS`` set and read it in the matching ``read_*`` function: here for
the programme, the NDA and conflicts; document kinds in ``document_kinds``, stages in ``stages``,
their rules in ``rules`` and ``evaluation_rules``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vault.programmes.document_kinds import DocumentKind, read_document_kind
from vault.programmes.evaluation_rules import (
    Component,
    Disqualification,
    Retention,
    read_retention,
)
from vault.programmes.rules import (
    PAGE_SIZE_TOLERANCE,
    PAGE_SIZES,
    ConsortiumRules,
    Criterion,
    Decision,
    Heading,
    PdfRules,
    ResourceForm,
    Scoring,
    read_consortium,
    read_resources,
)
from vault.programmes.stages import CALL, Stage, read_stage
from vault.programmes.tables import MAX_TITLE_LENGTH, DefinitionError, Table
from vault.programmes.tables import is_korean as _is_korean

__all__ = [
    "CALL",
    "MAX_TITLE_LENGTH",
    "PAGE_SIZES",
    "PAGE_SIZE_TOLERANCE",
    "Component",
    "ConsortiumRules",
    "Criterion",
    "Decision",
    "DefinitionError",
    "Disqualification",
    "DocumentKind",
    "Heading",
    "PdfRules",
    "ResourceForm",
    "Retention",
    "Scoring",
    "Stage",
]

PROGRAMME_KEYS = frozenset(
    {
        "code",
        "title_ko",
        "title_en",
        "submission_opens",
        "submission_deadline",
        "current_stage",
        "document_kinds",
        "stages",
        "nda",
        "conflicts",
        "consortium",
        "resources",
        "retention",
    }
)
NDA_KEYS = frozenset({"text", "accepted_until"})
CONFLICT_KEYS = frozenset({"affiliation_years", "sanction_years", "dual_control_hours"})
#: Upper bound of the year counts of the conflict rules (beyond it a value is a typo).
MAX_RULE_YEARS = 50
_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
@dataclass(frozen=True)
class NdaTerms:
    """The programme's non-disclosure agreement, which reviewers accept before reading."""

    #: The full text, Korean and English, exactly as the file holds it.
    text: str
    #: SHA-256 (hex) of the text's UTF-8 bytes: the version reviewers accept.
    sha256: str
    #: Every acceptance of this programme's NDA holds until this moment.
    accepted_until: datetime
    source: Path


@dataclass(frozen=True)
class ConflictRules:
    """Conflict-of-interest rules (Korean practice: 제척, 기피, 회피, sanctions)."""

    #: A past affiliation with a consortium's lead or partner counts for this many years after
    #: it ended (the current affiliation always counts).
    affiliation_years: int = 3
    #: Reviewers sanctioned within this many years are excluded.
    sanction_years: int = 3
    #: How long a second officer's approval to read a conflicted consortium lasts.
    dual_control_hours: int = 8


@dataclass(frozen=True)
class ProgrammeDefinition:
    """A validated programme definition and the file it came from."""

    code: str
    title_ko: str
    title_en: str
    submission_opens: datetime
    submission_deadline: datetime
    #: ``CALL`` or the id of one of ``stages``.
    current_stage: str
    document_kinds: tuple[DocumentKind, ...]
    stages: tuple[Stage, ...]
    source: Path
    #: SHA-256 (hex) of the file bytes, so a record can say which version it was built from.
    sha256: str
    #: ``None`` when the programme has no NDA yet: reviewers then read nothing.
    nda: NdaTerms | None = None
    conflicts: ConflictRules = ConflictRules()
    consortium: ConsortiumRules = field(default_factory=ConsortiumRules)
    #: ``None`` when the programme asks for no resource request.
    resources: ResourceForm | None = None
    #: ``None``: the material of consortia that are out is kept (no automatic shredding).
    retention: Retention | None = None

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if _is_korean(locale) else self.title_en

    def document_kind(self, id: str) -> DocumentKind:
        """The document kind with this id; raises KeyError if there is none."""
        for kind in self.document_kinds:
            if kind.id == id:
                return kind
        raise KeyError(f"programme {self.code!r} has no document kind {id!r}")

    def stage(self, id: str) -> Stage:
        """The stage with this id; raises KeyError if there is none."""
        for stage in self.stages:
            if stage.id == id:
                return stage
        raise KeyError(f"programme {self.code!r} has no stage {id!r}")

    @property
    def call_kinds(self) -> tuple[DocumentKind, ...]:
        """The document kinds of the application itself (screened at the call)."""
        return tuple(kind for kind in self.document_kinds if kind.for_call)

    def next_stage(self, id: str) -> Stage | None:
        """The stage the submissions that pass stage ``id`` go on to; ``None`` after the last.

        Majority stages (an additional-team call) judge only the candidates entered into them:
        the teams that pass another stage skip them, and those a majority accepts join the
        next stage after it.
        """
        ids = [stage.id for stage in self.stages]
        position = ids.index(id)  # KeyError-like ValueError for an unknown id is a bug
        for stage in self.stages[position + 1:]:
            if stage.decision is None or stage.decision.rule != "majority":
                return stage
        return None


def _read_nda(path: Path, data: Any) -> NdaTerms:
    file = path.name
    if not isinstance(data, dict):
        raise DefinitionError(file, "nda", "must be a table ([nda])")
    table = Table(file, "nda", data, NDA_KEYS)
    table.check_keys()
    name = table.get("text")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise table.error("text", "must be the name of a text file next to the definition, "
                                  f"like {path.stem}.nda.txt")
    source = path.parent / name
    try:
        raw = source.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise table.error("text", f"cannot read {name}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise table.error("text", f"{name} is not UTF-8 text") from exc
    if not text.strip():
        raise table.error("text", f"{name} is empty")
    return NdaTerms(text=text, sha256=hashlib.sha256(raw).hexdigest(),
                    accepted_until=table.aware_datetime("accepted_until"), source=source)


def _read_conflicts(file: str, data: Any) -> ConflictRules:
    if not isinstance(data, dict):
        raise DefinitionError(file, "conflicts", "must be a table ([conflicts])")
    table = Table(file, "conflicts", data, CONFLICT_KEYS)
    table.check_keys()
    defaults = ConflictRules()
    values: dict[str, int] = {}
    for key, upper in (("affiliation_years", MAX_RULE_YEARS), ("sanction_years", MAX_RULE_YEARS),
                       ("dual_control_hours", 24 * 14)):
        value = table.data.get(key, getattr(defaults, key))
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= upper:
            raise table.error(key, f"must be a whole number from 0 to {upper}")
        values[key] = value
    if values["dual_control_hours"] == 0:
        raise table.error("dual_control_hours", "must be at least 1")
    return ConflictRules(**values)


def _unique(file: str, array: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise DefinitionError(file, f"{array}[{index}].id", f"duplicate id {item_id!r}")
        seen.add(item_id)


def _read_programme(path: Path, data: dict[str, Any], sha256: str) -> ProgrammeDefinition:
    file = path.name
    table = Table(file, "", data, PROGRAMME_KEYS)
    table.check_keys()
    code = table.slug("code", _CODE_RE, "a lowercase slug like sovereign-ai-2025")
    if code != path.stem:
        raise table.error("code", f"must equal the file name without .toml ({path.stem!r})")
    title_ko = table.title("title_ko")
    title_en = table.title("title_en")
    submission_opens = table.aware_datetime("submission_opens")
    submission_deadline = table.aware_datetime("submission_deadline")
    if not submission_opens < submission_deadline:
        raise table.error("submission_deadline", "must be after submission_opens")

    kinds = tuple(
        read_document_kind(file, index, item)
        for index, item in enumerate(table.array_of_tables("document_kinds"))
    )
    _unique(file, "document_kinds", (kind.id for kind in kinds))

    stages = tuple(
        read_stage(file, index, item) for index, item in enumerate(table.array_of_tables("stages"))
    )
    _unique(file, "stages", (stage.id for stage in stages))
    for index, stage in enumerate(stages):
        # Reviewers must never see a submission its applicant can still change.
        if stage.review_opens < submission_deadline:
            raise DefinitionError(
                file, f"stages[{index}].review_opens", "must not be before submission_deadline"
            )
        # The array order is the stage order; a window out of order is almost surely a typo.
        if index and stage.review_opens < stages[index - 1].review_opens:
            raise DefinitionError(
                file,
                f"stages[{index}].review_opens",
                f"must not be before the previous stage's review_opens ({stages[index - 1].id})",
            )

    known = {stage.id for stage in stages}
    for index, kind in enumerate(kinds):
        for position, stage_id in enumerate(kind.stages):
            if stage_id not in known:
                raise DefinitionError(file, f"document_kinds[{index}].stages[{position}]",
                                      f"no stage {stage_id!r} in [[stages]]")

    current_stage = table.get("current_stage")
    stage_ids = [stage.id for stage in stages]
    if current_stage != CALL and current_stage not in stage_ids:
        allowed = ", ".join(f'"{value}"' for value in [CALL, *stage_ids])
        raise table.error("current_stage", f"must be one of {allowed}, got {current_stage!r}")

    nda = _read_nda(path, data["nda"]) if "nda" in data else None
    conflicts = _read_conflicts(file, data["conflicts"]) if "conflicts" in data else ConflictRules()
    consortium = (read_consortium(file, data["consortium"]) if "consortium" in data
                  else ConsortiumRules())
    resources = read_resources(file, data["resources"]) if "resources" in data else None
    retention = read_retention(file, data["retention"]) if "retention" in data else None

    return ProgrammeDefinition(
        code=code,
        title_ko=title_ko,
        title_en=title_en,
        submission_opens=submission_opens,
        submission_deadline=submission_deadline,
        current_stage=current_stage,
        document_kinds=kinds,
        stages=stages,
        source=path,
        sha256=sha256,
        nda=nda,
        conflicts=conflicts,
        consortium=consortium,
        resources=resources,
        retention=retention,
    )


def load_definition(path: Path) -> ProgrammeDefinition:
    """Load and validate one definition file; raises DefinitionError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(path.name, None, f"cannot read file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DefinitionError(path.name, None, "is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(path.name, None, f"invalid TOML: {exc}") from exc
    return _read_programme(path, data, hashlib.sha256(raw).hexdigest())


def load_definitions(directory: Path) -> dict[str, ProgrammeDefinition]:
    """Load every ``*.toml`` in a directory, keyed by code; raises DefinitionError."""
    if not directory.is_dir():
        raise DefinitionError(str(directory), None, "is not a directory")
    definitions: dict[str, ProgrammeDefinition] = {}
    for path in sorted(directory.glob("*.toml")):
        definition = load_definition(path)
        # Unreachable while code must equal the file name, but a second definition must never
        # silently replace the first if that rule is ever relaxed.
        if definition.code in definitions:
            other = definitions[definition.code].source.name
            raise DefinitionError(path.name, "code", f"duplicate of {other}")
        definitions[definition.code] = definition
    return definitions
