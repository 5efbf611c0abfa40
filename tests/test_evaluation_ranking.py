"""Aggregation, ranking and decisions of a stage (``vault.evaluation.ranking``): exact figures,
every tie-break rule, the three decision rules, disqualification, validation, and properties
(a permutation, deterministic, independent of the input order)."""

from __future__ import annotations

import decimal
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.errors import DomainError
from vault.evaluation.ranking import (
    Candidate,
    CriteriaMismatch,
    InvalidScore,
    InvalidSheets,
    Outcome,
    RankingError,
    Sheet,
    StageResult,
    rank_stage,
)
from vault.programmes.evaluation_rules import Component
from vault.programmes.rules import Criterion, Decision, Range, Scoring

CRITERIA = tuple(Criterion(name, name, name, "", "", weight)
                 for name, weight in (("a", 50), ("b", 30), ("c", 20)))
SCORING = Scoring(scale=Range(0, 100), trim_from=5,
                  tie_break=("criterion:a", "criterion:b", "earliest_submission"))
TOP_2 = Decision("top", 2)
T0 = datetime(2027, 1, 10, tzinfo=UTC)


def sid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=1000 + n)


def sheets(*rows: tuple, votes: tuple[bool, ...] = ()) -> tuple[Sheet, ...]:
    """Sheets from (a, b, c) rows, or a single number for all three criteria."""
    made = []
    for index, row in enumerate(rows):
        values = row if isinstance(row, tuple) else (row, row, row)
        made.append(Sheet(rid(index), dict(zip("abc", values, strict=True)),
                          votes[index] if votes else None))
    return tuple(made)


def candidate(n: int, *rows: tuple, at: datetime = T0, votes: tuple[bool, ...] = ()) -> Candidate:
    return Candidate(sid(n), at, sheets(*rows, votes=votes))


def rank(*candidates: Candidate, scoring: Scoring | None = SCORING, decision: Decision = TOP_2,
         criteria: tuple[Criterion, ...] = CRITERIA, **options) -> StageResult:
    return rank_stage(candidates, criteria=criteria, scoring=scoring, decision=decision,
                      **options)


def test_the_weighted_total_and_its_normalised_value():
    result = rank(candidate(1, (80, 70, 90)))
    reviewer = result.entry(sid(1)).reviewers[0]
    assert reviewer.total == Decimal("79.00")          # 40 + 21 + 18
    assert reviewer.normalised == Decimal("79.00")     # the scale is 0-100
    small = Scoring(scale=Range(1, 5), trim_from=5)
    entry = rank(candidate(1, (5, 3, 1)), scoring=small).entry(sid(1))
    assert entry.reviewers[0].total == Decimal("3.60")     # 2.5 + 0.9 + 0.2
    assert entry.reviewers[0].normalised == Decimal("65.00")  # (3.6 - 1) / 4
    assert (entry.score, entry.normalised) == (Decimal("3.60"), Decimal("65.00"))


def test_four_sheets_are_not_trimmed():
    entry = rank(candidate(1, 70, 80, 90, 100)).entry(sid(1))
    assert (entry.score, entry.trimmed, entry.sheets) == (Decimal("85.00"), False, 4)
    assert entry.untrimmed_mean == Decimal("85.00")


def test_five_sheets_drop_the_highest_and_the_lowest():
    entry = rank(candidate(1, 10, 70, 80, 90, 100)).entry(sid(1))
    assert (entry.score, entry.trimmed) == (Decimal("80.00"), True)
    assert entry.untrimmed_mean == Decimal("70.00")
    # population deviation: sqrt((3600 + 0 + 100 + 400 + 900) / 5) = sqrt(1000)
    assert entry.std_dev == Decimal("31.62")
    six = rank(candidate(1, 0, 70, 71, 71, 71, 100)).entry(sid(1))
    assert (six.score, six.trimmed) == (Decimal("70.75"), True)
    seven = rank(candidate(1, 0, 70, 71, 71, 100)).entry(sid(1))
    assert seven.score == Decimal("70.67")              # 212 / 3


