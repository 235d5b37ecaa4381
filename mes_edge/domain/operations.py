"""Operation rules: start / pause / resume / complete, quantity reports, timed confirmations."""

from __future__ import annotations

from mes_edge.domain.confirming import confirm
from mes_edge.domain.events import (
    ConfirmationsDue,
    Event,
    OperationAction,
    OperationCommand,
    QuantityReported,
)
from mes_edge.domain.model import (
    CountingSource,
    OperationStatus,
    OrderStatus,
    Quantities,
    WorkOrder,
)
from mes_edge.domain.plant import Decision, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.sequence import (
    ACTIVE,
    FINISHED_OPS,
    check_operation,
    flag_excess,
    refresh_readiness,
    with_tolerance,
)
from mes_edge.domain.unassigned import auto_assign, record_unassigned
from mes_edge.domain.workcenters import (
    end_pause_downtime,
    known_work_center,
    occupy_work_center,
    pause_downtime,
    release_work_center,
    running_on,
)


def _locate(
    view: StateView, decision: Decision, work_center: str, order_id: str | None, op_no: str | None
) -> tuple[WorkOrder, int]:
    """Find the operation an event means: the one named, or the one running on the WC."""
    if order_id is None or op_no is None:
        if order_id is not None or op_no is not None:
            raise Rejection(RejectCode.INVALID, "give both order and operation, or neither")
        running = running_on(view, decision, work_center)
        if running is None:
            raise Rejection(
                RejectCode.NO_RUNNING_OPERATION, f"no operation is running on {work_center}"
            )
        order_id, op_no = running
    order = decision.orders.get(order_id) or view.order(order_id)
    if order is None:
        raise Rejection(RejectCode.UNKNOWN_ORDER, f"unknown order {order_id!r}")
    index = order.index_of(op_no)
    if index is None:
        raise Rejection(
            RejectCode.UNKNOWN_OPERATION, f"order {order_id} has no operation {op_no!r}"
        )
    op = order.operations[index]
    if op.work_center != work_center:
        raise Rejection(
            RejectCode.WRONG_WORK_CENTER,
            f"operation {order_id}/{op_no} belongs to {op.work_center}, not {work_center}",
        )
    return order, index


def _paused_on(view: StateView, decision: Decision, work_center: str) -> tuple[WorkOrder, int]:
    """The operation paused on a work center, for a resume that names none."""
    found = []
    for listed in view.orders():
        order = decision.orders.get(listed.order_id, listed)
        for i, op in enumerate(order.operations):
            if op.work_center == work_center and op.status == OperationStatus.PAUSED:
                found.append((order, i))
    if not found:
        raise Rejection(RejectCode.NO_RUNNING_OPERATION,
                        f"no operation is paused on {work_center}: name the one to resume")
    if len(found) > 1:
        names = ", ".join(f"{o.order_id}/{o.operations[i].op_no}" for o, i in found[:5])
        raise Rejection(RejectCode.INVALID,
                        f"{len(found)} operations are paused on {work_center} ({names}): "
                        "name the one to resume")
    return found[0]


def _require_active(order: WorkOrder) -> None:
    if order.status in ACTIVE:
        return
    if order.status == OrderStatus.ON_HOLD:
        raise Rejection(
            RejectCode.ORDER_NOT_ACTIVE,
            f"order {order.order_id} is on hold: {order.hold_reason or 'no reason given'}",
        )
    raise Rejection(RejectCode.ORDER_NOT_ACTIVE, f"order {order.order_id} is {order.status}")


def _finish_order_if_done(order: WorkOrder, event: Event) -> WorkOrder:
    if all(op.status in FINISHED_OPS for op in order.operations):
        return order.with_(status=OrderStatus.COMPLETED, actual_end=event.ts)
    return order


def _complete(
    view: StateView, order: WorkOrder, index: int, event: Event, decision: Decision
) -> WorkOrder:
    op = order.operations[index]
    for prev in order.operations[:index]:
        if prev.status not in FINISHED_OPS:
            raise Rejection(
                RejectCode.SEQUENCE,
                f"operation {op.op_no} cannot complete before operation {prev.op_no} is completed",
            )
    if op.status == OperationStatus.RUNNING:
        release_work_center(view, decision, op.work_center, order.order_id, op.op_no)
    order = order.with_op(
        index,
        op.with_(
            status=OperationStatus.COMPLETED,
            actual_end=event.ts,
            actual_start=op.actual_start or event.ts,
        ),
    )
    order = confirm(order, index, event, decision, final=True)
    return _finish_order_if_done(order, event)


