"""The screening and evaluation rules of a programme definition.

``[document_kinds.screening]`` (page limits, page size, required headings, signature),
``[consortium]`` (membership rules), ``[resources]`` (the resource request form and its ranges)
and each stage's ``[[stages.criteria]]`` and decision rule. Read as strictly as the rest of the
definition: errors name the file, the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vault.programmes.tables import ID_RE, DefinitionError, Table, is_korean

#: Page sizes a rule may name, (width, height) in PDF points; either orientation matches.
PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": (595.276, 841.89), "Letter": (612.0, 792.0)}
#: How far (in points, each side) a page may differ from its size and still match.
PAGE_SIZE_TOLERANCE = 3.0
#: Upper bound of page limits; beyond this a value is a typo.
MAX_PAGES_LIMIT = 10_000
#: Upper bounds of the resource ranges (a value beyond is a typo, not a real request).
MAX_GPUS = 1_000_000
MAX_BUDGET_KRW = 10**15
MAX_HEADCOUNT = 1_000_000

SCREENING_KEYS = frozenset(
    {"min_pages", "max_pages", "page_size", "headings", "signature_required"})
HEADING_KEYS = frozenset({"ko", "en"})
CONSORTIUM_KEYS = frozenset({"min_universities", "max_members"})
RESOURCE_KEYS = frozenset({"gpu_models", "gpu_count", "data_budget_krw", "talent_headcount"})
GPU_MODEL_KEYS = frozenset({"id", "title", "max_count"})
RANGE_KEYS = frozenset({"min", "max"})
CRITERION_KEYS = frozenset(
    {"id", "title_ko", "title_en", "description_ko", "description_en", "weight"})
SCORING_KEYS = frozenset({"scale", "trim_from", "tie_break"})
#: A tie-break rule that is not about one criterion: the earlier submission ranks first.
EARLIEST_SUBMISSION = "earliest_submission"
#: Upper bound of a score scale (a value beyond is a typo).
MAX_SCALE = 1000


#: How a stage decides who goes on: the ``keep`` best by score, ``eliminate`` the lowest,
#: or a panel ``majority`` accepting (where "no selection" is possible).
DecisionRule = Literal["top", "eliminate", "majority"]
DECISION_RULES: tuple[DecisionRule, ...] = ("top", "eliminate", "majority")


@dataclass(frozen=True)
class Heading:
    """A section heading a document must contain, found if either language's text occurs."""

    ko: str
    en: str


@dataclass(frozen=True)
class PdfRules:
    """What screening checks in the PDF versions of a document kind."""

    min_pages: int | None = None
    max_pages: int | None = None
    #: A key of ``PAGE_SIZES``; ``None``: any size.
    page_size: str | None = None
    headings: tuple[Heading, ...] = ()
    signature_required: bool = False


@dataclass(frozen=True)
class ConsortiumRules:
    """Who a consortium must and may have in its partner list (the lead included)."""

    #: Members of kind ``university`` (universities and graduate schools) at least.
    min_universities: int = 0
    #: Entries in the partner list at most; ``None``: no limit but the vault's own.
    max_members: int | None = None


@dataclass(frozen=True)
class GpuModel:
    """A GPU model applicants may request, and how many of it at most."""

    id: str
    title: str
    max_count: int


@dataclass(frozen=True)
class Range:
    """An inclusive range of whole numbers."""

    minimum: int
    maximum: int

    def __contains__(self, value: object) -> bool:
        # bool is an int in Python; ``True`` is not a count.
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.minimum <= value <= self.maximum)


@dataclass(frozen=True)
class ResourceForm:
    """The resource request form: the fields applicants fill and their allowed ranges."""

    gpu_models: tuple[GpuModel, ...]
    gpu_count: Range
    #: The data purchase budget, in won.
    data_budget_krw: Range
    #: Talent support: researchers the programme funds.
    talent_headcount: Range

    def gpu_model(self, model_id: str) -> GpuModel | None:
        """The GPU model with this id, if the form offers it."""
        return next((model for model in self.gpu_models if model.id == model_id), None)


