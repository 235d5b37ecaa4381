"""The station view says how long the whole queue is (queue_total) next to its first 50, and the
queue endpoint pages through the rest: every queued operation exactly once (issue 14)."""

from __future__ import annotations

from mes_edge.api.station_views import STATION_QUEUE_SHOWN
from tests import factory as f
from tests.api.conftest import Running


async def test_queue_total_and_pages(running: Running) -> None:
    d = running.service.dispatcher
    assert d is not None
    for i in range(123):
        await d.process(f.order(f"Q-{i:03d}", qty=5, wcs=("PRESS-01",)))
    await d.process(f.start("Q-007", "0010", "PRESS-01"))
    async with running.client("operator") as c:
        st = (await c.get("/api/v1/stations/PRESS-01")).json()
        assert st["queue_total"] == 123 and len(st["queue"]) == STATION_QUEUE_SHOWN
        assert st["queue"][0]["order_id"] == "Q-007" == st["current"]["order_id"]  # runs first
        seen = [q["order_id"] for q in st["queue"]]
        offset = STATION_QUEUE_SHOWN
        while offset < st["queue_total"]:
            r = await c.get("/api/v1/stations/PRESS-01/queue",
                            params={"offset": offset, "limit": STATION_QUEUE_SHOWN})
            assert r.status_code == 200 and r.headers["X-Total-Count"] == "123"
            seen += [q["order_id"] for q in r.json()]
            offset += STATION_QUEUE_SHOWN
        assert len(seen) == 123 and set(seen) == {f"Q-{i:03d}" for i in range(123)}
        # the view's first 50 are the endpoint's first page
        first = (await c.get("/api/v1/stations/PRESS-01/queue")).json()
        assert [q["order_id"] for q in first] == seen[:STATION_QUEUE_SHOWN]
        # an empty work center: zero, nothing shown
        await d.process(f.order("C-1", qty=5, wcs=("CNC-02",)))
    async with running.client("supervisor") as c:
        cnc = (await c.get("/api/v1/stations/CNC-02")).json()
        assert cnc["queue_total"] == 1 and len(cnc["queue"]) == 1
        press = (await c.get("/api/v1/stations/PRESS-01")).json()
        assert press["queue_total"] == 123
        # a write answers with the station too, with the total
        r = await c.post("/api/v1/stations/PRESS-01/pause", json={})
        assert r.status_code == 200, r.text
        assert r.json()["station"]["queue_total"] == 123