def command_operation(
    view: StateView, rules: PlantRules, event: OperationCommand, decision: Decision
) -> None:
    """Start, pause, resume or complete an operation."""
    known_work_center(rules, event.work_center)
    if (event.action == OperationAction.RESUME and event.order_id is None
            and event.op_no is None and running_on(view, decision, event.work_center) is None):
        order, index = _paused_on(view, decision, event.work_center)
    else:
        order, index = _locate(view, decision, event.work_center, event.order_id, event.op_no)
    _require_active(order)
    op = order.operations[index]
    action = event.action
    if action == OperationAction.START and op.status == OperationStatus.PAUSED:
        action = OperationAction.RESUME
    if action in (OperationAction.START, OperationAction.RESUME):
        expected = (
            (OperationStatus.READY, OperationStatus.WAITING)
            if action == OperationAction.START
            else (OperationStatus.PAUSED,)
        )
        if op.status not in expected:
            raise Rejection(
                RejectCode.BAD_STATE,
                f"operation {order.order_id}/{op.op_no} is {op.status}: cannot {action}",
            )
        # The sequence rule is checked when an operation starts (and on every report); a
        # paused operation that already started may always resume.
        if action == OperationAction.START and index > 0 and order.available(index) <= 0:
            prev = order.operations[index - 1]
            handed = order.handed_over(index)
            raise Rejection(
                RejectCode.SEQUENCE,
                f"operation {op.op_no} cannot start: operation {prev.op_no} has handed nothing "
                "over yet" if handed <= 0 else
                f"operation {op.op_no} cannot start: it has already processed all "
                f"{handed} unit(s) operation {prev.op_no} handed over - wait for more",
            )
        occupy_work_center(view, decision, event.work_center, order.order_id, op.op_no)
        op = op.with_(
            status=OperationStatus.RUNNING,
            actual_start=op.actual_start or event.ts,
            personnel=event.actor or op.personnel,
        )
        order = order.with_op(index, op)
        if order.status == OrderStatus.RELEASED:
            order = order.with_(status=OrderStatus.IN_PROGRESS, actual_start=event.ts)
        end_pause_downtime(view, rules, decision, event)
        if op.counting == CountingSource.MACHINE:
            order = auto_assign(view, rules, order, index, event, decision)
    elif action == OperationAction.PAUSE:
        if op.status != OperationStatus.RUNNING:
            raise Rejection(
                RejectCode.BAD_STATE,
                f"operation {order.order_id}/{op.op_no} is {op.status}: cannot pause",
            )
        release_work_center(view, decision, event.work_center, order.order_id, op.op_no)
        order = order.with_op(index, op.with_(status=OperationStatus.PAUSED))
        pause_downtime(view, rules, decision, event)
    else:  # COMPLETE
        if op.status not in (OperationStatus.RUNNING, OperationStatus.PAUSED):
            raise Rejection(
                RejectCode.BAD_STATE,
                f"operation {order.order_id}/{op.op_no} is {op.status}: cannot complete",
            )
        order = _complete(view, order, index, event, decision)
        end_pause_downtime(view, rules, decision, event)
    decision.orders[order.order_id] = refresh_readiness(order)


def _quantities(event: QuantityReported, rules: PlantRules) -> Quantities:
    """The report's quantities, checked (an absurd machine count is not refused here)."""
    if not event.scrap and not event.rework and 0 < event.good <= rules.max_quantity_per_event:
        return Quantities(good=event.good)  # the usual machine count: nothing else to check
    values = [event.good, event.rework, *event.scrap.values()]
    if any(v < 0 for v in values):
        raise Rejection(RejectCode.INVALID, "quantities cannot be negative")
    if sum(values) == 0:
        raise Rejection(RejectCode.INVALID, "nothing to report: all quantities are zero")
    if sum(values) > rules.max_quantity_per_event and event.by == CountingSource.OPERATOR:
        raise Rejection(
            RejectCode.ABSURD_QUANTITY,
            f"{sum(values)} units in one report is more than the plant's limit "
            f"of {rules.max_quantity_per_event}",
        )
    # Summed, not overwritten: "" and the machine reason name the same bucket.
    scrap: dict[str, int] = {}
    for reason, qty in event.scrap.items():
        if qty:
            key = reason or rules.machine_scrap_reason
            scrap[key] = scrap.get(key, 0) + qty
    if event.by == CountingSource.OPERATOR and rules.scrap_reasons:
        unknown = sorted(set(scrap) - rules.scrap_reasons)
        if unknown:
            raise Rejection(RejectCode.UNKNOWN_REASON, f"unknown scrap reason {unknown[0]!r}")
    return Quantities(good=event.good, scrap=scrap, rework=event.rework)