@dataclass(frozen=True)
class Criterion:
    """An evaluation criterion of a stage, with its weight in per cent."""

    id: str
    title_ko: str
    title_en: str
    description_ko: str
    description_en: str
    weight: int

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if is_korean(locale) else self.title_en

    def description(self, locale: str) -> str:
        """The description in the given locale (Korean or English)."""
        return self.description_ko if is_korean(locale) else self.description_en


@dataclass(frozen=True)
class Scoring:
    """How a stage's score sheets become a ranking."""

    #: Every criterion is scored on this scale (inclusive).
    scale: Range
    #: With at least this many sheets for a submission, its highest and lowest totals are
    #: dropped before the mean; 0: never.
    trim_from: int = 5
    #: Rules that order submissions with equal scores, in order: ``criterion:<id>`` (the higher
    #: mean on that criterion first) or ``earliest_submission``.
    tie_break: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """A stage's decision rule: ``keep`` best (top), ``eliminate`` lowest, or ``majority``."""

    rule: DecisionRule
    #: How many go on (``top``) or are eliminated (``eliminate``); ``None`` for ``majority``.
    count: int | None = None


def read_pdf_rules(parent: Table) -> PdfRules:
    """``[document_kinds.screening]`` of one kind, or no rules when it has none."""
    if "screening" not in parent.data:
        return PdfRules()
    table = parent.sub_table("screening", SCREENING_KEYS)
    min_pages = table.optional_integer("min_pages", 1, MAX_PAGES_LIMIT)
    max_pages = table.optional_integer("max_pages", 1, MAX_PAGES_LIMIT)
    if min_pages is not None and max_pages is not None and min_pages > max_pages:
        raise table.error("max_pages", f"must not be less than min_pages ({min_pages})")
    page_size = table.data.get("page_size")
    if page_size is not None and page_size not in PAGE_SIZES:
        allowed = ", ".join(f'"{name}"' for name in PAGE_SIZES)
        raise table.error("page_size", f"must be one of {allowed}, got {page_size!r}")
    headings = table.data.get("headings", [])
    if not isinstance(headings, list):
        raise table.error("headings", 'must be a list of tables like { ko = "…", en = "…" }')
    read = []
    for index, item in enumerate(headings):
        if not isinstance(item, dict):
            raise table.error(f"headings[{index}]", 'must be a table like { ko = "…", en = "…" }')
        heading = Table(table.file, table.field(f"headings[{index}]"), item, HEADING_KEYS)
        heading.check_keys()
        read.append(Heading(ko=heading.title("ko"), en=heading.title("en")))
    return PdfRules(min_pages=min_pages, max_pages=max_pages, page_size=page_size,
                    headings=tuple(read),
                    signature_required=table.boolean("signature_required", False))


def read_consortium(file: str, data: Any) -> ConsortiumRules:
    """``[consortium]``: membership rules."""
    if not isinstance(data, dict):
        raise DefinitionError(file, "consortium", "must be a table ([consortium])")
    table = Table(file, "consortium", data, CONSORTIUM_KEYS)
    table.check_keys()
    return ConsortiumRules(
        min_universities=table.integer("min_universities", 0, 50, default=0),
        max_members=table.optional_integer("max_members", 1, 50),
    )


def _range(parent: Table, key: str, high: int) -> Range:
    table = parent.sub_table(key, RANGE_KEYS)
    minimum = table.integer("min", 0, high)
    maximum = table.integer("max", 0, high)
    if minimum > maximum:
        raise table.error("max", f"must not be less than min ({minimum})")
    return Range(minimum, maximum)


def read_resources(file: str, data: Any) -> ResourceForm:
    """``[resources]``: the resource request form with its ranges."""
    if not isinstance(data, dict):
        raise DefinitionError(file, "resources", "must be a table ([resources])")
    table = Table(file, "resources", data, RESOURCE_KEYS)
    table.check_keys()
    models = table.array_of_tables("gpu_models")
    gpu_count = _range(table, "gpu_count", MAX_GPUS)
    read: list[GpuModel] = []
    for index, item in enumerate(models):
        model = Table(file, f"resources.gpu_models[{index}]", item, GPU_MODEL_KEYS)
        model.check_keys()
        model_id = model.slug("id", ID_RE, "a lowercase identifier like b200 or h100")
        if any(known.id == model_id for known in read):
            raise model.error("id", f"duplicate id {model_id!r}")
        read.append(GpuModel(model_id, model.title("title"),
                             model.integer("max_count", 1, MAX_GPUS)))
    return ResourceForm(
        gpu_models=tuple(read), gpu_count=gpu_count,
        data_budget_krw=_range(table, "data_budget_krw", MAX_BUDGET_KRW),
        talent_headcount=_range(table, "talent_headcount", MAX_HEADCOUNT),
    )


