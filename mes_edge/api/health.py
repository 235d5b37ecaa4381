"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable; drivers' state")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and the dispatcher runs; drivers are reported, not required
    (a dead PLC must not take the tablets down)."""
    service = request.app.state.service
    body: dict[str, Any] = {"database": "ok", "drivers": service.health()}
    ok = True
    try:
        async with service.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as err:  # any failure means: not ready
        body["database"] = f"error: {type(err).__name__}"
        ok = False
    d = service.dispatcher
    body["dispatcher"] = ({"running": d.running, "queue_depth": d.queue_depth,
                           "last_seq": d.last_seq} if d else None)
    ready = ok and d is not None and d.running
    body["status"] = "ready" if ready else "not ready"
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