def test_trim_from_zero_never_trims_and_a_higher_threshold_waits():
    for trim_from in (0, 6):
        scoring = Scoring(scale=Range(0, 100), trim_from=trim_from)
        entry = rank(candidate(1, 10, 70, 80, 90, 100), scoring=scoring).entry(sid(1))
        assert (entry.score, entry.trimmed) == (Decimal("70.00"), False)


def test_means_round_half_even_to_the_cent():
    one = rank(candidate(1, Decimal("70.01"), 70)).entry(sid(1))
    two = rank(candidate(1, Decimal("70.03"), 70)).entry(sid(1))
    assert one.score == Decimal("70.00")    # 70.005: half-up would say 70.01
    assert two.score == Decimal("70.02")    # 70.015


def test_the_callers_decimal_context_does_not_change_the_figures():
    rows = (10, 70, 80, (91, 13, 77), 100)
    expected = rank(candidate(1, *rows)).entry(sid(1))
    with decimal.localcontext() as context:
        context.prec, context.rounding = 3, decimal.ROUND_UP
        assert rank(candidate(1, *rows)).entry(sid(1)) == expected


def test_criterion_means_trim_each_criterion_on_its_own():
    rows = ((100, 0, 50), (0, 100, 50), (50, 50, 50), (60, 40, 50), (40, 60, 50))
    entry = rank(candidate(1, *rows)).entry(sid(1))
    # a: drop 100 and 0 -> (50 + 60 + 40) / 3; b: drop 100 and 0 -> (50 + 40 + 60) / 3
    assert entry.criterion_means == {"a": Decimal("50.00"), "b": Decimal("50.00"),
                                     "c": Decimal("50.00")}
    # totals 60, 40, 50, 55, 45: the score drops 60 and 40, other reviewers than a and b do
    assert entry.score == Decimal("50.00")
    skewed = rank(candidate(1, (90, 10, 0), (10, 90, 0), (50, 50, 0), (70, 20, 0),
                            (30, 80, 0))).entry(sid(1))
    assert skewed.criterion_means["a"] == Decimal("50.00")   # (50 + 70 + 30) / 3
    assert skewed.criterion_means["b"] == Decimal("50.00")   # (50 + 20 + 80) / 3
    # totals 48, 32, 40, 41, 39 -> (40 + 41 + 39) / 3 = 40, not 0.5 * 50 + 0.3 * 50 = 40 either
    assert skewed.score == Decimal("40.00")


def test_outliers_are_further_than_the_threshold_from_the_untrimmed_mean():
    entry = rank(candidate(1, 10, 70, 80, 84, 85)).entry(sid(1))
    # mean 65.8: 10 is 55.8 below (outlier), 84 is 18.2 above, 70 and 80 within 15
    flags = {reviewer.total: reviewer.outlier for reviewer in entry.reviewers}
    assert flags == {Decimal("10.00"): True, Decimal("70.00"): False, Decimal("80.00"): False,
                     Decimal("84.00"): True, Decimal("85.00"): True}
    assert entry.outliers == (rid(0), rid(3), rid(4))
    assert entry.reviewers[0].deviation == Decimal("-55.80")
    wider = rank(candidate(1, 10, 70, 80, 84, 85), outlier_threshold=Decimal(20))
    assert wider.entry(sid(1)).outliers == (rid(0),)
    calm = rank(candidate(1, 70, 71, 72)).entry(sid(1))
    assert calm.outliers == () and calm.std_dev == Decimal("0.82")


