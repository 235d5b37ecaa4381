"""Supervisor endpoints: the board (work centers, WIP, late and stalled operations) and the
rejected events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from mes_edge.api.confirmations import delivery_out
from mes_edge.api.deps import ServiceDep, SupervisorDep
from mes_edge.api.schemas import DeliveryOut, DowntimeOut, StationItemOut, UnassignedOut
from mes_edge.api.station_views import (
    current_of,
    downtime_out,
    open_items,
    operator_of,
    queue_of,
    unassigned_of,
)
from mes_edge.domain import MemoryState, OperationStatus
from mes_edge.store import Store, feed, reads

router = APIRouter(prefix="/api/v1", tags=["supervisor board"])

#: A running operation with no report for this long is shown as stalled (query parameter).
STALLED_MINUTES = 10.0
_FINISHED = (OperationStatus.COMPLETED.value, OperationStatus.CANCELLED.value)


class WorkCenterTileOut(BaseModel):
    """One work center on the supervisor board."""

    work_center: str
    name: str
    counting: str
    machine_state: str
    since: datetime | None
    operator: str | None
    current: StationItemOut | None
    open_downtime: DowntimeOut | None
    queue_length: int = Field(description="operations waiting at the work center (not running)")
    micro_stop_s: float = Field(description="shorter stops are micro-stops: no reason is asked")
    unassigned: UnassignedOut | None = Field(
        description="machine counts no operation took: a supervisor assigns or writes them off")


class AttentionOut(BaseModel):
    """An operation that is late or stalled, and why."""

    order_id: str
    op_no: str
    work_center: str
    status: str
    why: Literal["overdue", "projected_late", "stalled"]
    due: datetime | None
    projected_finish: datetime | None
    last_activity: datetime | None
    minutes_idle: float | None


class RejectedOut(BaseModel):
    """A refused event with its reason (nothing is dropped silently)."""

    id: int
    event_id: str | None
    type: str | None
    work_center: str | None
    order_id: str | None
    source: str
    actor: str | None
    reason_code: str
    reason: str
    received_ts: datetime
    rejected_at: datetime
    good: int | None = Field(None, description="the good quantity the refused event carried")
    scrap: dict[str, int] | None = Field(None, description="its scrap by reason")
    rework: int | None = None


def _quantities_of(payload: object) -> dict[str, object]:
    """The quantities a refused event carried (its payload as logged), if it had any."""
    if not isinstance(payload, dict):
        return {}
    out: dict[str, object] = {}
    for key in ("good", "rework"):
        if isinstance(payload.get(key), int) and not isinstance(payload.get(key), bool):
            out[key] = payload[key]
    scrap = payload.get("scrap")
    if isinstance(scrap, dict) and all(isinstance(v, int) for v in scrap.values()):
        out["scrap"] = {str(k): v for k, v in scrap.items()}
    elif isinstance(scrap, int) and not isinstance(scrap, bool):
        out["scrap"] = {"": scrap}
    return out


class BoardOut(BaseModel):
    """The supervisor board: work centers, WIP, late and stalled operations, rejections."""

    generated_at: datetime
    stalled_minutes: float
    work_centers: list[WorkCenterTileOut]
    wip: list[StationItemOut]
    late: list[AttentionOut]
    stalled: list[AttentionOut]
    rejected: list[RejectedOut]
    delivery_errors: list[DeliveryOut] = Field(
        default_factory=list, description="confirmations the ERP refused, waiting for a "
        "supervisor to retry or skip them (push mode)")


def _late(items: list[StationItemOut], now: datetime) -> list[AttentionOut]:
    out = []
    for i in items:
        if i.status in _FINISHED or i.due is None:
            continue
        why: Literal["overdue", "projected_late"] | None = None
        if i.due < now:
            why = "overdue"
        elif i.projected_finish is not None and i.projected_finish > i.due:
            why = "projected_late"
        if why:
            out.append(AttentionOut(
                order_id=i.order_id, op_no=i.op_no, work_center=i.work_center, status=i.status,
                why=why, due=i.due, projected_finish=i.projected_finish,
                last_activity=i.last_report or i.actual_start, minutes_idle=None))
    return sorted(out, key=lambda a: (a.due or now, a.order_id, a.op_no))


def _stalled(items: list[StationItemOut], now: datetime, minutes: float) -> list[AttentionOut]:
    out = []
    for i in items:
        last = i.last_report or i.actual_start
        if i.status != OperationStatus.RUNNING.value or last is None:
            continue
        idle = (now - last).total_seconds() / 60
        if idle >= minutes:
            out.append(AttentionOut(
                order_id=i.order_id, op_no=i.op_no, work_center=i.work_center, status=i.status,
                why="stalled", due=i.due, projected_finish=i.projected_finish,
                last_activity=last, minutes_idle=round(idle, 1)))
    return sorted(out, key=lambda a: -(a.minutes_idle or 0))


async def latest_rejections(store: Store, limit: int, work_center: str | None = None,
                            before: int | None = None) -> list[RejectedOut]:
    """The latest refused events, newest first (older pages: ids below `before`)."""
    rows = await reads.latest_rejections(store, limit, work_center, before)
    return [RejectedOut(
        id=r.id, event_id=r.event_id, type=r.type, work_center=r.work_center,
        order_id=r.order_id, source=r.source, actor=r.actor, reason_code=r.reason_code,
        reason=r.reason, received_ts=r.received_ts, rejected_at=r.rejected_at,
        **_quantities_of(r.payload)) for r in rows]  # type: ignore[arg-type]


async def _tiles(request: Request, state: MemoryState) -> list[WorkCenterTileOut]:
    service = request.app.state.service
    tiles = []
    for config in service.settings.work_centers:
        wc = state.work_center(config.id)
        operator = await operator_of(request, config.id)
        tiles.append(WorkCenterTileOut(
            work_center=config.id, name=config.name or config.id, counting=config.counting.value,
            machine_state=wc.machine_state.value if wc else "unknown",
            since=wc.since if wc else None, operator=operator.name if operator else None,
            current=current_of(state, config.id),
            open_downtime=downtime_out(wc.downtime) if wc and wc.downtime else None,
            queue_length=sum(1 for q in queue_of(state, config.id)
                             if q.status != OperationStatus.RUNNING.value),
            micro_stop_s=config.micro_stop_s, unassigned=unassigned_of(state, config.id)))
    return tiles


@router.get("/board", response_model=BoardOut)
async def board(
    request: Request, service: ServiceDep, principal: SupervisorDep,
    stalled_minutes: Annotated[float, Query(gt=0, le=10_080)] = STALLED_MINUTES,
    rejected_limit: Annotated[int, Query(ge=0, le=500)] = 20,
) -> BoardOut:
    """Every work center with machine state and current operation; WIP per operation of open
    orders; late operations (due passed, or projected finish after due); stalled ones (running,
    no report for `stalled_minutes`); the latest rejected events."""
    assert service.dispatcher is not None and service.store is not None
    now = datetime.now(UTC)
    state = service.dispatcher.state
    items = sorted(open_items(state), key=lambda i: (i.order_id, i.op_no))
    return BoardOut(
        generated_at=now, stalled_minutes=stalled_minutes,
        work_centers=await _tiles(request, state), wip=items, late=_late(items, now),
        stalled=_stalled(items, now, stalled_minutes),
        rejected=await latest_rejections(service.store, rejected_limit),
        delivery_errors=[delivery_out(r) for r in await feed.deliveries(
            service.store, state="error", limit=50)])


@router.get("/rejected-events", response_model=list[RejectedOut])
async def rejected(
    service: ServiceDep, principal: SupervisorDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    work_center: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, description="page: ids below this one")] = None,
) -> list[RejectedOut]:
    """Refused events with their reasons and quantities, newest first, paged by id.

    The next page is `?before=<the last id of this page>`; the `X-Next-Before` header carries it
    while more may follow."""
    assert service.store is not None
    page = await latest_rejections(service.store, limit, work_center, before)
    if len(page) == limit:
        response.headers["X-Next-Before"] = str(page[-1].id)
    return page