def read_criteria(stage: Table) -> tuple[Criterion, ...]:
    """``[[stages.criteria]]`` of one stage; weights are per cent and add up to 100."""
    if "criteria" not in stage.data:
        return ()
    items = stage.array_of_tables("criteria")
    criteria: list[Criterion] = []
    for index, item in enumerate(items):
        table = Table(stage.file, stage.field(f"criteria[{index}]"), item, CRITERION_KEYS)
        table.check_keys()
        criterion_id = table.slug("id", ID_RE, "a lowercase identifier like technology")
        if any(known.id == criterion_id for known in criteria):
            raise table.error("id", f"duplicate id {criterion_id!r}")
        criteria.append(Criterion(
            id=criterion_id, title_ko=table.title("title_ko"), title_en=table.title("title_en"),
            description_ko=table.title("description_ko"),
            description_en=table.title("description_en"),
            weight=table.integer("weight", 1, 100)))
    total = sum(criterion.weight for criterion in criteria)
    if total != 100:
        raise stage.error("criteria", f"weights must add up to 100, got {total}")
    return tuple(criteria)


def read_decision(stage: Table) -> Decision | None:
    """A stage's ``decision`` with its ``keep`` or ``eliminate`` count (``None`` if unset)."""
    rule = stage.data.get("decision")
    if rule is None:
        for key in ("keep", "eliminate"):
            if key in stage.data:
                raise stage.error(key, "needs a decision rule (decision = …)")
        return None
    if rule not in DECISION_RULES:
        allowed = ", ".join(f'"{name}"' for name in DECISION_RULES)
        raise stage.error("decision", f"must be one of {allowed}, got {rule!r}")
    needed = {"top": "keep", "eliminate": "eliminate", "majority": None}[rule]
    for key in ("keep", "eliminate"):
        if key in stage.data and key != needed:
            raise stage.error(key, f'does not apply to decision = "{rule}"')
    if needed is None:
        return Decision(rule)
    return Decision(rule, stage.integer(needed, 1, 1000))


def read_scoring(stage: Table, criteria: tuple[Criterion, ...]) -> Scoring | None:
    """A stage's ``[stages.scoring]``: the score scale, trimming and tie-break rules."""
    if "scoring" not in stage.data:
        return None
    table = stage.sub_table("scoring", SCORING_KEYS)
    if not criteria:
        raise table.error("scale", "a stage with scoring needs [[stages.criteria]]")
    scale = _range(table, "scale", MAX_SCALE)
    if scale.minimum == scale.maximum:
        raise table.error("scale", "max must be greater than min")
    trim_from = table.integer("trim_from", 0, 1000, default=5)
    if trim_from in (1, 2):
        raise table.error("trim_from", "must be 0 (never) or at least 3: trimming drops two")
    rules = table.data.get("tie_break", [])
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise table.error("tie_break", "must be a list of rules like "
                                       f'"criterion:<id>" or "{EARLIEST_SUBMISSION}"')
    known = {criterion.id for criterion in criteria}
    for index, rule in enumerate(rules):
        kind, _, criterion = rule.partition(":")
        if rule == EARLIEST_SUBMISSION or (kind == "criterion" and criterion in known):
            if rules.index(rule) != index:
                raise table.error(f"tie_break[{index}]", f"duplicate rule {rule!r}")
            continue
        raise table.error(f"tie_break[{index}]", f"{rule!r} is neither \"criterion:<id>\" "
                                                 f"of this stage nor \"{EARLIEST_SUBMISSION}\"")
    return Scoring(scale=scale, trim_from=trim_from, tie_break=tuple(rules))
