"""The sequence and tolerance rules: what an operation may report given its predecessor."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from mes_edge.domain.model import Operation, OperationStatus, OrderStatus, WorkOrder
from mes_edge.domain.plant import Decision, Notice, PlantRules
from mes_edge.domain.rejections import RejectCode, Rejection

ACTIVE = (OrderStatus.RELEASED, OrderStatus.IN_PROGRESS)
FINISHED_OPS = (OperationStatus.COMPLETED, OperationStatus.CANCELLED)


def refresh_readiness(order: WorkOrder) -> WorkOrder:
    """Set waiting/ready: an operation is ready once its predecessor handed something over."""
    ops = list(order.operations)
    changed = False
    for i, op in enumerate(ops):
        if op.status not in (OperationStatus.WAITING, OperationStatus.READY):
            continue
        ready = order.status in ACTIVE and (i == 0 or ops[i - 1].done.good > 0)
        status = OperationStatus.READY if ready else OperationStatus.WAITING
        if status != op.status:
            ops[i] = op.with_(status=status)
            changed = True
    return order.with_(operations=tuple(ops)) if changed else order


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


def excess(order: WorkOrder, index: int, op: Operation) -> tuple[int, int]:
    """How far `op` (a version of operation `index`) is beyond its limits, as
    (good beyond planned + tolerance, processed beyond what the predecessor handed over +
    tolerance)."""
    over = max(0, op.done.good - with_tolerance(op.planned_qty, order.tolerance_pct))
    beyond = 0
    if index > 0:
        handed = order.operations[index - 1].done.good
        beyond = max(0, op.done.processed - with_tolerance(handed, order.tolerance_pct))
    return over, beyond


def flag_excess(order: WorkOrder, index: int, before: Operation, decision: Decision,
                rules: PlantRules) -> WorkOrder:
    """A machine count is a fact: record how far operation `index` now exceeds its plan or its
    predecessor's hand-over (never refuse it), and warn when it first crosses a limit."""
    op = order.operations[index]
    over_before, beyond_before = excess(order, index, before)
    over, beyond = excess(order, index, op)
    if over == over_before and beyond == beyond_before:
        return order
    add_over, add_beyond = max(0, over - over_before), max(0, beyond - beyond_before)
    if not add_over and not add_beyond:
        return order
    where = f"{order.order_id}/{op.op_no} on {op.work_center}"
    if add_over and not before.over_produced:
        limit = with_tolerance(op.planned_qty, order.tolerance_pct)
        decision.notices.append(Notice(
            "warning", op.work_center,
            f"{where}: over-production - {op.done.good} good counted, planned {op.planned_qty} "
            f"+ {order.tolerance_pct:g}% tolerance ({limit})"))
    if add_beyond and not before.beyond_handover:
        prev = order.operations[index - 1]
        decision.notices.append(Notice(
            "warning", op.work_center,
            f"{where}: {op.done.processed} units processed, more than the {prev.done.good} "
            f"operation {prev.op_no} handed over (+ {order.tolerance_pct:g}% tolerance) - "
            f"check operation {prev.op_no}'s count"))
    return order.with_op(index, op.with_(over_produced=before.over_produced + add_over,
                                         beyond_handover=before.beyond_handover + add_beyond))
