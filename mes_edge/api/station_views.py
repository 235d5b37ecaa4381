"""Views of the committed state for station tablets, the supervisor board and live updates.

Read-only: built from the dispatcher's in-memory state (and the operator names of the store),
never from SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from mes_edge.api.schemas import (
    DowntimeOut,
    OperatorOut,
    ReasonOut,
    StationItemOut,
    StationView,
    UnassignedOut,
    order_out,
)
from mes_edge.config.settings import ReasonCode
from mes_edge.domain import (
    Downtime,
    DowntimeReasonGiven,
    Event,
    MemoryState,
    OperationCommand,
    QuantityReported,
    WorkOrder,
)
from mes_edge.domain.sequence import with_tolerance
from mes_edge.store.tokens import find_operator

#: The station view shows this many queue items with the queue's length (`queue_total`); the
#: queue endpoint pages through all, and so does the tablet.
STATION_QUEUE_SHOWN = 50


def order_items(order: WorkOrder) -> list[StationItemOut]:
    """Every operation of an order as a queue item."""
    public = order_out(order)
    return [StationItemOut(
        order_id=order.order_id, op_no=o.op_no, work_center=o.work_center,
        description=o.description, material=order.material, unit=order.unit,
        order_status=order.status.value, status=o.status, counting=o.counting,
        planned_qty=o.planned_qty, good=o.good, scrap=o.scrap, scrap_by_reason=o.scrap_by_reason,
        rework=o.rework, available=o.available, due=order.due, actual_start=o.actual_start,
        last_report=op.last_report, projected_finish=o.projected_finish, personnel=op.personnel,
        # getattr: the flags come with the domain's machine-count policy (issue 9).
        over_produced=getattr(op, "over_produced", 0) or 0,
        beyond_handover=getattr(op, "beyond_handover", 0) or 0)
        for o, op in zip(public.operations, order.operations, strict=True)]


def item_of(state: MemoryState, order_id: str, op_no: str) -> StationItemOut | None:
    """One operation of an order as a queue item."""
    order = state.order(order_id)
    if order is None:
        return None
    return next((i for i in order_items(order) if i.op_no == op_no), None)


def items_of(state: MemoryState, keys: list[tuple[str, str]]) -> list[StationItemOut]:
    """Queue items of (order_id, op_no) keys, in the given order (an order is viewed once)."""
    by_order: dict[str, dict[str, StationItemOut]] = {}
    out = []
    for order_id, op_no in keys:
        if order_id not in by_order:
            order = state.order(order_id)
            by_order[order_id] = {i.op_no: i for i in order_items(order)} if order else {}
        item = by_order[order_id].get(op_no)
        if item is not None:
            out.append(item)
    return out


def queue_page(state: MemoryState, work_center: str, offset: int = 0,
               limit: int = STATION_QUEUE_SHOWN) -> tuple[int, list[StationItemOut]]:
    """(queue length, one page) of the running, paused, ready and waiting operations of open
    orders at one work center, in queue order (index: no scan of all orders)."""
    total, keys = state.index.queue_page(work_center, offset, limit)
    return total, items_of(state, keys)


def current_of(state: MemoryState, work_center: str) -> StationItemOut | None:
    """The operation running on the work center, if any."""
    wc = state.work_center(work_center)
    if wc is None or not wc.running:
        return None
    order_id, op_no = wc.running[0]
    return item_of(state, order_id, op_no)


def downtime_out(d: Downtime) -> DowntimeOut:
    """The public view of a downtime."""
    return DowntimeOut(downtime_id=d.downtime_id, work_center=d.work_center, state=d.state.value,
                       start=d.start, end=d.end, reason=d.reason, reason_by=d.reason_by,
                       open=d.end is None)


def downtimes_of(state: MemoryState, work_center: str) -> list[DowntimeOut]:
    """The open downtime first, then the recent closed ones, newest first."""
    wc = state.work_center(work_center)
    if wc is None:
        return []
    found = ([wc.downtime] if wc.downtime else []) + list(reversed(wc.recent_downtimes))
    return [downtime_out(d) for d in found]


def _reasons(codes: list[ReasonCode]) -> list[ReasonOut]:
    return [ReasonOut(code=r.code, text=dict(r.text)) for r in codes]


async def operator_of(request: Request, work_center: str) -> OperatorOut | None:
    """Who is logged in at the station (name looked up once per badge)."""
    service = request.app.state.service
    badge = service.operators.of(work_center)
    if badge is None:
        return None
    names: dict[str, str] = request.app.state.operator_names
    if badge not in names:
        found = await find_operator(service.store, badge)
        names[badge] = str(found["name"]) if found else badge
    return OperatorOut(badge=badge, name=names[badge])


def unassigned_of(state: MemoryState, work_center: str) -> UnassignedOut | None:
    """What the machines of the work center counted while no operation took it (or None)."""
    wc = state.work_center(work_center)
    open_qty = getattr(wc, "unassigned", None)
    if open_qty is None or open_qty.is_zero:
        return None
    return UnassignedOut(good=open_qty.good, scrap=dict(open_qty.scrap), rework=open_qty.rework,
                         since=getattr(wc, "unassigned_since", None),
                         last=getattr(wc, "unassigned_last", None))


def _scrap_reasons_at(service: Any, config: Any) -> list[ReasonOut]:
    # The plant's reasons, limited to (and in the order of) the work center's list when set.
    reasons = service.settings.production.scrap_reasons
    if config.scrap_reasons is not None:
        by_code = {r.code: r for r in reasons}
        reasons = [by_code[c] for c in config.scrap_reasons if c in by_code]
    return _reasons(reasons)


async def station_out(request: Request, work_center: str) -> StationView:
    """Everything the tablet of one work center shows."""
    service = request.app.state.service
    state: MemoryState = service.dispatcher.state
    config = next(w for w in service.settings.work_centers if w.id == work_center)
    wc = state.work_center(work_center)
    queue_total, queue = queue_page(state, work_center)
    return StationView(
        work_center=work_center, name=config.name or work_center, counting=config.counting.value,
        machine_state=wc.machine_state.value if wc else "unknown", since=wc.since if wc else None,
        operator=await operator_of(request, work_center), current=current_of(state, work_center),
        queue=queue, queue_total=queue_total, downtimes=downtimes_of(state, work_center),
        scrap_reasons=_scrap_reasons_at(service, config),
        downtime_reasons=_reasons(service.settings.production.downtime_reasons),
        micro_stop_s=config.micro_stop_s, server_time=datetime.now(UTC),
        unassigned=unassigned_of(state, work_center))


def refusal_details(service: Any, work_center: str, event: Event) -> dict[str, Any]:
    """The numbers behind a refusal, so the tablet can say in the operator's language what is
    true and what to do (the domain's message stays the developer's wording)."""
    state: MemoryState = service.dispatcher.state
    out: dict[str, Any] = {"work_center": work_center,
                           "max_quantity": service.settings.production.max_quantity_per_event}
    running = current_of(state, work_center)
    if running is not None:
        out["running"] = f"{running.order_id} / {running.op_no}"
    order_id, op_no = getattr(event, "order_id", None), getattr(event, "op_no", None)
    if order_id is None and running is not None:
        order_id, op_no = running.order_id, running.op_no
    order = state.order(order_id) if order_id else None
    index = order.index_of(op_no) if order is not None and op_no else None
    if order is not None:
        out.update(order_id=order.order_id, order_status=order.status.value)
    if order is not None and index is not None:
        op = order.operations[index]
        tolerance = order.tolerance_pct
        limit = with_tolerance(op.planned_qty, tolerance)
        handed = order.handed_over(index)
        handed_limit = with_tolerance(handed, tolerance) if index else handed
        out.update(op_no=op.op_no, status=op.status.value, counting=op.counting.value,
                   op_work_center=op.work_center, planned=op.planned_qty, good=op.done.good,
                   processed=op.done.processed, tolerance_pct=tolerance, limit=limit,
                   room_good=max(0, limit - op.done.good), handed_over=handed,
                   room=max(0, handed_limit - op.done.processed),
                   available=order.available(index))
    if isinstance(event, QuantityReported):
        out.update(reported_good=event.good, reported_scrap=sum(event.scrap.values()),
                   reported_rework=event.rework)
        unknown = [r for r in event.scrap if r not in
                   {c.code for c in service.settings.production.scrap_reasons}]
        if unknown:
            out["reason"] = unknown[0]
    elif isinstance(event, OperationCommand):
        out["action"] = event.action.value
    elif isinstance(event, DowntimeReasonGiven):
        out["reason"] = event.reason
    return out
