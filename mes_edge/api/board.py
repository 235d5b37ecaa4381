"""Supervisor endpoints: the board (work centers, WIP, late and stalled operations) and the
rejected events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from mes_edge.api.confirmations import delivery_out
from mes_edge.api.deps import ServiceDep, SupervisorDep
from mes_edge.api.schemas import DeliveryOut, DowntimeOut, StationItemOut, UnassignedOut
from mes_edge.api.station_views import (
    current_of,
    downtime_out,
    items_of,
    operator_of,
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
    counts: dict[str, int] = Field(
        default_factory=dict, description="operations of open orders here, by status")
    late: int = Field(0, description="operations here that are overdue or projected late")
    stalled: int = Field(0, description="running operations here with no report for a while")


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
    """The supervisor board: work centers, the first page of WIP, late and stalled operations,
    rejections. Its cost follows the number of work centers and the page, not the orders."""

    generated_at: datetime
    stalled_minutes: float
    work_centers: list[WorkCenterTileOut]
    wip: list[StationItemOut] = Field(
        description="the first page of WIP (`GET /board/wip` pages and filters the rest)")
    wip_total: int = Field(0, description="operations of open orders")
    late: list[AttentionOut]
    late_total: int = 0
    stalled: list[AttentionOut]
    rejected: list[RejectedOut]
    delivery_errors: list[DeliveryOut] = Field(
        default_factory=list, description="confirmations the ERP refused, waiting for a "
        "supervisor to retry or skip them (push mode)")


class WipPageOut(BaseModel):
    """One page of the WIP table (operations of open orders), filtered on the server."""

    total: int = Field(description="operations matching the filters")
    offset: int
    limit: int
    items: list[StationItemOut]


def _attention(i: StationItemOut, why: Literal["overdue", "projected_late", "stalled"],
               now: datetime) -> AttentionOut:
    last = i.last_report or i.actual_start
    idle = round((now - last).total_seconds() / 60, 1) if why == "stalled" and last else None
    return AttentionOut(
        order_id=i.order_id, op_no=i.op_no, work_center=i.work_center, status=i.status, why=why,
        due=i.due, projected_finish=i.projected_finish, last_activity=last, minutes_idle=idle)


def _active(state: MemoryState, work_center: str) -> list[StationItemOut]:
    """Running and paused operations of one work center (a handful, from the index)."""
    return items_of(state, sorted(state.index.running.get(work_center, ())))


def _projected_late(items: list[StationItemOut], now: datetime) -> list[StationItemOut]:
    # Only started operations have a projected finish; overdue ones are counted as overdue.
    return [i for i in items if i.status not in _FINISHED and i.due is not None
            and i.due >= now and i.projected_finish is not None and i.projected_finish > i.due]


def _stalled(items: list[StationItemOut], now: datetime, minutes: float) -> list[StationItemOut]:
    out = []
    for i in items:
        last = i.last_report or i.actual_start
        if i.status == OperationStatus.RUNNING.value and last is not None \
                and (now - last).total_seconds() / 60 >= minutes:
            out.append(i)
    return out


async def latest_rejections(store: Store, limit: int, work_center: str | None = None,
                            before: int | None = None) -> list[RejectedOut]:
    """The latest refused events, newest first (older pages: ids below `before`)."""
    rows = await reads.latest_rejections(store, limit, work_center, before)
    return [RejectedOut(
        id=r.id, event_id=r.event_id, type=r.type, work_center=r.work_center,
        order_id=r.order_id, source=r.source, actor=r.actor, reason_code=r.reason_code,
        reason=r.reason, received_ts=r.received_ts, rejected_at=r.rejected_at,
        **_quantities_of(r.payload)) for r in rows]  # type: ignore[arg-type]


class _Attention:
    """Late and stalled operations per work center, found through the index."""

    def __init__(self, state: MemoryState, work_centers: list[str], now: datetime,
                 minutes: float) -> None:
        self.projected: dict[str, list[StationItemOut]] = {}
        self.stalled: dict[str, list[StationItemOut]] = {}
        self.overdue: dict[str, int] = {}
        for wc in work_centers:
            active = _active(state, wc)
            self.projected[wc] = _projected_late(active, now)
            self.stalled[wc] = _stalled(active, now, minutes)
            self.overdue[wc] = state.index.overdue(wc, now)

    def late_count(self, wc: str) -> int:
        return self.overdue.get(wc, 0) + len(self.projected.get(wc, ()))


async def _tiles(request: Request, state: MemoryState,
                 attention: _Attention) -> list[WorkCenterTileOut]:
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
            queue_length=state.index.queue_length(config.id),
            micro_stop_s=config.micro_stop_s, unassigned=unassigned_of(state, config.id),
            counts=state.index.status_counts(config.id), late=attention.late_count(config.id),
            stalled=len(attention.stalled.get(config.id, ()))))
    return tiles


#: Late and stalled operations listed on the board (the counts on the tiles are complete).
ATTENTION_SHOWN = 50


@router.get("/board", response_model=BoardOut)
async def board(
    request: Request, service: ServiceDep, principal: SupervisorDep,
    stalled_minutes: Annotated[float, Query(gt=0, le=10_080)] = STALLED_MINUTES,
    rejected_limit: Annotated[int, Query(ge=0, le=500)] = 20,
    wip_limit: Annotated[int, Query(ge=0, le=500)] = 50,
) -> BoardOut:
    """Every work center with machine state, current operation and counts; the first page of
    WIP (operations of open orders, by order); late operations (due passed, or projected finish
    after due; the earliest first); stalled ones (running, no report for `stalled_minutes`);
    the latest rejected events. The cost does not grow with the number of orders."""
    assert service.dispatcher is not None and service.store is not None
    now = datetime.now(UTC)
    state = service.dispatcher.state
    centers = [w.id for w in service.settings.work_centers]
    attention = _Attention(state, centers, now, stalled_minutes)
    wip_total, keys = state.index.wip_page(limit=wip_limit)
    late = [_attention(i, "overdue", now)
            for i in items_of(state, state.index.overdue_page(None, now, ATTENTION_SHOWN))]
    late += [_attention(i, "projected_late", now)
             for wc in centers for i in attention.projected[wc]]
    stalled = sorted((_attention(i, "stalled", now) for wc in centers
                      for i in attention.stalled[wc]), key=lambda a: -(a.minutes_idle or 0))
    return BoardOut(
        generated_at=now, stalled_minutes=stalled_minutes,
        work_centers=await _tiles(request, state, attention), wip=items_of(state, keys),
        wip_total=wip_total, late=late[:ATTENTION_SHOWN],
        late_total=sum(attention.late_count(wc) for wc in centers),
        stalled=stalled[:ATTENTION_SHOWN],
        rejected=await latest_rejections(service.store, rejected_limit),
        delivery_errors=[delivery_out(r) for r in await feed.deliveries(
            service.store, state="error", limit=50)])


@router.get("/board/wip", response_model=WipPageOut)
async def board_wip(
    service: ServiceDep, principal: SupervisorDep,
    work_center: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[OperationStatus | None, Query(alias="status")] = None,
    due_before: Annotated[AwareDatetime | None, Query(
        description="only operations due before this time")] = None,
    sort: Annotated[Literal["order", "due"], Query(
        description="order: by order and operation; due: earliest due first (late first)")
    ] = "order",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> WipPageOut:
    """One page of the WIP table: operations of open orders filtered by work center, operation
    status and due date, sorted by order or by due date (late first). O(page), from the
    dispatcher's indexes."""
    assert service.dispatcher is not None
    state = service.dispatcher.state
    total, keys = state.index.wip_page(
        work_center=work_center, status=status_.value if status_ else None,
        due_before=due_before, sort=sort, offset=offset, limit=limit)
    return WipPageOut(total=total, offset=offset, limit=limit, items=items_of(state, keys))


@router.get("/rejected-events", response_model=list[RejectedOut])
async def rejected(
    service: ServiceDep, principal: SupervisorDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    work_center: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                        description="page: ids below this one")] = None,
) -> list[RejectedOut]:
    """Refused events with their reasons and quantities, newest first, paged by id.

    The next page is `?before=<the last id of this page>`; the `X-Next-Before` header carries it
    while more may follow."""
    assert service.store is not None
    page = await latest_rejections(service.store, limit, work_center, before)
    if len(page) == limit:
        response.headers["X-Next-Before"] = str(page[-1].id)
    return page
