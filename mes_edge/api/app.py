"""The FastAPI application: built from a running service, never an import-time global."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mes_edge.api import board, confirmations, health, operator, orders, pages, sse
from mes_edge.api.limits import BodyLimit
from mes_edge.api.metrics import build_registry
from mes_edge.api.sse import LiveUpdates

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService

STATIC = Path(__file__).parent / "static"


def create_api(service: EdgeService) -> FastAPI:
    """The HTTP API of one service instance (with the tablet and board pages)."""
    app = FastAPI(title="mes-edge", version="0.1.0",
                  description="Shop-floor MES edge service: ERP, operator and health API.")
    app.state.service = service
    app.state.registry = build_registry(service)
    app.state.token_cache = {}
    app.state.operator_names = {}
    app.state.pin_failures = {}
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(confirmations.router)
    app.include_router(operator.router)
    app.include_router(board.router)
    app.include_router(sse.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=service.settings.api.max_body_bytes)
    if service.dispatcher is not None:
        live = LiveUpdates(service.dispatcher)
        live.start()
        # Open streams would keep uvicorn from stopping: end them first on shutdown.
        service.on_stop.append(live.close)
        app.state.live = live
    return app
