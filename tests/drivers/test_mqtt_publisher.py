"""MqttPublisher against a real Mosquitto: coalesced retained state, bounded alerts."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drivers.health import ConnectionState
from drivers.mqtt import MqttConfig, MqttPublisher
from tests.servers import MosquittoBroker


class Listener:
    """A plain paho subscriber that records (topic, payload, retain) from its thread."""

    def __init__(self, broker: MosquittoBroker, topic: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    async def ready(self) -> None:
        assert await asyncio.to_thread(self._ready.wait, 5)

    async def until(self, done: Callable[[list[tuple[str, dict[str, Any], bool]]], bool],
                    seconds: float = 5.0) -> list[tuple[str, dict[str, Any], bool]]:
        async with asyncio.timeout(seconds):
            while True:
                with self._lock:
                    snapshot = list(self.messages)
                if done(snapshot):
                    return snapshot
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)


def _config(broker: MosquittoBroker, **overrides: object) -> MqttConfig:
    return MqttConfig.model_validate({
        "url": broker.url, "client_id": f"edge-{uuid.uuid4().hex[:8]}",
        "reconnect_min_delay": 0.2, "reconnect_max_delay": 1.0, **overrides})


async def _drained(pub: MqttPublisher, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while pub.pending:  # noqa: ASYNC110 - polled, bounded
            await asyncio.sleep(0.02)


async def _connected(pub: MqttPublisher) -> None:
    async with asyncio.timeout(5):
        while pub.health.state != ConnectionState.CONNECTED:  # noqa: ASYNC110 - polled, bounded
            await asyncio.sleep(0.02)


async def test_state_burst_is_coalesced_to_the_latest(mosquitto: MosquittoBroker) -> None:
    listener = Listener(mosquitto, "mes/plant1/+/state")
    await listener.ready()
    async with MqttPublisher(_config(mosquitto)) as pub:
        await _connected(pub)
        for n in range(1000):  # one loop turn: the dispatcher never waits for the broker
            pub.publish_state("plant1", "PRESS-01", {"good": n})
        await _drained(pub)
        seen = await listener.until(lambda m: bool(m) and m[-1][1] == {"good": 999})
        assert len(seen) <= 2  # the first one in flight, then only the newest
        assert pub.stats.states_coalesced == 998
    await listener.close()


async def test_states_made_while_the_broker_is_down_arrive_as_latest_retained(
    mosquitto: MosquittoBroker,
) -> None:
    await asyncio.to_thread(mosquitto.stop)
    async with MqttPublisher(_config(mosquitto)) as pub:
        for n in range(50):
            pub.publish_state("plant1", "PRESS-01", {"good": n})
            pub.publish_state("plant1", "LATHE-02", {"good": 100 + n})
        assert pub.stats.states_coalesced == 96 and pub.pending == 4
        await asyncio.to_thread(mosquitto.start)
        await _drained(pub)
    # A late subscriber (a tablet, the supervisor board) gets the newest state, retained.
    listener = Listener(mosquitto, "mes/plant1/+/state")
    seen = await listener.until(lambda m: len(m) >= 2)
    await listener.close()
    assert sorted((t, p, r) for t, p, r in seen) == [
        ("mes/plant1/LATHE-02/state", {"good": 149}, True),
        ("mes/plant1/PRESS-01/state", {"good": 49}, True),
    ]


async def test_alert_overflow_drops_the_oldest_and_counts(mosquitto: MosquittoBroker) -> None:
    await asyncio.to_thread(mosquitto.stop)
    async with MqttPublisher(_config(mosquitto, alert_queue_size=5)) as pub:
        for n in range(50):
            pub.publish_alert("plant1", {"n": n})
        # 32 are in paho's in-flight window, 5 wait in the queue, the 13 oldest waiting went.
        assert pub.stats.alerts_dropped == 13
        assert pub.health_dict()["alerts_dropped"] == 13
        await asyncio.to_thread(mosquitto.start)
        listener = Listener(mosquitto, "mes/plant1/alerts")
        await listener.ready()
        # Alerts are not retained: subscribe first, then let the publisher reconnect and flush.
        seen = await listener.until(lambda m: len(m) >= 37, seconds=10)
        await _drained(pub)
        await listener.close()
    numbers = [p["n"] for _t, p, _r in seen]
    assert numbers == list(range(32)) + list(range(45, 50))


async def test_generic_publish_and_close_reports_unsent(mosquitto: MosquittoBroker) -> None:
    listener = Listener(mosquitto, "mes/plant1/custom")
    await listener.ready()
    async with MqttPublisher(_config(mosquitto)) as pub:
        await _connected(pub)  # QoS 0 is fire-and-forget: lost when sent while offline
        pub.publish("mes/plant1/custom", {"hello": 1}, qos=1)
        pub.publish("mes/plant1/custom", b'{"hello": 2}', qos=0)
        await listener.until(lambda m: len(m) == 2)
    assert pub.stats.unsent_at_close == 0
    await listener.close()
    await asyncio.to_thread(mosquitto.stop)
    pub = MqttPublisher(_config(mosquitto))
    await pub.start()
    pub.publish_alert("plant1", {"lost": True})
    await pub.close(flush_timeout=0.2)
    assert pub.stats.unsent_at_close == 1  # stated and counted, not silent
