"""Aggregation and ranking of one stage's score sheets, and its decision: pure, exact arithmetic.

Per reviewer, the *weighted total* is the sum of weight/100 * score: a number on the criteria's
own scale (0-100 for a 0-100 scale), which is what the officer is shown; ``normalised`` is the same
total as a percentage of the scale (min → 0, max → 100). A submission's *score* is the mean of its
reviewers' totals, without one highest and one lowest total when it has at least ``trim_from``
sheets (``trim_from`` 0: never). Criterion means apply the same rule to each criterion's scores
independently (the highest and the lowest score on that criterion are dropped), so they depend
only on the values and never on which of two equal totals was dropped; the weighted sum of the
criterion means is therefore not always the score.

Exactness: everything is ``decimal.Decimal`` in a fixed context (28 digits, ROUND_HALF_EVEN), never
float; every published figure is quantised once to two decimals (half-even). The ranking compares
the published (quantised) figures, so the order is explained by what the officer sees: two scores
equal to the cent are a tie and go to the tie-break rules.

The *standard deviation* is the population one (divide by n) of all the totals, untrimmed: the
spread of this panel, not an estimate of a larger one. An *outlier* is a reviewer whose total is
further than ``outlier_threshold`` per cent of the scale (default 15: 15 points on 0-100) from the
untrimmed mean. A points threshold rather than k standard deviations: with n totals no value can be
more than √(n-1) population deviations from the mean (exactly 2 for 5), so a "more than 2
deviations" rule would never flag anyone on a five-person panel.

Ranking: by score (higher first), then the stage's ``tie_break`` rules in order
(``criterion:<id>``: the higher criterion mean first; ``earliest_submission``: the earlier
``submitted_at`` first), then the submission id, so ranks are always 1..n; entries the rules could
not separate are marked ``tie_unresolved``. A stage without scoring (``majority`` only) is
ordered by the share of accept votes, then by id. Disqualified submissions (with a reason) are
ranked after all others, by id, and never take a place.

Composite stages (``components``: e.g. benchmark 40 + expert review 35 + user evaluation 25):
each component is put on a 0-100 footing of its own scale (the panel component is the panel's
score normalised on the scoring scale; an imported one is ``(value - min) * 100 / (max - min)``),
quantised to the cent, and the stage's *composite* is the sum of weight/100 * component,
quantised to the cent. The composite then takes the score's place in the ranking; the tie-break
rules are unchanged (criterion means come from the panel).

Decisions: ``top`` count → the first ``count`` pass, the others are not selected; ``eliminate``
count → the last ``count`` are eliminated, the others pass (disqualified submissions are
eliminated *in addition to* the count); ``majority`` → selected when strictly more than half of
its sheets vote accept (a tie of votes is no), otherwise not selected; none selected is "no
selection". An unresolved tie straddling the ``top``/``eliminate`` cut is flagged (``cut_tie``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from vault.evaluation.composite import add_composites
from vault.evaluation.errors import CriteriaMismatch, InvalidScore, InvalidSheets, RankingError
from vault.evaluation.figures import CENT, CONTEXT, cent
from vault.programmes.evaluation_rules import Component
from vault.programmes.rules import EARLIEST_SUBMISSION, Criterion, Decision, Scoring

#: Default outlier threshold: distance from the untrimmed mean, in per cent of the scale.
DEFAULT_OUTLIER_THRESHOLD = Decimal(15)

Score = int | Decimal

__all__ = ["CENT", "CONTEXT", "Candidate", "CriteriaMismatch", "InvalidScore", "InvalidSheets",
           "Outcome", "RankedEntry", "RankingError", "ReviewerTotal", "Sheet", "StageResult",
           "rank_stage"]


class Outcome(StrEnum):
    """What the stage's decision means for a submission."""

    PASS = "pass"  # noqa: S105 - an outcome, not a password
    NOT_SELECTED = "not_selected"
    ELIMINATED = "eliminated"
    SELECTED = "selected"
    DISQUALIFIED = "disqualified"


@dataclass(frozen=True)
class Sheet:
    """One reviewer's submitted sheet: a score per criterion id, and for ``majority`` a vote."""

    reviewer_id: uuid.UUID
    scores: Mapping[str, Score]
    accept: bool | None = None


@dataclass(frozen=True)
class Candidate:
    """A submission in the stage with its sheets."""

    submission_id: uuid.UUID
    submitted_at: datetime
    sheets: tuple[Sheet, ...]


@dataclass(frozen=True)
class ReviewerTotal:
    """A reviewer's weighted total on the scale and as per cent of it, and whether it stands out."""

    reviewer_id: uuid.UUID
    #: ``None`` (with ``normalised`` and ``deviation``) in a stage without scoring.
    total: Decimal | None
    normalised: Decimal | None
    #: ``total`` minus the untrimmed mean of the submission's totals.
    deviation: Decimal | None
    outlier: bool
    accept: bool | None


