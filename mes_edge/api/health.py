"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mes_edge.store import reads

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


_READY_DOC = """Readiness for a load balancer, an orchestrator or a Docker `HEALTHCHECK`.

- **200** `{"status": "ready"}`: the database answers, the writer runs, storage is up, and every
  device driver, device loop and the MQTT connections are up.
- **503** `{"status": "degraded"}`: the service runs and takes writes, but some input or output
  is down; `problems` names each (`{"<driver or device>": "<why>"}`), e.g. a PLC unreachable, a
  device loop restarting after a crash, the broker away. A dead PLC does not stop the tablets,
  but it must not look healthy either.
- **503** `{"status": "not ready"}`: the database does not answer, the writer stopped, or the
  storage is in an outage (`storage` says why; events wait and are retried meanwhile).

The body always carries `database`, `storage`, `dispatcher`, `drivers` (per driver: state,
last error, counters and, for devices, whether the device loop runs) and `problems`.
`/healthz` answers 200 whenever the process serves requests (liveness)."""

_READY_EXAMPLE = {"status": "degraded", "database": "ok", "storage": "ok",
                  "problems": {"press-plc": "disconnected: cannot connect to 10.0.0.5:502"},
                  "dispatcher": {"running": True, "queue_depth": 0, "last_seq": 1043},
                  "drivers": {"press-plc": {"state": "disconnected"}}}


def _answer(example: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


@router.get("/readyz", summary="Ready, degraded (which parts are down and why) or not ready",
            description=_READY_DOC, response_class=JSONResponse, responses={
                200: {"description": "Ready: everything is up",
                      **_answer({**_READY_EXAMPLE, "status": "ready", "problems": {}})},
                503: {"description": "Degraded (some driver, device loop or MQTT link is down) "
                                     "or not ready (database, writer or storage)",
                      **_answer(_READY_EXAMPLE)}})
async def readyz(request: Request) -> JSONResponse:
    """See the description: 200 only when all is well, 503 otherwise, with the reasons."""
    service = request.app.state.service
    body: dict[str, Any] = {"database": "ok", "drivers": service.health()}
    ok = True
    try:
        async with asyncio.timeout(5.0):
            await reads.ping(service.store)
    except Exception as err:  # any failure means: not ready
        body["database"] = f"error: {type(err).__name__}"
        ok = False
    d = service.dispatcher
    body["dispatcher"] = ({"running": d.running, "queue_depth": d.queue_depth,
                           "last_seq": d.last_seq} if d else None)
    # The dispatcher reports a storage outage (commits failing, events waiting for retry).
    storage_down = bool(getattr(d, "storage_down", False))
    reason = getattr(d, "storage_reason", None) or getattr(d, "storage_error", None)
    body["storage"] = (f"down: {reason or 'commits fail'}"
                       if storage_down else "ok")
    problems: dict[str, str] = service.problems()
    body["problems"] = problems
    if not (ok and d is not None and d.running) or storage_down:
        body["status"] = "not ready"
    elif problems:
        body["status"] = "degraded"
    else:
        body["status"] = "ready"
    return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
