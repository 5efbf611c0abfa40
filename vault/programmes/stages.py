"""Evaluation stages of a programme definition: the review window, criteria, the decision
rule, scoring, composite components, disqualification rules and what is published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vault.programmes.evaluation_rules import (
    Component,
    Disqualification,
    read_components,
    read_disqualifications,
)
from vault.programmes.rules import (
    Criterion,
    Decision,
    Scoring,
    read_criteria,
    read_decision,
    read_scoring,
)
from vault.programmes.tables import ID_RE, Table, is_korean

#: The value of ``current_stage`` while the call is open and no stage has started yet.
CALL = "call"

STAGE_KEYS = frozenset({"id", "title_ko", "title_en", "review_opens", "review_closes",
                        "artifacts_due", "criteria", "decision", "keep", "eliminate", "scoring",
                        "components", "disqualifications", "publish_scores", "disclose_panel"})


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
        return self.title_ko if is_korean(locale) else self.title_en


def read_stage(file: str, index: int, data: dict[str, Any]) -> Stage:
    table = Table(file, f"stages[{index}]", data, STAGE_KEYS)
    table.check_keys()
    stage_id = table.slug("id", ID_RE, "a lowercase identifier like written or stage_1")
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
