"""The evaluation rules of a programme definition beyond criteria and scoring.

Composite stages (``[[stages.components]]``: e.g. benchmark 40 + expert review 35 + user
evaluation 25, where the expert component is the panel's score and the others are imported
from CSV files), disqualification rules (``[[stages.disqualifications]]``: e.g. "failed the
from-scratch requirement", which eliminates regardless of score), what applicants may see after
publication, and ``[retention]``: when eliminated consortia's material is crypto-shredded.
Read as strictly as the rest of the definition: errors name the file, the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vault.programmes.rules import Range, Scoring
from vault.programmes.tables import ID_RE, DefinitionError, Table, is_korean

COMPONENT_KEYS = frozenset({"id", "title_ko", "title_en", "weight", "source", "scale"})
DISQUALIFICATION_KEYS = frozenset(
    {"id", "title_ko", "title_en", "description_ko", "description_en"})
RETENTION_KEYS = frozenset({"shred_after_days", "notice_days"})
RANGE_KEYS = frozenset({"min", "max"})

#: Where a component's score comes from: the stage's panel (score sheets), or a CSV import.
ComponentSource = Literal["panel", "import"]
COMPONENT_SOURCES: tuple[ComponentSource, ...] = ("panel", "import")
#: Upper bound of an imported component's scale (a value beyond is a typo).
MAX_IMPORT_SCALE = 1_000_000
#: Upper bounds of the retention periods, in days (beyond them a value is a typo).
MAX_RETENTION_DAYS = 36_500
MAX_NOTICE_DAYS = 3_650



@dataclass(frozen=True)
class Component:
    """One weighted part of a composite stage's score.

    Its score is put on a 0-100 footing (``(value - min) / (max - min) * 100`` of its scale)
    before the weights apply, so a benchmark scored 0-1 and a panel scoring 0-100 weigh what
    the definition says.
    """

    id: str
    title_ko: str
    title_en: str
    #: Per cent of the stage's score; a stage's components add up to 100.
    weight: int
    source: ComponentSource
    #: The range of the component's values: the imported scale, or the panel's scoring scale.
    scale: Range

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if is_korean(locale) else self.title_en


@dataclass(frozen=True)
class Disqualification:
    """A rule that eliminates a submission regardless of its score, e.g. "not from scratch"."""

    id: str
    title_ko: str
    title_en: str
    description_ko: str
    description_en: str

    def title(self, locale: str) -> str:
        """The title in the given locale (Korean or English)."""
        return self.title_ko if is_korean(locale) else self.title_en

    def description(self, locale: str) -> str:
        """The description in the given locale (Korean or English)."""
        return self.description_ko if is_korean(locale) else self.description_en


@dataclass(frozen=True)
class Retention:
    """What happens to the material of consortia that are not selected or are eliminated.

    ``shred_after_days`` after the publication that ended their part, their consortium key is
    destroyed (crypto-shredding every document version, also in restored backups); the
    consortium is told ``notice_days`` before.
    """

    shred_after_days: int
    notice_days: int


def read_components(stage: Table, scoring: Scoring | None) -> tuple[Component, ...]:
    """``[[stages.components]]`` of one stage; weights are per cent and add up to 100.

    At most one component comes from the panel, and it needs the stage's ``[stages.scoring]``
    (its scale is the scoring scale); every imported component names its own ``scale``.
    """
    if "components" not in stage.data:
        return ()
    components: list[Component] = []
    for index, item in enumerate(stage.array_of_tables("components")):
        table = Table(stage.file, stage.field(f"components[{index}]"), item, COMPONENT_KEYS)
        table.check_keys()
        component_id = table.slug("id", ID_RE, "a lowercase identifier like benchmark")
        if any(known.id == component_id for known in components):
            raise table.error("id", f"duplicate id {component_id!r}")
        source = table.get("source")
        if source not in COMPONENT_SOURCES:
            raise table.error("source", f'must be "panel" or "import", got {source!r}')
        if source == "panel":
            if scoring is None:
                raise table.error("source", 'a "panel" component needs the stage\'s '
                                            "[stages.scoring]")
            if "scale" in table.data:
                raise table.error("scale", "a panel component uses the stage's scoring scale")
            if any(known.source == "panel" for known in components):
                raise table.error("source", 'only one component may come from the "panel"')
            scale = scoring.scale
        else:
            scale = _scale(table)
        components.append(Component(
            id=component_id, title_ko=table.title("title_ko"), title_en=table.title("title_en"),
            weight=table.integer("weight", 1, 100), source=source, scale=scale))
    total = sum(component.weight for component in components)
    if total != 100:
        raise stage.error("components", f"weights must add up to 100, got {total}")
    if scoring is not None and not any(c.source == "panel" for c in components):
        raise stage.error("components", 'a stage with [stages.scoring] needs a "panel" '
                                        "component for its panel's scores")
    return tuple(components)


def _scale(table: Table) -> Range:
    scale = table.sub_table("scale", RANGE_KEYS)
    minimum = scale.integer("min", 0, MAX_IMPORT_SCALE)
    maximum = scale.integer("max", 0, MAX_IMPORT_SCALE)
    if minimum >= maximum:
        raise scale.error("max", f"must be greater than min ({minimum})")
    return Range(minimum, maximum)


def read_disqualifications(stage: Table) -> tuple[Disqualification, ...]:
    """``[[stages.disqualifications]]`` of one stage."""
    if "disqualifications" not in stage.data:
        return ()
    rules: list[Disqualification] = []
    for index, item in enumerate(stage.array_of_tables("disqualifications")):
        table = Table(stage.file, stage.field(f"disqualifications[{index}]"), item,
                      DISQUALIFICATION_KEYS)
        table.check_keys()
        rule_id = table.slug("id", ID_RE, "a lowercase identifier like from_scratch")
        if any(known.id == rule_id for known in rules):
            raise table.error("id", f"duplicate id {rule_id!r}")
        rules.append(Disqualification(
            id=rule_id, title_ko=table.title("title_ko"), title_en=table.title("title_en"),
            description_ko=table.title("description_ko"),
            description_en=table.title("description_en")))
    return tuple(rules)


def read_retention(file: str, data: object) -> Retention:
    """``[retention]``: when the material of consortia that are out is crypto-shredded."""
    if not isinstance(data, dict):
        raise DefinitionError(file, "retention", "must be a table ([retention])")
    table = Table(file, "retention", data, RETENTION_KEYS)
    table.check_keys()
    shred_after = table.integer("shred_after_days", 1, MAX_RETENTION_DAYS)
    notice = table.integer("notice_days", 0, MAX_NOTICE_DAYS)
    if notice >= shred_after:
        raise table.error("notice_days", f"must be less than shred_after_days ({shred_after})")
    return Retention(shred_after_days=shred_after, notice_days=notice)
