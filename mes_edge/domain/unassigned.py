"""Unassigned production: what a machine counted while no operation could take it.

A PLC count is a fact. Parts made after a pause or a completion, while the order is on hold,
before anyone started an operation, or a counter jump to be checked are recorded on the work
center (good / scrap by reason / rework, time span, counter readings) and a supervisor assigns
them to an operation (they then count and are confirmed like any report) or writes them off
with a reason. Nothing a PLC counted vanishes.
"""

from __future__ import annotations

from mes_edge.domain.confirming import confirm
from mes_edge.domain.events import (
    OperationCommand,
    QuantityReported,
    UnassignedAction,
    UnassignedResolved,
)
from mes_edge.domain.model import ZERO, OrderStatus, Quantities, WorkCenterState, WorkOrder
from mes_edge.domain.plant import Decision, Notice, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.sequence import flag_excess
from mes_edge.domain.workcenters import known_work_center, work_center_state


def record_unassigned(view: StateView, event: QuantityReported, decision: Decision,
                      qty: Quantities, reason: str, why: str) -> None:
    """Add a machine count to the work center's unassigned production."""
    wc = work_center_state(view, decision, event.work_center)
    readings = dict(wc.unassigned_readings)
    if event.checkpoint is not None and event.readings is not None:
        key = f"{event.checkpoint.device}/{event.checkpoint.tag}"
        first = readings.get(key, event.readings)[0]
        readings[key] = (first, event.readings[1])
    reasons = dict(wc.unassigned_reasons)
    reasons[reason] = reasons.get(reason, 0) + qty.processed
    was_empty = wc.unassigned.is_zero
    decision.work_centers[event.work_center] = wc.with_(
        unassigned=wc.unassigned.plus(qty),
        unassigned_since=event.ts if was_empty else wc.unassigned_since,
        unassigned_last=event.ts,
        unassigned_reasons=reasons,
        unassigned_readings=readings,
    )
    if was_empty or reason not in wc.unassigned_reasons:
        decision.notices.append(Notice(
            "warning", event.work_center,
            f"{event.work_center}: the machine counted {qty.processed} unit(s) that no "
            f"operation can take ({why}); recorded as unassigned production - assign them to "
            "an operation or write them off"))


def _take(open_qty: Quantities, qty: Quantities, work_center: str) -> Quantities:
    """What remains after taking `qty` out of the open quantities (refused if too much)."""
    short = []
    if qty.good > open_qty.good:
        short.append(f"good {qty.good} > {open_qty.good}")
    if qty.rework > open_qty.rework:
        short.append(f"rework {qty.rework} > {open_qty.rework}")
    for reason, n in qty.scrap.items():
        if n > open_qty.scrap.get(reason, 0):
            short.append(f"scrap {reason!r} {n} > {open_qty.scrap.get(reason, 0)}")
    if short:
        raise Rejection(RejectCode.NOT_ENOUGH_UNASSIGNED,
                        f"{work_center} has less unassigned production than that: "
                        + ", ".join(short))
    return open_qty.plus(qty, -1)


def add_to_operation(order: WorkOrder, index: int, qty: Quantities,
                     event: UnassignedResolved | OperationCommand, decision: Decision,
                     rules: PlantRules) -> WorkOrder:
    """Count `qty` on an operation (flagged where it exceeds plan or hand-over) and confirm it."""
    op = order.operations[index]
    before = op
    op = op.with_(done=op.done.plus(qty), unconfirmed=op.unconfirmed.plus(qty),
                  last_report=event.ts, personnel=event.actor or op.personnel)
    order = order.with_op(index, op, updated_at=event.ts)
    order = flag_excess(order, index, before, decision, rules)
    return confirm(order, index, event, decision, final=False)


def resolve_unassigned(view: StateView, rules: PlantRules, event: UnassignedResolved,
                       decision: Decision) -> None:
    """A supervisor assigns unassigned production to an operation, or writes it off."""
    known_work_center(rules, event.work_center)
    values = [event.good, event.rework, *event.scrap.values()]
    if any(v < 0 for v in values) or sum(values) == 0:
        raise Rejection(RejectCode.INVALID, "give positive quantities (good, scrap, rework)")
    qty = Quantities(good=event.good, scrap={r: n for r, n in event.scrap.items() if n},
                     rework=event.rework)
    wc = work_center_state(view, decision, event.work_center)
    remaining = _take(wc.unassigned, qty, event.work_center)
    if event.action == UnassignedAction.WRITE_OFF:
        if not (event.reason or "").strip():
            raise Rejection(RejectCode.INVALID, "a write-off needs a reason")
        wc = wc.with_(written_off_total=wc.written_off_total.plus(qty))
    else:
        if event.order_id is None or event.op_no is None:
            raise Rejection(RejectCode.INVALID, "name the order and operation to assign to")
        order = decision.orders.get(event.order_id) or view.order(event.order_id)
        if order is None:
            raise Rejection(RejectCode.UNKNOWN_ORDER, f"unknown order {event.order_id!r}")
        index = order.index_of(event.op_no)
        if index is None:
            raise Rejection(RejectCode.UNKNOWN_OPERATION,
                            f"order {order.order_id} has no operation {event.op_no!r}")
        op = order.operations[index]
        if op.work_center != event.work_center:
            raise Rejection(RejectCode.WRONG_WORK_CENTER,
                            f"operation {order.order_id}/{op.op_no} belongs to {op.work_center}, "
                            f"not {event.work_center}")
        if order.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED, OrderStatus.PLANNED):
            raise Rejection(RejectCode.ORDER_NOT_ACTIVE,
                            f"order {order.order_id} is {order.status}: cannot take production")
        decision.orders[order.order_id] = add_to_operation(order, index, qty, event, decision,
                                                           rules)
        wc = work_center_state(view, decision, event.work_center)  # unchanged by the order
        wc = wc.with_(assigned_total=wc.assigned_total.plus(qty))
    decision.work_centers[event.work_center] = _left(wc.with_(unassigned=remaining))


def auto_assign(view: StateView, rules: PlantRules, order: WorkOrder, index: int,
                event: OperationCommand, decision: Decision) -> WorkOrder:
    """Plant policy: an operation started on a work center takes its unassigned production."""
    op = order.operations[index]
    wc = work_center_state(view, decision, op.work_center)
    if not rules.auto_assign_unassigned or wc.unassigned.is_zero:
        return order
    qty = wc.unassigned
    order = add_to_operation(order, index, qty, event, decision, rules)
    wc = work_center_state(view, decision, op.work_center)
    decision.work_centers[op.work_center] = _left(wc.with_(
        unassigned=ZERO, assigned_total=wc.assigned_total.plus(qty)))
    decision.notices.append(Notice(
        "info", op.work_center,
        f"{qty.processed} unassigned unit(s) of {op.work_center} assigned to "
        f"{order.order_id}/{op.op_no} when it started (plant policy)"))
    return order


def _left(wc: WorkCenterState) -> WorkCenterState:
    """Clear the span and readings once nothing is left open."""
    if not wc.unassigned.is_zero:
        return wc
    return wc.with_(unassigned=ZERO, unassigned_since=None, unassigned_last=None,
                    unassigned_reasons={}, unassigned_readings={})
