"""The FastAPI application: built from a running service, never an import-time global."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema

from mes_edge.api import (
    admin,
    alerts,
    board,
    confirmations,
    health,
    operator,
    orders,
    pages,
    production,
    progress,
    sse,
)
from mes_edge.api.limits import BodyLimit
from mes_edge.api.metrics import build_registry
from mes_edge.api.security import SecurityMiddleware
from mes_edge.api.sse import LiveUpdates
from mes_edge.contracts.erp import WorkOrderIn

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService

STATIC = Path(__file__).parent / "static"
#: Swagger UI and ReDoc from an installed package (fastapi-offline, pinned), not a CDN: plants
#: are offline. Served under DOCS_ASSETS_URL by the app itself.
DOCS_ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
DOCS_ASSETS_URL = "/docs-assets"

# -- the OpenAPI document (/openapi.json) -------------------------------------------------------

#: Operation ids for routes whose function name alone says too little; the others are the
#: function name in camelCase (put_work_order -> putWorkOrder). Generated clients use them.
OPERATION_IDS = {
    "hold": "holdWorkOrder", "release": "releaseWorkOrder", "cancel": "cancelWorkOrder",
    "close": "closeWorkOrder", "metrics": "getMetrics", "start": "startOperation",
    "pause": "pauseOperation", "resume": "resumeOperation", "complete": "completeOperation",
    "report": "reportQuantities", "downtime_reason": "giveDowntimeReason",
    "scan": "scanBarcode", "login": "loginOperator", "logout": "logoutOperator",
    "board": "getBoard", "rejected": "listRejectedEvents",
}
TAGS = [
    {"name": "work orders (ERP)", "description": "Orders in: JSON or B2MML V0700, revisions."},
    {"name": "confirmations (ERP)",
     "description": "Confirmations out: the pull feed, acks, reversals, push deliveries."},
    {"name": "station tablets (operators)", "description": "What a work-center terminal does."},
    {"name": "supervisor board", "description": "WIP, late and stalled work, rejections."},
    {"name": "alerts", "description": "Raised, cleared and acknowledged alerts."},
    {"name": "progress (OEE, downtimes)",
     "description": "OEE per shift, day or hour; downtimes and their reasons."},
    {"name": "production (supervisor)",
     "description": "Unassigned production of a work center: assign it or write it off."},
    {"name": "live updates (SSE)", "description": "Server-sent events for tablets and board."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "administration",
     "description": "Tokens and operators (admin), the audit trail (admin, supervisor)."},
]
SERVERS = [{"url": "/", "description": "this mes-edge instance (where the document is served)"}]


def operation_id(route: APIRoute) -> str:
    """Short, stable operation ids (FastAPI's default is name + path + method)."""
    if route.name in OPERATION_IDS:
        return OPERATION_IDS[route.name]
    first, *rest = route.name.split("_")
    return first + "".join(w.capitalize() for w in rest)


#: What a refused request carries besides FastAPI's list of validation errors: one refusal with
#: its machine-readable code, a sentence, and (for station writes) the numbers behind it.
REFUSAL_SCHEMA: dict[str, Any] = {
    "title": "Refusal", "type": "object", "required": ["detail"],
    "properties": {"detail": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "event_id": {"type": ["string", "null"]},
                       "details": {"type": "object"}},
        "additionalProperties": True}},
}


def _document_refusals(op: dict[str, Any]) -> None:
    """A 422 is either FastAPI's validation error list or one of our refusals: say both."""
    content = op.get("responses", {}).get("422", {}).get("content", {}).get("application/json")
    if content is None:
        return
    schema = content.get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        content["schema"] = {"anyOf": [schema, {"$ref": "#/components/schemas/Refusal"}]}


def describe_openapi(app: FastAPI) -> None:
    """Complete what FastAPI derives: servers, tags, the JSON body of PUT /work-orders (read by
    hand for JSON and XML, declared via openapi_extra), explicit `security: []` on public
    operations (those with a token get their schemes from the auth dependency)."""
    app.servers = SERVERS
    app.openapi_tags = TAGS
    app.license_info = {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        _, defs = models_json_schema([(WorkOrderIn, "validation")],
                                     ref_template="#/components/schemas/{model}")
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas.setdefault("Refusal", REFUSAL_SCHEMA)
        for operations in doc.get("paths", {}).values():
            for op in operations.values():
                _document_refusals(op)
                if op.setdefault("security", []):
                    op["responses"].setdefault("401", {"description": "no valid token"})
                    op["responses"].setdefault(
                        "403", {"description": "the token's role (or work center) may not"})
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def create_api(service: EdgeService) -> FastAPI:
    """The HTTP API of one service instance (with the tablet and board pages)."""
    app = FastAPI(title="mes-edge", version="0.1.0",
                  description="Shop-floor MES edge service: ERP, operator and health API.",
                  docs_url=None, redoc_url=None,
                  generate_unique_id_function=operation_id)
    app.state.service = service
    app.state.registry = build_registry(service)
    app.state.token_cache = {}
    app.state.operator_names = {}
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(confirmations.router)
    app.include_router(production.router)
    app.include_router(progress.router)
    app.include_router(operator.router)
    app.include_router(board.router)
    app.include_router(alerts.router)
    app.include_router(sse.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    describe_openapi(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_offline_docs(app)
    app.add_middleware(BodyLimit, max_bytes=service.settings.api.max_body_bytes)
    # A board's day of timelines is megabytes of JSON every refresh: compressed for clients
    # that ask (browsers do). Starlette leaves text/event-stream (live updates) alone.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=4)
    app.add_middleware(SecurityMiddleware, settings=service.settings)  # outermost (issue 12)
    if service.dispatcher is not None:
        live = LiveUpdates(service.dispatcher, max_per_token=service.settings.api.sse_per_token)
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