def test_every_tie_break_rule_in_order():
    result = rank(
        candidate(1, 50),                                       # lowest
        candidate(2, (80, 80, 80), at=T0 + timedelta(hours=2)),
        candidate(3, (88, 70, 75)),                             # 80, highest a
        candidate(4, (80, 70, 95)),                             # 80, same a, lower b
        candidate(5, (80, 80, 80), at=T0 + timedelta(hours=1)),  # earlier than 2
        candidate(6, 95),
        decision=Decision("top", 3))
    order = [entry.submission_id for entry in result.entries]
    assert order == [sid(6), sid(3), sid(5), sid(2), sid(4), sid(1)]
    assert [entry.rank for entry in result.entries] == [1, 2, 3, 4, 5, 6]
    broken = {entry.submission_id: entry.tie_broken_by for entry in result.entries}
    assert broken == {sid(6): None, sid(3): "criterion:a", sid(5): "earliest_submission",
                      sid(2): "earliest_submission", sid(4): "criterion:b", sid(1): None}
    assert not any(entry.tie_unresolved for entry in result.entries)
    assert [entry.tied for entry in result.entries] == [False, True, True, True, True, False]
    assert result.with_outcome(Outcome.PASS) == (sid(6), sid(3), sid(5))
    assert not result.cut_unresolved


def test_a_tie_no_rule_breaks_is_ordered_by_id_and_flagged():
    result = rank(candidate(9, 80), candidate(3, 80), candidate(5, 90),
                  decision=Decision("top", 1))
    assert [entry.submission_id for entry in result.entries] == [sid(5), sid(3), sid(9)]
    assert [entry.tie_unresolved for entry in result.entries] == [False, True, True]
    assert result.entries[1].tie_broken_by is None
    assert not result.cut_unresolved        # the tie is below the cut


def test_top_n_with_the_cut_inside_an_unresolved_tie():
    result = rank(candidate(1, 90), candidate(7, 80), candidate(4, 80), candidate(2, 70))
    assert result.with_outcome(Outcome.PASS) == (sid(1), sid(4))
    assert result.with_outcome(Outcome.NOT_SELECTED) == (sid(7), sid(2))
    assert result.cut_unresolved
    assert [entry.cut_tie for entry in result.entries] == [False, True, True, False]
    resolved = rank(candidate(1, 90), candidate(7, 80), candidate(4, 80, at=T0 + timedelta(1)),
                    candidate(2, 70))
    assert resolved.with_outcome(Outcome.PASS) == (sid(1), sid(7))
    assert not resolved.cut_unresolved


def test_top_keeps_everyone_when_fewer_than_the_count():
    result = rank(candidate(1, 90), decision=Decision("top", 10))
    assert result.with_outcome(Outcome.PASS) == (sid(1),)


def test_eliminate_the_lowest():
    result = rank(candidate(1, 60), candidate(2, 90), candidate(3, 75), candidate(4, 80),
                  decision=Decision("eliminate", 1))
    assert result.with_outcome(Outcome.ELIMINATED) == (sid(1),)
    assert result.with_outcome(Outcome.PASS) == (sid(2), sid(4), sid(3))
    tied = rank(candidate(1, 60), candidate(2, 90), candidate(3, 60),
                decision=Decision("eliminate", 1))
    assert tied.cut_unresolved and tied.with_outcome(Outcome.ELIMINATED) == (sid(3),)


def test_majority_needs_more_than_half_of_the_sheets():
    yes, no = True, False
    result = rank(candidate(1, 60, 60, 60, 60, 60, votes=(yes, yes, yes, no, no)),
                  candidate(2, 90, 90, 90, 90, votes=(yes, yes, no, no)),
                  candidate(3, 70, 70, 70, votes=(no, no, no)),
                  decision=Decision("majority"))
    assert result.with_outcome(Outcome.SELECTED) == (sid(1),)
    assert result.entry(sid(2)).outcome is Outcome.NOT_SELECTED     # 2-2 is no
    assert result.entry(sid(2)).accepts == 2
    assert not result.no_selection


