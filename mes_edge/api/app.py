"""The FastAPI application: built from a running service, never an import-time global."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mes_edge.api import board, confirmations, health, operator, orders, pages, sse
from mes_edge.api.limits import BodyLimit
from mes_edge.api.metrics import build_registry
from mes_edge.api.sse import LiveUpdates

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService

STATIC = Path(__file__).parent / "static"
#: Swagger UI and ReDoc from an installed package (fastapi-offline, pinned), not a CDN: plants
#: are offline. Served under DOCS_ASSETS_URL by the app itself.
DOCS_ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
DOCS_ASSETS_URL = "/docs-assets"


def create_api(service: EdgeService) -> FastAPI:
    """The HTTP API of one service instance (with the tablet and board pages)."""
    app = FastAPI(title="mes-edge", version="0.1.0",
                  description="Shop-floor MES edge service: ERP, operator and health API.",
                  docs_url=None, redoc_url=None)
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
    add_offline_docs(app)
    app.add_middleware(BodyLimit, max_bytes=service.settings.api.max_body_bytes)
    if service.dispatcher is not None:
        live = LiveUpdates(service.dispatcher)
        live.start()
        # Open streams would keep uvicorn from stopping: end them first on shutdown.
        service.on_stop.append(live.close)
        app.state.live = live
    return app


def add_offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with every asset served by this app: no CDN, no fonts
    from elsewhere, no online validator badge."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{DOCS_ASSETS_URL}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon,
            oauth2_redirect_url=None, swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} - API",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js", redoc_favicon_url=favicon,
            with_google_fonts=False)
