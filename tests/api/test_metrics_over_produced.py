"""/metrics' over-production gauge through HTTP (issue 14): kept by the WIP index, so a scrape
walks no order, and exact: counted beyond plan + tolerance on open operations, per work center,
gone once the operation completes; a restart rebuilds it from the database."""

from __future__ import annotations

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from tests.api.conftest import Running, plant
from tests.api.test_erp_orders import ORDER


def gauge(text: str, work_center: str) -> float:
    prefix = f'mes_edge_over_produced_units{{work_center="{work_center}"}} '
    [line] = [x for x in text.splitlines() if x.startswith(prefix)]
    return float(line[len(prefix):])


async def count(r: Running, order: str, good: int, tag: str) -> None:
    d = r.service.dispatcher
    assert d is not None
    await d.process(QuantityReported(event_id=f"c-{order}-{tag}", work_center="PRESS-01",
                                     by=CountingSource.MACHINE, good=good))


async def test_over_produced_gauge_is_exact(running: Running, db_url: str) -> None:
    d = running.service.dispatcher
    assert d is not None
    small = {**ORDER, "quantity": 20}  # 20 planned, 5 % tolerance: 21 allowed
    async with running.client("erp") as erp:
        for oid in ("OV-1", "OV-2"):
            assert (await erp.put(f"/api/v1/work-orders/{oid}", json=small)).status_code == 201
    async with running.client() as c:
        assert gauge((await c.get("/metrics")).text, "PRESS-01") == 0
        await d.process(OperationCommand(event_id="s1", work_center="PRESS-01",
                                         action=OperationAction.START, order_id="OV-1",
                                         op_no="0010"))
        await count(running, "OV-1", 25, "a")
        text = (await c.get("/metrics")).text
        assert gauge(text, "PRESS-01") == 4 and gauge(text, "CNC-02") == 0
        await count(running, "OV-1", 3, "b")
        assert gauge((await c.get("/metrics")).text, "PRESS-01") == 7
        op = d.state.order("OV-1").operations[0]  # type: ignore[union-attr]
        assert op.over_produced == 7  # the gauge is the operation's own flag
        await d.process(OperationCommand(event_id="x1", work_center="PRESS-01",
                                         action=OperationAction.COMPLETE, order_id="OV-1",
                                         op_no="0010"))
        assert gauge((await c.get("/metrics")).text, "PRESS-01") == 0  # no longer open
        await d.process(OperationCommand(event_id="s2", work_center="PRESS-01",
                                         action=OperationAction.START, order_id="OV-2",
                                         op_no="0010"))
        await count(running, "OV-2", 30, "a")
        assert gauge((await c.get("/metrics")).text, "PRESS-01") == 9
    # a restart loads the orders and re-indexes them: the same figure
    await running.service.stop()
    doc = plant(db_url)
    doc["api"]["port"] = running.service.settings.api.port
    again = EdgeService(parse_settings(doc), api_factory=create_api)
    await again.start()
    try:
        async with running.client() as c:
            assert gauge((await c.get("/metrics")).text, "PRESS-01") == 9
    finally:
        await again.stop()
