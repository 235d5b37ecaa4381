"""Domain objects <-> JSON-able rows (pydantic TypeAdapters over the frozen dataclasses)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mes_edge.domain import Confirmation, Downtime, WorkCenterState, WorkOrder

_order = TypeAdapter(WorkOrder)
_wc = TypeAdapter(WorkCenterState)
_conf = TypeAdapter(Confirmation)


def order_to_json(order: WorkOrder) -> dict[str, Any]:
    """The whole order as JSON (the `state` column)."""
    data: dict[str, Any] = _order.dump_python(order, mode="json")
    return data


def order_from_json(data: dict[str, Any]) -> WorkOrder:
    """Read back an order written by order_to_json."""
    return _order.validate_python(data)


def wc_to_json(wc: WorkCenterState) -> dict[str, Any]:
    """A work center's state as JSON."""
    data: dict[str, Any] = _wc.dump_python(wc, mode="json")
    return data


def wc_from_json(data: dict[str, Any]) -> WorkCenterState:
    """Read back a work center's state."""
    return _wc.validate_python(data)


def order_row(order: WorkOrder, seq: int) -> dict[str, Any]:
    """The work_orders row of an order."""
    return {
        "order_id": order.order_id, "revision": order.revision, "status": order.status.value,
        "material": order.material, "quantity": order.quantity, "unit": order.unit,
        "demand_type": order.demand_type.value, "sales_order": order.sales_order,
        "customer": order.customer, "due": order.due, "hold_reason": order.hold_reason,
        "actual_start": order.actual_start, "actual_end": order.actual_end,
        "updated_at": order.updated_at, "updated_seq": seq, "state": order_to_json(order),
    }


def operation_rows(order: WorkOrder, seq: int) -> list[dict[str, Any]]:
    """The operations rows of an order."""
    return [
        {
            "order_id": order.order_id, "op_no": op.op_no, "work_center": op.work_center,
            "status": op.status.value, "counting": op.counting.value,
            "planned_qty": op.planned_qty, "good": op.done.good, "scrap": op.done.scrap_total,
            "rework": op.done.rework, "scrap_by_reason": dict(op.done.scrap),
            "actual_start": op.actual_start, "actual_end": op.actual_end, "updated_seq": seq,
        }
        for op in order.operations
    ]


def wc_row(wc: WorkCenterState, seq: int) -> dict[str, Any]:
    """The work_centers row."""
    return {"work_center": wc.work_center, "machine_state": wc.machine_state.value,
            "since": wc.since, "updated_seq": seq, "state": wc_to_json(wc)}


def downtime_row(d: Downtime, seq: int) -> dict[str, Any]:
    """The downtimes row."""
    return {"downtime_id": d.downtime_id, "work_center": d.work_center, "state": d.state.value,
            "start": d.start, "end": d.end, "reason": d.reason, "reason_by": d.reason_by,
            "updated_seq": seq}


def confirmation_to_json(c: Confirmation) -> dict[str, Any]:
    """A whole confirmation as JSON (WIP snapshots)."""
    data: dict[str, Any] = _conf.dump_python(c, mode="json")
    return data


def confirmation_from_json(data: dict[str, Any]) -> Confirmation:
    """Read back a confirmation written by confirmation_to_json."""
    return _conf.validate_python(data)


def confirmation_row(c: Confirmation, cursor: int, committed_at: Any) -> dict[str, Any]:
    """The confirmations (outbox) row."""
    q = c.quantities
    return {
        "cursor": cursor, "confirmation_id": c.confirmation_id, "order_id": c.order_id,
        "op_no": c.op_no, "work_center": c.work_center, "yield_qty": q.good,
        "scrap_qty": q.scrap_total, "rework_qty": q.rework, "scrap_reasons": dict(q.scrap),
        "unit": c.unit, "final": c.final, "actual_start": c.actual_start,
        "actual_end": c.actual_end, "posting_date": c.posting_date, "personnel": c.personnel,
        "reverses": c.reverses, "reason": c.reason, "event_id": c.event_id,
        "created_at": c.created_at, "committed_at": committed_at,
    }


def confirmation_from_row(r: Any) -> Confirmation:
    """A Confirmation from a confirmations row."""
    from mes_edge.domain import Quantities

    return Confirmation(
        confirmation_id=r.confirmation_id, order_id=r.order_id, op_no=r.op_no,
        work_center=r.work_center,
        quantities=Quantities(good=r.yield_qty, scrap=dict(r.scrap_reasons), rework=r.rework_qty),
        unit=r.unit, final=r.final, actual_start=r.actual_start, actual_end=r.actual_end,
        posting_date=r.posting_date, personnel=r.personnel, event_id=r.event_id,
        created_at=r.created_at, reverses=r.reverses, reason=r.reason,
    )
