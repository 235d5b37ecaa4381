"""Operator endpoints of a station tablet: queue, start/pause/resume/complete, reports,
downtime reasons, scans and operator login. Every write goes through the dispatcher as an event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, ValidationError

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
from mes_edge.api.submit import process, submit
from mes_edge.config.settings import ReasonCode
from mes_edge.contracts.terminal import ScanMessage
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
from mes_edge.domain.sequence import with_tolerance
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

class StationItemOut(QueueItemOut):
    """A queue item with the machine counts the routing did not plan for (accepted, flagged)."""

    over_produced: int = Field(0, description="machine good beyond planned + tolerance")
    beyond_handover: int = Field(0, description="processed beyond what the predecessor handed over")


class UnassignedOut(BaseModel):
    """Open unassigned production of a work center: counted while no operation ran."""

    good: int
    scrap: dict[str, int]
    rework: int
    since: datetime | None
    last: datetime | None


class StationView(StationOut):
    """Everything a station tablet shows, with the work center's own rules."""

    current: StationItemOut | None = Field(description="the operation running on the work center")
    queue: list[StationItemOut] = Field(  # type: ignore[assignment]  # pydantic narrows it
        description="running, paused, ready, waiting operations")
    micro_stop_s: float = Field(description="stops shorter than this ask for no reason")
    server_time: datetime = Field(description="the server's clock, to age open downtimes")
    unassigned: UnassignedOut | None = Field(description="machine counts no operation took")


class StationActionOut(ActionOut):
    """What a station write did, and the station afterwards."""

    station: StationView


class PauseIn(OperationRefIn):
    """Pause the running operation (or the one named), with the reason of the stop."""

    reason: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="downtime reason code; an operator-counted work center records it")


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


def open_items(state: MemoryState) -> list[StationItemOut]:
    """Operations of open orders (released, in progress, on hold)."""
    items: list[StationItemOut] = []
    for order in state.orders():
        if order.status in OPEN_ORDERS:
            items.extend(order_items(order))
    return items


def _queue_key(item: QueueItemOut) -> tuple[Any, ...]:
    rank = _QUEUE_RANK.get(OperationStatus(item.status), 9)
    due = item.due.timestamp() if item.due else float("inf")
    return rank, due, item.order_id, item.op_no


def queue_of(state: MemoryState, work_center: str) -> list[StationItemOut]:
    """Running, paused, ready and waiting operations of open orders at one work center."""
    items = [i for i in open_items(state) if i.work_center == work_center
             and OperationStatus(i.status) in _QUEUE_RANK]
    return sorted(items, key=_queue_key)


