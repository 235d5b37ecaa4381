"""The FastAPI application: built from a running service, never an import-time global."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from mes_edge.api import confirmations, health, orders
from mes_edge.api.limits import BodyLimit
from mes_edge.api.metrics import build_registry

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService


def create_api(service: EdgeService) -> FastAPI:
    """The HTTP API of one service instance."""
    app = FastAPI(title="mes-edge", version="0.1.0",
                  description="Shop-floor MES edge service: ERP, operator and health API.")
    app.state.service = service
    app.state.registry = build_registry(service)
    app.state.token_cache = {}
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(confirmations.router)
    app.add_middleware(BodyLimit, max_bytes=service.settings.api.max_body_bytes)
    return app
