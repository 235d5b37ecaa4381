"""The optional order pull adapter against the ERP simulator's released-orders URL."""

from __future__ import annotations

import asyncio

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.store.tables import rejected_events
from simulators.erp import ErpSim
from tests.api.conftest import plant
from tests.erp.test_push import wait_until

pytestmark = pytest.mark.timeout(60)


async def test_pulls_released_orders_and_new_revisions(sqlite_url: str) -> None:
    erp = ErpSim("http://unused", "unused", mode="push")
    await erp.start()
    erp.offer_order("PULL-1", quantity=30, operations=[("0010", "PRESS-01"),
                                                       ("0020", "ASSY-03")])
    erp.offer_order("PULL-BAD", quantity=5, operations=[("0010", "MARS-9")])
    erp.offered["PULL-WORSE"] = {"order_id": "PULL-WORSE", "revision": 1, "quantity": -1}
    doc = plant(sqlite_url, erp={"orders_url": erp.orders_url, "orders_poll_seconds": 1})
    service = EdgeService(parse_settings(doc), api_factory=create_api, serve_api=False)
    await service.start()
    d = service.dispatcher
    assert d is not None and service.store is not None and service.order_pull is not None
    try:
        await wait_until(lambda: d.state.order("PULL-1") is not None, 15, "the pulled order")
        order = d.state.order("PULL-1")
        assert order is not None and order.quantity == 30 and len(order.operations) == 2
        erp.offer_order("PULL-1", quantity=40, operations=[("0010", "PRESS-01")], revision=2)
        await wait_until(lambda: d.state.order("PULL-1").revision == 2, 15, "revision 2")  # type: ignore[union-attr]
        await asyncio.sleep(2.5)  # several more polls
        assert service.order_pull.polls >= 3
        rows = await service.store.rows(rejected_events)
        reasons = sorted(r.reason_code for r in rows)
        # each bad order is recorded once, not once per poll
        assert reasons == ["invalid", "unknown_work_center"], [r.reason for r in rows]
        worse = next(r for r in rows if r.reason_code == "invalid")
        assert "PULL-WORSE" in worse.reason and "Field required" in worse.reason
    finally:
        await service.stop()
        await erp.close()
