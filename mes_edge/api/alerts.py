"""Alerts: list them, acknowledge them (supervisors everywhere, operators at their stations)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from mes_edge.api.deps import AnyRoleDep, OperatorOrSupervisor, ServiceDep, check_work_center
from mes_edge.app.alerts import AlertEngine, alert_view
from mes_edge.store import alerts as alert_store
from mes_edge.store.tokens import Role, find_operator

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class SeverityChange(BaseModel):
    """One change of an active alert's severity."""

    at: datetime
    from_: Literal["info", "warning", "error"] = Field(alias="from")
    to: Literal["info", "warning", "error"]
    acked_by: str | None = Field(
        None, description="escalations: the acknowledgement it withdrew (who, when, where)")
    acked_at: datetime | None = None
    acked_station: str | None = None


class AlertOut(BaseModel):
    """One alert: raised while its condition holds, cleared when it ends."""

    id: int
    key: str = Field(description="dedupe key: kind and subject; one active alert per key")
    kind: Literal["order_late", "operation_stalled", "scrap_rate", "machine_down",
                  "reason_missing", "device_disconnected", "delivery_error",
                  "unassigned_production"]
    severity: Literal["info", "warning", "error"] = Field(
        description="the current severity: it follows the condition while the alert is active")
    raised_severity: Literal["info", "warning", "error"] = Field(
        description="the severity it was raised with")
    escalated_at: datetime | None = Field(
        None, description="when its severity last rose (escalated: the same alert, acknowledged "
        "again); null: never")
    severity_changes: list[SeverityChange] = Field(
        default_factory=list, description="every change of severity while active, oldest first "
        "(the first and the newest 19 are kept)")
    work_center: str | None
    subject: str | None = Field(description="what it is about: order, operation, device ...")
    message: str = Field(description="one line in English (the pages translate the kind)")
    details: dict[str, Any]
    raised_at: datetime
    cleared_at: datetime | None
    acked_by: str | None = Field(description="who acknowledged it: at a station tablet the "
                                 "operator signed in there (badge), else the token's name; "
                                 "null: not (or, once escalated, not again) acknowledged")
    acked_by_name: str | None = Field(
        None, description="the name of who acknowledged it: at a station the operator's name "
        "(of the badge in acked_by), else acked_by")
    acked_at: datetime | None
    acked_station: str | None = Field(
        None, description="the station (work center) whose tablet acknowledged it; null: "
        "acknowledged elsewhere (board, supervisor)")
    active: bool


async def _named(request: Request, service: Any,
                 views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The views with `acked_by_name`: a badge acknowledged at a station reads as the operator's
    name (cached like the station view's signed-in operator)."""
    names: dict[str, str] = request.app.state.operator_names
    for view in views:
        who = view["acked_by"]
        if who is not None and view["acked_station"] is not None and who not in names:
            found = await find_operator(service.store, who)
            names[who] = str(found["name"]) if found else who
        view["acked_by_name"] = names.get(who, who) if view["acked_station"] else who
    return views


def _engine(service: Any) -> AlertEngine:
    engine: AlertEngine | None = service.alerts
    if engine is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "alerts are not running")
    return engine


@router.get("/alerts", response_model=list[AlertOut])
async def list_alerts(
    request: Request, service: ServiceDep, principal: AnyRoleDep,
    active: Annotated[bool | None, Query(
        description="true: only active; false: only cleared; absent: both")] = None,
    work_center: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Alerts newest first. Operator tokens see only their work centers' alerts."""
    store = _engine(service).store
    if principal.role == Role.OPERATOR:
        if work_center is not None:
            check_work_center(principal, work_center)
        rows = await alert_store.listing(store, active_only=active, work_center=work_center,
                                         limit=limit)
        return await _named(request, service, [
            alert_view(r) for r in rows if r["work_center"] in principal.work_centers])
    rows = await alert_store.listing(store, active_only=active,
                                     work_center=work_center, limit=limit)
    return await _named(request, service, [alert_view(r) for r in rows])


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut,
             responses={404: {"description": "no such alert"}})
async def ack_alert(
    request: Request, alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)], service: ServiceDep,
    principal: OperatorOrSupervisor,
) -> dict[str, Any]:
    """Acknowledge an alert: who and when are recorded (the first acknowledgement counts; it
    stays active until its condition ends; an escalated alert is acknowledged again, the one it
    withdrew is kept in `severity_changes`). Operators only at their own work centers.

    An operator token is a station tablet: the alert's work center is the station, and who
    acknowledged is the operator signed in there (like the actor of the station's other writes;
    with nobody signed in, the token's name). Supervisors and admins are recorded by name."""
    engine = _engine(service)
    row = await alert_store.get(engine.store, alert_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    station: str | None = None
    by = principal.name
    if principal.role == Role.OPERATOR:
        station = row["work_center"]
        if station is None or not principal.may_act_on(station):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "operators acknowledge only the alerts of their work centers")
        by = service.operators.of(station) or principal.name
    done = await engine.acknowledge(alert_id, by, station=station)
    assert done is not None
    return (await _named(request, service, [alert_view(done)]))[0]
