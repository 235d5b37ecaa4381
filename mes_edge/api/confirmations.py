"""ERP endpoints for confirmations: the pull feed (JSON or B2MML), acks, reversals."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mes_edge.api.deps import ErpDep, ErpOrSupervisorDep, Principal, ServiceDep, SupervisorDep
from mes_edge.api.schemas import (
    AckIn,
    AckOut,
    ConfirmationPage,
    DeliveryList,
    DeliveryOut,
    DeliveryState,
    ReasonIn,
    RetryIn,
    SkipIn,
)
from mes_edge.api.submit import submit
from mes_edge.contracts.erp import ConfirmationOut, confirmation_out
from mes_edge.domain import ConfirmationReversed, ConfirmationsDue, single_use_id
from mes_edge.store import codec, feed, reads

router = APIRouter(prefix="/api/v1/confirmations", tags=["confirmations (ERP)"])
PULL = "erp-pull"


@router.get("", response_model=ConfirmationPage,
            responses={410: {"description": "the cursor is older than what is kept"},
                       200: {"content": {"application/xml": {
                           "schema": {"type": "string",
                                      "description": "B2MML V0700 ShowOperationsPerformance"}}}}})
async def list_confirmations(
    request: Request, service: ServiceDep, principal: ErpDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Confirmations and reversals in commit order after `after`; at-least-once (dedup by
    confirmation_id). `Accept: application/xml` gives B2MML ShowOperationsPerformance."""
    assert service.store is not None
    floor = await feed.retention_floor(service.store)
    if after < floor:
        raise HTTPException(status.HTTP_410_GONE,
                            f"cursor {after} is older than what is kept (from {floor}); "
                            "resynchronise from the work orders")
    rows = await feed.page(service.store, after, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1].cursor if rows else after
    if "application/xml" in request.headers.get("accept", ""):
        from mes_edge.erp.b2mml import show_operations_performance

        xml = await asyncio.to_thread(  # CPU-bound for large pages: off the event loop
            show_operations_performance,
            [(r.cursor, codec.confirmation_from_row(r)) for r in rows],
            release_id=str(uuid.uuid4()), next_cursor=next_cursor)
        return Response(xml, media_type="application/xml",
                        headers={"X-Next-Cursor": str(next_cursor),
                                 "X-Has-More": "true" if has_more else "false"})
    page = ConfirmationPage(confirmations=[confirmation_out(r) for r in rows],
                            next_cursor=next_cursor, has_more=has_more)
    return JSONResponse(page.model_dump(mode="json", by_alias=True))


@router.post("/ack", response_model=AckOut)
async def ack_confirmations(body: AckIn, service: ServiceDep, principal: ErpDep) -> AckOut:
    """Everything up to `cursor` is delivered; per confirmation: posted, or error + message."""
    assert service.store is not None
    delivered, applied = await feed.ack(
        service.store, PULL, body.cursor,
        [(r.confirmation_id, r.status, r.message) for r in body.results])
    return AckOut(cursor=body.cursor, delivered=delivered, results=applied)


@router.post("/{confirmation_id}/reverse", response_model=ConfirmationOut,
             status_code=status.HTTP_201_CREATED)
async def reverse_confirmation(confirmation_id: str, service: ServiceDep,
                               principal: SupervisorDep,
                               body: Annotated[ReasonIn, Body()]) -> ConfirmationOut:
    """Reverse a confirmation (a correction is a reversal plus a new report)."""
    assert service.dispatcher is not None and service.store is not None
    # Read from the database: the service keeps no confirmation in memory.
    original = await reads.confirmation(service.store, confirmation_id)
    if original is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown confirmation {confirmation_id}")
    if not body.reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["body", "reason"], "msg": "a reversal needs a reason"}])
    await submit(service, ConfirmationReversed(
        event_id=single_use_id(), source=f"api:{principal.role}:{principal.token_id}",
        actor=principal.name, order_id=original.order_id, confirmation_id=confirmation_id,
        reason=body.reason))
    return confirmation_out(await reads.reversal_of(service.store, original.order_id,
                                                    confirmation_id))