def current_of(state: MemoryState, work_center: str) -> StationItemOut | None:
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
    return StationView(
        work_center=work_center, name=config.name or work_center, counting=config.counting.value,
        machine_state=wc.machine_state.value if wc else "unknown", since=wc.since if wc else None,
        operator=await operator_of(request, work_center), current=current_of(state, work_center),
        queue=queue_of(state, work_center), downtimes=downtimes_of(state, work_center),
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


async def _act(request: Request, work_center: str, event: Event) -> StationActionOut:
    service = request.app.state.service
    try:
        outcome = await submit(service, event)
    except HTTPException as err:
        if isinstance(err.detail, dict) and err.detail.get("code"):
            err.detail["details"] = refusal_details(service, work_center, event)
        raise
    return StationActionOut(outcome=outcome.status.value, event_id=outcome.event_id,
                            station=await station_out(request, work_center))


# -- reads ---------------------------------------------------------------------------------------

@router.get("/{work_center}", response_model=StationView)
async def get_station(work_center: str, request: Request, caller: StationCaller) -> StationView:
    """The station: machine state, operator, current operation, queue, downtimes, reasons."""
    return await station_out(request, work_center)


@router.get("/{work_center}/queue", response_model=list[StationItemOut])
async def get_queue(work_center: str, service: ServiceDep,
                    caller: StationCaller) -> list[StationItemOut]:
    """Running, paused, ready and waiting operations of open orders, with available quantity."""
    return queue_of(service.dispatcher.state, work_center)  # type: ignore[union-attr]


@router.get("/{work_center}/downtimes", response_model=list[DowntimeOut])
async def get_downtimes(work_center: str, service: ServiceDep,
                        caller: StationCaller) -> list[DowntimeOut]:
    """The open downtime and the recent ones (those without a reason still take one)."""
    return downtimes_of(service.dispatcher.state, work_center)  # type: ignore[union-attr]


# -- operation commands --------------------------------------------------------------------------

_COMMAND_FIELDS = {f.name for f in dataclasses.fields(OperationCommand)}


async def _command(request: Request, work_center: str, action: OperationAction,
                   body: OperationRefIn | None, caller: Principal) -> StationActionOut:
    ref = body or OperationRefIn()
    service = request.app.state.service
    extra: dict[str, Any] = {}
    reason = getattr(ref, "reason", None)
    if reason is not None:
        # A pause reason is recorded by the domain's OperationCommand.reason (issue 10: a manual
        # station's pause opens a downtime with it); an older domain cannot, so say so.
        if "reason" not in _COMMAND_FIELDS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail={
                "code": "invalid", "message": "this service cannot record a pause reason yet"})
        extra["reason"] = reason
    return await _act(request, work_center, OperationCommand(
        work_center=work_center, action=action, order_id=ref.order_id, op_no=ref.op_no,
        **extra, **_envelope(service, work_center, caller, request)))


@router.post("/{work_center}/start", response_model=StationActionOut)
async def start(work_center: str, request: Request, caller: StationCaller,
                body: Annotated[OperationRefIn | None, Body()] = None) -> StationActionOut:
    """Start an operation (a paused one resumes)."""
    return await _command(request, work_center, OperationAction.START, body, caller)


@router.post("/{work_center}/pause", response_model=StationActionOut)
async def pause(work_center: str, request: Request, caller: StationCaller,
                body: Annotated[PauseIn | None, Body()] = None) -> StationActionOut:
    """Pause the running operation (or the one named). `reason`: why it stops (a downtime
    reason code); at an operator-counted work center the pause is a downtime with it."""
    return await _command(request, work_center, OperationAction.PAUSE, body, caller)


@router.post("/{work_center}/resume", response_model=StationActionOut)
async def resume(work_center: str, request: Request, caller: StationCaller,
                 body: Annotated[OperationRefIn | None, Body()] = None) -> StationActionOut:
    """Resume a paused operation."""
    return await _command(request, work_center, OperationAction.RESUME, body, caller)


@router.post("/{work_center}/complete", response_model=StationActionOut)
async def complete(work_center: str, request: Request, caller: StationCaller,
                   body: Annotated[OperationRefIn | None, Body()] = None) -> StationActionOut:
    """Complete the running operation (or the one named): the final confirmation follows."""
    return await _command(request, work_center, OperationAction.COMPLETE, body, caller)


@router.post("/{work_center}/report", response_model=StationActionOut)
async def report(work_center: str, body: ReportIn, request: Request,
                 caller: StationCaller) -> StationActionOut:
    """Report good / scrap (by configured reason code) / rework of an operator-counted operation."""
    service = request.app.state.service
    return await _act(request, work_center, QuantityReported(
        work_center=work_center, by=CountingSource.OPERATOR, good=body.good,
        scrap={r: q for r, q in body.scrap.items() if q}, rework=body.rework,
        order_id=body.order_id, op_no=body.op_no,
        **_envelope(service, work_center, caller, request)))


@router.post("/{work_center}/downtime-reason", response_model=StationActionOut)
async def downtime_reason(work_center: str, body: DowntimeReasonIn, request: Request,
                          caller: StationCaller) -> StationActionOut:
    """Give the reason of the open downtime (or of a recent one by id)."""
    service = request.app.state.service
    return await _act(request, work_center, DowntimeReasonGiven(
        work_center=work_center, reason=body.reason, downtime_id=body.downtime_id,
        **_envelope(service, work_center, caller, request)))


