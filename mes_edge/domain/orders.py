"""Work-order level rules: import with revisions, hold / release / cancel / close."""

from __future__ import annotations

from mes_edge.domain.confirming import confirm
from mes_edge.domain.events import OrderAction, OrderCommand, OrderReceived
from mes_edge.domain.model import (
    Operation,
    OperationSpec,
    OperationStatus,
    OrderSpec,
    OrderStatus,
    WorkOrder,
)
from mes_edge.domain.plant import Decision, Notice, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.sequence import ACTIVE, FINISHED_OPS, refresh_readiness
from mes_edge.domain.workcenters import occupy_work_center, release_work_center


def _validate_spec(spec: OrderSpec, rules: PlantRules) -> None:
    if not spec.order_id.strip():
        raise Rejection(RejectCode.INVALID, "order_id is empty")
    if not 0 <= spec.revision <= 2**31 - 1:
        raise Rejection(RejectCode.INVALID, "revision must be within 0..2147483647")
    for c in spec.components:
        if not 0 < c.quantity <= rules.max_order_quantity:
            raise Rejection(RejectCode.ABSURD_QUANTITY,
                            f"component {c.material}: quantity {c.quantity} out of range")
    if not 0 < spec.quantity <= rules.max_order_quantity:
        raise Rejection(
            RejectCode.ABSURD_QUANTITY,
            f"quantity {spec.quantity} is not in 1..{rules.max_order_quantity}",
        )
    if not spec.operations:
        raise Rejection(RejectCode.INVALID, "an order needs at least one operation")
    seen: set[str] = set()
    for op in spec.operations:
        if op.op_no in seen:
            raise Rejection(RejectCode.INVALID, f"operation {op.op_no} appears twice")
        seen.add(op.op_no)
        if op.work_center not in rules.work_centers:
            raise Rejection(
                RejectCode.UNKNOWN_WORK_CENTER,
                f"operation {op.op_no}: unknown work center {op.work_center!r}",
            )
        if op.planned_qty is not None and not 0 < op.planned_qty <= rules.max_order_quantity:
            raise Rejection(
                RejectCode.ABSURD_QUANTITY,
                f"operation {op.op_no}: planned quantity {op.planned_qty} out of range",
            )
    if spec.tolerance_pct is not None and not 0 <= spec.tolerance_pct <= 100:
        raise Rejection(RejectCode.INVALID, "tolerance_pct must be within 0..100")


def _new_operation(spec: OperationSpec, order_qty: int, rules: PlantRules) -> Operation:
    return Operation(
        op_no=spec.op_no,
        work_center=spec.work_center,
        planned_qty=spec.planned_qty or order_qty,
        counting=spec.counting or rules.work_centers[spec.work_center],
        description=spec.description,
        ideal_cycle_s=spec.ideal_cycle_s,
    )


def _started(op: Operation) -> bool:
    return op.actual_start is not None or not op.done.is_zero


def receive_order(
    view: StateView, rules: PlantRules, event: OrderReceived, decision: Decision
) -> None:
    """Create an order, or apply a newer revision (README's contract: revision semantics)."""
    spec = event.spec
    _validate_spec(spec, rules)
    current = view.order(spec.order_id)
    common = {
        "revision": spec.revision,
        "material": spec.material,
        "quantity": spec.quantity,
        "unit": spec.unit,
        "components": spec.components,
        "demand_type": spec.demand_type,
        "sales_order": spec.sales_order,
        "customer": spec.customer,
        "due": spec.due,
        "tolerance_pct": rules.tolerance_pct if spec.tolerance_pct is None else spec.tolerance_pct,
        "updated_at": event.ts,
    }
    if current is None:
        order = WorkOrder(
            order_id=spec.order_id,
            status=OrderStatus.RELEASED if spec.release else OrderStatus.PLANNED,
            operations=tuple(_new_operation(o, spec.quantity, rules) for o in spec.operations),
            policy=rules.policy,
            auto_complete=rules.auto_complete,
            **common,  # type: ignore[arg-type]
        )
        decision.orders[order.order_id] = refresh_readiness(order)
        return
    if spec.revision == current.revision:
        return  # the same revision again changes nothing
    if spec.revision < current.revision:
        raise Rejection(
            RejectCode.STALE_REVISION,
            f"order {spec.order_id}: revision {spec.revision} is older than "
            f"revision {current.revision} we have",
        )
    if current.status in (OrderStatus.CANCELLED, OrderStatus.CLOSED, OrderStatus.COMPLETED):
        raise Rejection(
            RejectCode.ORDER_NOT_ACTIVE,
            f"order {spec.order_id} is {current.status}; a new revision cannot apply",
        )
    # The routing up to the last started operation is frozen: WIP exists along it, and the
    # sequence rule needs each started operation's real predecessor. Later operations may
    # change freely; a started one may only get a new planned quantity.
    started_at = [i for i, op in enumerate(current.operations) if _started(op)]
    if started_at:
        frozen = [op.op_no for op in current.operations[: started_at[-1] + 1]]
        if [o.op_no for o in spec.operations][: len(frozen)] != frozen:
            raise Rejection(
                RejectCode.INVALID,
                f"revision {spec.revision} changes the routing before or at started operation "
                f"{frozen[-1]} (must keep {', '.join(frozen)} first, in this order); only "
                "later operations can change - cancel the order to re-plan it",
            )
    old_ops = {op.op_no: op for op in current.operations}
    ops: list[Operation] = []
    for o in spec.operations:
        old = old_ops.get(o.op_no)
        if old is not None and _started(old):
            # What has started stays as it is; only the plan moves, never below what exists.
            planned = o.planned_qty or spec.quantity
            made = old.done.good + old.done.scrap_total
            if planned < made:
                raise Rejection(
                    RejectCode.BELOW_MADE,
                    f"revision {spec.revision} plans operation {old.op_no} at {planned}, but "
                    f"{made} were already made there (good {old.done.good} + scrap "
                    f"{old.done.scrap_total}): plan at least {made}",
                )
            ops.append(old.with_(planned_qty=planned))
        else:
            fresh = _new_operation(o, spec.quantity, rules)
            ops.append(fresh if old is None else fresh.with_(status=old.status))
    order = current.with_(operations=tuple(ops), **common)
    started = any(_started(op) for op in current.operations)
    if started:
        reason = (
            f"revision {spec.revision} changed order {spec.order_id} after it started: "
            "review the change and release the order"
        )
        if order.status != OrderStatus.ON_HOLD:
            order = _hold(order, reason, decision, view)
        else:
            order = order.with_(hold_reason=reason)
        decision.notices.append(Notice("warning", None, reason))
    elif spec.release and order.status == OrderStatus.PLANNED:
        order = order.with_(status=OrderStatus.RELEASED)
    decision.orders[order.order_id] = refresh_readiness(order)


