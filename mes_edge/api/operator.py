"""Operator endpoints of a station tablet: queue, start/pause/resume/complete, reports,
downtime reasons, scans and operator login. Every write goes through the dispatcher as an event.

The views they answer with are in station_views, the login and its throttling in login.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from pydantic import ValidationError

from mes_edge.api.deps import ServiceDep, StationCaller
from mes_edge.api.login import login_operator
from mes_edge.api.schemas import (
    DowntimeOut,
    DowntimeReasonIn,
    LoginIn,
    OperationRefIn,
    PauseIn,
    ReportIn,
    ScanIn,
    StationActionOut,
    StationItemOut,
    StationView,
)
from mes_edge.api.station_views import (
    STATION_QUEUE_SHOWN,
    downtimes_of,
    queue_page,
    refusal_details,
    station_out,
)
from mes_edge.api.submit import event_id_for, idempotency_key, process, submit
from mes_edge.contracts.terminal import ScanMessage
from mes_edge.dispatcher import RawRejection, Status
from mes_edge.domain import (
    CountingSource,
    DowntimeReasonGiven,
    Event,
    OperationAction,
    OperationCommand,
    QuantityReported,
)
from mes_edge.rules import scan_event
from mes_edge.store.tokens import Principal

router = APIRouter(prefix="/api/v1/stations", tags=["station tablets (operators)"])





def _envelope(service: Any, work_center: str, p: Principal,
              request: Request | None = None) -> dict[str, Any]:
    # A tablet resending a tap after a network timeout sends the same Idempotency-Key.
    return {"event_id": event_id_for(request, work_center), "source": f"api:{p.role}:{p.token_id}",
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
async def get_queue(
    work_center: str, service: ServiceDep, caller: StationCaller, response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = STATION_QUEUE_SHOWN,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[StationItemOut]:
    """The next `limit` running, paused, ready and waiting operations of open orders, in queue
    order, with available quantity; `offset` pages on. `X-Total-Count` is the queue length."""
    assert service.dispatcher is not None
    total, page = queue_page(service.dispatcher.state, work_center, offset, limit)
    response.headers["X-Total-Count"] = str(total)
    return page


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
        badge = parsed.fields.get("badge", body.code.strip())
        # A badge with a PIN answers 401 pin_required: the tablet asks for the PIN (/login).
        await login_operator(request, work_center, badge, None, caller, via="scan")
        return StationActionOut(outcome="logged_in", event_id=None,
                         station=await station_out(request, work_center))
    # A resent scan (same Idempotency-Key) is the same event: it counts once, and a refused
    # one is refused again with the same reason.
    key = idempotency_key(request)
    scan_id = f"api-{key}" if key is not None else f"api-{uuid.uuid4()}"
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


@router.post("/{work_center}/login", response_model=StationActionOut,
             responses={401: {"description": "unknown badge, PIN needed or wrong PIN"},
                        429: {"description": "this badge failed too often: wait (Retry-After)"}})
async def login(work_center: str, body: LoginIn, request: Request,
                caller: StationCaller) -> StationActionOut:
    """Log an operator in at this station: a scanned badge, or badge + PIN typed by hand.
    Later events of this station carry the operator as their actor."""
    await login_operator(request, work_center, body.badge.strip(), body.pin, caller)
    return StationActionOut(outcome="logged_in", event_id=None,
                     station=await station_out(request, work_center))


@router.post("/{work_center}/logout", response_model=StationActionOut)
async def logout(work_center: str, request: Request, caller: StationCaller) -> StationActionOut:
    """Log the operator out of this station."""
    request.app.state.service.operators.logout(work_center)
    request.app.state.live.station_changed(work_center)
    return StationActionOut(outcome="logged_out", event_id=None,
                     station=await station_out(request, work_center))
