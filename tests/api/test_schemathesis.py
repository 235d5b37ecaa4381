"""Property-based API tests: schemathesis generates requests for every documented endpoint from
/openapi.json of a running service; no response may be a 5xx and every documented response must
match its schema.

The service runs on its own event loop in a thread: schemathesis calls it synchronously over real
HTTP on 127.0.0.1, which would block an event loop shared with the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.contracts.erp import WorkOrderIn
from mes_edge.domain import (
    MachineState,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    OrderReceived,
)
from mes_edge.store.tokens import Role, create_token, upsert_operator
from tests.api.conftest import plant
from tests.api.test_operator import ORDER

EXAMPLES_PER_OPERATION = 15
pytestmark = pytest.mark.timeout(180)


@dataclass
class ThreadedService:
    """An EdgeService running on its own loop in a daemon thread, seeded with some WIP."""

    settings_doc: dict[str, Any]
    url: str = ""
    token: str = ""

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="service-under-test", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # reported to the test thread
            self._error = err
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        settings_ = parse_settings(self.settings_doc)
        service = EdgeService(settings_, api_factory=create_api)
        await service.start()
        try:
            assert service.store is not None and service.dispatcher is not None
            self.token = await create_token(service.store, Role.ADMIN, "fuzzer")
            await upsert_operator(service.store, "B-1", "Ann", "1234", [])
            self.url = f"http://127.0.0.1:{settings_.api.port}"
            await _seed(service)
            self._ready.set()
            await self._stop.wait()
        finally:
            await service.stop()

    def __enter__(self) -> ThreadedService:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError("the service did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


async def _seed(service: EdgeService) -> None:
    """Some real orders, a running operation and a downtime, so reads have something to show."""
    d = service.dispatcher
    assert d is not None
    for order_id in ("WO-1", "WO-2"):
        spec = WorkOrderIn.model_validate(ORDER).to_spec(order_id)
        await d.process(OrderReceived(event_id=f"seed-{order_id}", spec=spec))
    await d.process(OperationCommand(event_id="seed-start", work_center="ASSY-03",
                                     action=OperationAction.START, order_id="WO-1", op_no="0010"))
    for i, state in enumerate((MachineState.RUNNING, MachineState.DOWN)):
        await d.process(MachineStateChanged(event_id=f"seed-m{i}", work_center="PRESS-01",
                                            state=state))


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedService]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "mes.db"
    with ThreadedService(plant(f"sqlite+aiosqlite:///{db}")) as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(service_url: ThreadedService) -> Any:
    return schemathesis.openapi.from_url(f"{service_url.url}/openapi.json")


# The live streams never end by themselves: tests/api/test_operator.py reads them.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r".*/events$")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms(case: Any, service_url: ThreadedService) -> None:
    """No 5xx; documented responses match their schema and content type."""
    response = case.call(base_url=service_url.url, timeout=20,
                         headers={"Authorization": f"Bearer {service_url.token}"})
    case.validate_response(response, checks=[
        not_a_server_error, response_schema_conformance,
        content_type_conformance])