# -- scans and operator login -----------------------------------------------------------------

@router.post("/{work_center}/scan", response_model=StationActionOut)
async def scan(work_center: str, body: ScanIn, request: Request,
               caller: StationCaller) -> StationActionOut:
    """A barcode typed by the tablet's scanner: an operator badge logs in, an order/operation
    code starts it; unknown codes are refused and recorded (same parser as MQTT scans)."""
    service = request.app.state.service
    parsed = service.parser.parse(body.code)
    if parsed is not None and parsed.kind == "operator":
        await _login(request, work_center, parsed.fields.get("badge", body.code.strip()), None)
        return StationActionOut(outcome="logged_in", event_id=None,
                         station=await station_out(request, work_center))
    # A resent scan (same Idempotency-Key) is the same event: it counts once, and a refused
    # one is refused again with the same reason.
    key = request.headers.get("idempotency-key", "")
    scan_id = f"api-{key}" if 0 < len(key) <= 100 and key.isprintable() else f"api-{uuid.uuid4()}"
    try:
        msg = ScanMessage(id=scan_id, code=body.code, scanner=body.scanner,
                          work_center=work_center)
    except ValidationError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "code"], "msg": "not a barcode"}]) from err
    item = scan_event(msg, f"api:{caller.role}:{caller.token_id}", service.parser,
                      service.operators)
    if isinstance(item, RawRejection):
        outcome = await process(service.dispatcher, item)  # recorded, then refused
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail={
            "code": outcome.code, "message": outcome.reason, "event_id": outcome.event_id})
    if item is None:
        return StationActionOut(outcome=Status.UNCHANGED.value, event_id=None,
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
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, {
            "code": "login_throttled",
            "message": "too many failed logins at this station: wait a minute"})
    found = await find_operator(service.store, badge)
    ok = found is not None
    if ok and pin is not None:
        stored = found.get("pin_hash") if found else None
        # scrypt is deliberately slow: keep it off the event loop.
        ok = bool(stored) and await asyncio.to_thread(check_pin, pin, str(stored))
    if not ok or found is None:
        failures.append(time.monotonic())
        code = "unknown_badge" if found is None else "wrong_pin"
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            {"code": code, "message": code.replace("_", " ").replace("pin", "PIN")})
    allowed = list(found.get("work_centers") or [])  # type: ignore[call-overload]
    if allowed and work_center not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, {
            "code": "not_qualified", "message": f"operator {badge} is not qualified for "
            f"{work_center}", "details": {"badge": badge, "work_center": work_center}})
    service.operators.login(work_center, badge)
    request.app.state.operator_names[badge] = str(found["name"])
    request.app.state.live.station_changed(work_center)


@router.post("/{work_center}/login", response_model=StationActionOut,
             responses={401: {"description": "unknown badge or wrong PIN"},
                        429: {"description": "too many failed logins"}})
async def login(work_center: str, body: LoginIn, request: Request,
                caller: StationCaller) -> StationActionOut:
    """Log an operator in at this station: a scanned badge, or badge + PIN typed by hand.
    Later events of this station carry the operator as their actor."""
    await _login(request, work_center, body.badge.strip(), body.pin)
    return StationActionOut(outcome="logged_in", event_id=None,
                     station=await station_out(request, work_center))


@router.post("/{work_center}/logout", response_model=StationActionOut)
async def logout(work_center: str, request: Request, caller: StationCaller) -> StationActionOut:
    """Log the operator out of this station."""
    request.app.state.service.operators.logout(work_center)
    request.app.state.live.station_changed(work_center)
    return StationActionOut(outcome="logged_out", event_id=None,
                     station=await station_out(request, work_center))