@dataclass(frozen=True)
class RankedEntry:
    """A submission's place, figures and outcome; ``None`` figures: no scoring or no sheets."""

    submission_id: uuid.UUID
    rank: int
    score: Decimal | None
    normalised: Decimal | None
    criterion_means: Mapping[str, Decimal]
    #: Ordered by reviewer id.
    reviewers: tuple[ReviewerTotal, ...]
    untrimmed_mean: Decimal | None
    std_dev: Decimal | None
    sheets: int
    trimmed: bool
    accepts: int
    outcome: Outcome
    #: Another submission has the same score (or, without scoring, the same share of accepts).
    tied: bool = False
    #: The tie-break rule that finally separated this entry from its tied neighbours.
    tie_broken_by: str | None = None
    #: No rule separated it from another entry; its place among them is by submission id.
    tie_unresolved: bool = False
    #: It is in an unresolved tie across the top/eliminate cut.
    cut_tie: bool = False
    disqualified_reason: str | None = None
    #: Composite stages: component id → its score on a 0-100 footing (empty otherwise).
    components: Mapping[str, Decimal] = field(default_factory=dict)
    #: Composite stages: the weighted sum of ``components``, which the ranking orders by.
    composite: Decimal | None = None

    @property
    def outliers(self) -> tuple[uuid.UUID, ...]:
        """The reviewers whose totals are flagged as outliers."""
        return tuple(reviewer.reviewer_id for reviewer in self.reviewers if reviewer.outlier)


@dataclass(frozen=True)
class StageResult:
    """The stage's entries in rank order and its decision's flags."""

    decision: Decision
    entries: tuple[RankedEntry, ...]
    #: An unresolved tie straddles the cut: the officer must settle it.
    cut_unresolved: bool = False
    #: ``majority``: no submission reached a majority.
    no_selection: bool = False
    _by_id: Mapping[uuid.UUID, RankedEntry] = field(default_factory=dict, repr=False,
                                                     compare=False)

    def entry(self, submission_id: uuid.UUID) -> RankedEntry:
        """The entry of one submission (``KeyError`` if it was not ranked)."""
        return self._by_id[submission_id]

    def with_outcome(self, *outcomes: Outcome) -> tuple[uuid.UUID, ...]:
        """The ids, in rank order, of the entries with one of these outcomes."""
        return tuple(e.submission_id for e in self.entries if e.outcome in outcomes)


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def _trim(values: Sequence[Decimal], trim_from: int) -> tuple[list[Decimal], bool]:
    """The values without one highest and one lowest when the rule applies."""
    if trim_from > 0 and len(values) >= trim_from and len(values) >= 3:
        return sorted(values)[1:-1], True
    return list(values), False


def _check_score(candidate: Candidate, sheet: Sheet, criterion: str, value: object,
                 scoring: Scoring) -> Decimal:
    scale = scoring.scale
    number: Decimal | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, Decimal) and value.is_finite():
        number = value
    if number is None or not scale.minimum <= number <= scale.maximum:
        raise InvalidScore(reviewer=sheet.reviewer_id, criterion=criterion, value=value,
                           submission=candidate.submission_id, minimum=scale.minimum,
                           maximum=scale.maximum)
    return number


def _validated(candidate: Candidate, criteria: Sequence[Criterion], scoring: Scoring | None,
               majority: bool) -> list[dict[str, Decimal]]:
    """Each sheet's scores as Decimals, checked against the criteria and the scale.

    Raises :class:`InvalidScore`, :class:`CriteriaMismatch` or :class:`InvalidSheets`.
    """
    known = [criterion.id for criterion in criteria]
    seen: set[uuid.UUID] = set()
    read = []
    for sheet in candidate.sheets:
        if sheet.reviewer_id in seen:
            raise InvalidSheets("Reviewer {reviewer} has two sheets for submission "
                                "{submission}.", reviewer=sheet.reviewer_id,
                                submission=candidate.submission_id)
        seen.add(sheet.reviewer_id)
        if majority and sheet.accept is None:
            raise InvalidSheets("Reviewer {reviewer} did not vote on submission {submission}.",
                                reviewer=sheet.reviewer_id, submission=candidate.submission_id)
        if scoring is None:
            if sheet.scores:
                raise InvalidSheets("This stage has no scoring, but reviewer {reviewer} scored "
                                    "submission {submission}.", reviewer=sheet.reviewer_id,
                                    submission=candidate.submission_id)
            read.append({})
            continue
        for name in sheet.scores:
            if name not in known:
                raise CriteriaMismatch("Reviewer {reviewer} scored {criterion} on submission "
                                       "{submission}, which is not a criterion of this stage.",
                                       reviewer=sheet.reviewer_id, criterion=name,
                                       submission=candidate.submission_id)
        for name in known:
            if name not in sheet.scores:
                raise CriteriaMismatch("Reviewer {reviewer} did not score {criterion} on "
                                       "submission {submission}.", reviewer=sheet.reviewer_id,
                                       criterion=name, submission=candidate.submission_id)
        read.append({name: _check_score(candidate, sheet, name, sheet.scores[name], scoring)
                     for name in known})
    return read


