"""Made-up but plausible evaluation data for a rehearsal (``vault demo simulate``): pure functions
of a seeded ``random.Random``, so the same seed gives the same scores, votes and imported files.

The model: every team has a *strength* (55-92 on a 0-100 footing) drawn once; at each stage it
shows a *form* (its strength plus a little luck); every reviewer has a lasting *bias* (some are
harsh, some lenient) and scores each criterion as form + bias + noise, rounded to a whole number
on the stage's scale. So strong teams usually go through, weak ones usually drop out, reviewers
disagree a little, an outlier appears now and then, and equal scores (ties) can happen.
Imported components (benchmarks, user evaluations) follow the form with their own noise, to the
cent on the component's scale.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal

from vault.programmes.definition import Component, Stage

#: A team's strength is drawn from this range (0-100 footing).
STRENGTH = (55.0, 92.0)
#: Spread of a team's form around its strength at one stage.
FORM_SPREAD = 4.0
#: Spread of the reviewers' lasting bias.
BIAS_SPREAD = 3.0
#: Spread of one score around form + bias.
SCORE_SPREAD = 7.0
#: Spread of an imported value around the form.
IMPORT_SPREAD = 6.0
#: A reviewer accepts a majority-stage candidate when form + bias + noise reaches this.
ACCEPT_AT = 72.0
CENT = Decimal("0.01")


def strengths(rng: random.Random, teams: Sequence[str]) -> dict[str, float]:
    """A strength per team, drawn in the order given (give a stable order)."""
    return {team: rng.uniform(*STRENGTH) for team in teams}


def biases(rng: random.Random, reviewers: Sequence[str]) -> dict[str, float]:
    """A lasting bias per reviewer, drawn in the order given."""
    return {reviewer: rng.gauss(0.0, BIAS_SPREAD) for reviewer in reviewers}


def forms(rng: random.Random, strength: Mapping[str, float],
          teams: Sequence[str]) -> dict[str, float]:
    """Each team's form at one stage (the teams in a stable order)."""
    return {team: strength[team] + rng.gauss(0.0, FORM_SPREAD) for team in teams}


def _on_scale(value: float, minimum: int, maximum: int) -> float:
    """A 0-100 footing value placed on ``minimum``-``maximum``, kept inside it."""
    placed = minimum + (maximum - minimum) * value / 100.0
    return min(max(placed, minimum), maximum)


def sheet_scores(rng: random.Random, stage: Stage, form: float, bias: float) -> dict[str, int]:
    """One reviewer's whole-number score per criterion of ``stage``."""
    if stage.scoring is None:
        return {}
    scale = stage.scoring.scale
    return {criterion.id: round(_on_scale(form + bias + rng.gauss(0.0, SCORE_SPREAD),
                                          scale.minimum, scale.maximum))
            for criterion in stage.criteria}


def vote(rng: random.Random, form: float, bias: float) -> bool:
    """One reviewer's vote on a majority-stage candidate."""
    return form + bias + rng.gauss(0.0, SCORE_SPREAD) >= ACCEPT_AT


def imported_values(rng: random.Random, component: Component,
                    form: Mapping[str, float]) -> dict[str, Decimal]:
    """An imported component's value per team, to the cent on the component's scale."""
    scale = component.scale
    return {team: Decimal(repr(_on_scale(value + rng.gauss(0.0, IMPORT_SPREAD), scale.minimum,
                                         scale.maximum))).quantize(CENT)
            for team, value in form.items()}


def import_csv(values: Mapping[uuid.UUID, Decimal], names: Mapping[uuid.UUID, str]) -> bytes:
    """The CSV file an evaluation agency would send: ``submission_id,consortium,score``, one
    row per submission (by consortium name)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission_id", "consortium", "score"])
    for submission_id in sorted(values, key=lambda s: (names[s], str(s))):
        writer.writerow([str(submission_id), names[submission_id], f"{values[submission_id]}"])
    return buffer.getvalue().encode("utf-8")