def test_majority_without_scoring_and_no_selection():
    def voted(n: int, *votes: bool) -> Candidate:
        return Candidate(sid(n), T0, tuple(Sheet(rid(i), {}, vote)
                                           for i, vote in enumerate(votes)))
    result = rank(voted(1, True, False), voted(2, False, False, True), voted(3, True, True, False),
                  scoring=None, criteria=(), decision=Decision("majority"))
    assert result.with_outcome(Outcome.SELECTED) == (sid(3),)
    assert [entry.submission_id for entry in result.entries] == [sid(3), sid(1), sid(2)]
    assert result.entry(sid(3)).score is None and result.entry(sid(3)).reviewers[0].total is None
    none = rank(voted(1, True, False), voted(2, False, False, True),
                scoring=None, criteria=(), decision=Decision("majority"))
    assert none.no_selection and none.with_outcome(Outcome.SELECTED) == ()
    with pytest.raises(InvalidSheets, match="did not vote"):
        rank(candidate(1, 60, 60), decision=Decision("majority"))


def test_disqualified_submissions_are_eliminated_whatever_their_score():
    reason = "failed the from-scratch requirement"
    result = rank(candidate(1, 99), candidate(2, 80), candidate(3, 70), candidate(4, 60),
                  Candidate(sid(5), T0, ()), disqualified={sid(1): reason, sid(5): reason})
    assert [entry.submission_id for entry in result.entries] == [sid(2), sid(3), sid(4),
                                                                 sid(1), sid(5)]
    assert result.with_outcome(Outcome.PASS) == (sid(2), sid(3))
    assert result.entry(sid(1)).outcome is Outcome.DISQUALIFIED
    assert result.entry(sid(1)).disqualified_reason == reason
    assert result.entry(sid(1)).score == Decimal("99.00")     # still shown
    assert result.entry(sid(5)).rank == 5 and result.entry(sid(5)).score is None
    eliminated = rank(candidate(1, 99), candidate(2, 80), candidate(3, 70),
                      decision=Decision("eliminate", 1), disqualified={sid(1): reason})
    assert eliminated.with_outcome(Outcome.ELIMINATED) == (sid(3),)
    assert eliminated.with_outcome(Outcome.PASS) == (sid(2),)


@pytest.mark.parametrize("value", [101, -1, Decimal("100.01"), True, 80.0, Decimal("NaN"), "80"])
def test_a_score_outside_the_scale_names_reviewer_criterion_and_value(value):
    bad = Candidate(sid(1), T0, (Sheet(rid(7), {"a": 50, "b": value, "c": 50}),))
    with pytest.raises(InvalidScore) as raised:
        rank(bad)
    message = str(raised.value)
    assert str(rid(7)) in message and " b " in message and str(value) in message
    assert "0 to 100" in message
    assert isinstance(raised.value, RankingError) and isinstance(raised.value, DomainError)


def test_a_decimal_score_inside_the_scale_is_accepted():
    entry = rank(candidate(1, (Decimal("99.5"), 100, 0))).entry(sid(1))
    assert entry.score == Decimal("79.75")


@pytest.mark.parametrize(("scores", "text"), [
    ({"a": 50, "b": 50}, "did not score c"),
    ({"a": 50, "b": 50, "c": 50, "d": 50}, "scored d"),
])
def test_a_missing_or_unknown_criterion_is_refused(scores, text):
    with pytest.raises(CriteriaMismatch, match=text):
        rank(Candidate(sid(1), T0, (Sheet(rid(1), scores),)))


def test_sheets_that_cannot_be_ranked_are_refused():
    with pytest.raises(InvalidSheets, match="two sheets"):
        rank(Candidate(sid(1), T0, (*sheets(50), *sheets(60))))
    with pytest.raises(InvalidSheets, match="listed twice"):
        rank(candidate(1, 50), candidate(1, 60))
    with pytest.raises(InvalidSheets, match="no score sheets"):
        rank(candidate(1, 50), Candidate(sid(2), T0, ()))
    with pytest.raises(InvalidSheets, match="needs scoring"):
        rank(candidate(1, 50), scoring=None)
    with pytest.raises(InvalidSheets, match="has no scoring"):
        rank(candidate(1, 50, votes=(True,)), scoring=None, decision=Decision("majority"))
    with pytest.raises(InvalidSheets, match="not in this stage"):
        rank(candidate(1, 50), disqualified={sid(2): "late"})


SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
# Few distinct values, so ties (resolved and unresolved) are frequent.
SCORE = st.sampled_from([0, 40, 60, 61, 80, 100])
ROW = st.tuples(SCORE, SCORE, SCORE)
CANDIDATES = st.lists(st.tuples(st.lists(ROW, min_size=1, max_size=6), st.integers(0, 2),
                                st.lists(st.booleans(), min_size=6, max_size=6)),
                      min_size=1, max_size=8)
DECISIONS = st.sampled_from([Decision("top", 3), Decision("eliminate", 2), Decision("majority")])


@SETTINGS
@given(CANDIDATES, DECISIONS, st.randoms(use_true_random=False), st.sets(st.integers(0, 7)))
def test_the_ranking_is_a_deterministic_permutation_independent_of_input_order(
        drawn, decision, shuffler: random.Random, out):
    candidates = [candidate(n, *rows, at=T0 + timedelta(hours=hour),
                            votes=tuple(votes[:len(rows)]))
                  for n, (rows, hour, votes) in enumerate(drawn)]
    disqualified = {sid(n): "rule" for n in out if n < len(candidates)}
    result = rank(*candidates, decision=decision, disqualified=disqualified)
    assert sorted(entry.submission_id for entry in result.entries) == \
        sorted(c.submission_id for c in candidates)
    assert [entry.rank for entry in result.entries] == list(range(1, len(candidates) + 1))
    assert rank(*candidates, decision=decision, disqualified=disqualified) == result
    shuffled = [Candidate(c.submission_id, c.submitted_at,
                          tuple(shuffler.sample(c.sheets, len(c.sheets)))) for c in candidates]
    shuffler.shuffle(shuffled)
    assert rank(*shuffled, decision=decision, disqualified=disqualified) == result
    ranked = [entry for entry in result.entries if entry.outcome is not Outcome.DISQUALIFIED]
    assert all(entry.rank > len(ranked) for entry in result.entries if entry not in ranked)
    at = {c.submission_id: c.submitted_at for c in candidates}

    def key(entry):
        means = entry.criterion_means
        return (-entry.score, -means["a"], -means["b"], at[entry.submission_id])
    for upper, lower in itertools.pairwise(ranked):
        assert key(upper) <= key(lower)
        if key(upper) == key(lower):
            assert upper.submission_id < lower.submission_id
            assert upper.tie_unresolved and lower.tie_unresolved
        if upper.outcome != lower.outcome and decision.rule != "majority":
            assert result.cut_unresolved == (key(upper) == key(lower))


# -- composite stages ---------------------------------------------------------------------------

BENCH = Component("bench", "벤치마크", "Benchmark", 40, "import", Range(0, 1000))
PANEL = Component("expert", "전문가", "Expert", 35, "panel", Range(0, 100))
USERS = Component("users", "사용자", "Users", 25, "import", Range(0, 100))
COMPOSITE = (BENCH, PANEL, USERS)
ELIMINATE_1 = Decision("eliminate", 1)


def composite(*candidates: Candidate, imported, **options) -> StageResult:
    return rank(*candidates, decision=ELIMINATE_1, components=COMPOSITE, imported=imported,
                **options)


def test_composite_normalises_each_component_and_weighs_them():
    result = composite(candidate(1, (80, 70, 90)),
                       imported={sid(1): {"bench": Decimal("625.5"), "users": Decimal("90")}})
    entry = result.entry(sid(1))
    assert entry.score == Decimal("79.00")          # the panel's own score is unchanged
    # bench 625.5 of 0-1000 -> 62.55 (half-even of 62.55); expert 79.00; users 90.00
    assert entry.components == {"bench": Decimal("62.55"), "expert": Decimal("79.00"),
                                "users": Decimal("90.00")}
    # 0.40 * 62.55 + 0.35 * 79 + 0.25 * 90 = 25.02 + 27.65 + 22.5 = 75.17
    assert entry.composite == Decimal("75.17")


