"""ERP endpoints for work orders: import (JSON or B2MML), read with WIP, hold/release/cancel."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, ValidationError

from mes_edge.api.deps import ErpDep, ErpOrSupervisorDep, Principal, ServiceDep
from mes_edge.api.schemas import ReasonIn, WorkOrderList, WorkOrderOut, order_out
from mes_edge.api.submit import submit
from mes_edge.contracts.erp import WorkOrderIn
from mes_edge.dispatcher import Status
from mes_edge.domain import (
    OrderAction,
    OrderCommand,
    OrderReceived,
    OrderSpec,
    OrderStatus,
    single_use_id,
)
from mes_edge.store import order_list, reads

router = APIRouter(prefix="/api/v1/work-orders", tags=["work orders (ERP)"])

XML_TYPES = ("application/xml", "text/xml")


def _source(p: Principal) -> dict[str, Any]:
    return {"event_id": single_use_id(), "source": f"api:{p.role}:{p.token_id}",
            "actor": p.name}


async def _spec_from_xml(raw: bytes, order_id: str) -> OrderSpec:
    from mes_edge.erp.b2mml import B2mmlError, parse_operations_schedule

    try:
        specs = await asyncio.to_thread(parse_operations_schedule, raw)  # CPU-bound: off the loop
    except B2mmlError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["body", p.location], "msg": p.message, "line": p.line}
            for p in err.problems]) from err
    matching = [s for s in specs if s.order_id == order_id]
    if len(matching) != 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "loc": ["body", "OperationsRequest", "ID"],
            "msg": f"the document must hold exactly one OperationsRequest with ID {order_id}"}])
    return matching[0]


@router.put(
    "/{order_id}", response_model=WorkOrderOut,
    responses={200: {"description": "the same revision again (nothing changed), or a newer "
                                    "one applied"},
               201: {"model": WorkOrderOut, "description": "the order was created"},
               409: {"description": "an older revision than the one the MES has"},
               422: {"description": "invalid order: the path of every bad field"}},
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/WorkOrderIn"}},
        "application/xml": {"schema": {"type": "string",
                                       "description": "B2MML V0700 ProcessOperationsSchedule"}},
    }, "required": True}},
)
async def put_work_order(order_id: str, request: Request, response: Response, service: ServiceDep,
                         principal: ErpDep) -> WorkOrderOut:
    """Create or change a work order. The same revision again changes nothing; an older one is
    refused (409); a newer one applies to what has not started and puts a started order on
    hold with the reason."""
    _check_id(order_id)
    raw = await request.body()
    if request.headers.get("content-type", "").split(";")[0].strip() in XML_TYPES:
        spec = await _spec_from_xml(raw, order_id)
    else:
        try:
            body = WorkOrderIn.model_validate_json(raw)
        except ValidationError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in err.errors(include_url=False, include_input=False)]) from err
        spec = body.to_spec(order_id)
    assert service.dispatcher is not None
    existed = service.dispatcher.state.order(order_id) is not None
    outcome = await submit(service, OrderReceived(spec=spec, **_source(principal)))
    order = service.dispatcher.state.order(order_id)
    assert order is not None
    if not existed and outcome.status == Status.ACCEPTED:
        response.status_code = status.HTTP_201_CREATED
    return order_out(order)


def _check_id(order_id: str) -> None:
    if not order_id or len(order_id) > 64 or any(c in order_id for c in " \t\r\n#?"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["path", "order_id"], "msg": "invalid order id"}])


@router.get("/{order_id}", response_model=WorkOrderOut)
async def get_work_order(order_id: str, service: ServiceDep,
                         principal: ErpOrSupervisorDep) -> WorkOrderOut:
    """The order with per-operation quantities, state, actual start and projected finish."""
    assert service.dispatcher is not None
    order = service.dispatcher.state.order(order_id)
    if order is None and service.store is not None:
        # Closed and cancelled orders leave memory after history.evict_closed_after_s; their
        # history stays in the database and is served from there.
        order = await reads.work_order(service.store, order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown work order {order_id}")
    return order_out(order)


@router.get("", response_model=WorkOrderList,
            responses={422: {"description": "invalid filter, or a `before` cursor that is not "
                                            "a `next_cursor` of this list"}})
async def list_work_orders(
    service: ServiceDep, principal: ErpOrSupervisorDep,
    status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    changed_since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str | None, Query(
        max_length=order_list.CURSOR_MAX,
        description="the `next_cursor` of the previous page: continue with older changes")] = None,
) -> WorkOrderList:
    """Orders filtered by status and by last change, most recently changed first, paged with
    `before` = the previous page's `next_cursor`. Served from the database: closed and cancelled
    orders that left the service's memory are listed too, and the cost does not grow with the
    number of orders."""
    assert service.store is not None
    try:
        page = await order_list.list_orders(
            service.store, statuses=[s.value for s in status_] if status_ else None,
            changed_since=changed_since, limit=limit, before=before)
    except order_list.BadCursor as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
            {"loc": ["query", "before"], "msg": str(err), "type": "value_error"}]) from err
    out = [order_out(o) for o in page.orders]
    return WorkOrderList(work_orders=out, count=len(out), next_cursor=page.next_cursor,
                         has_more=page.next_cursor is not None)


async def _command(order_id: str, action: OrderAction, body: ReasonIn | None,
                   service: ServiceDep, principal: Principal) -> WorkOrderOut:
    reason = body.reason if body else None
    await submit(service, OrderCommand(order_id=order_id, action=action, reason=reason,
                                       **_source(principal)))
    assert service.dispatcher is not None
    order = service.dispatcher.state.order(order_id)
    assert order is not None
    return order_out(order)


@router.post("/{order_id}/hold", response_model=WorkOrderOut)
async def hold(order_id: str, service: ServiceDep, principal: ErpOrSupervisorDep,
               body: Annotated[ReasonIn | None, Body()] = None) -> WorkOrderOut:
    """Put the order on hold: running operations pause, no report is accepted."""
    return await _command(order_id, OrderAction.HOLD, body, service, principal)


@router.post("/{order_id}/release", response_model=WorkOrderOut)
async def release(order_id: str, service: ServiceDep, principal: ErpOrSupervisorDep,
                  body: Annotated[ReasonIn | None, Body()] = None) -> WorkOrderOut:
    """Release a planned order, or one on hold."""
    return await _command(order_id, OrderAction.RELEASE, body, service, principal)


@router.post("/{order_id}/cancel", response_model=WorkOrderOut)
async def cancel(order_id: str, service: ServiceDep, principal: ErpOrSupervisorDep,
                 body: Annotated[ReasonIn | None, Body()] = None) -> WorkOrderOut:
    """Cancel the order; what a started order already made is confirmed first."""
    return await _command(order_id, OrderAction.CANCEL, body, service, principal)


@router.post("/{order_id}/close", response_model=WorkOrderOut)
async def close(order_id: str, service: ServiceDep, principal: ErpOrSupervisorDep,
                body: Annotated[ReasonIn | None, Body()] = None) -> WorkOrderOut:
    """Close a completed or cancelled order."""
    return await _command(order_id, OrderAction.CLOSE, body, service, principal)
