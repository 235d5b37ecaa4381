"""Operator endpoints of a station tablet: queue, start/pause/resume/complete, reports,
downtime reasons, scans and operator login. Every write goes through the dispatcher as an event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import ValidationError

from drivers.mqtt.payloads import ScanMessage
from mes_edge.api.deps import ServiceDep, check_work_center, require
from mes_edge.api.schemas import (
    ActionOut,
    DowntimeOut,
    DowntimeReasonIn,
    LoginIn,
    OperationRefIn,
    OperatorOut,
    QueueItemOut,
    ReasonOut,
    ReportIn,
    ScanIn,
    StationOut,
    order_out,
)
from mes_edge.api.submit import submit
from mes_edge.config.settings import ReasonCode
from mes_edge.dispatcher import RawRejection, Status
from mes_edge.domain import (
    CountingSource,
    Downtime,
    DowntimeReasonGiven,
    Event,
    MemoryState,
    OperationAction,
    OperationCommand,
    OperationStatus,
    OrderStatus,
    QuantityReported,
    WorkOrder,
)
from mes_edge.rules import scan_event
from mes_edge.store.tokens import Principal, Role, check_pin, find_operator

router = APIRouter(prefix="/api/v1/stations", tags=["station tablets (operators)"])

OPEN_ORDERS = (OrderStatus.RELEASED, OrderStatus.IN_PROGRESS, OrderStatus.ON_HOLD)
#: Queue order on the tablet: what runs first, then what was paused, then what can start.
_QUEUE_RANK = {OperationStatus.RUNNING: 0, OperationStatus.PAUSED: 1, OperationStatus.READY: 2,
               OperationStatus.WAITING: 3}
_PIN_FAILURES_ALLOWED = 5
_PIN_WINDOW_S = 60.0

OperatorOrSupervisor = Annotated[Principal, Depends(require(Role.OPERATOR, Role.SUPERVISOR))]


# -- views (shared with the board and the live updates) --------------------------------------

def order_items(order: WorkOrder) -> list[QueueItemOut]:
    """Every operation of an order as a queue item."""
    public = order_out(order)
    return [QueueItemOut(
        order_id=order.order_id, op_no=o.op_no, work_center=o.work_center,
        description=o.description, material=order.material, unit=order.unit,
        order_status=order.status.value, status=o.status, counting=o.counting,
        planned_qty=o.planned_qty, good=o.good, scrap=o.scrap, scrap_by_reason=o.scrap_by_reason,
        rework=o.rework, available=o.available, due=order.due, actual_start=o.actual_start,
        last_report=op.last_report, projected_finish=o.projected_finish, personnel=op.personnel)
        for o, op in zip(public.operations, order.operations, strict=True)]


def open_items(state: MemoryState) -> list[QueueItemOut]:
    """Operations of open orders (released, in progress, on hold)."""
    items: list[QueueItemOut] = []
    for order in state.orders():
        if order.status in OPEN_ORDERS:
            items.extend(order_items(order))
    return items


def _queue_key(item: QueueItemOut) -> tuple[Any, ...]:
    rank = _QUEUE_RANK.get(OperationStatus(item.status), 9)
    due = item.due.timestamp() if item.due else float("inf")
    return rank, due, item.order_id, item.op_no


def queue_of(state: MemoryState, work_center: str) -> list[QueueItemOut]:
    """Running, paused, ready and waiting operations of open orders at one work center."""
    items = [i for i in open_items(state) if i.work_center == work_center
             and OperationStatus(i.status) in _QUEUE_RANK]
    return sorted(items, key=_queue_key)


def current_of(state: MemoryState, work_center: str) -> QueueItemOut | None:
    """The operation running on the work center, if any."""
    wc = state.work_center(work_center)
    if wc is None or not wc.running:
        return None
    order_id, op_no = wc.running[0]
    order = state.order(order_id)
    if order is None:
        return None
    return next((i for i in order_items(order) if i.op_no == op_no), None)


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


async def station_out(request: Request, work_center: str) -> StationOut:
    """Everything the tablet of one work center shows."""
    service = request.app.state.service
    state: MemoryState = service.dispatcher.state
    config = next(w for w in service.settings.work_centers if w.id == work_center)
    wc = state.work_center(work_center)
    production = service.settings.production
    return StationOut(
        work_center=work_center, name=config.name or work_center, counting=config.counting.value,
        machine_state=wc.machine_state.value if wc else "unknown", since=wc.since if wc else None,
        operator=await operator_of(request, work_center), current=current_of(state, work_center),
        queue=queue_of(state, work_center), downtimes=downtimes_of(state, work_center),
        scrap_reasons=_reasons(production.scrap_reasons),
        downtime_reasons=_reasons(production.downtime_reasons))


# -- auth for one station -----------------------------------------------------------------------

async def station_caller(work_center: str, principal: OperatorOrSupervisor,
                         service: ServiceDep) -> Principal:
    """Operator tokens only at their own work centers; supervisors and admins everywhere."""
    check_work_center(principal, work_center)
    if work_center not in service.rules.work_centers:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown work center {work_center}")
    return principal


StationCaller = Annotated[Principal, Depends(station_caller)]


def _envelope(service: Any, work_center: str, p: Principal,
              request: Request | None = None) -> dict[str, Any]:
    # A tablet that resends a tap after a network timeout sends the same Idempotency-Key:
    # the event id is derived from it, so the dispatcher counts the tap once.
    key = request.headers.get("idempotency-key", "") if request is not None else ""
    if 0 < len(key) <= 100 and key.isprintable():
        event_id = f"http:{work_center}:{key}"
    else:
        event_id = f"http:{uuid.uuid4()}"
    return {"event_id": event_id, "source": f"api:{p.role}:{p.token_id}",
            "actor": service.operators.of(work_center) or p.name}


async def _act(request: Request, work_center: str, event: Event) -> ActionOut:
    outcome = await submit(request.app.state.service, event)
    return ActionOut(outcome=outcome.status.value, event_id=outcome.event_id,
                     station=await station_out(request, work_center))


# -- reads ---------------------------------------------------------------------------------------

@router.get("/{work_center}", response_model=StationOut)
async def get_station(work_center: str, request: Request, caller: StationCaller) -> StationOut:
    """The station: machine state, operator, current operation, queue, downtimes, reasons."""
    return await station_out(request, work_center)


@router.get("/{work_center}/queue", response_model=list[QueueItemOut])
async def get_queue(work_center: str, service: ServiceDep,
                    caller: StationCaller) -> list[QueueItemOut]:
    """Running, paused, ready and waiting operations of open orders, with available quantity."""
    return queue_of(service.dispatcher.state, work_center)  # type: ignore[union-attr]


@router.get("/{work_center}/downtimes", response_model=list[DowntimeOut])
async def get_downtimes(work_center: str, service: ServiceDep,
                        caller: StationCaller) -> list[DowntimeOut]:
    """The open downtime and the recent ones (those without a reason still take one)."""
    return downtimes_of(service.dispatcher.state, work_center)  # type: ignore[union-attr]


# -- operation commands --------------------------------------------------------------------------

async def _command(request: Request, work_center: str, action: OperationAction,
                   body: OperationRefIn | None, caller: Principal) -> ActionOut:
    ref = body or OperationRefIn()
    service = request.app.state.service
    return await _act(request, work_center, OperationCommand(
        work_center=work_center, action=action, order_id=ref.order_id, op_no=ref.op_no,
        **_envelope(service, work_center, caller, request)))


@router.post("/{work_center}/start", response_model=ActionOut)
async def start(work_center: str, request: Request, caller: StationCaller,
                body: Annotated[OperationRefIn | None, Body()] = None) -> ActionOut:
    """Start an operation (a paused one resumes)."""
    return await _command(request, work_center, OperationAction.START, body, caller)


@router.post("/{work_center}/pause", response_model=ActionOut)
async def pause(work_center: str, request: Request, caller: StationCaller,
                body: Annotated[OperationRefIn | None, Body()] = None) -> ActionOut:
    """Pause the running operation (or the one named)."""
    return await _command(request, work_center, OperationAction.PAUSE, body, caller)


@router.post("/{work_center}/resume", response_model=ActionOut)
async def resume(work_center: str, request: Request, caller: StationCaller,
                 body: Annotated[OperationRefIn | None, Body()] = None) -> ActionOut:
    """Resume a paused operation."""
    return await _command(request, work_center, OperationAction.RESUME, body, caller)


@router.post("/{work_center}/complete", response_model=ActionOut)
async def complete(work_center: str, request: Request, caller: StationCaller,
                   body: Annotated[OperationRefIn | None, Body()] = None) -> ActionOut:
    """Complete the running operation (or the one named): the final confirmation follows."""
    return await _command(request, work_center, OperationAction.COMPLETE, body, caller)


@router.post("/{work_center}/report", response_model=ActionOut)
async def report(work_center: str, body: ReportIn, request: Request,
                 caller: StationCaller) -> ActionOut:
    """Report good / scrap (by configured reason code) / rework of an operator-counted operation."""
    service = request.app.state.service
    return await _act(request, work_center, QuantityReported(
        work_center=work_center, by=CountingSource.OPERATOR, good=body.good,
        scrap={r: q for r, q in body.scrap.items() if q}, rework=body.rework,
        order_id=body.order_id, op_no=body.op_no,
        **_envelope(service, work_center, caller, request)))


@router.post("/{work_center}/downtime-reason", response_model=ActionOut)
async def downtime_reason(work_center: str, body: DowntimeReasonIn, request: Request,
                          caller: StationCaller) -> ActionOut:
    """Give the reason of the open downtime (or of a recent one by id)."""
    service = request.app.state.service
    return await _act(request, work_center, DowntimeReasonGiven(
        work_center=work_center, reason=body.reason, downtime_id=body.downtime_id,
        **_envelope(service, work_center, caller, request)))


# -- scans and operator login -----------------------------------------------------------------

@router.post("/{work_center}/scan", response_model=ActionOut)
async def scan(work_center: str, body: ScanIn, request: Request,
               caller: StationCaller) -> ActionOut:
    """A barcode typed by the tablet's scanner: an operator badge logs in, an order/operation
    code starts it; unknown codes are refused and recorded (same parser as MQTT scans)."""
    service = request.app.state.service
    parsed = service.parser.parse(body.code)
    if parsed is not None and parsed.kind == "operator":
        await _login(request, work_center, parsed.fields.get("badge", body.code.strip()), None)
        return ActionOut(outcome="logged_in", event_id=None,
                         station=await station_out(request, work_center))
    try:
        msg = ScanMessage(id=f"api-{uuid.uuid4()}", code=body.code, scanner=body.scanner,
                          work_center=work_center)
    except ValidationError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "code"], "msg": "not a barcode"}]) from err
    item = scan_event(msg, f"api:{caller.role}:{caller.token_id}", service.parser,
                      service.operators)
    if isinstance(item, RawRejection):
        outcome = await service.dispatcher.process(item)  # recorded, then refused
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail={
            "code": outcome.code, "message": outcome.reason, "event_id": outcome.event_id})
    if item is None:
        return ActionOut(outcome=Status.UNCHANGED.value, event_id=None,
                         station=await station_out(request, work_center))
    if item.actor is None:
        item = dataclasses.replace(item, actor=caller.name)
    return await _act(request, work_center, item)


def _pin_failures(request: Request, work_center: str) -> deque[float]:
    failures: dict[str, deque[float]] = request.app.state.pin_failures
    recent = failures.setdefault(work_center, deque(maxlen=_PIN_FAILURES_ALLOWED))
    while recent and time.monotonic() - recent[0] > _PIN_WINDOW_S:
        recent.popleft()
    return recent


async def _login(request: Request, work_center: str, badge: str, pin: str | None) -> None:
    service = request.app.state.service
    failures = _pin_failures(request, work_center)
    if len(failures) >= _PIN_FAILURES_ALLOWED:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            "too many failed logins at this station: wait a minute")
    found = await find_operator(service.store, badge)
    ok = found is not None
    if ok and pin is not None:
        stored = found.get("pin_hash") if found else None
        # scrypt is deliberately slow: keep it off the event loop.
        ok = bool(stored) and await asyncio.to_thread(check_pin, pin, str(stored))
    if not ok or found is None:
        failures.append(time.monotonic())
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "unknown badge" if found is None else "wrong PIN")
    allowed = list(found.get("work_centers") or [])  # type: ignore[call-overload]
    if allowed and work_center not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"operator {badge} is not qualified for {work_center}")
    service.operators.login(work_center, badge)
    request.app.state.operator_names[badge] = str(found["name"])
    request.app.state.live.station_changed(work_center)


@router.post("/{work_center}/login", response_model=ActionOut,
             responses={401: {"description": "unknown badge or wrong PIN"},
                        429: {"description": "too many failed logins"}})
async def login(work_center: str, body: LoginIn, request: Request,
                caller: StationCaller) -> ActionOut:
    """Log an operator in at this station: a scanned badge, or badge + PIN typed by hand.
    Later events of this station carry the operator as their actor."""
    await _login(request, work_center, body.badge.strip(), body.pin)
    return ActionOut(outcome="logged_in", event_id=None,
                     station=await station_out(request, work_center))


@router.post("/{work_center}/logout", response_model=ActionOut)
async def logout(work_center: str, request: Request, caller: StationCaller) -> ActionOut:
    """Log the operator out of this station."""
    request.app.state.service.operators.logout(work_center)
    request.app.state.live.station_changed(work_center)
    return ActionOut(outcome="logged_out", event_id=None,
                     station=await station_out(request, work_center))
