"""Severity escalation of an active alert (issue 11, ISA-18.2: a changed alarm is re-annunciated):
the same row and dedupe key take the higher severity, the change is recorded with when, told on
MQTT (events and the retained list) and to the webhooks like a raise, and the acknowledgement is
asked for again; a lower severity keeps the acknowledgement. Real dispatcher on SQLite and
PostgreSQL, real Mosquitto, a real signed-webhook receiver, real restarts; the alert clock is the
test's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import Settings, parse_settings
from mes_edge.domain import MachineState, OperationSpec, OrderReceived, OrderSpec
from mes_edge.store import alerts as alert_store
from mes_edge.store.tokens import Role, create_token
from tests.alerts.test_alerts import SECRET, Receiver, eventually
from tests.api.conftest import plant
from tests.drivers.test_mqtt_publisher import Listener
from tests.factory import T0, machine_count, machine_state, start
from tests.servers import MosquittoBroker

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver(fail=0)
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
    async with asyncio.timeout(10):
        await task


def _spec(revision: int, due: datetime) -> OrderReceived:
    spec = OrderSpec(order_id="L1", revision=revision, material="M", quantity=120, due=due,
                     operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))
    return OrderReceived(event_id=f"o-L1-{revision}", spec=spec, received_ts=T0)


def _late(service: EdgeService) -> list[dict[str, Any]]:
    assert service.alerts is not None
    return [a for a in service.alerts.current() if a["kind"] == "order_late"]


async def test_a_late_order_escalates_from_projected_to_past_due_and_is_acknowledged_again(
        db_url: str, mosquitto: MosquittoBroker, receiver: Receiver) -> None:
    doc = plant(db_url, mqtt={"url": mosquitto.url, "client_id": "esc-test", "site": "test"},
                alerts={"evaluate_every_s": 300, "thresholds": {"stalled_cycles": 100_000},
                        "webhooks": [{"name": "ops", "url": f"http://127.0.0.1:{receiver.port}/",
                                      "secret": SECRET}]})
    doc["work_centers"][0]["ideal_cycle_s"] = 6.0
    settings = parse_settings(doc)
    events = Listener(mosquitto, "mes/test/alerts")
    current = Listener(mosquitto, "mes/test/PRESS-01/alerts")
    await events.ready()
    await current.ready()
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        engine, d, store = service.alerts, service.dispatcher, service.store
        assert engine is not None and d is not None and store is not None
        now = T0 + timedelta(seconds=20)
        engine.clock = lambda: now
        due = T0 + timedelta(minutes=10)
        for ev in (_spec(1, due), start("L1", "0010", "PRESS-01"),
                   machine_count("PRESS-01", good=10, at=10)):
            assert (await d.process(ev)).ok
        # 110 left x 6 s = 11 min from 06:00:20: projected after the due 06:10, a warning.
        await engine.evaluate()
        [raised] = _late(service)
        assert (raised["severity"], raised["raised_severity"], raised["escalated_at"]) == (
            "warning", "warning", None)
        acked = await engine.acknowledge(raised["id"], "sue")
        assert acked is not None and acked["acked_by"] == "sue"
        acked_at = acked["acked_at"]

        # Past due and still open: the same alert (same id and key) escalates to an error,
        # with when; the acknowledgement of the warning is withdrawn and kept in the change.
        now = T0 + timedelta(minutes=11)
        await engine.evaluate()
        [escalated] = _late(service)
        assert (escalated["id"], escalated["key"]) == (raised["id"], raised["key"])
        assert (escalated["severity"], escalated["raised_severity"]) == ("error", "warning")
        assert escalated["escalated_at"] == now.isoformat()
        assert (escalated["acked_by"], escalated["acked_at"]) == (None, None)
        assert escalated["severity_changes"] == [
            {"at": now.isoformat(), "from": "warning", "to": "error", "acked_by": "sue",
             "acked_at": acked_at.isoformat(), "acked_station": None}]
        assert "past its due date" in escalated["message"]
        escalated_at = now
        now = T0 + timedelta(minutes=12)
        await engine.evaluate()  # still an error: nothing changes, nothing is told again
        assert _late(service) == [escalated]
        rows = await alert_store.listing(store)
        assert [(r["kind"], r["severity"]) for r in rows] == [("order_late", "error")]

        # The escalated alert asks for acknowledgement again: the API takes a second one.
        sup = await create_token(store, Role.SUPERVISOR, "kim")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api.port}",
                                     timeout=10,
                                     headers={"Authorization": f"Bearer {sup}"}) as http:
            r = await http.post(f"/api/v1/alerts/{raised['id']}/ack")
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["acked_by"], body["severity"], body["raised_severity"]) == (
                "kim", "error", "warning")
            assert datetime.fromisoformat(body["escalated_at"]) == escalated_at
            assert body["severity_changes"][0]["from"] == "warning"
            assert body["severity_changes"][0]["acked_by"] == "sue"
            listed = (await http.get("/api/v1/alerts?active=true")).json()
            assert [(a["id"], a["severity"], a["acked_by"]) for a in listed] == [
                (raised["id"], "error", "kim")]

        # MQTT: raised, acknowledged, escalated (with the new severity), acknowledged; the
        # retained list of PRESS-01 holds the alert as an error.
        told = [("raised", "warning"), ("acknowledged", "warning"), ("escalated", "error"),
                ("acknowledged", "error")]
        msgs = await events.until(lambda m: len([p for _, p, _ in m if "alert" in p]) >= 4)
        msgs = [x for x in msgs if "alert" in x[1]]  # (the topic carries notices too)
        assert [(p["event"], p["alert"]["severity"]) for _, p, _ in msgs] == told
        assert msgs[2][1]["alert"]["acked_by"] is None
        retained = await current.until(lambda m: bool(m) and [
            (a["severity"], a["acked_by"]) for a in m[-1][1]["alerts"]] == [("error", "kim")])
        assert [a["id"] for a in retained[-1][1]["alerts"]] == [raised["id"]]
        # Webhooks: the escalation is a signed message of its own, in order.
        await eventually(lambda: len(receiver.accepted) >= 4)
        assert receiver.bad_signatures == 0
        assert [(m["type"], m["data"]["severity"]) for m in receiver.accepted] == [
            ("alert." + e, s) for e, s in told]
        assert receiver.accepted[2]["data"]["escalated_at"] == escalated_at.isoformat()
    finally:
        await service.stop()
        await events.close()
        await current.close()

    # Durable: after a restart the alert is the same error, acknowledged by kim; judging again
    # neither escalates nor raises it again. Then the ERP moves the due date out (a new
    # revision): still projected late, so the severity is lowered back to a warning, the
    # acknowledgement stands (what was seen was worse), and it is told as `deescalated`.
    service = EdgeService(settings)
    await service.start()
    try:
        engine, d, store = service.alerts, service.dispatcher, service.store
        assert engine is not None and d is not None and store is not None
        now = T0 + timedelta(minutes=13)
        engine.clock = lambda: now
        [after] = _late(service)
        assert (after["id"], after["severity"], after["acked_by"]) == (raised["id"], "error",
                                                                        "kim")
        await engine.evaluate()
        assert _late(service) == [after]
        assert (await d.process(_spec(2, T0 + timedelta(minutes=20)))).ok
        now = T0 + timedelta(minutes=14)  # 110 left x 6 s = 11 min: 06:25 after 06:20
        await engine.evaluate()
        [lowered] = _late(service)
        assert (lowered["id"], lowered["severity"], lowered["acked_by"]) == (
            raised["id"], "warning", "kim")
        assert lowered["escalated_at"] == after["escalated_at"]
        assert [(c["from"], c["to"]) for c in lowered["severity_changes"]] == [
            ("warning", "error"), ("error", "warning")]
        assert "acked_by" not in lowered["severity_changes"][1]
        await eventually(lambda: len(receiver.accepted) >= 5)
        assert (receiver.accepted[4]["type"], receiver.accepted[4]["data"]["severity"]) == (
            "alert.deescalated", "warning")
        rows = await alert_store.listing(store)
        assert [(r["id"], r["severity"]) for r in rows] == [(raised["id"], "warning")]
    finally:
        await service.stop()


def _down_plant(url: str, **thresholds: Any) -> Settings:
    return parse_settings(plant(url, alerts={
        "evaluate_every_s": 300,
        "thresholds": {"down_minutes": 5, "down_error_minutes": 15, "stalled_minutes": 600,
                       "reason_missing_minutes": 600, "late_enabled": False, **thresholds}}))


async def test_machine_down_escalates_at_its_second_threshold_across_a_restart(
        db_url: str) -> None:
    settings = _down_plant(db_url)
    service = EdgeService(settings)
    await service.start()
    try:
        engine, d = service.alerts, service.dispatcher
        assert engine is not None and d is not None
        now = T0 + timedelta(minutes=4)
        engine.clock = lambda: now
        assert (await d.process(machine_state("PRESS-01", MachineState.DOWN, at=0))).ok
        await engine.evaluate()
        assert engine.current() == []
        now = T0 + timedelta(minutes=6)  # past down_minutes: a warning
        await engine.evaluate()
        [down] = engine.current()
        assert (down["kind"], down["severity"]) == ("machine_down", "warning")
        assert await engine.acknowledge(down["id"], "sue") is not None
    finally:
        await service.stop()

    # Raised (and acknowledged) before the restart, escalated after it: the row's severity is
    # the database's, so the restarted engine escalates it once, at the second threshold.
    service = EdgeService(settings)
    await service.start()
    try:
        engine = service.alerts
        assert engine is not None
        now = T0 + timedelta(minutes=14)
        engine.clock = lambda: now
        await engine.evaluate()
        [still] = engine.current()
        assert (still["id"], still["severity"], still["acked_by"]) == (down["id"], "warning",
                                                                        "sue")
        now = T0 + timedelta(minutes=16)
        await engine.evaluate()
        [up] = engine.current()
        assert (up["id"], up["severity"], up["acked_by"]) == (down["id"], "error", None)
        assert up["escalated_at"] == now.isoformat()
        assert "15 min" in up["message"] and up["details"]["minutes"] == 15
        assert [(c["from"], c["to"], c["acked_by"]) for c in up["severity_changes"]] == [
            ("warning", "error", "sue")]
        await engine.evaluate()
        assert engine.current() == [up]
    finally:
        await service.stop()

    service = EdgeService(settings)
    await service.start()
    try:
        engine, d = service.alerts, service.dispatcher
        assert engine is not None and d is not None
        assert engine.current() == [up]
        # Running again: the escalated alert clears like any other.
        assert (await d.process(machine_state("PRESS-01", MachineState.RUNNING, at=17 * 60))).ok
        engine.clock = lambda: T0 + timedelta(minutes=17)
        await engine.evaluate()
        assert engine.current() == []
        rows = await alert_store.listing(service.store)  # type: ignore[arg-type]
        assert [(r["severity"], r["cleared_at"] is not None) for r in rows] == [("error", True)]
    finally:
        await service.stop()


def test_without_a_second_threshold_machine_down_is_an_error_at_once() -> None:
    """The default (`down_error_minutes: null`) keeps machine_down an error from the start; a
    second threshold at or below the first raises it as an error too."""
    from mes_edge.app.alerts import AlertRules, ScrapWindows
    from mes_edge.domain import MemoryState, WorkCenterState

    state = MemoryState()
    state.wc_map["PRESS-01"] = WorkCenterState(work_center="PRESS-01",
                                               machine_state=MachineState.DOWN, since=T0)
    for thresholds, severity in (({}, "error"), ({"down_error_minutes": 3}, "error"),
                                 ({"down_error_minutes": 30}, "warning")):
        doc = plant("sqlite:///unused.db", alerts={"thresholds": {"down_minutes": 5,
                                                                  **thresholds}})
        rules = AlertRules(parse_settings(doc))
        found = [c for c in rules.conditions(state, T0 + timedelta(minutes=6), ScrapWindows(),
                                             {}, {}) if c.kind == "machine_down"]
        assert [c.severity for c in found] == [severity], thresholds
    # A work center may set its own second threshold.
    doc = plant("sqlite:///unused.db", alerts={"thresholds": {"down_minutes": 5}})
    doc["work_centers"][0]["alerts"] = {"down_error_minutes": 10}
    rules = AlertRules(parse_settings(doc))
    assert rules.of("PRESS-01").down_error_minutes == 10
    assert rules.of("CNC-02").down_error_minutes is None
