"""The arithmetic every published figure of a ranking shares: a fixed decimal context and two
decimals, half-even (see :mod:`vault.evaluation.ranking`)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

#: The arithmetic context (:func:`vault.evaluation.ranking.rank_stage` computes in it), so
#: results do not depend on the caller's decimal context.
CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
#: Every published figure has two decimals.
CENT = Decimal("0.01")


def cent(value: Decimal) -> Decimal:
    """``value`` to the cent, half-even (in the current decimal context)."""
    return value.quantize(CENT)