def _hold(order: WorkOrder, reason: str | None, decision: Decision, view: StateView) -> WorkOrder:
    ops = list(order.operations)
    for i, op in enumerate(ops):
        if op.status == OperationStatus.RUNNING:
            # Remembered, so releasing the hold lets them run again.
            ops[i] = op.with_(status=OperationStatus.PAUSED,
                              status_before_hold=OperationStatus.RUNNING)
            release_work_center(view, decision, op.work_center, order.order_id, op.op_no)
    return order.with_(
        operations=tuple(ops),
        status=OrderStatus.ON_HOLD,
        status_before_hold=order.status,
        hold_reason=reason,
    )


def _resume_after_hold(order: WorkOrder, decision: Decision, view: StateView) -> WorkOrder:
    """The operations the hold paused run again, where their work center is free."""
    ops = list(order.operations)
    for i, op in enumerate(ops):
        if op.status_before_hold != OperationStatus.RUNNING:
            continue
        if op.status != OperationStatus.PAUSED:
            ops[i] = op.with_(status_before_hold=None)
            continue
        try:
            occupy_work_center(view, decision, op.work_center, order.order_id, op.op_no)
        except Rejection as busy:
            decision.notices.append(Notice(
                "warning", op.work_center,
                f"order {order.order_id} released, but operation {op.op_no} stays paused: "
                f"{busy.message}"))
            ops[i] = op.with_(status_before_hold=None)
            continue
        ops[i] = op.with_(status=OperationStatus.RUNNING, status_before_hold=None)
    return order.with_(operations=tuple(ops))


def command_order(
    view: StateView, rules: PlantRules, event: OrderCommand, decision: Decision
) -> None:
    """Hold, release, cancel or close a work order."""
    order = view.order(event.order_id)
    if order is None:
        raise Rejection(RejectCode.UNKNOWN_ORDER, f"unknown order {event.order_id!r}")
    status = order.status
    action = event.action
    if action == OrderAction.HOLD:
        if status == OrderStatus.ON_HOLD:
            return
        if status not in (OrderStatus.PLANNED, *ACTIVE):
            raise Rejection(
                RejectCode.BAD_STATE, f"order {order.order_id} is {status}: cannot hold"
            )
        order = _hold(order, event.reason, decision, view)
    elif action == OrderAction.RELEASE:
        if status in ACTIVE:
            return
        if status == OrderStatus.ON_HOLD:
            back = order.status_before_hold or OrderStatus.RELEASED
            order = order.with_(
                status=OrderStatus.RELEASED if back == OrderStatus.PLANNED else back,
                hold_reason=None,
                status_before_hold=None,
            )
            order = _resume_after_hold(order, decision, view)
        elif status == OrderStatus.PLANNED:
            order = order.with_(status=OrderStatus.RELEASED)
        else:
            raise Rejection(
                RejectCode.BAD_STATE, f"order {order.order_id} is {status}: cannot release"
            )
    elif action == OrderAction.CANCEL:
        if status == OrderStatus.CANCELLED:
            return
        if status in (OrderStatus.COMPLETED, OrderStatus.CLOSED):
            raise Rejection(
                RejectCode.BAD_STATE, f"order {order.order_id} is {status}: cannot cancel"
            )
        for i, op in enumerate(order.operations):
            if op.status in FINISHED_OPS:
                continue
            if op.status == OperationStatus.RUNNING:
                release_work_center(view, decision, op.work_center, order.order_id, op.op_no)
            order = confirm(order, i, event, decision, final=False)  # what was made is confirmed
            order = order.with_op(i, order.operations[i].with_(status=OperationStatus.CANCELLED))
        order = order.with_(status=OrderStatus.CANCELLED, hold_reason=event.reason)
        if any(op.actual_start for op in order.operations):
            decision.notices.append(
                Notice("warning", None, f"started order {order.order_id} was cancelled")
            )
    elif action == OrderAction.CLOSE:
        if status == OrderStatus.CLOSED:
            return
        if status not in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
            raise Rejection(
                RejectCode.BAD_STATE, f"order {order.order_id} is {status}: cannot close"
            )
        order = order.with_(status=OrderStatus.CLOSED)
    decision.orders[order.order_id] = refresh_readiness(order.with_(updated_at=event.ts))