def _machine_target(
    view: StateView, rules: PlantRules, event: QuantityReported, decision: Decision,
    qty: Quantities,
) -> tuple[WorkOrder, int] | None:
    """The running operation a machine count belongs to; None when it went to unassigned."""
    if event.unassigned_reason:
        record_unassigned(view, event, decision, qty, event.unassigned_reason,
                          "a counter jump larger than the rule's max_delta: check it"
                          if event.unassigned_reason == "counter_jump"
                          else event.unassigned_reason)
        return None
    if qty.processed > rules.max_quantity_per_event:
        record_unassigned(view, event, decision, qty, "absurd_quantity",
                          f"more than the plant's limit of {rules.max_quantity_per_event} "
                          "in one count: check it")
        return None
    try:
        order, index = _locate(view, decision, event.work_center, event.order_id, event.op_no)
        _require_active(order)
        op = order.operations[index]
        if op.counting != CountingSource.MACHINE:
            raise Rejection(RejectCode.COUNTING_SOURCE,
                            f"operation {order.order_id}/{op.op_no} is counted by the operator")
        if op.status != OperationStatus.RUNNING:
            raise Rejection(RejectCode.BAD_STATE,
                            f"operation {order.order_id}/{op.op_no} is {op.status}")
    except Rejection as why:
        record_unassigned(view, event, decision, qty, why.code.value, why.message)
        return None
    return order, index


def report_quantity(
    view: StateView, rules: PlantRules, event: QuantityReported, decision: Decision
) -> None:
    """Add a report to the operation's WIP.

    An operator's report that breaks a rule (source, sequence, tolerance) is refused at once, so
    the operator sees why. A machine count is a fact and is always recorded: with no operation
    to take it, it becomes unassigned production of the work center; beyond plan + tolerance
    or beyond what the predecessor handed over it is accepted and flagged (or, with the plant's
    hold policy, the excess waits as unassigned production for a supervisor).
    """
    known_work_center(rules, event.work_center)
    qty = _quantities(event, rules)
    if event.by == CountingSource.MACHINE:
        target = _machine_target(view, rules, event, decision, qty)
        if target is None:
            return
        order, index = target
        op = order.operations[index]
        if rules.over_production_hold:
            limit = with_tolerance(op.planned_qty, order.tolerance_pct)
            held = min(qty.good, max(0, op.done.good + qty.good - limit))
            if held:
                record_unassigned(view, event, decision, Quantities(good=held),
                                  "over_production",
                                  f"beyond planned {op.planned_qty} + tolerance of "
                                  f"{order.order_id}/{op.op_no}; plant policy: held")
                qty = Quantities(good=qty.good - held, scrap=qty.scrap, rework=qty.rework)
                if qty.is_zero:
                    return
    else:
        order, index = _locate(view, decision, event.work_center, event.order_id, event.op_no)
        _require_active(order)
        op = order.operations[index]
        if op.counting != event.by:
            raise Rejection(
                RejectCode.COUNTING_SOURCE,
                f"operation {order.order_id}/{op.op_no} is counted by the {op.counting}; "
                f"{event.by} reports are not accepted",
            )
        if op.status not in (OperationStatus.RUNNING, OperationStatus.PAUSED):
            raise Rejection(
                RejectCode.BAD_STATE,
                f"operation {order.order_id}/{op.op_no} is {op.status}: cannot report",
            )
    before = op
    op = op.with_(
        done=op.done.plus(qty),
        unconfirmed=op.unconfirmed.plus(qty),
        last_report=event.ts,
        personnel=event.actor or op.personnel,
    )
    order = order.with_op(index, op, updated_at=event.ts)
    if event.by == CountingSource.MACHINE:
        order = flag_excess(order, index, before, decision, rules)
        op = order.operations[index]
    else:
        check_operation(order, index)
    policy = order.policy
    if event.by == CountingSource.OPERATOR and policy.on_report:
        order = confirm(order, index, event, decision, final=False)
    elif policy.every_units and op.unconfirmed.processed >= policy.every_units:
        order = confirm(order, index, event, decision, final=False)
    if (
        order.auto_complete
        and op.done.good >= op.planned_qty
        and all(p.status in FINISHED_OPS for p in order.operations[:index])
    ):
        order = _complete(view, order, index, event, decision)
    decision.orders[order.order_id] = refresh_readiness(order)


def confirmations_due(
    view: StateView, rules: PlantRules, event: ConfirmationsDue, decision: Decision
) -> None:
    """Confirm machine-counted quantities older than the policy's every_seconds."""
    for order in list(view.orders()):
        seconds = order.policy.every_seconds
        if order.status not in (*ACTIVE, OrderStatus.ON_HOLD) or not (seconds or event.force):
            continue
        changed = order
        for i, op in enumerate(order.operations):
            if op.unconfirmed.is_zero:
                continue
            since = op.last_confirmed_at or op.actual_start
            if event.force or since is None or (event.ts - since).total_seconds() >= (seconds or 0):
                changed = confirm(changed, i, event, decision, final=False)
        if changed is not order:
            decision.orders[order.order_id] = changed