def test_the_panel_component_is_normalised_on_the_scoring_scale():
    small = Scoring(scale=Range(1, 5), trim_from=5)
    panel = Component("expert", "전문가", "Expert", 35, "panel", Range(1, 5))
    result = rank(candidate(1, (5, 3, 1)), scoring=small, decision=ELIMINATE_1,
                  components=(BENCH, panel, USERS),
                  imported={sid(1): {"bench": Decimal(0), "users": Decimal(100)}})
    entry = result.entry(sid(1))
    assert entry.components["expert"] == Decimal("65.00")   # total 3.6 on 1-5
    assert entry.composite == Decimal("47.75")               # 0 + 22.75 + 25


def test_the_composite_orders_the_ranking_not_the_panel_score():
    result = composite(
        candidate(1, 95), candidate(2, 60), candidate(3, 70),
        imported={sid(1): {"bench": Decimal(100), "users": Decimal(10)},
                  sid(2): {"bench": Decimal(950), "users": Decimal(95)},
                  sid(3): {"bench": Decimal(500), "users": Decimal(50)}})
    # 1: 4 + 33.25 + 2.5 = 39.75; 2: 38 + 21 + 23.75 = 82.75; 3: 20 + 24.5 + 12.5 = 57
    assert [e.composite for e in result.entries] == [Decimal("82.75"), Decimal("57.00"),
                                                     Decimal("39.75")]
    assert result.with_outcome(Outcome.ELIMINATED) == (sid(1),)   # the best panel score


def test_equal_composites_go_to_the_panels_tie_break_rules():
    result = composite(
        candidate(1, (60, 90, 90)), candidate(2, (90, 60, 60)),
        imported={sid(1): {"bench": Decimal(500), "users": Decimal(50)},
                  sid(2): {"bench": Decimal(500), "users": Decimal(50)}})
    # panel scores 75 and 75: equal composites; criterion a separates them
    assert [e.submission_id for e in result.entries] == [sid(2), sid(1)]
    assert result.entries[0].tie_broken_by == "criterion:a"
    assert result.with_outcome(Outcome.ELIMINATED) == (sid(1),)


def test_a_disqualified_submission_may_lack_imported_scores():
    result = composite(candidate(1, 80), candidate(2, 50),
                       imported={sid(2): {"bench": Decimal(1), "users": Decimal(1)}},
                       disqualified={sid(1): "not from scratch"})
    entry = result.entry(sid(1))
    assert entry.outcome is Outcome.DISQUALIFIED
    assert entry.composite is None and entry.components == {"expert": Decimal("80.00")}


@pytest.mark.parametrize(("imported", "text"), [
    ({sid(1): {"bench": Decimal(1)}}, "has no users score"),
    ({sid(1): {"bench": Decimal(1001), "users": Decimal(1)}}, "not a number from 0 to 1000"),
    ({sid(1): {"bench": Decimal("NaN"), "users": Decimal(1)}}, "not a number from 0 to 1000"),
    ({sid(1): {"bench": 1.5, "users": Decimal(1)}}, "not a number from 0 to 1000"),
    ({sid(1): {"bench": Decimal(1), "users": Decimal(1), "speed": Decimal(1)}},
     "component speed"),
    ({sid(1): {"bench": Decimal(1), "users": Decimal(1)}, sid(9): {"bench": Decimal(1)}},
     "submission 00000000-0000-0000-0000-000000000009"),
])
def test_imported_scores_that_cannot_be_combined_are_refused(imported, text):
    with pytest.raises(InvalidSheets) as raised:
        composite(candidate(1, 80), imported=imported)
    assert text in str(raised.value)


def test_imported_scores_for_a_stage_without_components_are_refused():
    with pytest.raises(InvalidSheets):
        rank(candidate(1, 80), imported={sid(1): {"bench": Decimal(1)}})
    assert rank(candidate(1, 80)).entry(sid(1)).composite is None
