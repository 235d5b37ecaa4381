"""Inbound MQTT driver against a real Mosquitto: valid items, rejections, backpressure."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.health import ConnectionState
from drivers.mqtt import (
    InboundItem,
    MqttConfig,
    MqttInboundDriver,
    ReceivedEvent,
    ReceivedScan,
    RejectedMessage,
)
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS, EventType
from simulators.scanner import ScannerSim
from tests.servers import MosquittoBroker


def _config(broker: MosquittoBroker, **overrides: object) -> MqttConfig:
    return MqttConfig.model_validate({
        "url": broker.url, "client_id": f"edge-{uuid.uuid4().hex[:8]}",
        "reconnect_min_delay": 0.2, "reconnect_max_delay": 1.0, **overrides})


async def _take(driver: MqttInboundDriver, count: int, seconds: float = 5.0) -> list[InboundItem]:
    items: list[InboundItem] = []
    async with asyncio.timeout(seconds):
        while len(items) < count:
            items.append(await anext(driver))
    return items


async def test_valid_scan_and_event_arrive_with_topic_fields(mosquitto: MosquittoBroker) -> None:
    async with MqttInboundDriver(_config(mosquitto), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        assert driver.health.state == ConnectionState.CONNECTED
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            scan_id = await sim.scan("ORD-1001")
            event_id = await sim.event("report", "1001", "0010", good=3, scrap=1,
                                       reason="burr", operator="OP-7", work_center="LATHE-02")
        scan, event = await _take(driver, 2)
        assert isinstance(scan, ReceivedScan)
        assert (scan.message.id, scan.message.code) == (scan_id, "ORD-1001")
        assert (scan.message.site, scan.message.work_center) == ("plant1", "PRESS-01")
        assert isinstance(event, ReceivedEvent)
        assert event.message.id == event_id
        assert event.message.type == EventType.REPORT
        assert (event.message.work_center, event.message.good, event.message.scrap) == (
            "LATHE-02", 3, 1)
        for item in (scan, event):
            await item.ack()
        assert driver.stats.acked == 2


async def test_bad_messages_are_rejected_and_the_driver_keeps_going(
    mosquitto: MosquittoBroker,
) -> None:
    cfg = _config(mosquitto, max_payload_bytes=1024)
    async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            await sim.publish_raw(sim.topic("scan"), b'{"id": "x", "code": ')
            await sim.publish_raw(sim.topic("event"), json.dumps(
                {"id": "e", "type": "report", "order": "1", "operation": "10", "good": "many"}))
            huge = json.dumps({"id": "big", "code": "X" * 5000})
            await sim.publish_raw(sim.topic("scan"), huge)
            await sim.publish_raw(sim.topic("scan"), json.dumps({"code": "NO-ID"}))
            good_id = await sim.scan("ORD-7")
        items = await _take(driver, 5)
        rejected = [i for i in items if isinstance(i, RejectedMessage)]
        reasons = [r.reason for r in rejected]
        assert len(rejected) == 4, reasons
        assert reasons[0].startswith("malformed JSON")
        assert "good: Input should be a valid integer" in reasons[1]
        assert reasons[2] == f"payload of {len(huge)} bytes exceeds 1024 bytes"
        assert rejected[2].payload_size == len(huge) and len(rejected[2].payload) == 512
        assert "id: Field required" in reasons[3]
        assert all(r.topic.startswith("mes/plant1/PRESS-01/") for r in rejected)
        assert isinstance(items[4], ReceivedScan) and items[4].message.id == good_id
        for item in items:
            await item.ack()
        assert driver.stats.rejected == 4 and driver.health.errors == 4
        assert driver.health.state == ConnectionState.CONNECTED


async def test_topic_of_an_older_configuration_is_rejected_as_unknown(
    mosquitto: MosquittoBroker,
) -> None:
    """A kept session can hold a subscription the current config no longer has."""
    cfg = _config(mosquitto)
    old = paho.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                      protocol=MQTTProtocolVersion.MQTTv5)
    subscribed = threading.Event()
    old.on_subscribe = lambda *_args: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    old.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    old.loop_start()
    try:
        old.subscribe("mes/+/+/legacy", qos=1)
        assert await asyncio.to_thread(subscribed.wait, 5)
    finally:
        old.disconnect()
        await asyncio.to_thread(old.loop_stop)
    async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            await sim.publish_raw("mes/plant1/PRESS-01/legacy", b'{"id": "l1"}')
        (item,) = await _take(driver, 1)
        assert isinstance(item, RejectedMessage)
        assert (item.reason, item.kind, item.payload) == ("unknown topic", None, b'{"id": "l1"}')
        await item.ack()


async def test_slow_consumer_bounds_the_queue_and_loses_nothing(
    mosquitto: MosquittoBroker,
) -> None:
    """MQTT 5, QoS 1: a consumer that does not keep up holds back the broker, in order."""
    async with MqttInboundDriver(_config(mosquitto, max_unacked=4),
                                 schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            sent = [await sim.scan(f"C{n}") for n in range(20)]
        await asyncio.sleep(0.3)
        assert driver.health_dict()["queued"] <= 4
        assert driver.stats.received <= 5  # 4 queued + at most 1 held by the waiting thread
        got: list[str] = []
        async with asyncio.timeout(10):
            while len(got) < 20:
                item = await anext(driver)
                assert isinstance(item, ReceivedScan)
                got.append(item.message.id)
                await item.ack()
        assert got == sent


async def test_full_queue_makes_the_network_thread_wait_not_drop(
    mosquitto: MosquittoBroker,
) -> None:
    """MQTT 3.1.1 has no Receive Maximum: a QoS 0 flood meets the thread-side backpressure."""
    async with MqttInboundDriver(_config(mosquitto, protocol="3.1.1", max_unacked=4),
                                 schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01", qos=0) as sim:
            sent = [await sim.scan(f"C{n}") for n in range(50)]
        await asyncio.sleep(0.5)  # the consumer is slow: the queue fills, the thread waits
        assert driver.health_dict()["queued"] == 4
        assert driver.stats.backpressure_waits >= 1
        items = await _take(driver, 50)
        assert [i.message.id for i in items if isinstance(i, ReceivedScan)] == sent


async def test_link_lost_and_recovered_are_reported(mosquitto: MosquittoBroker) -> None:
    async with MqttInboundDriver(_config(mosquitto), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        await asyncio.to_thread(mosquitto.stop)
        async with asyncio.timeout(5):
            # Polled like a /readyz probe would see it.
            while driver.health.state != ConnectionState.DISCONNECTED:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert driver.health.last_error
        await asyncio.to_thread(mosquitto.start)
        async with asyncio.timeout(10):
            while driver.health.state != ConnectionState.CONNECTED:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await driver.wait_ready()
        assert driver.health.reconnects == 1
        # Subscriptions work after the reconnect.
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            scan_id = await sim.scan("AFTER")
        (item,) = await _take(driver, 1)
        assert isinstance(item, ReceivedScan) and item.message.id == scan_id
        await item.ack()
    assert driver.health.state == ConnectionState.CLOSED


async def test_broker_down_at_start_then_up(mosquitto: MosquittoBroker) -> None:
    await asyncio.to_thread(mosquitto.stop)
    async with MqttInboundDriver(_config(mosquitto), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            while driver.health.state != ConnectionState.DISCONNECTED:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert "cannot reach broker" in (driver.health.last_error or "")
        await asyncio.to_thread(mosquitto.start)
        async with asyncio.timeout(10):
            await driver.wait_ready()
        assert driver.health.state == ConnectionState.CONNECTED


async def test_close_ends_a_waiting_consumer_and_take_ready_batches(
    mosquitto: MosquittoBroker,
) -> None:
    driver = MqttInboundDriver(_config(mosquitto), schemas=TERMINAL_SCHEMAS)
    await driver.start()
    async with asyncio.timeout(5):
        await driver.wait_ready()
    async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
        for n in range(3):
            await sim.scan(f"B{n}")
    async with asyncio.timeout(5):
        while driver.stats.received < 3:  # noqa: ASYNC110 - polled, bounded
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # the last hand-over runs on the loop
    batch = driver.take_ready(10)
    assert [i.message.code for i in batch if isinstance(i, ReceivedScan)] == ["B0", "B1", "B2"]

    async def consume() -> list[InboundItem]:
        return [item async for item in driver]

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    await driver.close()
    async with asyncio.timeout(5):
        assert await consumer == []
