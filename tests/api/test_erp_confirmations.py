"""The confirmation feed through HTTP: order, cursors, acks, reversals, expired cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mes_edge.domain import CountingSource, QuantityReported
from mes_edge.store import feed
from tests.api.conftest import Running
from tests.api.test_erp_orders import ORDER, start_and_count


async def test_pull_in_commit_order_with_cursor(running: Running) -> None:
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-1", json=ORDER)
        await start_and_count(running, "WO-1", 35)  # three confirmations of 10
        page = (await c.get("/api/v1/confirmations", params={"after": 0, "limit": 2})).json()
        assert [x["yield"] for x in page["confirmations"]] == [10, 10]
        assert page["has_more"] is True
        cursors = [x["cursor"] for x in page["confirmations"]]
        assert cursors == sorted(cursors) and page["next_cursor"] == cursors[-1]
        rest = (await c.get("/api/v1/confirmations",
                            params={"after": page["next_cursor"]})).json()
        assert [x["yield"] for x in rest["confirmations"]] == [10]
        assert rest["has_more"] is False
        x = page["confirmations"][0]
        assert x["order_id"] == "WO-1" and x["operation"] == "0010"
        assert x["work_center"] == "PRESS-01" and x["unit"] == "PCE" and x["final"] is False
        assert len(x["confirmation_id"]) == 36 and x["external_key"]
        # an empty page keeps the cursor where it is
        empty = (await c.get("/api/v1/confirmations",
                             params={"after": rest["next_cursor"]})).json()
        assert empty["confirmations"] == [] and empty["next_cursor"] == rest["next_cursor"]


async def test_ack_delivered_then_posted_or_error(running: Running) -> None:
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-2", json=ORDER)
        await start_and_count(running, "WO-2", 20)
        page = (await c.get("/api/v1/confirmations")).json()
        first, second = page["confirmations"]
        r = await c.post("/api/v1/confirmations/ack", json={
            "cursor": page["next_cursor"],
            "results": [{"confirmation_id": first["confirmation_id"], "status": "posted"},
                        {"confirmation_id": second["confirmation_id"], "status": "error",
                         "message": "period closed"}]})
        assert r.status_code == 200 and r.json() == {"cursor": page["next_cursor"],
                                                     "delivered": 2, "results": 2}
        again = (await c.get("/api/v1/confirmations")).json()["confirmations"]
        assert [x["delivery"] for x in again] == ["posted", "error"]
        r = await c.post("/api/v1/confirmations/ack", json={"cursor": -1})
        assert r.status_code == 422


async def test_reversal_by_supervisor_appears_in_feed(running: Running) -> None:
    async with running.client("erp") as erp, running.client("supervisor") as sup:
        await erp.put("/api/v1/work-orders/WO-3", json=ORDER)
        await start_and_count(running, "WO-3", 10)
        original = (await erp.get("/api/v1/confirmations")).json()["confirmations"][0]
        cid = original["confirmation_id"]
        r = await erp.post(f"/api/v1/confirmations/{cid}/reverse", json={"reason": "miscount"})
        assert r.status_code == 403
        r = await sup.post(f"/api/v1/confirmations/{cid}/reverse", json={"reason": None})
        assert r.status_code == 422
        r = await sup.post(f"/api/v1/confirmations/{cid}/reverse", json={"reason": "miscount"})
        assert r.status_code == 201, r.text
        reversal = r.json()
        assert reversal["reverses"] == cid and reversal["yield"] == 10
        assert reversal["personnel"] == "sue" and reversal["reason"] == "miscount"
        wo = (await erp.get("/api/v1/work-orders/WO-3")).json()
        assert wo["operations"][0]["good"] == 0
        r = await sup.post(f"/api/v1/confirmations/{cid}/reverse", json={"reason": "again"})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "not_reversible"
        r = await sup.post(f"/api/v1/confirmations/{reversal['confirmation_id']}/reverse",
                           json={"reason": "undo"})
        assert r.status_code == 409
        feed_ids = [x["confirmation_id"] for x in
                    (await erp.get("/api/v1/confirmations")).json()["confirmations"]]
        assert feed_ids == [cid, reversal["confirmation_id"]]


async def test_expired_cursor_is_410(running: Running) -> None:
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-4", json=ORDER)
        await start_and_count(running, "WO-4", 30)
        page = (await c.get("/api/v1/confirmations")).json()
        assert len(page["confirmations"]) == 3
        second = page["confirmations"][1]["cursor"]
        await c.post("/api/v1/confirmations/ack", json={"cursor": second})
        assert running.service.store is not None
        purged = await feed.purge(running.service.store, datetime.now(UTC) + timedelta(days=1))
        assert purged == 2  # only the acknowledged prefix is purged
        r = await c.get("/api/v1/confirmations", params={"after": 0})
        assert r.status_code == 410 and "older than what is kept" in r.text
        r = await c.get("/api/v1/confirmations", params={"after": second})
        assert r.status_code == 200 and len(r.json()["confirmations"]) == 1


async def test_confirmation_totals_equal_counts(running: Running) -> None:
    """What the ERP receives adds up to what was counted, with operator scrap reasons."""
    d = running.service.dispatcher
    assert d is not None
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-5", json=ORDER)
        await start_and_count(running, "WO-5", 27)
        await d.process(QuantityReported(event_id="scrap-1", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, scrap={"machine": 2}))
        r = await c.post("/api/v1/work-orders/WO-5/cancel", json={"reason": "stop"})
        assert r.status_code == 200
        rows = (await c.get("/api/v1/confirmations")).json()["confirmations"]
        assert sum(x["yield"] for x in rows) == 27
        assert sum(x["scrap"] for x in rows) == 2
        assert {k for x in rows for k in x["scrap_reasons"]} == {"machine"}


async def test_pull_ack_error_listed_and_skipped_by_supervisor(running: Running) -> None:
    """An ERP's error ack shows in the delivery list; a supervisor skips it (recorded); retry is
    for push mode only."""
    async with running.client("erp") as erp, running.client("supervisor") as sup:
        await erp.put("/api/v1/work-orders/WO-6", json=ORDER)
        await start_and_count(running, "WO-6", 20)
        page = (await erp.get("/api/v1/confirmations")).json()
        bad = page["confirmations"][1]["confirmation_id"]
        await erp.post("/api/v1/confirmations/ack", json={
            "cursor": page["next_cursor"],
            "results": [{"confirmation_id": bad, "status": "error", "message": "cost center"}]})
        listed = (await sup.get("/api/v1/confirmations/deliveries")).json()
        assert [(x["confirmation_id"], x["message"]) for x in listed["deliveries"]] == [
            (bad, "cost center")]
        r = await sup.post(f"/api/v1/confirmations/{bad}/retry", json={"reason": "again"})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "not_push_mode"
        r = await erp.post(f"/api/v1/confirmations/{bad}/skip", json={"reason": "by hand"})
        assert r.status_code == 403
        r = await sup.post(f"/api/v1/confirmations/{bad}/skip", json={"reason": "booked by hand"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "skipped" and body["resolution"] == "skip"
        assert body["resolved_by"] == "sue" and body["resolution_reason"] == "booked by hand"
        r = await sup.post(f"/api/v1/confirmations/{bad}/skip", json={"reason": "twice"})
        assert r.status_code == 409
        assert (await sup.get("/api/v1/confirmations/deliveries")).json()["count"] == 0
        r = await sup.get("/api/v1/confirmations/deliveries", params={"state": "bogus"})
        assert r.status_code == 422
