"""Request and response models of the HTTP API (the documented external contract)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mes_edge.contracts.erp import ConfirmationOut, Ident, In
from mes_edge.domain import (
    Operation,
    WorkOrder,
)


class ReasonIn(In):
    """A reason for hold / cancel / release / reversal."""

    reason: str | None = Field(None, max_length=500)


class OperationOut(BaseModel):
    """One operation with its WIP."""

    op_no: str
    work_center: str
    description: str
    status: str
    counting: str
    planned_qty: int
    good: int
    scrap: int
    scrap_by_reason: dict[str, int]
    rework: int
    available: int = Field(description="handed over by the predecessor and not yet processed")
    unconfirmed_good: int
    actual_start: datetime | None
    actual_end: datetime | None
    projected_finish: datetime | None


class WorkOrderOut(BaseModel):
    """A work order with per-operation WIP and a projected finish."""

    order_id: str
    revision: int
    status: str
    material: str
    quantity: int
    unit: str
    demand_type: str
    sales_order: str | None
    customer: str | None
    due: datetime | None
    hold_reason: str | None
    actual_start: datetime | None
    actual_end: datetime | None
    projected_finish: datetime | None
    tolerance_pct: float
    updated_at: datetime | None
    operations: list[OperationOut]


def _projected(op: Operation, now: datetime) -> datetime | None:
    if op.actual_end is not None:
        return op.actual_end
    if op.actual_start is None or op.last_report is None or op.done.good <= 0:
        return None
    elapsed = (op.last_report - op.actual_start).total_seconds()
    if elapsed <= 0:
        return None
    rate = op.done.good / elapsed  # observed units per second
    remaining = max(op.planned_qty - op.done.good, 0)
    try:
        return max(now, op.last_report) + timedelta(seconds=remaining / rate)
    except (OverflowError, ValueError):  # a rate so low the finish is beyond the calendar
        return None


def order_out(order: WorkOrder, now: datetime | None = None) -> WorkOrderOut:
    """The public view of a domain order."""
    now = now or datetime.now(UTC)
    ops = []
    for i, op in enumerate(order.operations):
        ops.append(OperationOut(
            op_no=op.op_no, work_center=op.work_center, description=op.description,
            status=op.status.value, counting=op.counting.value, planned_qty=op.planned_qty,
            good=op.done.good, scrap=op.done.scrap_total, scrap_by_reason=dict(op.done.scrap),
            rework=op.done.rework, available=max(order.available(i), 0),
            unconfirmed_good=op.unconfirmed.good, actual_start=op.actual_start,
            actual_end=op.actual_end, projected_finish=_projected(op, now)))
    finishes = [o.projected_finish for o in ops]
    return WorkOrderOut(
        order_id=order.order_id, revision=order.revision, status=order.status.value,
        material=order.material, quantity=order.quantity, unit=order.unit,
        demand_type=order.demand_type.value, sales_order=order.sales_order,
        customer=order.customer, due=order.due, hold_reason=order.hold_reason,
        actual_start=order.actual_start, actual_end=order.actual_end,
        projected_finish=finishes[-1] if finishes and finishes[-1] else None,
        tolerance_pct=order.tolerance_pct, updated_at=order.updated_at, operations=ops)


class WorkOrderList(BaseModel):
    """A page of work orders, most recently changed first."""

    work_orders: list[WorkOrderOut]
    count: int
    next_cursor: str | None = Field(
        None, description="pass as `before` for the next (older) page; null on the last page")
    has_more: bool = Field(False, description="another page follows")


class ConfirmationPage(BaseModel):
    """A page of the confirmation feed, in commit order."""

    confirmations: list[ConfirmationOut]
    next_cursor: int
    has_more: bool


class AckResult(In):
    """What the ERP did with one confirmation."""

    confirmation_id: str = Field(min_length=36, max_length=36)
    status: Literal["posted", "error"]
    message: str | None = Field(None, max_length=2000)


class AckIn(In):
    """POST /confirmations/ack: everything up to `cursor` is delivered; per-item results."""

    cursor: int = Field(ge=0, le=2**62)
    results: list[AckResult] = Field(default_factory=list, max_length=10_000)


class AckOut(BaseModel):
    """What the ack changed."""

    cursor: int
    delivered: int
    results: int


DeliveryState = Literal["retrying", "delivered", "posted", "error", "skipped"]


class DeliveryOut(BaseModel):
    """The delivery state of one confirmation (push results, pull acks, supervisor decisions)."""

    confirmation_id: str
    cursor: int
    order_id: str
    operation: str
    work_center: str
    yield_qty: int = Field(alias="yield", serialization_alias="yield")
    scrap: int
    rework: int
    reverses: str | None
    state: DeliveryState
    message: str | None = Field(description="the ERP's answer (truncated) for retrying / error")
    http_status: int | None = Field(description="HTTP status of the ERP's last answer (push)")
    attempts: int
    updated_at: datetime
    resolution: Literal["retry", "skip"] | None = Field(
        description="what a supervisor decided about a delivery error")
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_reason: str | None

    model_config = ConfigDict(populate_by_name=True)


class DeliveryList(BaseModel):
    """Confirmations in one delivery state, in cursor order."""

    deliveries: list[DeliveryOut]
    count: int


class RetryIn(In):
    """A supervisor sends a refused confirmation again (after the ERP side was fixed)."""

    reason: str | None = Field(None, max_length=500)


class SkipIn(In):
    """A supervisor gives up delivering a refused confirmation (it was booked by hand, ...)."""

    reason: str = Field(min_length=1, max_length=500)


# -- station tablets and the supervisor board ---------------------------------------------------

class QueueItemOut(BaseModel):
    """An operation in a work center's queue (or in the WIP list) with its order's context."""

    order_id: str
    op_no: str
    work_center: str
    description: str
    material: str
    unit: str
    order_status: str
    status: str
    counting: str
    planned_qty: int
    good: int
    scrap: int
    scrap_by_reason: dict[str, int]
    rework: int
    available: int = Field(description="handed over by the predecessor and not yet processed")
    due: datetime | None
    actual_start: datetime | None
    last_report: datetime | None
    projected_finish: datetime | None
    personnel: str | None


class DowntimeOut(BaseModel):
    """A downtime of a work center (open, or closed and maybe still waiting for a reason)."""

    downtime_id: str
    work_center: str
    state: str
    start: datetime
    end: datetime | None
    reason: str | None
    reason_by: str | None
    open: bool


class ReasonOut(BaseModel):
    """A configured scrap or downtime reason with its text per language."""

    code: str
    text: dict[str, str]


class OperatorOut(BaseModel):
    """The operator logged in at a station."""

    badge: str
    name: str


class StationOut(BaseModel):
    """Everything a station tablet shows."""

    work_center: str
    name: str
    counting: str
    machine_state: str
    since: datetime | None
    operator: OperatorOut | None
    current: QueueItemOut | None = Field(description="the operation running on the work center")
    queue: list[QueueItemOut] = Field(description="running, paused, ready and waiting operations")
    downtimes: list[DowntimeOut] = Field(description="the open downtime first, then recent ones")
    scrap_reasons: list[ReasonOut]
    downtime_reasons: list[ReasonOut]


class OperationRefIn(In):
    """Which operation a command means; both omitted: the one running on the work center."""

    order_id: Ident | None = None
    op_no: Ident | None = None


ReportQty = Annotated[int, Field(ge=0, le=1_000_000)]


class ReportIn(OperationRefIn):
    """Good, scrap (by reason code) and rework an operator reports."""

    good: ReportQty = 0
    scrap: dict[Annotated[str, Field(min_length=1, max_length=64)], ReportQty] = Field(
        default_factory=dict, max_length=20, description="reason code -> quantity")
    rework: ReportQty = 0


class DowntimeReasonIn(In):
    """The reason of a downtime: the open one (or the oldest without reason), or a given one."""

    reason: Annotated[str, Field(min_length=1, max_length=64)]
    downtime_id: str | None = Field(None, min_length=1, max_length=200)


class ScanIn(In):
    """A barcode typed by a USB scanner into the tablet (same codes as MQTT scans)."""

    code: str = Field(min_length=1, max_length=512)
    scanner: str | None = Field(None, max_length=128)


class LoginIn(In):
    """Operator login at a station: badge (scanned), with PIN when typed by hand."""

    badge: str = Field(min_length=1, max_length=64)
    pin: str | None = Field(None, min_length=1, max_length=32)


class ActionOut(BaseModel):
    """What a station write did, and the station afterwards."""

    outcome: str = Field(description="accepted | unchanged | duplicate | logged_in | logged_out")
    event_id: str | None
    station: StationOut


# -- station tablets (shared by the station, board and live-update endpoints) ----------------

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
        description="running, paused, ready, waiting operations: the first 50 of the queue")
    queue_total: int = Field(0, description="operations in the whole queue (`queue` holds the "
                                            "first 50; GET .../queue?offset= pages on)")
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
