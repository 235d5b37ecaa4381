"""OEE and downtimes (issue 11): figures per shift/day/hour, the downtime list, reasons.

GET /api/v1/oee and GET /api/v1/downtimes are for any authenticated caller; a supervisor sets
or changes a downtime's reason with PUT /api/v1/downtimes/{id}/reason up to 24 h after it
ended (operators give reasons at their station). A reason change is an event in the log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from mes_edge.api.deps import AnyRoleDep, ServiceDep, SupervisorDep
from mes_edge.api.shift_view import shift_views
from mes_edge.api.submit import event_id_for, submit
from mes_edge.domain.events import DowntimeReasonGiven
from mes_edge.domain.progress import StateSpan, category
from mes_edge.store.oee_report import ReportError, report
from mes_edge.store.progress import span_by_downtime, spans
from mes_edge.store.repository import Store

router = APIRouter(prefix="/api/v1", tags=["progress (OEE, downtimes)"])

NO_REASON = {"en": "no reason given", "zh-CN": "未填写原因"}
REASON_WINDOW = timedelta(hours=24)


def _bad(code: str, message: str, http: int = status.HTTP_422_UNPROCESSABLE_CONTENT
         ) -> HTTPException:
    return HTTPException(http, {"code": code, "message": message})


def _store(service: ServiceDep) -> Store:
    if service.store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            {"code": "storage_unavailable", "message": "the store is not open"})
    return service.store


def _work_centers(service: ServiceDep, work_center: str | None) -> list[str]:
    known = [w.id for w in service.settings.work_centers]
    if work_center is None:
        return known
    if work_center not in known:
        raise _bad("unknown_work_center", f"unknown work center {work_center!r}",
                   status.HTTP_404_NOT_FOUND)
    return [work_center]


@router.get("/oee", operation_id="getOee")
async def get_oee(
    service: ServiceDep, _: AnyRoleDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
    work_center: str | None = None,
    by: Literal["shift", "day", "hour"] | None = None,
) -> dict[str, Any]:
    """OEE (A, P, Q in %), the six big losses in minutes, flags, planned and run times, counts.

    Per work center (or, without `work_center`, each work center and the plant summed), for the
    span [from, to) or per shift / day / hour inside it. Bounds on 15-minute boundaries.
    """
    wcs = _work_centers(service, work_center)
    now = datetime.now(UTC)
    try:
        rows = await report(_store(service), service.progress, wcs, start, end, by, now)
        plant = (await report(_store(service), service.progress, wcs, start, end, by, now,
                              plant=True)) if work_center is None else []
    except ReportError as err:
        raise _bad("invalid", str(err)) from err
    return {"mode": service.progress.mode, "rows": rows, "plant": plant}


def _reason_text(service: ServiceDep, code: str | None) -> dict[str, str]:
    if code is None:
        return NO_REASON
    for r in service.settings.production.downtime_reasons:
        if r.code == code:
            return dict(r.text) or {"en": code}
    return {"en": code}


def downtime_out(service: ServiceDep, s: StateSpan, now: datetime) -> dict[str, Any]:
    """A stop of the timeline as the API shows it."""
    plan = service.progress.plan(s.work_center)
    length = (s.end or now) - s.start
    loss = service.progress.loss_of(s.reason)
    micro = category(s.state, loss, length, plan.micro_stop_s) == "micro_us"
    # A stop wholly outside planned busy time (a break, no shift) costs nothing: no reason.
    in_plan = bool(service.progress.planned(s.work_center, s.start, s.end or now))
    cat = next((r.category for r in service.settings.production.downtime_reasons
                if r.code == s.reason), None)
    return {
        "id": s.downtime_id, "work_center": s.work_center, "state": s.state.value,
        "start": s.start, "end": s.end, "open": s.end is None,
        "duration_s": round(length.total_seconds(), 3), "micro_stop": micro,
        "reason": s.reason, "reason_text": _reason_text(service, s.reason),
        "category": cat, "loss": loss.value if loss else None, "reason_by": s.reason_by,
        "in_planned_time": in_plan,
        "reason_missing": s.reason is None and not micro and in_plan, "source": s.source,
    }


@router.get("/downtimes", operation_id="listDowntimes")
async def list_downtimes(
    service: ServiceDep, _: AnyRoleDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
    work_center: str | None = None,
    reason_missing: bool | None = None,
) -> dict[str, Any]:
    """Stops of the timeline overlapping [from, to), oldest first; micro-stops (`micro_stop`)
    and stops wholly outside planned time never need a reason; `reason_missing=true` keeps
    the stops that need one and have none."""
    if not start < end or end - start > timedelta(days=400):
        raise _bad("invalid", "'from' must be before 'to', at most 400 days apart")
    now = datetime.now(UTC)
    found = [downtime_out(service, s, now) for s in await spans(
        _store(service), start, end, work_centers=_work_centers(service, work_center),
        stops_only=True)]
    if reason_missing is not None:
        found = [d for d in found if d["reason_missing"] == reason_missing]
    return {"downtimes": found}


class DowntimeReasonSetIn(BaseModel):
    """The reason code (one of production.downtime_reasons)."""

    reason: str = Field(min_length=1, max_length=200)


@router.put("/downtimes/{downtime_id}/reason", operation_id="setDowntimeReason")
async def set_reason(downtime_id: str, body: DowntimeReasonSetIn, request: Request,
                     service: ServiceDep, p: SupervisorDep) -> dict[str, Any]:
    """Set or change a downtime's reason (supervisor, up to 24 h after the downtime ended)."""
    span = await span_by_downtime(_store(service), downtime_id)
    if span is None:
        raise _bad("unknown_downtime", f"no downtime {downtime_id!r}", status.HTTP_404_NOT_FOUND)
    now = datetime.now(UTC)
    if span.end is not None and now - span.end > REASON_WINDOW:
        raise _bad("bad_state", "the downtime ended more than 24 h ago: its reason can no "
                   "longer be changed", status.HTTP_409_CONFLICT)
    await submit(service, DowntimeReasonGiven(
        event_id=event_id_for(request, f"downtime-reason:{downtime_id}"),
        source=f"api:{p.role}:{p.token_id}", actor=p.name,
        work_center=span.work_center, reason=body.reason, downtime_id=downtime_id))
    updated = await span_by_downtime(_store(service), downtime_id)
    assert updated is not None
    return downtime_out(service, updated, now)


