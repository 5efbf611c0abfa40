"""Ranking one stage: 15 submissions x 10 reviewers x 6 criteria, exact against float.

The written stage of the demo programme (its six criteria and weights, scale 0-100, trimming
from 5 sheets, tie-break by excellence, capability, earliest submission, top 10) with random
whole-number scores from a fixed seed. Prints the median [p90] time of one
``rank_stage`` call (validation, Decimal arithmetic in a fixed context, ranking, tie flags,
decision) over many rounds, and the baseline in the same run: the same arithmetic as plain
float sums (weighted totals, trimmed mean, per-criterion trimmed means, population standard
deviation, outliers, sort by score and the tie-break keys, top N) without validation or
Decimal. The ratio is the cost of exact, validated arithmetic.

    .venv/bin/python bench/ranking.py [--rounds N] [--seed N]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vault.evaluation.ranking import Candidate, Sheet, rank_stage
from vault.programmes.definition import load_definition

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "policies" / "programmes" / "sovereign-ai-2025.toml"
SUBMISSIONS = 15
REVIEWERS = 10


def stage_input(seed: int) -> tuple[object, list[Candidate]]:
    """The written stage and 15 candidates with 10 sheets each, from the seed."""
    stage = next(s for s in load_definition(DEFINITION).stages if s.id == "written")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    start = datetime(2027, 1, 10, tzinfo=UTC)
    candidates = [
        Candidate(uuid.UUID(int=rng.getrandbits(128)),
                  start + timedelta(minutes=rng.randint(0, 9999)),
                  tuple(Sheet(uuid.UUID(int=rng.getrandbits(128)),
                              {c.id: rng.randint(40, 100) for c in stage.criteria})
                        for _ in range(REVIEWERS)))
        for _ in range(SUBMISSIONS)]
    return stage, candidates


def float_ranking(stage, candidates: list[Candidate]) -> list[uuid.UUID]:
    """The baseline: the same figures and order with floats, no validation."""
    scoring, criteria = stage.scoring, stage.criteria
    low, width = scoring.scale.minimum, scoring.scale.maximum - scoring.scale.minimum
    rows = []
    for candidate in candidates:
        totals = [sum(c.weight / 100 * sheet.scores[c.id] for c in criteria)
                  for sheet in candidate.sheets]
        mean = sum(totals) / len(totals)
        std = math.sqrt(sum((t - mean) ** 2 for t in totals) / len(totals))
        outliers = [abs(t - mean) > 15 * width / 100 for t in totals]
        trim = len(totals) >= scoring.trim_from > 0
        kept = sorted(totals)[1:-1] if trim else totals
        score = sum(kept) / len(kept)
        means = {}
        for c in criteria:
            values = sorted(sheet.scores[c.id] for sheet in candidate.sheets)
            values = values[1:-1] if trim else values
            means[c.id] = sum(values) / len(values)
        key = [-score]
        for rule in scoring.tie_break:
            key.append(candidate.submitted_at if rule == "earliest_submission"
                       else -means[rule.partition(":")[2]])
        rows.append((tuple(key), candidate.submission_id, (score - low) * 100 / width, std,
                     outliers))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [row[1] for row in rows][: stage.decision.count]


def timed(func: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median and p90 of ``rounds`` calls, in microseconds."""
    for _ in range(min(rounds, 50)):
        func()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        func()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def main() -> None:
    """Rank the stage many times with both implementations and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    stage, candidates = stage_input(options.seed)

    def exact():
        return rank_stage(candidates, criteria=stage.criteria, scoring=stage.scoring,
                          decision=stage.decision)

    result = exact()
    passing = [e.submission_id for e in result.entries if e.outcome == "pass"]
    agree = passing == float_ranking(stage, candidates)
    exact_median, exact_p90 = timed(exact, options.rounds)
    float_median, float_p90 = timed(lambda: float_ranking(stage, candidates), options.rounds)
    print(f"ranking: {SUBMISSIONS} submissions x {REVIEWERS} reviewers x "
          f"{len(stage.criteria)} criteria, seed {options.seed}, {options.rounds} rounds")
    print(f"  rank_stage (validated, Decimal)   median {exact_median / 1000:8.3f} ms   "
          f"p90 {exact_p90 / 1000:8.3f} ms")
    print(f"  baseline (float, no validation)   median {float_median / 1000:8.3f} ms   "
          f"p90 {float_p90 / 1000:8.3f} ms")
    print(f"  rank_stage / baseline             {exact_median / float_median:8.1f}")
    print(f"  same top {stage.decision.count} in the same order as the baseline: "
          f"{'yes' if agree else 'NO'}; unresolved ties: "
          f"{sum(e.tie_unresolved for e in result.entries)}; outlier flags: "
          f"{sum(len(e.outliers) for e in result.entries)}")


if __name__ == "__main__":
    main()
