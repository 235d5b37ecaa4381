"""Push mode: an ERP outage during production loses nothing and keeps order per work order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from mes_edge.store.tables import confirmations
from simulators.erp import ErpSim
from tests.api.conftest import plant

pytestmark = pytest.mark.timeout(120)


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_erp_outage_then_everything_exactly_once_in_order(sqlite_url: str) -> None:
    erp = ErpSim("http://unused", "unused", mode="push")
    await erp.start()
    settings = parse_settings(plant(sqlite_url, erp={"mode": "push", "push_url": erp.push_url}))
    service = EdgeService(settings, api_factory=create_api, serve_api=False)
    await service.start()
    d = service.dispatcher
    assert d is not None and service.store is not None and service.push is not None
    try:
        from tests.factory import order

        for oid in ("P-1", "P-2"):
            await d.process(order(oid, qty=1000, wcs=("PRESS-01",)))
        n = 0

        async def produce(count: int) -> None:
            nonlocal n
            for _ in range(count):
                for oid in ("P-1", "P-2"):
                    n += 1
                    await d.process(OperationCommand(
                        event_id=f"start-{oid}-{n}", work_center="PRESS-01",
                        action=OperationAction.START, order_id=oid, op_no="0010"))
                    await d.process(QuantityReported(event_id=f"q-{n}", work_center="PRESS-01",
                                                     by=CountingSource.MACHINE, good=5))
                    await d.process(OperationCommand(
                        event_id=f"pause-{oid}-{n}", work_center="PRESS-01",
                        action=OperationAction.PAUSE))

        await produce(4)  # 2 orders x 4 x 5 = 40 units: 4 confirmations
        await wait_until(lambda: len(erp.received.by_id) == 4, 20, "first deliveries")
        erp.set_available(False)  # the ERP answers 503
        await produce(6)
        await asyncio.sleep(1.0)
        await erp.stop_receiver()  # ... then is gone altogether
        await produce(6)
        await asyncio.sleep(1.0)
        assert service.push.failures > 0
        erp.set_available(True)
        await erp.start_receiver()
        rows = await service.store.rows(confirmations, order_by=[confirmations.c.cursor])
        expected = {r.confirmation_id for r in rows}
        await wait_until(lambda: set(erp.received.by_id) == expected, 60, "all after the outage")
        assert erp.received.order_violations == []
        totals = erp.totals_by_order()
        assert totals["P-1"]["good"] == totals["P-2"]["good"] == 16 * 5
        assert len(expected) == 16
    finally:
        await service.stop()
        await erp.close()
