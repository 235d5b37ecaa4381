"""Confirmations: turning reported quantities into ERP confirmations, and reversing them."""

from __future__ import annotations

import uuid
from datetime import date, datetime, tzinfo

from mes_edge.domain.events import ConfirmationReversed, Event
from mes_edge.domain.model import ZERO, OperationStatus, OrderStatus, WorkOrder
from mes_edge.domain.plant import Confirmation, Decision, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.sequence import check_chain, refresh_readiness

# Confirmation ids are derived from the event that caused them, so a replay of the event log
# produces the very same ids the ERP already has.
_NAMESPACE = uuid.UUID("5b0c7f1e-3c55-4a53-9a0e-6d1f4f2a9c11")


def confirmation_id(event_id: str, order_id: str, op_no: str, kind: str) -> str:
    """Deterministic UUID of the confirmation `kind` an event causes for one operation."""
    return str(uuid.uuid5(_NAMESPACE, f"{event_id}\x1f{order_id}\x1f{op_no}\x1f{kind}"))


def posting_date(ts: datetime, zone: tzinfo | None) -> date:
    """The plant's local date of an instant (the host's zone when the plant names none)."""
    return ts.astimezone(zone).date()


def confirm(
    order: WorkOrder, index: int, event: Event, decision: Decision, *, final: bool
) -> WorkOrder:
    """Confirm what operation `index` reported since its last confirmation.

    Nothing happens when there is nothing to confirm, except for a final confirmation, which
    the ERP needs even with zero quantities (it closes the operation there).
    """
    op = order.operations[index]
    qty = op.unconfirmed
    if qty.is_zero and not final:
        return order
    cid = confirmation_id(event.event_id, order.order_id, op.op_no, "final" if final else "partial")
    decision.confirmations.append(
        Confirmation(
            confirmation_id=cid,
            order_id=order.order_id,
            op_no=op.op_no,
            work_center=op.work_center,
            quantities=qty,
            unit=order.unit,
            final=final,
            actual_start=op.actual_start,
            actual_end=event.ts,
            posting_date=posting_date(event.ts, decision.timezone),
            personnel=event.actor or op.personnel,
            event_id=event.event_id,
            created_at=event.ts,
        )
    )
    return order.with_op(index, op.with_(unconfirmed=ZERO, last_confirmed_at=event.ts))


def reverse(
    view: StateView, rules: PlantRules, event: ConfirmationReversed, decision: Decision
) -> None:
    """Reverse a confirmation: take its quantities back out of the operation's WIP."""
    original = view.confirmation(event.confirmation_id)
    if original is None or original.order_id != event.order_id:
        raise Rejection(
            RejectCode.NOT_REVERSIBLE,
            f"confirmation {event.confirmation_id} of order {event.order_id} not found",
        )
    if original.reverses is not None:
        raise Rejection(RejectCode.NOT_REVERSIBLE, "a reversal cannot be reversed; report again")
    if view.reversal_of(original.confirmation_id) is not None:
        raise Rejection(
            RejectCode.NOT_REVERSIBLE,
            f"confirmation {original.confirmation_id} is already reversed",
        )
    order = view.order(original.order_id)
    assert order is not None  # a confirmation always belongs to a known order
    if order.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
        raise Rejection(RejectCode.ORDER_NOT_ACTIVE, f"order {order.order_id} is {order.status}")
    index = order.index_of(original.op_no)
    assert index is not None
    op = order.operations[index]
    done = op.done.plus(original.quantities, -1)
    if done.good < 0 or done.rework < 0 or any(q < 0 for q in done.scrap.values()):
        raise Rejection(RejectCode.NOT_REVERSIBLE, "the reversal would make quantities negative")
    op = op.with_(done=done)
    if original.final and op.status == OperationStatus.COMPLETED:
        op = op.with_(status=OperationStatus.PAUSED, actual_end=None)  # reopened, as in SAP
    order = order.with_op(index, op)
    check_chain(order, rules)
    if order.status == OrderStatus.COMPLETED and op.status != OperationStatus.COMPLETED:
        order = order.with_(status=OrderStatus.IN_PROGRESS, actual_end=None)
    # Taking good back may leave the successor with nothing handed over: it is waiting
    # again, not ready.
    decision.orders[order.order_id] = refresh_readiness(order)
    decision.confirmations.append(
        Confirmation(
            confirmation_id=confirmation_id(event.event_id, order.order_id, op.op_no, "reversal"),
            order_id=order.order_id,
            op_no=op.op_no,
            work_center=op.work_center,
            quantities=original.quantities,
            unit=order.unit,
            final=False,
            actual_start=original.actual_start,
            actual_end=original.actual_end,
            posting_date=posting_date(event.ts, decision.timezone),
            personnel=event.actor,
            event_id=event.event_id,
            created_at=event.ts,
            reverses=original.confirmation_id,
            reason=event.reason,
        )
    )
