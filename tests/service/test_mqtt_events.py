"""Terminal events and scans through a real Mosquitto reach WIP; bad messages are recorded as
rejections without stopping anything; a broker restart mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from mes_edge.app.service import EdgeService
from mes_edge.domain import OperationStatus
from mes_edge.store.tokens import upsert_operator
from simulators.scanner import ScannerSim
from tests.servers import MosquittoBroker
from tests.service.plant import (
    ASSY,
    SITE,
    base_plant,
    mqtt_section,
    operation,
    release_order,
    service_of,
    sqlite_query,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def service(sqlite_url: str, mosquitto: MosquittoBroker) -> AsyncIterator[EdgeService]:
    """The service subscribed to the test broker (its session exists before anyone publishes)."""
    svc = service_of(base_plant(sqlite_url, mqtt=mqtt_section(mosquitto.url)))
    await svc.start()
    try:
        assert svc.mqtt_in is not None
        async with asyncio.timeout(10):
            await svc.mqtt_in.wait_ready()
        yield svc
    finally:
        await svc.stop()


def pump_alive(service: EdgeService) -> bool:
    return all(not t.done() for t in service._tasks if t.get_name() == "pump:mqtt")


async def test_scans_and_terminal_events_drive_an_operation(
        service: EdgeService, mosquitto: MosquittoBroker, sqlite_url: str) -> None:
    assert service.dispatcher is not None
    d = service.dispatcher
    await release_order(d, "3001", ASSY, qty=20, start=False)
    assert service.store is not None
    # An `OP:` scan signs in only a known, active operator without a PIN.
    await upsert_operator(service.store, "B-17", "Li Wei", None, [])
    await service.refresh_operators()
    async with ScannerSim(mosquitto.url, SITE, ASSY) as term:
        await term.scan("OP:B-17")  # the badge logs the operator in
        start_id = await term.scan("WO:3001/0010")  # the traveller's barcode starts the op
        await wait_until(lambda: operation(d, "3001").status == OperationStatus.RUNNING, 10,
                         "the scan to start the operation")
        await term.event("report", "3001", "0010", good=5, scrap=2, reason="dent")
        await term.event("report", "3001", "0010", good=3, operator="op-9")
        await term.event("downtime_reason", reason="tooling")
        await term.event("complete", "3001", "0010")
        await wait_until(lambda: operation(d, "3001").status == OperationStatus.COMPLETED, 10,
                         "the complete event")
    op = operation(d, "3001")
    assert (op.done.good, op.done.scrap) == (8, {"dent": 2})
    actors = dict(sqlite_query(sqlite_url, "SELECT event_id, actor FROM events"))
    assert actors[f"scan:{ASSY}:{start_id}"] == "B-17"
    # op-9 is not signed in at the station: the claim is kept, marked unverified
    assert "unverified:op-9" in actors.values()
    types = [t for (t,) in sqlite_query(sqlite_url, "SELECT type FROM events ORDER BY seq")]
    assert types.count("quantity_reported") == 2 and "operation_command" in types


async def test_bad_messages_are_recorded_and_the_service_keeps_running(
        service: EdgeService, mosquitto: MosquittoBroker, sqlite_url: str) -> None:
    assert service.dispatcher is not None
    d = service.dispatcher
    await release_order(d, "3002", ASSY, qty=50)
    event_topic = f"mes/{SITE}/{ASSY}/event"
    bad: list[bytes | str] = [
        b"{this is not json",
        json.dumps({"id": "w1", "type": "report", "order": "3002", "operation": "0010",
                    "good": "3"}),  # a string is not a quantity
        json.dumps({"id": "w2", "type": "report", "order": "3002", "operation": "0010",
                    "good": -4}),
        json.dumps({"id": "w3", "type": "explode", "order": "3002", "operation": "0010"}),
        json.dumps({"id": "w4", "type": "report", "order": "3002", "operation": "0010",
                    "good": 1, "reason": "x" * 20_000}),  # over max_payload_bytes
        b"\xff\xfe\x00",
    ]
    async with ScannerSim(mosquitto.url, SITE, ASSY) as term:
        for payload in bad:
            await term.publish_raw(event_topic, payload)
        await term.scan("??NOT-A-BARCODE??")
        await term.event("report", "9999", "0010", good=1)  # unknown order: a domain refusal
        await term.event("report", "3002", "0010", good=10**6)  # beyond the plan and tolerance
        await term.event("report", "3002", "0010", good=7)  # and good input still works
        await wait_until(lambda: operation(d, "3002").done.good == 7, 10, "the valid report")
    codes = [c for (c,) in sqlite_query(sqlite_url, "SELECT reason_code FROM rejected_events")]
    assert codes.count("bad_message") == len(bad), codes
    # A malformed message belongs to the work center of its topic, with a stable id.
    rows = sqlite_query(sqlite_url, "SELECT work_center, event_id FROM rejected_events "
                                    "WHERE reason_code = 'bad_message'")
    assert {wc for wc, _ in rows} == {ASSY}
    assert all(eid.startswith("mqtt-bad:") for _, eid in rows)
    assert "unknown_barcode" in codes
    assert len(codes) == len(bad) + 3, codes  # every bad input is on record, none dropped
    assert pump_alive(service)
    assert operation(d, "3002").done.good == 7


async def test_broker_restart_mid_stream_loses_nothing(
        service: EdgeService, mosquitto: MosquittoBroker, sqlite_url: str) -> None:
    assert service.dispatcher is not None
    d = service.dispatcher
    await release_order(d, "3003", ASSY, qty=1000)
    per_phase = 150
    async with ScannerSim(mosquitto.url, SITE, ASSY, client_id="term-a") as term:
        for _ in range(per_phase):
            await term.event("report", "3003", "0010", good=1)  # PUBACK: the broker has it
    # Restart at once: part of the stream is still queued in the broker for our session.
    before = operation(d, "3003").done.good
    mosquitto.restart()
    async with ScannerSim(mosquitto.url, SITE, ASSY, client_id="term-b") as term:
        for _ in range(per_phase):
            await term.event("report", "3003", "0010", good=1)
    await wait_until(lambda: operation(d, "3003").done.good == 2 * per_phase, 30,
                     "every report of both phases")
    await asyncio.sleep(0.5)
    assert operation(d, "3003").done.good == 2 * per_phase
    reports = sqlite_query(sqlite_url, "SELECT count(*) FROM events WHERE order_id='3003' "
                                       "AND type='quantity_reported'")
    assert reports == [(2 * per_phase,)]
    print(f"committed before the broker restart: {before}/{per_phase}")
    assert pump_alive(service)