def _aggregate(candidate: Candidate, criteria: Sequence[Criterion], scoring: Scoring | None,
               majority: bool, threshold: Decimal) -> dict[str, object]:
    """The figures of one submission (the fields of :class:`RankedEntry` but its place)."""
    scores = _validated(candidate, criteria, scoring, majority)
    accepts = sum(1 for sheet in candidate.sheets if sheet.accept)
    figures: dict[str, object] = {
        "score": None, "normalised": None, "criterion_means": {}, "untrimmed_mean": None,
        "std_dev": None, "sheets": len(scores), "trimmed": False, "accepts": accepts}
    if scoring is None or not scores:
        figures["reviewers"] = tuple(
            ReviewerTotal(sheet.reviewer_id, None, None, None, False, sheet.accept)
            for sheet in sorted(candidate.sheets, key=lambda s: s.reviewer_id))
        return figures
    low, width = scoring.scale.minimum, scoring.scale.maximum - scoring.scale.minimum

    def normalised(total: Decimal) -> Decimal:
        return cent((total - low) * 100 / width)

    # Exact while scores have few decimals: weights are whole per cent.
    totals = [sum((c.weight * values[c.id] for c in criteria), Decimal(0)) / 100
              for values in scores]
    mean = _mean(totals)
    variance = _mean([(total - mean) ** 2 for total in totals])
    limit = threshold * width / 100
    kept, trimmed = _trim(totals, scoring.trim_from)
    figures.update(
        score=cent(_mean(kept)), normalised=normalised(_mean(kept)),
        untrimmed_mean=cent(mean), std_dev=cent(variance.sqrt()), trimmed=trimmed,
        criterion_means={c.id: cent(_mean(_trim([v[c.id] for v in scores],
                                                 scoring.trim_from)[0])) for c in criteria},
        reviewers=tuple(sorted(
            (ReviewerTotal(sheet.reviewer_id, cent(total), normalised(total),
                           cent(total - mean), abs(total - mean) > limit, sheet.accept)
             for sheet, total in zip(candidate.sheets, totals, strict=True)),
            key=lambda reviewer: reviewer.reviewer_id)))
    return figures


def _sort_key(scoring: Scoring | None) -> Callable[[Candidate, dict], tuple]:
    """The ordering key without the id: (primary, one component per tie-break rule)."""
    def key(candidate: Candidate, figures: dict) -> tuple:
        if scoring is None:
            sheets = figures["sheets"] or 1
            return (-Fraction(figures["accepts"], sheets),)
        primary = figures["composite"] if figures["composite"] is not None else figures["score"]
        parts: list[object] = [-primary]
        for rule in scoring.tie_break:
            if rule == EARLIEST_SUBMISSION:
                parts.append(candidate.submitted_at)
            else:
                parts.append(-figures["criterion_means"][rule.partition(":")[2]])
        return tuple(parts)
    return key


def _tie_flags(keys: Sequence[tuple], names: Sequence[str]) -> list[dict[str, object]]:
    """Per position in the sorted order: tied, the separating rule, unresolved."""
    flags: list[dict[str, object]] = [{} for _ in keys]
    for index, key in enumerate(keys):
        depth = -1
        for other in (index - 1, index + 1):
            if 0 <= other < len(keys) and keys[other][0] == key[0]:
                same = next((i for i, (a, b) in enumerate(zip(key, keys[other], strict=True))
                             if a != b), len(key))
                depth = max(depth, same)
        if depth >= 0:
            flags[index] = {"tied": True, "tie_unresolved": depth == len(key),
                            "tie_broken_by": names[depth] if depth < len(key) else None}
    return flags


def _cut_ties(keys: Sequence[tuple], cut: int) -> set[int]:
    """Positions in the unresolved tie across the boundary before position ``cut``."""
    if not 0 < cut < len(keys) or keys[cut - 1] != keys[cut]:
        return set()
    return {index for index, key in enumerate(keys) if key == keys[cut]}


