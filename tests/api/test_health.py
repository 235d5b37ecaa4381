"""/healthz, /readyz and /metrics through HTTP."""

from __future__ import annotations

import asyncio

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


async def test_large_answers_are_gzipped_live_updates_are_not(running: Running) -> None:
    """Browsers ask for gzip: a board's timelines are megabytes of JSON. The live-update stream
    must not be compressed (a compressor buffers, and events would arrive late)."""
    async with running.client("supervisor") as c:
        big = await c.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert big.status_code == 200 and big.headers["content-encoding"] == "gzip"
        assert big.json()["openapi"]  # httpx decompressed it
        plain = await c.get("/openapi.json", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == big.json()
        small = await c.get("/healthz", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers  # below the minimum size
    async with running.client("operator") as c, asyncio.timeout(10):
        async with c.stream("GET", "/api/v1/stations/PRESS-01/events",
                            headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in resp.headers
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    break  # the first event arrives at once, uncompressed
