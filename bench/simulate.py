"""The whole simulated programme end to end (``vault demo simulate``), with a per-phase breakdown.

Runs the rehearsal of the shipped programme (fifteen consortia, six stages, a panel of
``--reviewers`` on each) in its scratch vault and prints each phase's wall time: the
applications (the demo's accounts and consortia, every document encrypted and stored, the
submissions), screening (every PDF analysed in the sandbox), and per stage the panel's
assignments, every sheet saved and submitted after its access decision, the imports, close,
confirm and publish. Two baselines from the same run:

* ranking only: ``rank_stage`` on inputs of each stage's shape (its submissions x the panel's
  sheets, its criteria), the pure arithmetic the pipeline wraps; the ratio is what the
  services, access decisions, sealing, audit events and database add per stage;
* demo init: what ``vault init --demo`` does (accounts, consortia, the demo's 151 realistic
  PDFs at the demo's scale, submissions) in a scratch vault, for scale against the whole
  rehearsal (``--no-demo-init`` skips it).

    .venv/bin/python bench/simulate.py [--seed N] [--reviewers N] [--runs N] [--no-demo-init]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vault.audit.service import RequestInfo
from vault.consortia.service import ConsortiumService
from vault.db import unit_of_work
from vault.demo.submissions import populate_submissions
from vault.demo.world import create_demo
from vault.evaluation.ranking import Candidate, Sheet, rank_stage
from vault.programmes.definition import ProgrammeDefinition, Stage, load_definition
from vault.programmes.service import ProgrammeService
from vault.rehearsal.run import Options, Rehearsal, RehearsalClock, rehearse, scratch_runtime

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "policies" / "programmes" / "sovereign-ai-2025.toml"


def ranking_only(stage: Stage, submissions: int, reviewers: int, rounds: int = 50) -> float:
    """Median seconds of one ``rank_stage`` call on inputs of the stage's shape."""
    rng = random.Random(1)  # noqa: S311 - reproducible bench data, not a secret
    start = datetime(2027, 1, 10, tzinfo=UTC)
    majority = stage.decision is not None and stage.decision.rule == "majority"
    candidates = [Candidate(uuid.UUID(int=rng.getrandbits(128)), start + timedelta(minutes=i),
                            tuple(Sheet(uuid.UUID(int=rng.getrandbits(128)),
                                        {c.id: rng.randint(40, 100) for c in stage.criteria},
                                        accept=rng.random() < 0.5 if majority else None)
                                  for _ in range(reviewers)))
                  for i in range(submissions)]
    components = [c for c in stage.components if c.source == "import"]
    imported = ({c.submission_id: {k.id: rng.randint(0, 100) for k in components}
                 for c in candidates} if components else None)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        rank_stage(candidates, criteria=stage.criteria, scoring=stage.scoring,
                   decision=stage.decision, components=stage.components if imported else (),
                   imported=imported)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def demo_init(definition: ProgrammeDefinition) -> float:
    """Seconds ``vault init --demo``'s data takes in a scratch vault."""
    clock = RehearsalClock(definition.submission_opens + timedelta(hours=1))
    with scratch_runtime(None, clock) as rt:
        started = time.perf_counter()
        with unit_of_work(rt.sessions) as session:
            programme, _ = ProgrammeService(session).sync(definition)
            create_demo(session, rt.identity(session),
                        ConsortiumService(session, cipher=rt.cipher), programme)
            populate_submissions(session, programme, definition,
                                 documents=rt.documents(session), cipher=rt.cipher,
                                 audit=rt.audit(session), definitions=rt.definitions,
                                 request=RequestInfo(client="bench"))
        return time.perf_counter() - started


def report(runs: list[Rehearsal], definition: ProgrammeDefinition, reviewers: int) -> float:
    """Print the per-phase table; returns the median total."""
    phases = list(runs[0].timings)
    totals = [sum(run.timings.values()) for run in runs]
    print(f"{'phase':<18} {'median s':>9} {'sheets':>7} {'ms/sheet':>9} {'rank_stage ms':>14}"
          f" {'ratio':>8}")
    stages = {report.stage: report for report in runs[0].stages}
    for phase in phases:
        median = statistics.median(run.timings[phase] for run in runs)
        line = f"{phase:<18} {median:>9.2f}"
        if phase in stages:
            stage = definition.stage(phase)
            entries = len(stages[phase].rows)
            sheets = entries * reviewers
            pure = ranking_only(stage, entries, reviewers) if entries else 0.0
            ratio = f"{median / pure:>8.0f}" if pure else f"{'-':>8}"
            per_sheet = f"{1000 * median / sheets:>9.1f}" if sheets else f"{'-':>9}"
            line += f" {sheets:>7} {per_sheet} {1000 * pure:>14.3f} {ratio}"
        print(line)
    total = statistics.median(totals)
    print(f"{'total':<18} {total:>9.2f}")
    return total


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-demo-init", action="store_true")
    args = parser.parse_args()
    definition = load_definition(DEFINITION)
    runs = []
    for _ in range(args.runs):
        started = time.perf_counter()
        runs.append(rehearse(Options(seed=args.seed, reviewers=args.reviewers)))
        print(f"rehearsal: {time.perf_counter() - started:.2f} s wall "
              f"(scratch vault set up and removed included)")
    assert all(run == runs[0] for run in runs), "the same seed gave another result"
    print(f"sovereign-ai-2025, seed {args.seed}, {args.reviewers} reviewers per panel, "
          f"{args.runs} run(s); survivors: {', '.join(runs[0].survivors)}")
    total = report(runs, definition, args.reviewers)
    evaluation = sum(statistics.median(run.timings[s.id] for run in runs)
                     for s in definition.stages)
    print(f"stages alone {evaluation:.2f} s = {100 * evaluation / total:.0f} % of the total")
    if not args.no_demo_init:
        init = demo_init(definition)
        print(f"baseline vault init --demo (151 realistic PDFs, not screened): {init:.2f} s; "
              f"whole rehearsal / demo init = {total / init:.2f}")


if __name__ == "__main__":
    main()
