"""ERP work-order endpoints through HTTP: revisions, validation, hold/cancel, auth."""

from __future__ import annotations

from typing import Any

from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from tests.api.conftest import Running

ORDER: dict[str, Any] = {
    "revision": 1, "material": "BRACKET-7", "quantity": 100, "unit": "PCE",
    "demand_type": "make_to_order", "sales_order": "SO-4711", "customer": "ACME",
    "operations": [{"op_no": "0010", "work_center": "PRESS-01", "description": "stamp"},
                   {"op_no": "0020", "work_center": "ASSY-03", "description": "assemble"}],
}


async def start_and_count(r: Running, order: str, good: int) -> None:
    d = r.service.dispatcher
    assert d is not None
    await d.process(OperationCommand(event_id=f"s-{order}", work_center="PRESS-01",
                                     action=OperationAction.START, order_id=order, op_no="0010"))
    for i in range(good):
        await d.process(QuantityReported(event_id=f"c-{order}-{i}", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=1))


async def test_create_same_older_newer_revision(running: Running) -> None:
    async with running.client("erp") as c:
        r = await c.put("/api/v1/work-orders/WO-1", json=ORDER)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "released" and body["sales_order"] == "SO-4711"
        assert [o["status"] for o in body["operations"]] == ["ready", "waiting"]

        r = await c.put("/api/v1/work-orders/WO-1", json=ORDER)
        assert r.status_code == 200 and r.json()["revision"] == 1

        newer = {**ORDER, "revision": 2, "quantity": 120}
        r = await c.put("/api/v1/work-orders/WO-1", json=newer)
        assert r.status_code == 200
        assert r.json()["quantity"] == 120 and r.json()["operations"][0]["planned_qty"] == 120
        assert r.json()["status"] == "released"  # nothing had started: applied as it is

        r = await c.put("/api/v1/work-orders/WO-1", json=ORDER)  # revision 1 again: older
        assert r.status_code == 409
        assert r.json()["detail"]["code"] == "stale_revision"


async def test_newer_revision_of_started_order_puts_it_on_hold(running: Running) -> None:
    async with running.client("erp") as c:
        assert (await c.put("/api/v1/work-orders/WO-2", json=ORDER)).status_code == 201
        await start_and_count(running, "WO-2", 5)
        r = await c.put("/api/v1/work-orders/WO-2", json={**ORDER, "revision": 2,
                                                          "quantity": 80})
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "on_hold"
        assert "revision 2" in body["hold_reason"] and "started" in body["hold_reason"]
        assert body["operations"][0]["good"] == 5  # what was made stays
        assert body["operations"][0]["status"] == "paused"
        r = await c.post("/api/v1/work-orders/WO-2/release")
        assert r.status_code == 200 and r.json()["status"] == "in_progress"


async def test_validation_errors_name_every_bad_field(running: Running) -> None:
    async with running.client("erp") as c:
        bad = {**ORDER, "quantity": -5, "operations": [{"op_no": "0010"}],
               "demand_type": "make_to_order", "sales_order": None, "colour": "red"}
        r = await c.put("/api/v1/work-orders/WO-3", json=bad)
        assert r.status_code == 422
        locs = {tuple(e["loc"]) for e in r.json()["detail"]}
        assert ("body", "quantity") in locs
        assert ("body", "operations", 0, "work_center") in locs
        assert ("body", "colour") in locs
        r = await c.put("/api/v1/work-orders/WO-3", content=b"{not json",
                        headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = await c.put("/api/v1/work-orders/WO-3", json={**ORDER, "operations": [
            {"op_no": "0010", "work_center": "MARS-9"}]})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_work_center"
        r = await c.put("/api/v1/work-orders/WO-3", json={**ORDER, "sales_order": None})
        assert r.status_code == 422
        assert "sales_order" in r.text
        r = await c.put("/api/v1/work-orders/WO-3", content=b"x" * 70_000,
                        headers={"content-type": "application/json"})
        assert r.status_code == 413
    # the service is still fine and nothing was created
    async with running.client("erp") as c:
        assert (await c.get("/api/v1/work-orders/WO-3")).status_code == 404
        assert (await c.get("/healthz")).status_code == 200


async def test_cancel_started_order_confirms_what_was_made(running: Running) -> None:
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-4", json=ORDER)
        await start_and_count(running, "WO-4", 13)  # every_units=10: one confirmation of 10
        r = await c.post("/api/v1/work-orders/WO-4/cancel", json={"reason": "customer cancelled"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert [o["status"] for o in r.json()["operations"]] == ["cancelled", "cancelled"]
        feed = (await c.get("/api/v1/confirmations", params={"after": 0})).json()
        mine = [x for x in feed["confirmations"] if x["order_id"] == "WO-4"]
        assert [x["yield"] for x in mine] == [10, 3]
        assert sum(x["yield"] for x in mine) == 13
        r = await c.post("/api/v1/work-orders/WO-4/release")
        assert r.status_code == 409
        r = await c.post("/api/v1/work-orders/NOPE/cancel")
        assert r.status_code == 404


async def test_list_and_progress(running: Running) -> None:
    async with running.client("erp") as c:
        await c.put("/api/v1/work-orders/WO-5", json=ORDER)
        await c.put("/api/v1/work-orders/WO-6", json={**ORDER, "demand_type": "make_to_stock",
                                                      "sales_order": None})
        await start_and_count(running, "WO-5", 4)
        r = await c.get("/api/v1/work-orders", params={"status": "in_progress"})
        assert [o["order_id"] for o in r.json()["work_orders"]] == ["WO-5"]
        r = await c.get("/api/v1/work-orders", params={"status": ["released", "in_progress"]})
        assert {o["order_id"] for o in r.json()["work_orders"]} == {"WO-5", "WO-6"}
        wo = (await c.get("/api/v1/work-orders/WO-5")).json()
        op = wo["operations"][0]
        assert op["good"] == 4 and op["status"] == "running" and op["actual_start"]
        assert wo["operations"][1]["available"] == 4
        assert wo["actual_start"] is not None
        since = wo["updated_at"]
        r = await c.get("/api/v1/work-orders", params={"changed_since": since})
        assert r.json()["count"] == 0


async def test_roles_and_refusals(running: Running) -> None:
    async with running.client() as anon:
        assert (await anon.put("/api/v1/work-orders/WO-7", json=ORDER)).status_code == 401
        assert (await anon.get("/api/v1/confirmations")).status_code == 401
        r = await anon.get("/api/v1/work-orders/WO-7", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
    async with running.client("operator") as op:
        assert (await op.put("/api/v1/work-orders/WO-7", json=ORDER)).status_code == 403
        assert (await op.get("/api/v1/confirmations")).status_code == 403
    async with running.client("supervisor") as sup:
        assert (await sup.put("/api/v1/work-orders/WO-7", json=ORDER)).status_code == 403
        assert (await sup.get("/api/v1/work-orders/WO-7")).status_code == 404
    async with running.client("admin") as adm:
        assert (await adm.put("/api/v1/work-orders/WO-7", json=ORDER)).status_code == 201
