"""The confirmed ranking of a stage as data: a ``StageResult`` and the digests of its inputs in
canonical JSON, and back. Pure functions.

The snapshot is what a confirmation freezes: the order, every figure, every outcome and flag,
plus what the ranking was computed from (each candidate's submission time, a digest of each
submitted sheet's scores and vote with its revision, each import's file and values digests, each
disqualification). Its SHA-256 (of the canonical UTF-8 bytes) is recorded in the clear and in
the audit log; recomputing the snapshot from the stored inputs gives the same bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from vault.evaluation.ranking import Outcome, RankedEntry, ReviewerTotal, StageResult
from vault.evaluation.rounds import canonical
from vault.programmes.rules import Decision

#: Bumped when the shape changes, so an old snapshot is never read as a new one.
FORMAT = 1


def digest(value: object) -> str:
    """SHA-256 (hex) of a value's canonical JSON."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def number_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _entry_json(entry: RankedEntry) -> dict[str, Any]:
    return {
        "submission": str(entry.submission_id), "rank": entry.rank,
        "outcome": entry.outcome.value, "score": number_text(entry.score),
        "normalised": number_text(entry.normalised), "composite": number_text(entry.composite),
        "components": {key: str(value) for key, value in entry.components.items()},
        "criterion_means": {key: str(value) for key, value in entry.criterion_means.items()},
        "reviewers": [{"reviewer": str(r.reviewer_id), "total": number_text(r.total),
                       "normalised": number_text(r.normalised),
                       "deviation": number_text(r.deviation), "outlier": r.outlier,
                       "accept": r.accept} for r in entry.reviewers],
        "untrimmed_mean": number_text(entry.untrimmed_mean),
        "std_dev": number_text(entry.std_dev),
        "sheets": entry.sheets, "trimmed": entry.trimmed, "accepts": entry.accepts,
        "tied": entry.tied, "tie_broken_by": entry.tie_broken_by,
        "tie_unresolved": entry.tie_unresolved, "cut_tie": entry.cut_tie,
        "disqualified": entry.disqualified_reason,
    }


def build(*, programme: str, stage: str, definition_sha256: str, result: StageResult,
          inputs: Mapping[str, object]) -> dict[str, Any]:
    """The snapshot of a result and its inputs (see the module docstring)."""
    decision = result.decision
    return {
        "format": FORMAT, "programme": programme, "stage": stage,
        "definition_sha256": definition_sha256,
        "decision": {"rule": decision.rule, "count": decision.count},
        "cut_unresolved": result.cut_unresolved, "no_selection": result.no_selection,
        "entries": [_entry_json(entry) for entry in result.entries],
        "inputs": dict(inputs),
    }


def encode(snapshot: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical text of a snapshot and its SHA-256 (hex)."""
    text = canonical(snapshot)
    return text, hashlib.sha256(text.encode()).hexdigest()


def result_of(snapshot: Mapping[str, Any]) -> StageResult:
    """The ``StageResult`` a snapshot holds."""
    if snapshot.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {snapshot.get('format')!r}")
    entries = []
    for item in snapshot["entries"]:
        reviewers = tuple(ReviewerTotal(
            reviewer_id=uuid.UUID(r["reviewer"]), total=_decimal(r["total"]),
            normalised=_decimal(r["normalised"]), deviation=_decimal(r["deviation"]),
            outlier=r["outlier"], accept=r["accept"]) for r in item["reviewers"])
        entries.append(RankedEntry(
            submission_id=uuid.UUID(item["submission"]), rank=item["rank"],
            score=_decimal(item["score"]), normalised=_decimal(item["normalised"]),
            criterion_means={k: Decimal(v) for k, v in item["criterion_means"].items()},
            reviewers=reviewers, untrimmed_mean=_decimal(item["untrimmed_mean"]),
            std_dev=_decimal(item["std_dev"]), sheets=item["sheets"], trimmed=item["trimmed"],
            accepts=item["accepts"], outcome=Outcome(item["outcome"]), tied=item["tied"],
            tie_broken_by=item["tie_broken_by"], tie_unresolved=item["tie_unresolved"],
            cut_tie=item["cut_tie"], disqualified_reason=item["disqualified"],
            components={k: Decimal(v) for k, v in item["components"].items()},
            composite=_decimal(item["composite"])))
    decision = snapshot["decision"]
    return StageResult(
        decision=Decision(decision["rule"], decision["count"]), entries=tuple(entries),
        cut_unresolved=snapshot["cut_unresolved"], no_selection=snapshot["no_selection"],
        _by_id={entry.submission_id: entry for entry in entries})
