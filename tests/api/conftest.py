"""A running service (real uvicorn on a free port) and tokens for every role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.store.tokens import Role, create_token
from tests.servers import free_port


def plant(db_url: str, **extra: Any) -> dict[str, Any]:
    """A small plant file as a dict."""
    doc: dict[str, Any] = {
        "site": "test",
        "database": {"url": db_url},
        "api": {"host": "127.0.0.1", "port": free_port(), "max_body_bytes": 65536},
        "production": {
            "tolerance_pct": 5,
            "confirmation": {"on_report": True, "on_complete": True, "every_units": 10},
            "scrap_reasons": [{"code": "dent"}, {"code": "scratch"}, {"code": "machine"}],
            "downtime_reasons": [{"code": "material"}, {"code": "tooling"}],
        },
        "work_centers": [{"id": "PRESS-01", "counting": "machine"},
                         {"id": "CNC-02", "counting": "machine"},
                         {"id": "ASSY-03", "counting": "operator"}],
    }
    doc.update(extra)
    return doc


@dataclass
class Running:
    """The service under test, its base URL and a token per role."""

    service: EdgeService
    url: str
    tokens: dict[str, str]

    def client(self, role: str | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kw)


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[Running]:
    """The service on SQLite and, as a second run of every test, on PostgreSQL."""
    settings = parse_settings(plant(db_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {
        "erp": await create_token(service.store, Role.ERP, "erp"),
        "supervisor": await create_token(service.store, Role.SUPERVISOR, "sue"),
        "admin": await create_token(service.store, Role.ADMIN, "ada"),
        "operator": await create_token(service.store, Role.OPERATOR, "press-tablet", ["PRESS-01"]),
        "assy": await create_token(service.store, Role.OPERATOR, "assy-tablet", ["ASSY-03"]),
    }
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens)
    finally:
        await service.stop()
