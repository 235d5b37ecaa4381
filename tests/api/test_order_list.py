"""GET /api/v1/work-orders served from the database (issue 14): orders that left memory are
listed, pages give every order exactly once, filters work; on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import OrderStatus
from mes_edge.store import BatchWrite
from mes_edge.store.order_list import decode_cursor, encode_cursor
from mes_edge.store.tokens import Role, create_token
from tests import factory as f
from tests.api.conftest import Running, plant
from tests.api.test_erp_orders import ORDER, start_and_count

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def evicting(db_url: str) -> AsyncIterator[Running]:
    """The API test service, with closed and cancelled orders leaving memory at once."""
    settings = parse_settings(plant(db_url, history={"evict_closed_after_s": 0}))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {"erp": await create_token(service.store, Role.ERP, "erp"),
              "supervisor": await create_token(service.store, Role.SUPERVISOR, "sue")}
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens)
    finally:
        await service.stop()


async def all_pages(c: httpx.AsyncClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every order of the list, page by page (bounded: a cursor that never ends fails)."""
    out: list[dict[str, Any]] = []
    before: str | None = None
    for _ in range(100):
        r = await c.get("/api/v1/work-orders",
                        params={**params, "limit": limit, **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["work_orders"]) <= limit
        assert body["has_more"] == (body["next_cursor"] is not None)
        out.extend(body["work_orders"])
        before = body["next_cursor"]
        if before is None:
            return out
        assert body["count"] == limit  # only the last page is short
    raise AssertionError("the list did not end")


async def test_an_evicted_order_is_listed(evicting: Running) -> None:
    d = evicting.service.dispatcher
    assert d is not None
    async with evicting.client("erp") as c:
        for oid in ("E-1", "E-2", "E-3"):
            assert (await c.put(f"/api/v1/work-orders/{oid}", json=ORDER)).status_code == 201
        r = await c.post("/api/v1/work-orders/E-2/cancel", json={"reason": "not needed"})
        assert r.status_code == 200, r.text
        assert d.evict_finished() == 1
        assert d.state.order("E-2") is None  # gone from memory, kept in the database

        body = (await c.get("/api/v1/work-orders")).json()
        # most recently changed first: the cancel is the newest change
        assert [o["order_id"] for o in body["work_orders"]] == ["E-2", "E-3", "E-1"]
        assert body["work_orders"][0]["status"] == "cancelled"
        assert body["work_orders"][0]["operations"][0]["status"] == "cancelled"
        assert body["has_more"] is False and body["next_cursor"] is None
        r = await c.get("/api/v1/work-orders", params={"status": "cancelled"})
        assert [o["order_id"] for o in r.json()["work_orders"]] == ["E-2"]
        # the same view of an order as GET /work-orders/{id}
        one = (await c.get("/api/v1/work-orders/E-2")).json()
        listed = body["work_orders"][0]
        assert {k: v for k, v in listed.items() if k != "operations"} == {
            k: v for k, v in one.items() if k != "operations"}


async def test_pages_give_every_order_once_and_filters_work(running: Running) -> None:
    d, store = running.service.dispatcher, running.service.store
    assert d is not None and store is not None
    # 23 orders received at the same instant (ties on updated_at, ordered by id) ...
    for i in range(23):
        assert (await d.process(f.order(f"T-{i:02d}", qty=10))).status.value == "accepted"
    # ... 6 later, over the API (now), two of which start and count
    async with running.client("erp") as c:
        for i in range(6):
            r = await c.put(f"/api/v1/work-orders/N-{i}", json=ORDER)
            assert r.status_code == 201
        await start_and_count(running, "N-1", 2)
        # two rows that carry no change time (written before orders had one): listed last
        base = d.state.order("T-00")
        assert base is not None
        for oid in ("Z-1", "Z-2"):
            ghost = dataclasses.replace(base, order_id=oid, updated_at=None)
            await store.write(BatchWrite(orders=[(ghost, 1)]))

        everything = await all_pages(c, 1000)
        ids = [o["order_id"] for o in everything]
        assert len(ids) == 31 and len(set(ids)) == 31
        # newest change first, ties by order id (descending), no change time last
        assert ids[:2] == ["N-1", "N-5"]
        assert ids[6:] == [f"T-{i:02d}" for i in reversed(range(23))] + ["Z-2", "Z-1"]
        for limit in (1, 4, 7, 23, 30, 31):
            assert [o["order_id"] for o in await all_pages(c, limit)] == ids, limit

        # status filters, one and several, paged (the merge of one index scan per status)
        assert [o["order_id"] for o in await all_pages(c, 2, status="in_progress")] == ["N-1"]
        released = [o["order_id"] for o in everything if o["status"] == "released"]
        assert len(released) == 30
        assert [o["order_id"] for o in await all_pages(c, 4, status="released")] == released
        both = await all_pages(c, 3, status=["released", "in_progress"])
        assert [o["order_id"] for o in both] == ids
        assert await all_pages(c, 5, status=["closed", "on_hold"]) == []

        # changed since: strictly after, newest first, and orders without a change time never
        n1 = next(o for o in everything if o["order_id"] == "N-1")
        since = next(o for o in everything if o["order_id"] == "N-3")["updated_at"]
        changed = await all_pages(c, 2, changed_since=since)
        assert [o["order_id"] for o in changed] == ids[:ids.index("N-3")]
        r = await c.get("/api/v1/work-orders", params={"changed_since": n1["updated_at"]})
        assert r.json()["count"] == 0
        older = (f.T0 - timedelta(days=1)).isoformat()
        assert len(await all_pages(c, 10, changed_since=older)) == 29

        # as fresh as memory: a change is listed the moment its call returns
        r = await c.post("/api/v1/work-orders/T-05/hold", json={"reason": "check"})
        assert r.status_code == 200
        top = (await c.get("/api/v1/work-orders", params={"limit": 1})).json()["work_orders"]
        assert top[0]["order_id"] == "T-05" and top[0]["status"] == OrderStatus.ON_HOLD.value

        # a cursor that is not ours is refused, not served as something else
        for bad in ("nonsense", "x" * 401, encode_cursor((None, "A"))[:-2] + "!!"):
            r = await c.get("/api/v1/work-orders", params={"before": bad})
            assert r.status_code == 422, (bad, r.text)
    # the supervisor may read the list; an operator may not
    async with running.client("supervisor") as c:
        assert (await c.get("/api/v1/work-orders")).status_code == 200
    async with running.client("operator") as c:
        assert (await c.get("/api/v1/work-orders")).status_code == 403


def test_cursor_round_trip() -> None:
    key = (f.T0, "WO/1 ü")
    assert decode_cursor(encode_cursor(key)) == key
    assert decode_cursor(encode_cursor((None, "X"))) == (None, "X")
