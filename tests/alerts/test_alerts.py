"""Alerts end to end: real dispatcher and SQLite, a real Mosquitto, a real HTTP receiver that
checks the Standard Webhooks signature itself; the clock is the test's, so nothing depends on
timing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState, OperationSpec, OrderReceived, OrderSpec
from mes_edge.store import alerts as alert_store
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import plant
from tests.drivers.test_mqtt_publisher import Listener
from tests.factory import T0, machine_count, machine_state, order, start
from tests.servers import MosquittoBroker, free_port

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Receiver:
    """An HTTP receiver on 127.0.0.1: answers 503 to the first `fail` requests, then 200, and
    keeps what it accepted after verifying the signature (written here from the spec)."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seen: list[str] = []  # webhook-id of every request, failed ones too
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.port = free_port()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        mid, stamp = headers["webhook-id"], headers["webhook-timestamp"]
        mac = hmac.new(KEY, f"{mid}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ok = headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
        self.seen.append(mid)
        status = 503 if self.fail > 0 else (200 if ok else 401)
        if not ok:
            self.bad_signatures += 1
        elif status == 200:
            self.accepted.append({"id": mid, **json.loads(body)})
        self.fail -= 1
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver(fail=2)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=app.port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while True:
            if server.started:
                break
            await asyncio.sleep(0.02)
    yield app
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def eventually(check: Any, seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def test_alerts_raise_clear_ack_over_mqtt_webhooks_and_api(
        sqlite_url: str, mosquitto: MosquittoBroker, receiver: Receiver) -> None:
    doc = plant(sqlite_url,
                mqtt={"url": mosquitto.url, "client_id": "alerts-test", "site": "test"},
                alerts={"evaluate_every_s": 300,
                        "thresholds": {"down_minutes": 5, "reason_missing_minutes": 2,
                                       "stalled_minutes": 600,
                                       "scrap_rate_pct": 10, "scrap_min_quantity": 20},
                        "webhooks": [{"name": "ops", "url": f"http://127.0.0.1:{receiver.port}/",
                                      "secret": SECRET}]})
    doc["work_centers"][0]["alerts"] = {"down_minutes": 1}  # PRESS-01 overrides the plant
    settings = parse_settings(doc)
    events = Listener(mosquitto, "mes/test/alerts")
    current = Listener(mosquitto, "mes/test/PRESS-01/alerts")
    await events.ready()
    await current.ready()
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        engine = service.alerts
        assert engine is not None and service.dispatcher is not None
        assert service.webhooks is not None
        service.webhooks._template.initial = 0.05  # quick retries of the 503s
        now = T0
        engine.clock = lambda: now
        d = service.dispatcher
        # Machine goes down; scrap comes in at a rate of 25 % over 40 parts.
        for ev in (order("A1", qty=100), start("A1", "0010", "PRESS-01"),
                   machine_state("PRESS-01", MachineState.DOWN, at=0)):
            assert (await d.process(ev)).ok
        for i in range(4):
            assert (await d.process(machine_count("PRESS-01", good=7, scrap=3, at=i))).ok
        now = T0 + timedelta(seconds=30)
        await engine.evaluate()
        kinds = {a["kind"] for a in engine.current("PRESS-01")}
        assert kinds == {"scrap_rate"}  # not down long enough yet (1 min at PRESS-01)

        now = T0 + timedelta(minutes=3)
        await engine.evaluate()
        kinds = {a["kind"] for a in engine.current("PRESS-01")}
        assert kinds == {"scrap_rate", "machine_down", "reason_missing"}
        await engine.evaluate()  # still true: not raised twice (dedupe key)
        rows = await alert_store.listing(service.store)  # type: ignore[arg-type]
        assert len(rows) == 3 and all(r["cleared_at"] is None for r in rows)

        # The API: listing and acknowledging, operators only at their work centers.
        base = f"http://127.0.0.1:{settings.api.port}"
        sup = await create_token(service.store, Role.SUPERVISOR, "sue")  # type: ignore[arg-type]
        other = await create_token(service.store, Role.OPERATOR, "cnc",  # type: ignore[arg-type]
                                   ["CNC-02"])
        down = next(a for a in engine.current("PRESS-01") if a["kind"] == "machine_down")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            auth = {"Authorization": f"Bearer {sup}"}
            listed = (await http.get("/api/v1/alerts?active=true&work_center=PRESS-01",
                                     headers=auth)).json()
            assert {a["kind"] for a in listed} == kinds
            r = await http.post(f"/api/v1/alerts/{down['id']}/ack",
                                headers={"Authorization": f"Bearer {other}"})
            assert r.status_code == 403
            assert (await http.get("/api/v1/alerts", headers={
                "Authorization": f"Bearer {other}"})).json() == []
            r = await http.post(f"/api/v1/alerts/{down['id']}/ack", headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["acked_by"] == "sue" and r.json()["active"] is True
            assert (await http.post("/api/v1/alerts/999999/ack", headers=auth)).status_code == 404

        # The machine runs again: down clears; the stop still has no reason, so that stays.
        assert (await d.process(machine_state("PRESS-01", MachineState.RUNNING, at=180))).ok
        now = T0 + timedelta(minutes=3, seconds=1)
        await engine.evaluate()
        assert {a["kind"] for a in engine.current("PRESS-01")} == {"scrap_rate",
                                                                    "reason_missing"}
        # The scrap window rolls past the bad parts (60 min): scrap_rate clears.
        now = T0 + timedelta(minutes=61)
        await engine.evaluate()
        assert "scrap_rate" not in {a["kind"] for a in engine.current("PRESS-01")}

        # MQTT: raised / acknowledged / cleared events, and the retained current list.
        await events.until(lambda m: {(p["event"], p["alert"]["kind"]) for _, p, _ in m} >= {
            ("raised", "machine_down"), ("acknowledged", "machine_down"),
            ("cleared", "machine_down"), ("cleared", "scrap_rate")})
        msgs = await current.until(lambda m: bool(m) and {
            a["kind"] for a in m[-1][1]["alerts"]} == {"reason_missing"})
        assert msgs[-1][0] == "mes/test/PRESS-01/alerts"
        late = Listener(mosquitto, "mes/test/PRESS-01/alerts")  # a late subscriber
        await late.ready()
        got = await late.until(lambda m: bool(m))
        assert got[0][2] is True and [a["kind"] for a in got[0][1]["alerts"]] == [
            "reason_missing"]
        await late.close()

        # Webhooks: the two 503s were retried with the same id; every event arrived once,
        # signed, in the order it was written.
        written = await alert_store.listing(service.store)  # type: ignore[arg-type]
        expected = 3 + 1 + 2  # raised x3, acknowledged, cleared x2
        await eventually(lambda: len(receiver.accepted) >= expected)
        assert receiver.bad_signatures == 0
        assert receiver.seen[0] == receiver.seen[1] == receiver.seen[2]  # retried, same id
        types = [(m["type"], m["data"]["kind"]) for m in receiver.accepted]
        assert types[:3] == [("alert.raised", k) for k in ("scrap_rate", "machine_down",
                                                            "reason_missing")] or sorted(
            types[:3]) == sorted(("alert.raised", k) for k in ("machine_down", "reason_missing",
                                                               "scrap_rate"))
        assert types[3] == ("alert.acknowledged", "machine_down")
        assert types[4:] == [("alert.cleared", "machine_down"), ("alert.cleared", "scrap_rate")]
        assert len({m["id"] for m in receiver.accepted}) == len(receiver.accepted)
        assert await alert_store.webhook_backlog(service.store) == {}  # type: ignore[arg-type]
        assert len(written) == 3
    finally:
        await service.stop()
        await events.close()
        await current.close()

    # Durable: a restart knows the active alert and does not raise it again.
    service = EdgeService(settings)
    await service.start()
    try:
        assert service.alerts is not None
        assert [a["kind"] for a in service.alerts.current()] == ["reason_missing"]
        service.alerts.clock = lambda: T0 + timedelta(minutes=62)
        await service.alerts.evaluate()
        rows = await alert_store.listing(service.store, active_only=True)  # type: ignore[arg-type]
        assert [r["kind"] for r in rows] == ["reason_missing"]
    finally:
        await service.stop()


def test_webhook_secret_must_be_whsec_base64() -> None:
    base = plant("sqlite:///x.db")
    with pytest.raises(Exception, match="whsec_"):
        parse_settings({**base, "alerts": {"webhooks": [
            {"name": "x", "url": "http://127.0.0.1:1/", "secret": "plain"}]}})


async def test_order_late_by_projection_and_operation_stalled(sqlite_url: str) -> None:
    """Projected finish = now + remaining quantity x ideal cycle; stalled after N ideal
    cycles without a count; both clear when their condition ends."""
    doc = plant(sqlite_url, alerts={"thresholds": {"stalled_cycles": 10}})
    doc["work_centers"][0]["ideal_cycle_s"] = 6.0
    service = EdgeService(parse_settings(doc))
    await service.start()
    try:
        engine, d = service.alerts, service.dispatcher
        assert engine is not None and d is not None
        now = T0
        engine.clock = lambda: now
        spec = OrderSpec(order_id="L1", revision=1, material="M", quantity=120,
                         due=T0 + timedelta(minutes=10),
                         operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))
        assert (await d.process(OrderReceived(event_id="o-L1", spec=spec,
                                              received_ts=T0))).ok
        assert (await d.process(start("L1", "0010", "PRESS-01"))).ok
        assert (await d.process(machine_count("PRESS-01", good=10, at=10))).ok
        now = T0 + timedelta(seconds=20)  # 110 left x 6 s = 11 min: after the due 10 min
        await engine.evaluate()
        late = [a for a in engine.current() if a["kind"] == "order_late"]
        assert len(late) == 1 and late[0]["severity"] == "warning"
        # (raised by the first judging after the commits; its details are of that moment)
        projected = datetime.fromisoformat(late[0]["details"]["projected_finish"])
        assert projected > spec.due  # type: ignore[operator]
        assert "operation_stalled" not in {a["kind"] for a in engine.current()}
        now = T0 + timedelta(seconds=10 + 60)  # 10 cycles of 6 s without a count
        await engine.evaluate()
        assert "operation_stalled" in {a["kind"] for a in engine.current()}
        assert (await d.process(machine_count("PRESS-01", good=85, at=70))).ok
        now = T0 + timedelta(seconds=71)  # 25 left x 6 s: on time again, counting again
        await engine.evaluate()
        assert engine.current() == []
        now = T0 + timedelta(minutes=11)  # past due, still open: late, as an error
        await engine.evaluate()
        assert [(a["kind"], a["severity"]) for a in engine.current()
                if a["kind"] == "order_late"] == [("order_late", "error")]
    finally:
        await service.stop()


def test_a_stop_wholly_in_a_break_or_shorter_than_a_micro_stop_asks_no_reason() -> None:
    """reason_missing follows the same rule as the downtimes API: only stops longer than
    micro_stop_s that overlap planned time need a reason."""
    from mes_edge.app.alerts import AlertKind, AlertRules, ScrapWindows
    from mes_edge.domain import Downtime, MemoryState, WorkCenterState

    doc = plant("sqlite:///unused.db", site_timezone="UTC", calendars={"day": {
        "shifts": {"day": {"start": "06:00", "end": "14:00",
                           "breaks": [{"start": "09:00", "end": "09:30"}]}},
        "week": {d: ["day"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}})
    doc["work_centers"][0].update(calendar="day", micro_stop_s=60)
    doc["alerts"] = {"thresholds": {"reason_missing_minutes": 1}}
    rules = AlertRules(parse_settings(doc))
    day = datetime(2026, 3, 10, tzinfo=T0.tzinfo)

    def stop(start: datetime, end: datetime, sid: str) -> Downtime:
        return Downtime(downtime_id=sid, work_center="PRESS-01", state=MachineState.DOWN,
                        start=start, end=end)

    stops = (stop(day.replace(hour=9, minute=5), day.replace(hour=9, minute=25), "in-break"),
             stop(day.replace(hour=10), day.replace(hour=10, second=30), "micro"),
             stop(day.replace(hour=11), day.replace(hour=11, minute=10), "real"))
    state = MemoryState()
    state.wc_map["PRESS-01"] = WorkCenterState(work_center="PRESS-01",
                                               machine_state=MachineState.RUNNING,
                                               recent_downtimes=stops)
    found = [c for c in rules.conditions(state, day.replace(hour=12), ScrapWindows(), {}, {})
             if c.kind == AlertKind.REASON_MISSING]
    assert [c.subject for c in found] == ["real"]
