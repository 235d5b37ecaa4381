"""Unassigned production: what machines counted while no operation could take it.

Supervisors see it per work center and assign it to an operation (it then counts and is
confirmed like any report) or write it off with a reason. Both are events in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from mes_edge.api.deps import ErpOrSupervisorDep, Principal, ServiceDep, SupervisorDep
from mes_edge.api.submit import event_id_for, submit
from mes_edge.domain import Quantities, WorkCenterState
from mes_edge.domain.events import UnassignedAction, UnassignedResolved
from mes_edge.store import writeoffs

router = APIRouter(prefix="/api/v1/production", tags=["production (supervisor)"])

Qty = Annotated[int, Field(ge=0, le=1_000_000_000)]


class QuantitiesOut(BaseModel):
    """Good, scrap by reason and rework."""

    good: int
    scrap: dict[str, int]
    rework: int


class OpenUnassignedOut(QuantitiesOut):
    """What is still waiting for a supervisor, with its span and counter readings."""

    since: datetime | None
    last: datetime | None
    reasons: dict[str, int] = Field(description="why it is unassigned: reason code -> units")
    readings: dict[str, tuple[int, int]] = Field(
        description="device/tag -> (first, last) counter reading")


class WorkCenterUnassignedOut(BaseModel):
    """Unassigned production of one work center, open and resolved so far."""

    work_center: str
    open: OpenUnassignedOut
    assigned: QuantitiesOut
    written_off: QuantitiesOut


class UnassignedList(BaseModel):
    """Every configured work center."""

    work_centers: list[WorkCenterUnassignedOut]


class AssignIn(BaseModel):
    """Assign (part of) the open quantities to an operation of that work center."""

    order_id: str = Field(min_length=1, max_length=64)
    op_no: str = Field(min_length=1, max_length=64)
    good: Qty = 0
    scrap: dict[Annotated[str, Field(max_length=64)], Qty] = Field(default_factory=dict)
    rework: Qty = 0
    reason: str | None = Field(None, max_length=500)


class WriteOffIn(BaseModel):
    """Write (part of) the open quantities off, with the reason."""

    good: Qty = 0
    scrap: dict[Annotated[str, Field(max_length=64)], Qty] = Field(default_factory=dict)
    rework: Qty = 0
    reason: str = Field(min_length=1, max_length=500)


class WriteOffOut(QuantitiesOut):
    """Unassigned production a supervisor wrote off (an event of the log, never edited)."""

    seq: int = Field(description="position in the event log: page with ?after=")
    event_id: str
    work_center: str | None
    reason: str | None
    actor: str | None
    written_off_at: datetime


class WriteOffPage(BaseModel):
    """A page of the write-off feed, oldest first."""

    write_offs: list[WriteOffOut]
    next_after: int = Field(description="pass as ?after= for the next page")
    has_more: bool


class ResolvedOut(BaseModel):
    """The committed outcome and the work center's unassigned production after it."""

    outcome: str
    event_id: str | None
    work_center: WorkCenterUnassignedOut


def _q(q: Quantities) -> QuantitiesOut:
    return QuantitiesOut(good=q.good, scrap=dict(q.scrap), rework=q.rework)


def unassigned_out(wc: WorkCenterState) -> WorkCenterUnassignedOut:
    """The public view of a work center's unassigned production."""
    u = wc.unassigned
    return WorkCenterUnassignedOut(
        work_center=wc.work_center,
        open=OpenUnassignedOut(good=u.good, scrap=dict(u.scrap), rework=u.rework,
                               since=wc.unassigned_since, last=wc.unassigned_last,
                               reasons=dict(wc.unassigned_reasons),
                               readings=dict(wc.unassigned_readings)),
        assigned=_q(wc.assigned_total), written_off=_q(wc.written_off_total))


def _state_of(service: ServiceDep, work_center: str) -> WorkCenterState:
    assert service.dispatcher is not None
    if work_center not in service.dispatcher.rules.work_centers:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            {"code": "unknown_work_center",
                             "message": f"unknown work center {work_center!r}"})
    return (service.dispatcher.state.work_center(work_center)
            or WorkCenterState(work_center=work_center))


@router.get("/unassigned", response_model=UnassignedList, operation_id="listUnassigned")
async def list_unassigned(service: ServiceDep, _: ErpOrSupervisorDep) -> UnassignedList:
    """Unassigned production of every work center: open quantities, assigned, written off."""
    assert service.dispatcher is not None
    return UnassignedList(work_centers=[
        unassigned_out(_state_of(service, wc)) for wc in service.dispatcher.rules.work_centers])


@router.get("/write-offs", response_model=WriteOffPage, operation_id="listWriteOffs")
async def list_write_offs(
    service: ServiceDep, _: ErpOrSupervisorDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="the last seq you have read")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WriteOffPage:
    """Written-off unassigned production, in commit order, for an ERP that books it (scrap,
    inventory difference): pull with `after=<next_after>` like the confirmation feed."""
    assert service.store is not None
    rows, last = await writeoffs.write_offs(service.store, after, limit)
    return WriteOffPage(write_offs=[WriteOffOut(**r) for r in rows], next_after=last,
                        has_more=len(rows) == limit)


def _envelope(request: Request, p: Principal, work_center: str) -> dict[str, str | None]:
    return {"event_id": event_id_for(request, f"unassigned:{work_center}"),
            "source": f"api:{p.role}:{p.token_id}", "actor": p.name}


async def _resolve(request: Request, service: ServiceDep, work_center: str,
                   event: UnassignedResolved) -> ResolvedOut:
    outcome = await submit(service, event)
    return ResolvedOut(outcome=outcome.status.value, event_id=outcome.event_id,
                       work_center=unassigned_out(_state_of(service, work_center)))


@router.post("/unassigned/{work_center}/assign", response_model=ResolvedOut,
             operation_id="assignUnassigned",
             responses={409: {"description": "more than is unassigned, or the order is not "
                                             "active"},
                        404: {"description": "unknown work center, order or operation"}})
async def assign(work_center: str, request: Request, service: ServiceDep, p: SupervisorDep,
                 body: Annotated[AssignIn, Body()]) -> ResolvedOut:
    """Assign unassigned production to an operation: it counts and is confirmed at once."""
    _state_of(service, work_center)
    return await _resolve(request, service, work_center, UnassignedResolved(
        work_center=work_center, action=UnassignedAction.ASSIGN, good=body.good,
        scrap=dict(body.scrap), rework=body.rework, order_id=body.order_id, op_no=body.op_no,
        reason=body.reason, **_envelope(request, p, work_center)))  # type: ignore[arg-type]


@router.post("/unassigned/{work_center}/write-off", response_model=ResolvedOut,
             operation_id="writeOffUnassigned",
             responses={409: {"description": "more than is unassigned"},
                        404: {"description": "unknown work center"}})
async def write_off(work_center: str, request: Request, service: ServiceDep, p: SupervisorDep,
                    body: Annotated[WriteOffIn, Body()]) -> ResolvedOut:
    """Write unassigned production off, with the reason (recorded in the event log)."""
    _state_of(service, work_center)
    return await _resolve(request, service, work_center, UnassignedResolved(
        work_center=work_center, action=UnassignedAction.WRITE_OFF, good=body.good,
        scrap=dict(body.scrap), rework=body.rework, reason=body.reason,
        **_envelope(request, p, work_center)))  # type: ignore[arg-type]
