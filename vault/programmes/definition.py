"""Programme definitions: the TOML files in ``policies/programmes`` that describe a call.

A definition is data an officer edits, so loading is strict: every error names the file, the
field (a dotted path with 0-based indices, e.g. ``document_kinds[1].media_types``) and the
problem, and unknown keys are errors so a typo cannot silently drop a rule. To add a key later,
add it to the matching ``*_KEYS`` set and read it in the matching ``_read_*`` function.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from vault.programmes.evaluation_rules import (
    Component,
    Disqualification,
    Retention,
    read_components,
    read_disqualifications,
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
    read_criteria,
    read_decision,
    read_pdf_rules,
    read_resources,
    read_scoring,
)
from vault.programmes.tables import MAX_TITLE_LENGTH, DefinitionError, Table
from vault.programmes.tables import is_korean as _is_korean

__all__ = [
    "MAX_TITLE_LENGTH",
    "PAGE_SIZES",
    "PAGE_SIZE_TOLERANCE",
    "Component",
    "ConsortiumRules",
    "Criterion",
    "Decision",
    "DefinitionError",
    "Disqualification",
    "Heading",
    "PdfRules",
    "ResourceForm",
    "Retention",
    "Scoring",
]

#: The value of ``current_stage`` while the call is open and no stage has started yet.
CALL = "call"

#: ``per`` values: one document for the consortium, or one for each partner.
PER_VALUES = ("consortium", "partner")

#: Upper bound of ``max_size_mb``; beyond this a value is a typo, not a real limit.
MAX_SIZE_MB_LIMIT = 100_000

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
DOCUMENT_KIND_KEYS = frozenset(
    {"id", "title_ko", "title_en", "media_types", "max_size_mb", "required", "per", "screening",
     "stages"}
)
STAGE_KEYS = frozenset({"id", "title_ko", "title_en", "review_opens", "review_closes",
                        "artifacts_due", "criteria", "decision", "keep", "eliminate", "scoring",
                        "components", "disqualifications", "publish_scores", "disclose_panel"})

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# RFC 6838 restricted names, lowercase only so stored and compared values are canonical;
# parameters (";charset=...") and wildcards are deliberately not allowed.
_MEDIA_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE_RE = re.compile(rf"^{_MEDIA_NAME}/{_MEDIA_NAME}$")
_MEDIA_TYPES_PROBLEM = 'must be a non-empty list of media types like "application/pdf"'


@dataclass(frozen=True)
class DocumentKind:
    """A kind of document applicants upload, e.g. the project proposal."""

    id: str
    title_ko: str
    title_en: str
    media_types: tuple[str, ...]
    max_size_bytes: int
    required: bool
    per: Literal["consortium", "partner"]
    #: What screening checks in the kind's PDF versions.
    screening: PdfRules = field(default_factory=PdfRules)
    #: Empty for the call's documents; otherwise the stages during which a submission in one of
    #: them uploads this kind (a stage artifact such as a technical report), until the stage's
    #: ``artifacts_due``. Screening checks only the call's documents.
    stages: tuple[str, ...] = ()

    @property
    def for_call(self) -> bool:
        """Whether the kind belongs to the application (not to a later stage)."""
        return not self.stages

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if _is_korean(locale) else self.title_en


@dataclass(frozen=True)
class Stage:
    """An evaluation stage with its review window."""

    id: str
    title_ko: str
    title_en: str
    review_opens: datetime
    review_closes: datetime
    criteria: tuple[Criterion, ...] = ()
    #: How the stage decides who goes on; ``None`` until the definition says.
    decision: Decision | None = None
    #: How score sheets become a ranking; ``None`` for a stage without score sheets.
    scoring: Scoring | None = None
    #: Stage artifacts (document kinds naming this stage) are accepted until then; ``None``:
    #: until ``review_closes``.
    artifacts_due: datetime | None = None
    #: The weighted parts of a composite stage's score; empty: the panel's score alone.
    components: tuple[Component, ...] = ()
    #: Rules that eliminate a submission regardless of its score.
    disqualifications: tuple[Disqualification, ...] = ()
    #: Whether applicants see their own scores per criterion (and component) once published.
    publish_scores: bool = False
    #: Whether the panel's members are disclosed to applicants once the stage is published.
    disclose_panel: bool = False

    @property
    def uploads_close(self) -> datetime:
        """When stage artifacts stop being accepted."""
        return self.artifacts_due or self.review_closes

    def component(self, id: str) -> Component:
        """The component with this id; raises KeyError if there is none."""
        for component in self.components:
            if component.id == id:
                return component
        raise KeyError(f"stage {self.id!r} has no component {id!r}")

    def disqualification(self, id: str) -> Disqualification:
        """The disqualification rule with this id; raises KeyError if there is none."""
        for rule in self.disqualifications:
            if rule.id == id:
                return rule
        raise KeyError(f"stage {self.id!r} has no disqualification rule {id!r}")

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if _is_korean(locale) else self.title_en


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


def _read_document_kind(file: str, index: int, data: dict[str, Any]) -> DocumentKind:
    table = Table(file, f"document_kinds[{index}]", data, DOCUMENT_KIND_KEYS)
    table.check_keys()
    kind_id = table.slug("id", _ID_RE, "a lowercase identifier like proposal or budget_plan")
    title_ko = table.title("title_ko")
    title_en = table.title("title_en")

    media_types = table.get("media_types")
    if not isinstance(media_types, list) or not media_types:
        raise table.error("media_types", _MEDIA_TYPES_PROBLEM)
    for position, media_type in enumerate(media_types):
        if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise table.error(
                f"media_types[{position}]",
                f'{media_type!r} is not a lowercase media type like "application/pdf"',
            )
        if media_types.index(media_type) != position:
            raise table.error(f"media_types[{position}]", f"duplicate media type {media_type!r}")

    max_size_mb = table.get("max_size_mb")
    # bool is an int in Python; "max_size_mb = true" is a mistake, not 1 MiB.
    if (
        not isinstance(max_size_mb, int)
        or isinstance(max_size_mb, bool)
        or not 0 < max_size_mb <= MAX_SIZE_MB_LIMIT
    ):
        raise table.error(
            "max_size_mb", f"must be a whole number of MiB from 1 to {MAX_SIZE_MB_LIMIT}"
        )

    required = table.data.get("required", True)
    if not isinstance(required, bool):
        raise table.error("required", "must be true or false")

    per = table.get("per")
    if per not in PER_VALUES:
        raise table.error("per", f'must be "consortium" or "partner", got {per!r}')

    screening = read_pdf_rules(table)
    if screening != PdfRules() and "application/pdf" not in media_types:
        raise table.error("screening", "applies to PDF versions, but the kind accepts no "
                                       "application/pdf")
    stages = table.data.get("stages", [])
    if (not isinstance(stages, list) or not all(isinstance(s, str) for s in stages)
            or len(set(stages)) != len(stages)):
        raise table.error("stages", 'must be a list of distinct stage ids like ["stage_1"]')
    if stages and screening != PdfRules():
        raise table.error("screening", "screening checks the call's documents; a stage "
                                       "artifact has none")
    return DocumentKind(
        id=kind_id,
        title_ko=title_ko,
        title_en=title_en,
        media_types=tuple(media_types),
        max_size_bytes=max_size_mb * 1024 * 1024,
        required=required,
        per=per,
        screening=screening,
        stages=tuple(stages),
    )


def _read_stage(file: str, index: int, data: dict[str, Any]) -> Stage:
    table = Table(file, f"stages[{index}]", data, STAGE_KEYS)
    table.check_keys()
    stage_id = table.slug("id", _ID_RE, "a lowercase identifier like written or stage_1")
    if stage_id == CALL:
        # "call" is what current_stage says before any stage; a stage with that id would be
        # indistinguishable from it.
        raise table.error("id", f'"{CALL}" is reserved for the open call')
    title_ko = table.title("title_ko")
    title_en = table.title("title_en")
    review_opens = table.aware_datetime("review_opens")
    review_closes = table.aware_datetime("review_closes")
    if not review_opens < review_closes:
        raise table.error("review_closes", "must be after review_opens")
    artifacts_due = (table.aware_datetime("artifacts_due") if "artifacts_due" in table.data
                     else None)
    if artifacts_due is not None and not artifacts_due <= review_closes:
        raise table.error("artifacts_due", "must not be after review_closes")
    criteria = read_criteria(table)
    decision = read_decision(table)
    scoring = read_scoring(table, criteria)
    if decision is not None and decision.rule == "majority":
        # A majority stage's panel votes; scores and components would be ignored.
        for key in ("scoring", "components"):
            if key in table.data:
                raise table.error(key, 'does not apply to decision = "majority" (the panel '
                                       "votes)")
    return Stage(stage_id, title_ko, title_en, review_opens, review_closes,
                 criteria=criteria, decision=decision, scoring=scoring,
                 artifacts_due=artifacts_due, components=read_components(table, scoring),
                 disqualifications=read_disqualifications(table),
                 publish_scores=table.boolean("publish_scores", False),
                 disclose_panel=table.boolean("disclose_panel", False))


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
        _read_document_kind(file, index, item)
        for index, item in enumerate(table.array_of_tables("document_kinds"))
    )
    _unique(file, "document_kinds", (kind.id for kind in kinds))

    stages = tuple(
        _read_stage(file, index, item) for index, item in enumerate(table.array_of_tables("stages"))
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