class FlushOut(BaseModel):
    """The feed's last cursor after the flush."""

    last_cursor: int


@router.post("/flush", response_model=FlushOut, summary="Confirm everything not confirmed yet")
async def flush_confirmations(service: ServiceDep, principal: SupervisorDep) -> FlushOut:
    """Write confirmations now for every quantity not confirmed yet (end of shift, a drain)."""
    assert service.dispatcher is not None
    await submit(service, ConfirmationsDue(
        event_id=single_use_id(), source=f"api:{principal.role}:{principal.token_id}",
        actor=principal.name, force=True))
    return FlushOut(last_cursor=service.dispatcher.last_cursor)


def delivery_out(row: Any) -> DeliveryOut:
    """The public view of a delivery row joined with its confirmation."""
    return DeliveryOut(
        confirmation_id=row.confirmation_id, cursor=row.cursor, order_id=row.order_id,
        operation=row.op_no, work_center=row.work_center, yield_qty=row.yield_qty,
        scrap=row.scrap_qty, rework=row.rework_qty, reverses=row.reverses, state=row.state,
        message=row.message, http_status=row.http_status, attempts=row.attempts,
        updated_at=row.updated_at, resolution=row.resolution, resolved_by=row.resolved_by,
        resolved_at=row.resolved_at, resolution_reason=row.resolution_reason)


@router.get("/deliveries", response_model=DeliveryList)
async def list_deliveries(
    service: ServiceDep, principal: ErpOrSupervisorDep,
    state: DeliveryState = "error",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Confirmations by delivery state, in cursor order; `error`: refused by the ERP and
    waiting for a supervisor to retry or skip them."""
    assert service.store is not None
    rows = await feed.deliveries(service.store, state=state, limit=limit)
    out = [delivery_out(r) for r in rows]
    return DeliveryList(deliveries=out, count=len(out))


async def _resolve(service: ServiceDep, principal: Principal, confirmation_id: str,
                   resolution: str, reason: str | None) -> DeliveryOut:
    assert service.store is not None
    try:
        row = await feed.resolve(service.store, confirmation_id, resolution,
                                 by=principal.name, reason=reason)
    except feed.NotInError as err:
        code = (status.HTTP_404_NOT_FOUND if err.state == "unknown"
                else status.HTTP_409_CONFLICT)
        raise HTTPException(code, {"code": "not_in_delivery_error", "message": str(err)}) from err
    if service.push is not None:
        service.push.wake()
    return delivery_out(row)


_RESOLVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown confirmation"},
    409: {"description": "the confirmation is not in delivery error"},
}


@router.post("/{confirmation_id}/retry", response_model=DeliveryOut,
             responses=_RESOLVE_RESPONSES)
async def retry_delivery(confirmation_id: str, service: ServiceDep, principal: SupervisorDep,
                         body: Annotated[RetryIn | None, Body()] = None) -> DeliveryOut:
    """Send a confirmation the ERP refused again (push mode); its work order's later
    confirmations follow once it is delivered."""
    if service.settings.erp.mode != "push":
        raise HTTPException(status.HTTP_409_CONFLICT, {
            "code": "not_push_mode",
            "message": "retry sends a confirmation again in push mode; in pull mode the ERP "
                       "reads it from the feed and acks it posted once it is booked"})
    return await _resolve(service, principal, confirmation_id, "retry",
                          body.reason if body else None)


@router.post("/{confirmation_id}/skip", response_model=DeliveryOut,
             responses=_RESOLVE_RESPONSES)
async def skip_delivery(confirmation_id: str, service: ServiceDep, principal: SupervisorDep,
                        body: SkipIn) -> DeliveryOut:
    """Give up delivering a confirmation the ERP refused (with a reason); its work order's
    later confirmations go on without it."""
    return await _resolve(service, principal, confirmation_id, "skip", body.reason)
