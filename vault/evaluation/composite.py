"""Composite stages: each component of a submission's score on a 0-100 footing of its scale
(the panel's score normalised on the scoring scale, imported values by their own) and the
composite, their weighted sum to the cent. Part of :func:`vault.evaluation.ranking.rank_stage`,
computed in its decimal context."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from vault.evaluation.errors import InvalidSheets
from vault.evaluation.figures import cent
from vault.programmes.evaluation_rules import Component
from vault.programmes.rules import Scoring

if TYPE_CHECKING:  # ranking imports this module
    from vault.evaluation.ranking import Candidate


def add_composites(pool: Sequence[Candidate], figures: Mapping[uuid.UUID, dict],
                    components: tuple[Component, ...],
                    imported: Mapping[uuid.UUID, Mapping[str, Decimal]],
                    scoring: Scoring | None, disqualified: Mapping[uuid.UUID, str]) -> None:
    """Each submission's components on a 0-100 footing and its composite (see the module
    docstring); a disqualified submission may lack values (its composite is then ``None``)."""
    for values in figures.values():
        values.update(components={}, composite=None)
    known = {c.submission_id for c in pool}
    for submission_id in sorted(set(imported) - known):
        raise InvalidSheets("Imported scores name submission {submission}, which is not in "
                            "this stage.", submission=submission_id)
    if not components:
        if any(imported.values()):
            raise InvalidSheets("Imported scores were given for a stage without components.")
        return
    if scoring is None:
        raise InvalidSheets("A composite stage needs scoring for its panel component.")
    ids = {component.id for component in components}
    for candidate in pool:
        values = imported.get(candidate.submission_id, {})
        for name in sorted(set(values) - ids):
            raise InvalidSheets("Imported scores name component {component}, which this stage "
                                "does not have.", component=name)
        parts: dict[str, Decimal] = {}
        for component in components:
            value = (figures[candidate.submission_id]["normalised"]
                     if component.source == "panel" else values.get(component.id))
            if value is None:
                continue
            if component.source != "panel":
                low, high = component.scale.minimum, component.scale.maximum
                if not (isinstance(value, Decimal | int) and not isinstance(value, bool)
                        and Decimal(value).is_finite() and low <= value <= high):
                    raise InvalidSheets("The {component} score of submission {submission} is "
                                        "not a number from {minimum} to {maximum}.",
                                        component=component.id,
                                        submission=candidate.submission_id, minimum=low,
                                        maximum=high)
                value = cent((Decimal(value) - low) * 100 / (high - low))
            parts[component.id] = value
        missing = [c.id for c in components if c.id not in parts]
        if missing and candidate.submission_id not in disqualified:
            raise InvalidSheets("Submission {submission} has no {component} score.",
                                submission=candidate.submission_id, component=missing[0])
        figures[candidate.submission_id]["components"] = parts
        if not missing:
            figures[candidate.submission_id]["composite"] = cent(sum(
                (c.weight * parts[c.id] for c in components), Decimal(0)) / 100)