def rank_stage(candidates: Iterable[Candidate], *, criteria: Sequence[Criterion],
               scoring: Scoring | None, decision: Decision,
               disqualified: Mapping[uuid.UUID, str] | None = None,
               outlier_threshold: Decimal = DEFAULT_OUTLIER_THRESHOLD,
               components: Sequence[Component] = (),
               imported: Mapping[uuid.UUID, Mapping[str, Decimal]] | None = None
               ) -> StageResult:
    """Aggregate, rank and decide one stage (see the module docstring for every rule).

    ``disqualified`` maps submission ids to the reason (e.g. "failed the from-scratch
    requirement"); ``outlier_threshold`` is in per cent of the scale. With ``components`` (a
    composite stage), ``imported`` maps each submission to its imported components' values on
    their own scales. The result does not depend on the order of ``candidates`` or of their
    sheets.

    Raises :class:`InvalidScore` (not a number, or outside the scale), :class:`CriteriaMismatch`
    (a criterion missing or unknown), :class:`InvalidSheets` (two sheets of one reviewer, a
    submission listed twice or without sheets, a missing vote under ``majority``, scores in a
    stage without scoring, or ``top``/``eliminate`` without scoring; an imported value missing,
    outside its scale or for a submission or component the stage does not have).
    """
    with localcontext(CONTEXT):   # every operation, even a negation, rounds in CONTEXT
        return _rank(list(candidates), criteria, scoring, decision, disqualified or {},
                     outlier_threshold, tuple(components), imported or {})


def _rank(candidates: list[Candidate], criteria: Sequence[Criterion], scoring: Scoring | None,
          decision: Decision, disqualified: Mapping[uuid.UUID, str],
          outlier_threshold: Decimal, components: tuple[Component, ...],
          imported: Mapping[uuid.UUID, Mapping[str, Decimal]]) -> StageResult:
    majority = decision.rule == "majority"
    if scoring is None and not majority:
        raise InvalidSheets("A stage decided by {rule} needs scoring to rank its submissions.",
                            rule=decision.rule)
    pool = sorted(candidates, key=lambda candidate: candidate.submission_id)
    for previous, current in itertools.pairwise(pool):
        if previous.submission_id == current.submission_id:
            raise InvalidSheets("Submission {submission} is listed twice.",
                                submission=current.submission_id)
    for submission_id in sorted(set(disqualified) - {c.submission_id for c in pool}):
        raise InvalidSheets("Submission {submission} is disqualified but not in this stage.",
                            submission=submission_id)
    figures = {c.submission_id: _aggregate(c, criteria, scoring, majority, outlier_threshold)
               for c in pool}
    for candidate in pool:
        if not candidate.sheets and candidate.submission_id not in disqualified:
            raise InvalidSheets("Submission {submission} has no score sheets.",
                                submission=candidate.submission_id)
    add_composites(pool, figures, components, imported, scoring, disqualified)
    key = _sort_key(scoring)
    ranked = sorted((c for c in pool if c.submission_id not in disqualified),
                    key=lambda c: (key(c, figures[c.submission_id]), c.submission_id))
    keys = [key(c, figures[c.submission_id]) for c in ranked]
    flags = _tie_flags(keys, ("score", *(scoring.tie_break if scoring else ())))
    outcomes, cut_tie = _decide(decision, ranked, figures, keys)
    entries = [RankedEntry(submission_id=c.submission_id, rank=index + 1,
                           outcome=outcomes[index], cut_tie=index in cut_tie,
                           **flags[index], **figures[c.submission_id])
               for index, c in enumerate(ranked)]
    entries += [RankedEntry(submission_id=c.submission_id, rank=len(entries) + index + 1,
                            outcome=Outcome.DISQUALIFIED,
                            disqualified_reason=disqualified[c.submission_id],
                            **figures[c.submission_id])
                for index, c in enumerate(c for c in pool if c.submission_id in disqualified)]
    return StageResult(
        decision=decision, entries=tuple(entries), cut_unresolved=bool(cut_tie),
        no_selection=majority and Outcome.SELECTED not in outcomes,
        _by_id={entry.submission_id: entry for entry in entries})


def _decide(decision: Decision, ranked: Sequence[Candidate], figures: Mapping[uuid.UUID, dict],
            keys: Sequence[tuple]) -> tuple[list[Outcome], set[int]]:
    """The outcome of each ranked (not disqualified) entry, and the positions in a cut tie."""
    count = len(ranked)
    if decision.rule == "majority":
        return [Outcome.SELECTED
                if 2 * figures[c.submission_id]["accepts"] > figures[c.submission_id]["sheets"]
                else Outcome.NOT_SELECTED for c in ranked], set()
    if decision.rule == "top":
        cut = min(decision.count or 0, count)
        return ([Outcome.PASS] * cut + [Outcome.NOT_SELECTED] * (count - cut),
                _cut_ties(keys, cut))
    cut = max(count - (decision.count or 0), 0)
    return [Outcome.PASS] * cut + [Outcome.ELIMINATED] * (count - cut), _cut_ties(keys, cut)
