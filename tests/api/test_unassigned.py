"""Unassigned production through HTTP: listed, assigned (then confirmed), written off (then in
the write-off feed), refused when asked for more than is open; auto-assignment by policy."""

from __future__ import annotations

from typing import Any

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import Checkpoint, CountingSource, QuantityReported
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running, plant

ORDER = {"revision": 1, "material": "BRACKET-7", "quantity": 100,
         "operations": [{"op_no": "0010", "work_center": "PRESS-01"}]}


async def _count(running: Running, n: int, good: int, scrap: int = 0) -> None:
    d = running.service.dispatcher
    assert d is not None
    out = await d.process(QuantityReported(
        event_id=f"plc/{n}", work_center="PRESS-01", by=CountingSource.MACHINE, good=good,
        scrap={"machine": scrap} if scrap else {}, source="plc1",
        checkpoint=Checkpoint("plc1", "good", n), readings=(n - good, n)))
    assert out.ok, out


def _press(listing: dict[str, Any]) -> dict[str, Any]:
    [wc] = [w for w in listing["work_centers"] if w["work_center"] == "PRESS-01"]
    return wc


async def test_assign_write_off_and_the_write_off_feed(running: Running) -> None:
    await _count(running, 10, good=8, scrap=2)  # nothing runs on the press: kept, not refused
    await _count(running, 15, good=5)
    async with running.client("supervisor") as sup, running.client("erp") as erp, \
            running.client("operator") as tablet:
        open_ = _press((await sup.get("/api/v1/production/unassigned")).json())["open"]
        assert (open_["good"], open_["scrap"], open_["rework"]) == (13, {"machine": 2}, 0)
        assert open_["reasons"] == {"no_running_operation": 15}
        assert open_["readings"] == {"plc1/good": [2, 15]}
        assert open_["since"] and open_["last"]
        assert (await erp.put("/api/v1/work-orders/U-1", json=ORDER)).status_code == 201

        # Operators cannot resolve it; more than is open is refused; a write-off needs a reason.
        r = await tablet.post("/api/v1/production/unassigned/PRESS-01/write-off",
                              json={"good": 1, "reason": "x"})
        assert r.status_code == 403
        r = await sup.post("/api/v1/production/unassigned/PRESS-01/assign",
                           json={"order_id": "U-1", "op_no": "0010", "good": 14})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "not_enough_unassigned"
        r = await sup.post("/api/v1/production/unassigned/PRESS-01/write-off", json={"good": 1})
        assert r.status_code == 422
        r = await sup.post("/api/v1/production/unassigned/NOPE/write-off",
                           json={"good": 1, "reason": "x"})
        assert r.status_code == 404

        # Assign 10 good to the order's operation: they count and are confirmed at once.
        r = await sup.post("/api/v1/production/unassigned/PRESS-01/assign",
                           json={"order_id": "U-1", "op_no": "0010", "good": 10,
                                 "reason": "made for U-1 before the start"})
        assert r.status_code == 200, r.text
        after = r.json()["work_center"]
        assert after["open"]["good"] == 3 and after["assigned"]["good"] == 10
        wo = (await erp.get("/api/v1/work-orders/U-1")).json()
        assert wo["operations"][0]["good"] == 10
        feed = (await erp.get("/api/v1/confirmations")).json()["confirmations"]
        assert [(c["order_id"], c["yield"]) for c in feed] == [("U-1", 10)]

        # Write the rest off: the open bucket is empty and its span and readings are cleared.
        r = await sup.post("/api/v1/production/unassigned/PRESS-01/write-off",
                           json={"good": 3, "scrap": {"machine": 2}, "reason": "setup parts"})
        assert r.status_code == 200, r.text
        wc = r.json()["work_center"]
        assert wc["open"] == {"good": 0, "scrap": {}, "rework": 0, "since": None, "last": None,
                              "reasons": {}, "readings": {}}
        assert wc["written_off"] == {"good": 3, "scrap": {"machine": 2}, "rework": 0}

        # The ERP pulls write-offs like confirmations (only write-offs, not assignments).
        page = (await erp.get("/api/v1/production/write-offs", params={"limit": 10})).json()
        [w] = page["write_offs"]
        assert (w["work_center"], w["good"], w["scrap"], w["reason"], w["actor"]) == (
            "PRESS-01", 3, {"machine": 2}, "setup parts", "sue")
        assert not page["has_more"]
        again = (await erp.get("/api/v1/production/write-offs",
                               params={"after": page["next_after"]})).json()
        assert again["write_offs"] == []
        assert (await tablet.get("/api/v1/production/write-offs")).status_code == 403


async def test_auto_assign_gives_them_to_the_next_start(sqlite_url: str) -> None:
    doc = plant(sqlite_url, production={"unassigned": {"auto_assign": True}})
    service = EdgeService(parse_settings(doc), api_factory=create_api)
    await service.start()
    try:
        assert service.store is not None
        tokens = {"erp": await create_token(service.store, Role.ERP, "erp"),
                  "supervisor": await create_token(service.store, Role.SUPERVISOR, "sue"),
                  "operator": await create_token(service.store, Role.OPERATOR, "press",
                                                 ["PRESS-01"])}
        running = Running(service, f"http://127.0.0.1:{doc['api']['port']}", tokens)
        await _count(running, 7, good=7)
        async with running.client("erp") as erp, running.client("operator") as tablet, \
                running.client("supervisor") as sup:
            assert (await erp.put("/api/v1/work-orders/U-2", json=ORDER)).status_code == 201
            r = await tablet.post("/api/v1/stations/PRESS-01/start",
                                  json={"order_id": "U-2", "op_no": "0010"})
            assert r.status_code == 200, r.text
            wo = (await erp.get("/api/v1/work-orders/U-2")).json()
            assert wo["operations"][0]["good"] == 7
            press = _press((await sup.get("/api/v1/production/unassigned")).json())
            assert press["open"]["good"] == 0 and press["assigned"]["good"] == 7
    finally:
        await service.stop()


async def test_an_evicted_order_is_served_from_the_database(sqlite_url: str) -> None:
    """Closed and cancelled orders leave memory; GET /work-orders/{id} still answers them."""
    doc = plant(sqlite_url, history={"evict_closed_after_s": 0})
    service = EdgeService(parse_settings(doc), api_factory=create_api)
    await service.start()
    try:
        assert service.store is not None and service.dispatcher is not None
        erp_token = await create_token(service.store, Role.ERP, "erp")
        running = Running(service, f"http://127.0.0.1:{doc['api']['port']}",
                          {"erp": erp_token})
        async with running.client("erp") as erp:
            assert (await erp.put("/api/v1/work-orders/E-1", json=ORDER)).status_code == 201
            r = await erp.post("/api/v1/work-orders/E-1/cancel", json={"reason": "not needed"})
            assert r.status_code == 200, r.text
            assert service.dispatcher.evict_finished() == 1
            assert service.dispatcher.state.order("E-1") is None
            r = await erp.get("/api/v1/work-orders/E-1")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "cancelled"
            assert (await erp.get("/api/v1/work-orders/NOPE")).status_code == 404
    finally:
        await service.stop()
