"""The sequence and tolerance rules: what an operation may report given its predecessor."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from mes_edge.domain.model import WorkOrder
from mes_edge.domain.plant import PlantRules
from mes_edge.domain.rejections import RejectCode, Rejection


def with_tolerance(qty: int, tolerance_pct: float) -> int:
    """`qty` plus the over-production tolerance, rounded down to whole units (exact)."""
    frac = _fraction(tolerance_pct)
    return qty + qty * frac.numerator // (100 * frac.denominator)


@lru_cache(maxsize=64)
def _fraction(tolerance_pct: float) -> Fraction:
    # The decimal the engineer wrote (5.5 -> 11/2), not the binary float's expansion.
    return Fraction(str(tolerance_pct))


def check_operation(order: WorkOrder, index: int) -> None:
    """Raise if operation `index` reports more than allowed.

    - good never exceeds its planned quantity plus the order's tolerance (over-production);
    - an operation after the first never processes (good + scrap + rework) more than its
      predecessor handed over (its good) plus the tolerance;
    - no quantity is negative.
    """
    op = order.operations[index]
    done = op.done
    if done.good < 0 or done.rework < 0 or any(q < 0 for q in done.scrap.values()):
        raise Rejection(
            RejectCode.INVALID, f"operation {op.op_no}: quantities would become negative"
        )
    limit = with_tolerance(op.planned_qty, order.tolerance_pct)
    if done.good > limit:
        raise Rejection(
            RejectCode.OVER_PRODUCTION,
            f"operation {op.op_no}: good {done.good} would exceed planned {op.planned_qty} "
            f"+ {order.tolerance_pct:g}% tolerance ({limit})",
        )
    if index > 0:
        prev = order.operations[index - 1]
        handed = prev.done.good
        limit = with_tolerance(handed, order.tolerance_pct)
        if done.processed > limit:
            raise Rejection(
                RejectCode.SEQUENCE,
                f"operation {op.op_no}: {done.processed} processed would exceed the {handed} "
                f"operation {prev.op_no} handed over (+ {order.tolerance_pct:g}% tolerance)",
            )


def check_chain(order: WorkOrder, rules: PlantRules) -> None:
    """Check every operation of the order (after a change that may ripple down the routing)."""
    for i in range(len(order.operations)):
        check_operation(order, i)