def _json(body: dict[str, Any]) -> Response:
    """A large JSON answer written by orjson: FastAPI's encoder walks every value in Python,
    seconds for a board's day of timelines (same JSON: ISO 8601 times, UTC offsets kept)."""
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
                    media_type="application/json")


@router.get("/progress/shift", operation_id="getShiftProgress", response_class=Response,
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}},
                             "description": "the running shift per work center"}})
async def shift_progress(
    service: ServiceDep, _: AnyRoleDep, work_center: str | None = None,
    resolution_s: Annotated[float | None, Query(gt=0, le=86400)] = None,
) -> Response:
    """Per work center, the running shift so far (the local day without a calendar; the last
    shift when none runs): A / P / Q / OEE, the state timeline with reasons, downtime minutes,
    micro-stops and the stops' minutes per reason, largest first (Pareto). For the board and
    the station tablet.

    `resolution_s` (the seconds one pixel of the strip shows) merges each timeline for drawing:
    runs of spans shorter than it become segments at least that long, coloured by the state
    that takes most of their time, with `merged` (spans), `stops`, `micro_stops` and `seconds`
    per state; longer spans stay as they are. The figures, downtime minutes and Pareto are the
    same with or without it. Without it: every span."""
    names = {w.id: w.name or w.id for w in service.settings.work_centers}
    now = datetime.now(UTC)
    views = await shift_views(
        _store(service), service.progress,
        [(w, names[w]) for w in _work_centers(service, work_center)], now,
        lambda s, at: downtime_out(service, s, at),
        None if resolution_s is None else timedelta(seconds=resolution_s))
    return _json({"now": now, "mode": service.progress.mode, "work_centers": views})


@router.get("/downtime-reasons", operation_id="getDowntimeReasonTree")
async def reason_tree(service: ServiceDep, _: AnyRoleDep) -> dict[str, Any]:
    """The downtime reason tree: categories (text, loss bucket) with their reasons, then the
    reasons of no category (loss bucket other), texts per language from the plant file."""
    production = service.settings.production
    reasons = [{"code": r.code, "text": dict(r.text), "category": r.category}
               for r in production.downtime_reasons]
    return {
        "categories": [{"code": c.code, "text": dict(c.text), "loss": c.loss,
                        "reasons": [r for r in reasons if r["category"] == c.code]}
                       for c in production.downtime_categories],
        "uncategorised": [r for r in reasons if r["category"] is None],
    }
