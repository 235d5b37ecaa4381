"""/healthz, /readyz and /metrics through HTTP."""

from __future__ import annotations

from mes_edge.domain import CountingSource, QuantityReported
from tests.api.conftest import Running


async def test_healthz_readyz_metrics(running: Running) -> None:
    async with running.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok" and ready.json()["status"] == "ready"
        d = running.service.dispatcher
        assert d is not None
        await d.process(QuantityReported(event_id="m1", work_center="ASSY-03",
                                         by=CountingSource.OPERATOR, good=1))  # refused: no op
        await d.process(QuantityReported(event_id="m2", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=2))  # a fact: kept
        text = (await c.get("/metrics")).text
        assert 'mes_edge_events_total{outcome="rejected"} 1.0' in text
        assert 'mes_edge_unassigned_units{kind="good",work_center="PRESS-01"} 2.0' in text
        assert "mes_edge_storage_up 1.0" in text and "mes_edge_storage_outage_seconds" in text
        assert "mes_edge_queue_depth" in text


async def test_readyz_is_503_when_the_writer_stopped(running: Running) -> None:
    d = running.service.dispatcher
    assert d is not None
    await d.stop()
    async with running.client() as c:
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["dispatcher"]["running"] is False
        assert (await c.get("/healthz")).status_code == 200
