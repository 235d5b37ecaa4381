"""Push mode: an ERP outage during production loses nothing and keeps order per work order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from mes_edge.store.tables import confirmation_deliveries, confirmations
from mes_edge.store.tokens import Role, create_token
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


async def _rows(service: EdgeService, order_id: str) -> list[Any]:
    assert service.store is not None
    return await service.store.rows(confirmations, confirmations.c.order_id == order_id,
                                    order_by=[confirmations.c.cursor])


async def _delivery(service: EdgeService, cid: str) -> Any:
    assert service.store is not None
    rows = await service.store.rows(confirmation_deliveries,
                                    confirmation_deliveries.c.confirmation_id == cid)
    return rows[0] if rows else None


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_500_then_refused_then_known_key(db_url: str) -> None:
    """5xx retried per work order; a 4xx waits for a supervisor (retry or skip, recorded) and
    holds back only its own work order; a 409 for a key the ERP has is delivered."""
    erp = ErpSim("http://unused", "unused", mode="push", duplicate_status=409)
    await erp.start()
    settings = parse_settings(plant(db_url, erp={"mode": "push", "push_url": erp.push_url}))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    d, store, push = service.dispatcher, service.store, service.push
    assert d is not None and store is not None and push is not None
    alerts: list[dict[str, Any]] = []
    undo = push.subscribe(alerts.append)
    sup_token = await create_token(store, Role.SUPERVISOR, "sue")
    erp_token = await create_token(store, Role.ERP, "erp")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30)
    sup = {"Authorization": f"Bearer {sup_token}"}
    n = 0

    async def count(wc: str, good: int = 10) -> None:  # every_units 10: one confirmation
        nonlocal n
        n += 1
        await d.process(QuantityReported(event_id=f"q-{n}", work_center=wc,
                                         by=CountingSource.MACHINE, good=good))

    async def state_of(cid: str) -> str | None:
        row = await _delivery(service, cid)
        return None if row is None else str(row.state)

    try:
        from tests.factory import order

        await d.process(order("P-1", qty=1000, wcs=("PRESS-01",)))
        await d.process(order("P-2", qty=1000, wcs=("CNC-02",)))
        for oid, wc in (("P-1", "PRESS-01"), ("P-2", "CNC-02")):
            await d.process(OperationCommand(event_id=f"start-{oid}", work_center=wc,
                                             action=OperationAction.START, order_id=oid,
                                             op_no="0010"))

        # 1. The ERP books the confirmation but answers 500: retried with backoff; when it is
        #    back it answers 409 for the key it has, which is delivered, booked once.
        erp.set_available(False, status=500, after_booking=True)
        await count("PRESS-01")
        [c1] = await _rows(service, "P-1")

        async def retried_500() -> bool:
            row = await _delivery(service, c1.confirmation_id)
            return row is not None and row.state == "retrying" and row.attempts >= 2

        await until(retried_500, 30, "a 500 retried")
        assert (await _delivery(service, c1.confirmation_id)).http_status == 500
        erp.set_available(True)
        await until(lambda: _is(state_of(c1.confirmation_id), "delivered"), 30, "c1 delivered")
        row = await _delivery(service, c1.confirmation_id)
        assert row.http_status == 409 and row.message is None
        assert erp.received.duplicates >= 1 and len(erp.received.by_id) == 1

        # 2. One work order failing with 503 does not slow the other one down.
        erp.refuse("P-1", 503, "busy")
        await count("PRESS-01")
        c2 = (await _rows(service, "P-1"))[-1]
        for _ in range(3):
            await count("CNC-02")
        p2 = await _rows(service, "P-2")
        await until(lambda: _all(state_of, [c.confirmation_id for c in p2], "delivered"), 30,
                    "P-2 delivered while P-1 retries")
        assert await state_of(c2.confirmation_id) == "retrying"
        erp.clear_refusal("P-1")
        await until(lambda: _is(state_of(c2.confirmation_id), "delivered"), 30, "c2 delivered")

        # 3. 422 for one confirmation: delivery error with the ERP's message, an alert, later
        #    confirmations of P-1 wait, P-2 goes on.
        erp.refuse("P-1", 422, "posting period 2026/12 is closed")
        await count("PRESS-01")
        await count("PRESS-01")
        c3, c4 = (await _rows(service, "P-1"))[-2:]
        await until(lambda: _is(state_of(c3.confirmation_id), "error"), 30, "c3 refused")
        await count("CNC-02")
        p2 = await _rows(service, "P-2")
        await until(lambda: _all(state_of, [c.confirmation_id for c in p2], "delivered"), 30,
                    "P-2 goes on")
        assert await state_of(c4.confirmation_id) is None  # waits behind c3, never sent
        assert c4.confirmation_id not in {k for k, _, _ in erp.push_log}
        assert [a["confirmation_id"] for a in alerts] == [c3.confirmation_id]
        assert alerts[0]["kind"] == "delivery_error" and alerts[0]["work_center"] == "PRESS-01"
        assert "posting period 2026/12 is closed" in alerts[0]["message"]
        r = await http.get("/api/v1/confirmations/deliveries", params={"state": "error"},
                           headers={"Authorization": f"Bearer {erp_token}"})
        assert r.status_code == 200, r.text
        [listed] = r.json()["deliveries"]
        assert listed["confirmation_id"] == c3.confirmation_id and listed["http_status"] == 422
        assert listed["state"] == "error" and "period 2026/12 is closed" in listed["message"]
        assert listed["order_id"] == "P-1" and listed["yield"] == 10

        # Only a supervisor decides; skip needs a reason; a delivered one cannot be retried.
        retry = f"/api/v1/confirmations/{c3.confirmation_id}/retry"
        r = await http.post(retry, headers={"Authorization": f"Bearer {erp_token}"})
        assert r.status_code == 403
        r = await http.post(f"/api/v1/confirmations/{c3.confirmation_id}/skip", headers=sup,
                            json={})
        assert r.status_code == 422
        r = await http.post(f"/api/v1/confirmations/{c1.confirmation_id}/retry", headers=sup)
        assert r.status_code == 409 and r.json()["detail"]["code"] == "not_in_delivery_error"
        r = await http.post("/api/v1/confirmations/00000000-0000-0000-0000-000000000000/retry",
                            headers=sup)
        assert r.status_code == 404

        # A retry before the ERP is fixed is refused again (recorded); after the fix it goes.
        r = await http.post(retry, headers=sup, json={"reason": "try once more"})
        assert r.status_code == 200 and r.json()["state"] == "retrying"

        async def refused_again() -> bool:
            row = await _delivery(service, c3.confirmation_id)
            return row.state == "error" and row.attempts >= 2

        await until(refused_again, 30, "c3 refused again")
        assert len(alerts) == 2
        erp.clear_refusal("P-1")
        r = await http.post(retry, headers=sup, json={"reason": "period reopened in the ERP"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["resolution"] == "retry" and body["resolved_by"] == "sue"
        assert body["resolution_reason"] == "period reopened in the ERP" and body["resolved_at"]
        await until(lambda: _all(state_of, [c3.confirmation_id, c4.confirmation_id],
                                 "delivered"), 30, "c3 and c4 after the retry")
        row = await _delivery(service, c3.confirmation_id)
        assert row.resolution == "retry" and row.resolved_by == "sue"

        # 4. Skip: the refused one is never booked, the order's later ones go on.
        erp.refuse("P-2", 400, "unknown cost center")
        await count("CNC-02")
        await count("CNC-02")
        c5, c6 = (await _rows(service, "P-2"))[-2:]
        await until(lambda: _is(state_of(c5.confirmation_id), "error"), 30, "c5 refused")
        assert await state_of(c6.confirmation_id) is None
        r = await http.post(f"/api/v1/confirmations/{c5.confirmation_id}/skip", headers=sup,
                            json={"reason": "booked by hand in the ERP"})
        assert r.status_code == 200 and r.json()["state"] == "skipped", r.text
        await until(lambda: _is(state_of(c6.confirmation_id), "delivered"), 30, "c6 after skip")
        row = await _delivery(service, c5.confirmation_id)
        assert row.resolution == "skip" and row.resolution_reason == "booked by hand in the ERP"
        assert c5.confirmation_id not in erp.received.by_id
        r = await http.get("/api/v1/confirmations/deliveries", params={"state": "skipped"},
                           headers=sup)
        assert [x["confirmation_id"] for x in r.json()["deliveries"]] == [c5.confirmation_id]
        r = await http.get("/api/v1/confirmations/deliveries", params={"state": "error"},
                           headers=sup)
        assert r.json() == {"deliveries": [], "count": 0}

        # Everything except the skipped one arrived once, in order per work order.
        assert erp.received.order_violations == []
        every = {c.confirmation_id for o in ("P-1", "P-2") for c in await _rows(service, o)}
        assert set(erp.received.by_id) == every - {c5.confirmation_id}
    finally:
        undo()
        await http.aclose()
        await service.stop()
        await erp.close()


async def _is(value: Awaitable[str | None], expected: str) -> bool:
    return await value == expected


async def _all(state_of: Callable[[str], Awaitable[str | None]], ids: list[str],
               expected: str) -> bool:
    return all([await state_of(i) == expected for i in ids])
