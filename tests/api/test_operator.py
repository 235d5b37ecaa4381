"""Station tablet and supervisor endpoints through HTTP: roles, queue, commands, reports,
downtime reasons, scans, operator login, the event log's who/what, live updates (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mes_edge.api.app import create_api
from mes_edge.api.sse import LiveClient
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, MachineState, MachineStateChanged, QuantityReported
from mes_edge.store.tables import events
from mes_edge.store.tokens import Role, create_token, upsert_operator
from tests.api.conftest import Running, plant

ASSY = "/api/v1/stations/ASSY-03"
PRESS = "/api/v1/stations/PRESS-01"
ORDER: dict[str, Any] = {
    "revision": 1, "material": "HOUSING-2", "quantity": 20,
    "operations": [{"op_no": "0010", "work_center": "ASSY-03", "description": "assemble"},
                   {"op_no": "0020", "work_center": "PRESS-01", "description": "press fit"}],
}


async def put_order(r: Running, order_id: str, **changes: Any) -> None:
    async with r.client("erp") as c:
        resp = await c.put(f"/api/v1/work-orders/{order_id}", json={**ORDER, **changes})
        assert resp.status_code == 201, resp.text


async def event_rows(r: Running) -> list[Any]:
    assert r.service.store is not None
    return await r.service.store.rows(events, order_by=[events.c.seq])


async def test_roles_and_refusals(running: Running) -> None:
    await put_order(running, "WO-1")
    async with running.client() as anon:
        assert (await anon.get(ASSY)).status_code == 401
        assert (await anon.post(f"{ASSY}/start", json={})).status_code == 401
        assert (await anon.get("/api/v1/board")).status_code == 401
    async with running.client("erp") as erp:
        assert (await erp.get(ASSY)).status_code == 403
        assert (await erp.post(f"{ASSY}/pause")).status_code == 403
        assert (await erp.get("/api/v1/board")).status_code == 403
    async with running.client("operator") as press_tablet:  # scoped to PRESS-01
        assert (await press_tablet.get(PRESS)).status_code == 200
        r = await press_tablet.get(ASSY)
        assert r.status_code == 403 and "ASSY-03" in r.text
        ref = {"order_id": "WO-1", "op_no": "0010"}
        assert (await press_tablet.post(f"{ASSY}/start", json=ref)).status_code == 403
        assert (await press_tablet.get(f"{ASSY}/events")).status_code == 403
        assert (await press_tablet.get("/api/v1/board")).status_code == 403
        assert (await press_tablet.get("/api/v1/rejected-events")).status_code == 403
    for role in ("supervisor", "admin"):
        async with running.client(role) as c:
            assert (await c.get(ASSY)).status_code == 200
            assert (await c.get(PRESS)).status_code == 200
            assert (await c.get("/api/v1/board")).status_code == 200
            assert (await c.get("/api/v1/stations/MARS-9")).status_code == 404
    assert [row.type for row in await event_rows(running)] == ["order_received"]


async def test_queue_commands_and_reports(running: Running) -> None:
    await put_order(running, "WO-2", due=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    await put_order(running, "WO-3")
    async with running.client("assy") as c:
        queue = (await c.get(f"{ASSY}/queue")).json()
        assert [(q["order_id"], q["status"], q["available"]) for q in queue] == [
            ("WO-2", "ready", 20), ("WO-3", "ready", 20)]  # sooner due first
        r = await c.post(f"{ASSY}/start", json={"order_id": "WO-2", "op_no": "0010"})
        assert r.status_code == 200, r.text
        st = r.json()["station"]
        assert r.json()["outcome"] == "accepted"
        assert st["current"]["order_id"] == "WO-2" and st["current"]["status"] == "running"
        assert [q["status"] for q in st["queue"]] == ["running", "ready"]
        # one operation at a time on a work center
        r = await c.post(f"{ASSY}/start", json={"order_id": "WO-3", "op_no": "0010"})
        assert r.status_code == 409 and r.json()["detail"]["code"] == "work_center_busy"

        r = await c.post(f"{ASSY}/report", json={"good": 5, "scrap": {"dent": 2}})
        assert r.status_code == 200, r.text
        cur = r.json()["station"]["current"]
        assert (cur["good"], cur["scrap"], cur["scrap_by_reason"]) == (5, 2, {"dent": 2})
        assert cur["available"] == 13
        r = await c.post(f"{ASSY}/report", json={"good": 1, "scrap": {"gremlins": 1}})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_reason"
        r = await c.post(f"{ASSY}/report", json={"good": -1})
        assert r.status_code == 422
        r = await c.post(f"{ASSY}/report", json={"good": 0})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid"

        r = await c.post(f"{ASSY}/pause")
        assert r.status_code == 200 and r.json()["station"]["current"] is None
        assert r.json()["station"]["queue"][0]["status"] == "paused"
        ref = {"order_id": "WO-2", "op_no": "0010"}
        assert (await c.post(f"{ASSY}/pause", json=ref)).status_code == 409
        r = await c.post(f"{ASSY}/report", json={**ref, "good": 1})  # paused: still reportable
        assert r.status_code == 200
        r = await c.post(f"{ASSY}/resume", json=ref)
        assert r.json()["station"]["current"]["status"] == "running"
        r = await c.post(f"{ASSY}/complete")
        assert r.status_code == 200
        assert [q["order_id"] for q in r.json()["station"]["queue"]] == ["WO-3"]
        # the press may now start: WO-2/0010 handed 6 over
        assert (await c.get(PRESS)).status_code == 403
    async with running.client("operator") as press:
        queue = (await press.get(f"{PRESS}/queue")).json()
        assert [(q["order_id"], q["status"], q["available"]) for q in queue] == [
            ("WO-2", "ready", 6), ("WO-3", "waiting", 0)]
        r = await press.post(f"{PRESS}/report", json={"order_id": "WO-2", "op_no": "0020",
                                                       "good": 1})
        assert r.status_code == 409  # not started (and machine-counted anyway)
    async with running.client("supervisor") as sup:
        rejected = (await sup.get("/api/v1/rejected-events")).json()
        assert rejected[0]["reason_code"] == "counting_source"
        assert any(x["reason_code"] == "unknown_reason" and "gremlins" in x["reason"]
                   and x["work_center"] == "ASSY-03" for x in rejected)


async def test_event_log_records_who(running: Running) -> None:
    assert running.service.store is not None
    await upsert_operator(running.service.store, "B-17", "Li Wei", "4711", ["ASSY-03"])
    await upsert_operator(running.service.store, "B-99", "Pat Press", None, ["PRESS-01"])
    await put_order(running, "WO-4")
    async with running.client("assy") as c:
        await c.post(f"{ASSY}/start", json={"order_id": "WO-4", "op_no": "0010"})
        r = await c.post(f"{ASSY}/login", json={"badge": "B-17", "pin": "0000"})
        assert r.status_code == 401 and "PIN" in r.text
        assert (await c.post(f"{ASSY}/login", json={"badge": "NOPE"})).status_code == 401
        r = await c.post(f"{ASSY}/login", json={"badge": "B-99"})
        assert r.status_code == 403  # not qualified for this work center
        r = await c.post(f"{ASSY}/login", json={"badge": "B-17", "pin": "4711"})
        assert r.status_code == 200, r.text
        assert r.json()["station"]["operator"] == {"badge": "B-17", "name": "Li Wei"}
        await c.post(f"{ASSY}/report", json={"good": 2})
        r = await c.post(f"{ASSY}/logout")
        assert r.json()["station"]["operator"] is None
        # B-17 has a PIN: a badge scan alone does not sign in (the tablet asks for the PIN)
        r = await c.post(f"{ASSY}/scan", json={"code": "OP:B-17"})
        assert r.status_code == 401 and r.json()["detail"]["code"] == "pin_required"
        r = await c.post(f"{ASSY}/login", json={"badge": "B-17", "pin": "4711"})
        assert r.json()["station"]["operator"]["name"] == "Li Wei"
        await c.post(f"{ASSY}/pause")
    rows = await event_rows(running)
    assy_token = running.tokens["assy"].split("_")[1]
    mine = [(row.type, row.actor, row.source) for row in rows if row.work_center == "ASSY-03"]
    assert mine == [
        ("operation_command", "assy-tablet", f"api:operator:{assy_token}"),
        ("quantity_reported", "B-17", f"api:operator:{assy_token}"),
        ("operation_command", "B-17", f"api:operator:{assy_token}"),
    ]


async def test_too_many_wrong_pins_are_throttled(running: Running) -> None:
    assert running.service.store is not None
    await upsert_operator(running.service.store, "B-1", "Ann", "1234", [])
    async with running.client("assy") as c:
        codes = [(await c.post(f"{ASSY}/login", json={"badge": "B-1", "pin": "9999"})).status_code
                 for _ in range(6)]
        assert codes == [401] * 5 + [429]


async def test_scan_starts_operation_and_unknown_code_is_recorded(running: Running) -> None:
    await put_order(running, "WO-5")
    async with running.client("supervisor") as c:
        r = await c.post(f"{ASSY}/scan", json={"code": "WO:WO-5/0010"})
        assert r.status_code == 200, r.text
        assert r.json()["station"]["current"]["order_id"] == "WO-5"
        r = await c.post(f"{ASSY}/scan", json={"code": "hello world"})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_barcode"
        r = await c.post(f"{ASSY}/scan", json={"code": "   "})
        assert r.status_code == 422
        rejected = (await c.get("/api/v1/rejected-events", params={"work_center": "ASSY-03"}))
        assert rejected.json()[0]["reason_code"] == "unknown_barcode"
    rows = await event_rows(running)
    started = [row for row in rows if row.type == "operation_command"]
    sup_token = running.tokens["supervisor"].split("_")[1]
    assert started[0].actor == "sue" and started[0].source == f"api:supervisor:{sup_token}"


async def test_downtime_reason(running: Running) -> None:
    d = running.service.dispatcher
    assert d is not None
    for i, state in enumerate((MachineState.RUNNING, MachineState.DOWN)):
        await d.process(MachineStateChanged(event_id=f"m{i}", work_center="PRESS-01",
                                            state=state))
    async with running.client("operator") as c:
        downtimes = (await c.get(f"{PRESS}/downtimes")).json()
        assert len(downtimes) == 1 and downtimes[0]["open"] and downtimes[0]["reason"] is None
        assert (await c.get(PRESS)).json()["machine_state"] == "down"
        r = await c.post(f"{PRESS}/downtime-reason", json={"reason": "coffee"})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "unknown_reason"
        r = await c.post(f"{PRESS}/downtime-reason", json={"reason": "tooling"})
        assert r.status_code == 200, r.text
        dt = r.json()["station"]["downtimes"][0]
        assert dt["reason"] == "tooling" and dt["reason_by"] == "press-tablet"
        r = await c.post(f"{PRESS}/downtime-reason", json={"reason": "tooling"})
        assert r.status_code == 409  # nothing waits for a reason any more
    await d.process(MachineStateChanged(event_id="m3", work_center="PRESS-01",
                                        state=MachineState.RUNNING))
    async with running.client("supervisor") as c:
        st = (await c.get(PRESS)).json()
        assert st["downtimes"][0]["open"] is False and st["downtimes"][0]["end"]


async def test_board_wip_late_stalled(running: Running) -> None:
    await put_order(running, "WO-6", due=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    await put_order(running, "WO-7")
    async with running.client("assy") as c:
        await c.post(f"{ASSY}/start", json={"order_id": "WO-7", "op_no": "0010"})
        await c.post(f"{ASSY}/report", json={"good": 3})
    await asyncio.sleep(0.2)
    async with running.client("supervisor") as c:
        b = (await c.get("/api/v1/board", params={"stalled_minutes": 0.001})).json()
        tiles = {t["work_center"]: t for t in b["work_centers"]}
        assert set(tiles) == {"PRESS-01", "CNC-02", "ASSY-03"}
        assert tiles["ASSY-03"]["current"]["order_id"] == "WO-7"
        assert tiles["ASSY-03"]["queue_length"] == 1  # WO-6 waits, WO-7 runs
        assert len(b["wip"]) == 4
        assert [(a["order_id"], a["op_no"], a["why"]) for a in b["late"]] == [
            ("WO-6", "0010", "overdue"), ("WO-6", "0020", "overdue")]
        assert [(a["order_id"], a["why"]) for a in b["stalled"]] == [("WO-7", "stalled")]
        b = (await c.get("/api/v1/board")).json()  # default: 10 minutes
        assert b["stalled"] == [] and b["stalled_minutes"] == 10


async def _read_events(lines: AsyncIterator[str], want: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async for line in lines:
        if line.startswith("data: "):
            got.append(json.loads(line[6:]))
            if len(got) >= want:
                break
    return got


async def test_live_station_events(running: Running) -> None:
    await put_order(running, "WO-8", operations=[{"op_no": "0010", "work_center": "PRESS-01"}])
    d = running.service.dispatcher
    assert d is not None
    async with running.client("operator") as c, asyncio.timeout(10):
        await c.post(f"{PRESS}/start", json={"order_id": "WO-8", "op_no": "0010"})
        async with c.stream("GET", f"{PRESS}/events") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.aiter_lines()
            hello = await _read_events(lines, 1)
            assert hello == [{"type": "hello"}]
            await d.process(QuantityReported(event_id="plc-1", work_center="PRESS-01",
                                             by=CountingSource.MACHINE, good=3))
            [msg] = await _read_events(lines, 1)
            assert msg["type"] == "station" and msg["current"]["good"] == 3
            assert msg["machine_state"] == "unknown"
    live = running.service.api.state.live  # type: ignore[union-attr]
    for _ in range(50):  # the stream's cleanup runs once the disconnect is seen
        if not live.clients:
            break
        await asyncio.sleep(0.05)
    assert not live.clients


async def test_the_board_stream_says_what_changed_not_the_board(running: Running) -> None:
    """Issue 14: a commit sends the board a small notice (which work centers and orders changed),
    the same size with 1 or 101 open orders; the page re-fetches only what it shows."""
    for i in range(100):
        await put_order(running, f"BIG-{i:03d}",
                        operations=[{"op_no": "0010", "work_center": "CNC-02"}])
    await put_order(running, "WO-9", operations=[{"op_no": "0010", "work_center": "PRESS-01"}])
    d = running.service.dispatcher
    assert d is not None
    async with running.client("supervisor") as c, asyncio.timeout(20):
        await c.post(f"{PRESS}/start", json={"order_id": "WO-9", "op_no": "0010"})
        async with c.stream("GET", "/api/v1/board/events") as resp:
            assert resp.status_code == 200
            lines = resp.aiter_lines()
            assert await _read_events(lines, 1) == [{"type": "hello"}]
            await d.process(QuantityReported(event_id="plc-b1", work_center="PRESS-01",
                                             by=CountingSource.MACHINE, good=2))
            raw = ""
            async for line in lines:
                if line.startswith("data: "):
                    raw = line[6:]
                    break
    msg = json.loads(raw)
    assert msg["type"] == "changed" and msg["work_centers"] == ["PRESS-01"]
    assert msg["orders"] == ["WO-9"] and msg["rejected"] is False and msg["seq"] == d.last_seq
    assert len(raw) < 200  # a notice, not the board of 101 open orders


def test_slow_client_is_coalesced_not_grown() -> None:
    client = LiveClient("PRESS-01", size=4)
    for i in range(100):
        client.offer(json.dumps({"n": i}))
    assert client.queue.qsize() <= 4
    assert json.loads(client.queue.get_nowait() or "") == {"type": "resync"}
    assert client.coalesced >= 1


async def test_shutdown_ends_open_streams(sqlite_url: str) -> None:
    settings = parse_settings(plant(sqlite_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    token = await create_token(service.store, Role.SUPERVISOR, "sue")
    url = f"http://127.0.0.1:{settings.api.port}/api/v1/board/events"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as c:
        async with c.stream("GET", url) as resp:
            assert resp.status_code == 200
            async with asyncio.timeout(10):
                lines = resp.aiter_lines()
                await _read_events(lines, 1)
                await service.stop()  # must not wait for the open stream
                rest = [line async for line in lines]
    assert rest == [] or all(not line.startswith("data: ") for line in rest)


async def test_heartbeat_comments_keep_an_idle_stream_alive(running: Running) -> None:
    live = running.service.api.state.live  # type: ignore[union-attr]
    live.heartbeat_s, before = 0.05, live.heartbeat_s
    try:
        stream = live.stream("PRESS-01")
        async with asyncio.timeout(5):
            first = await anext(stream)
            assert first.startswith("retry: ") and '"hello"' in first
            assert await anext(stream) == ": heartbeat\n\n"
            live.station_changed("PRESS-01")
            assert json.loads((await anext(stream))[6:])["type"] == "station"
        await stream.aclose()
        assert not live.clients  # closing the stream unregisters the client
    finally:
        live.heartbeat_s = before


async def test_a_resent_tap_with_the_same_idempotency_key_counts_once(running: Running) -> None:
    """A tablet resending a report after a network timeout (same key) is counted once."""
    async with running.client("erp") as erp, running.client("assy") as tablet:
        await erp.put("/api/v1/work-orders/IK-1", json={
            "revision": 1, "material": "M", "quantity": 50,
            "operations": [{"op_no": "0010", "work_center": "ASSY-03"}]})
        assert (await tablet.post("/api/v1/stations/ASSY-03/start",
                                  json={"order_id": "IK-1", "op_no": "0010"})).status_code == 200
        headers = {"Idempotency-Key": "tap-7f3a"}
        first = await tablet.post("/api/v1/stations/ASSY-03/report", headers=headers,
                                  json={"good": 4})
        again = await tablet.post("/api/v1/stations/ASSY-03/report", headers=headers,
                                  json={"good": 4})
        assert first.json()["outcome"] == "accepted" and again.json()["outcome"] == "duplicate"
        other = await tablet.post("/api/v1/stations/ASSY-03/report",
                                  headers={"Idempotency-Key": "tap-8b21"}, json={"good": 1})
        assert other.json()["outcome"] == "accepted"
        wo = (await erp.get("/api/v1/work-orders/IK-1")).json()
        assert wo["operations"][0]["good"] == 5
        # A refused tap resent with its key meets the same refusal, not a "duplicate" success.
        bad = {"Idempotency-Key": "tap-9c00"}
        refused = await tablet.post("/api/v1/stations/ASSY-03/report", headers=bad,
                                    json={"good": 999})
        resent = await tablet.post("/api/v1/stations/ASSY-03/report", headers=bad,
                                   json={"good": 999})
        assert refused.status_code == resent.status_code == 409
        assert refused.json()["detail"]["code"] == resent.json()["detail"]["code"]
        assert refused.json()["detail"]["message"] == resent.json()["detail"]["message"]
        # The scan endpoint honours the key too: a resent scan is the same event.
        scan = {"Idempotency-Key": "scan-41"}
        one = await tablet.post("/api/v1/stations/ASSY-03/scan", headers=scan,
                                json={"code": "??NOPE??"})
        two = await tablet.post("/api/v1/stations/ASSY-03/scan", headers=scan,
                                json={"code": "??NOPE??"})
        assert one.status_code == two.status_code == 422
        assert one.json()["detail"]["event_id"] == two.json()["detail"]["event_id"]
    async with running.client("supervisor") as sup:
        rejected = (await sup.get("/api/v1/rejected-events")).json()
        eid = one.json()["detail"]["event_id"]
        assert sum(1 for r in rejected if r["event_id"] == eid) == 1
        # Refusals show the quantities they carried, and the list pages.
        [big] = [r for r in rejected if r["reason_code"] == "over_production"]
        assert big["good"] == 999 and big["work_center"] == "ASSY-03"
        first_page = await sup.get("/api/v1/rejected-events", params={"limit": 1})
        assert len(first_page.json()) == 1
        nxt = first_page.headers["X-Next-Before"]
        second = (await sup.get("/api/v1/rejected-events",
                                params={"limit": 1, "before": nxt})).json()
        assert second and second[0]["id"] < int(nxt)


async def test_station_rules_and_refusal_details(sqlite_url: str) -> None:
    """The station API carries the work center's own rules (micro-stop threshold, the scrap
    reasons offered there) and a refusal carries the numbers the tablet translates."""
    doc = plant(sqlite_url)
    doc["work_centers"][2].update(micro_stop_s=30, scrap_reasons=["scratch", "dent"])
    settings = parse_settings(doc)
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        assert service.store is not None
        tokens = {"erp": await create_token(service.store, Role.ERP, "erp"),
                  "assy": await create_token(service.store, Role.OPERATOR, "t", ["ASSY-03"])}
        r = Running(service, f"http://127.0.0.1:{settings.api.port}", tokens)
        await put_order(r, "WO-7")
        await put_order(r, "WO-8")
        async with r.client("assy") as c:
            st = (await c.get(ASSY)).json()
            assert st["micro_stop_s"] == 30 and st["unassigned"] is None
            assert [s["code"] for s in st["scrap_reasons"]] == ["scratch", "dent"]
            assert abs(datetime.fromisoformat(st["server_time"]) - datetime.now(UTC)) < (
                timedelta(minutes=1))
            ref = {"order_id": "WO-7", "op_no": "0010"}
            assert (await c.post(f"{ASSY}/start", json=ref)).status_code == 200
            assert (await c.post(f"{ASSY}/report", json={"good": 4})).status_code == 200

            resp = await c.post(f"{ASSY}/report", json={"good": 50})
            detail = resp.json()["detail"]
            assert resp.status_code == 409 and detail["code"] == "over_production"
            d = detail["details"]  # planned 20 + 5 % = 21, 4 already reported
            assert (d["order_id"], d["op_no"], d["planned"], d["limit"], d["good"],
                    d["room_good"], d["tolerance_pct"]) == ("WO-7", "0010", 20, 21, 4, 17, 5)
            resp = await c.post(f"{ASSY}/start", json={"order_id": "WO-8", "op_no": "0010"})
            assert resp.json()["detail"]["code"] == "work_center_busy"
            assert resp.json()["detail"]["details"]["running"] == "WO-7 / 0010"
            resp = await c.post(f"{ASSY}/report", json={"good": 1, "scrap": {"gremlins": 1}})
            assert resp.json()["detail"]["details"]["reason"] == "gremlins"
            resp = await c.post(f"{ASSY}/login", json={"badge": "NOBODY"})
            assert resp.status_code == 401 and resp.json()["detail"]["code"] == "unknown_badge"

            resp = await c.post(f"{ASSY}/pause", json={"reason": "x" * 65})
            assert resp.status_code == 422  # a reason code, not an essay
            resp = await c.post(f"{ASSY}/pause", json={"reason": "material"})
            assert resp.status_code == 200, resp.text
            # a manual station's pause is a downtime with the reason the operator gave
            down = resp.json()["station"]["downtimes"][0]
            assert down["open"] and down["reason"] == "material"
            resp = await c.post(f"{ASSY}/resume", json=ref)
            assert resp.status_code == 200  # work goes on: the pause downtime is closed
            assert not any(d["open"] for d in resp.json()["station"]["downtimes"])
    finally:
        await service.stop()


async def test_unassigned_production_on_station_and_board(running: Running) -> None:
    """Parts a machine counted while nothing ran there show on the tablet and the board."""
    d = running.service.dispatcher
    assert d is not None
    outcome = await d.process(QuantityReported(
        event_id="press-plc/good_count/5", work_center="PRESS-01", by=CountingSource.MACHINE,
        good=5, scrap={"machine": 1}))
    assert outcome.status.value == "accepted", outcome
    async with running.client("operator") as c:
        open_qty = (await c.get(PRESS)).json()["unassigned"]
        assert (open_qty["good"], open_qty["scrap"], open_qty["rework"]) == (5, {"machine": 1}, 0)
        assert open_qty["since"] is not None and open_qty["last"] is not None
    async with running.client("supervisor") as c:
        tiles = {t["work_center"]: t for t in (await c.get("/api/v1/board")).json()["work_centers"]}
        assert tiles["PRESS-01"]["unassigned"]["good"] == 5
        assert tiles["CNC-02"]["unassigned"] is None
        assert tiles["PRESS-01"]["micro_stop_s"] == 60
