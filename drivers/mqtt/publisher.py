"""Outbound MQTT: retained work-center state (coalesced) and alerts (bounded, drop-oldest).

Every call is non-blocking: it only updates in-memory structures and hands packets to paho's
network thread, so the dispatcher never waits on the broker. It uses its own paho client, so
backpressure on the inbound connection never stalls what we publish.

- State (`mes/<site>/<wc>/state`, QoS 1, retained): at most one message per topic is in flight;
  newer states for that topic replace the pending one. A slow or absent broker therefore holds
  only the latest state per work center, and the latest always goes out - that is all a
  retained state means.
- Alerts (`mes/<site>/alerts`, QoS 1) and generic publish() with QoS > 0: a bounded queue per
  kind behind a small in-flight window. When a queue is full the OLDEST entry is dropped,
  counted (`alerts_dropped`, `publishes_dropped`) and logged once per overflow episode.
- In-flight QoS 1 messages survive a broker restart: paho keeps them and resends on reconnect.
  They do not survive our own process dying (the state is republished by the service on start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho

from drivers.health import ConnectionState, DriverHealth
from drivers.mqtt.config import MqttConfig
from drivers.mqtt.connection import build_client, reason_text, start_client
from drivers.mqtt.topics import TopicTemplate
from drivers.mqtt.watchdog import ConnackWatchdog

#: QoS > 0 messages of one queue handed to paho at once; the rest wait in our bounded queue.
_WINDOW = 32

Payload = bytes | str | dict[str, Any] | list[Any]


@dataclass
class PublisherStats:
    """Counters of the publisher (event-loop thread only)."""

    published: int = 0
    states_coalesced: int = 0
    alerts_dropped: int = 0
    publishes_dropped: int = 0
    unsent_at_close: int = 0


class _BoundedOutbox:
    """A drop-oldest FIFO of (topic, payload, qos, retain) with an in-flight window."""

    def __init__(self, label: str, size: int) -> None:
        self.label = label
        self.size = size
        self.waiting: deque[tuple[str, bytes, int, bool]] = deque()
        self.inflight = 0
        self.dropped = 0
        self._logged = False

    def push(self, entry: tuple[str, bytes, int, bool], log: logging.Logger, name: str) -> bool:
        """Queue an entry; returns True when the oldest had to be dropped for it."""
        dropped = False
        if len(self.waiting) >= self.size:
            self.waiting.popleft()
            self.dropped += 1
            dropped = True
            if not self._logged:  # once per overflow episode, not once per message
                self._logged = True
                log.warning("%s: %s queue full (%d): dropping the oldest", name, self.label,
                            self.size)
        elif self._logged and len(self.waiting) < self.size // 2:
            log.warning("%s: %s queue recovered; %d dropped in total", name, self.label,
                        self.dropped)
            self._logged = False
        self.waiting.append(entry)
        return dropped


class MqttPublisher:
    """Publishes state, alerts and other messages without ever blocking the caller."""

    def __init__(self, cfg: MqttConfig, *, name: str | None = None,
                 client_id: str | None = None) -> None:
        self.cfg = cfg
        self.name = name or f"mqtt-out:{cfg.client_id}"
        self.health = DriverHealth(name=self.name)
        self.stats = PublisherStats()
        self.log = logging.getLogger("drivers.MqttPublisher")
        self._client_id = client_id or f"{cfg.client_id}-pub"
        self._state_topic = TopicTemplate.parse(cfg.outbound.state)
        self._alert_topic = TopicTemplate.parse(cfg.outbound.alerts)
        self._state_inflight: dict[str, int] = {}
        self._state_pending: dict[str, bytes] = {}
        self._alerts = _BoundedOutbox("alert", cfg.alert_queue_size)
        self._generic = _BoundedOutbox("publish", cfg.publish_queue_size)
        # mid -> what it was: a state topic (str) or the outbox it came from.
        self._owners: dict[int, str | _BoundedOutbox] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._closing = False
        # A wrong port (no MQTT there) is one clear log line, as for the inbound driver.
        self._connack = ConnackWatchdog(f"{cfg.host}:{cfg.port}", cfg.connect_timeout,
                                        loop=lambda: self._loop, closing=lambda: self._closing)

    async def start(self) -> None:
        """Start connecting in paho's thread (idempotent, non-blocking)."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        client = build_client(self.cfg, client_id=self._client_id, manual_ack=False,
                              persistent=False)
        client.max_inflight_messages_set(0)  # our windows bound what is in flight
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = self._on_socket_open
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self.health.set_state(ConnectionState.CONNECTING, self.log)
        start_client(client, self.cfg, persistent=False)

    async def close(self, *, flush_timeout: float = 2.0) -> None:
        """Wait up to `flush_timeout` for queued messages to go out, then disconnect."""
        if self._client is not None and not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    await self._idle.wait()
        self._closing = True
        self._connack.cancel()
        client, self._client = self._client, None
        self.stats.unsent_at_close = self.pending
        if self.stats.unsent_at_close:
            self.log.warning("%s: closing with %d messages not confirmed by the broker",
                             self.name, self.stats.unsent_at_close)
        if client is not None:
            client.disconnect()
            try:
                async with asyncio.timeout(10):
                    await asyncio.to_thread(client.loop_stop)
            except TimeoutError:
                self.log.error("%s: paho network thread did not stop within 10 s", self.name)
        self.health.set_state(ConnectionState.CLOSED, self.log)

    async def __aenter__(self) -> MqttPublisher:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # ---- public, non-blocking --------------------------------------------------------------

    def publish_state(self, site: str, work_center: str, payload: Payload) -> None:
        """Publish a work center's state (QoS 1, retained), coalescing per topic."""
        topic = self._state_topic.render(site=site, work_center=work_center)
        data = _encode(payload)
        if topic in self._state_inflight:
            if topic in self._state_pending:
                self.stats.states_coalesced += 1
            self._state_pending[topic] = data  # only the newest state matters
            self._idle.clear()
            return
        self._send_state(topic, data)

    def publish_alert(self, site: str, payload: Payload) -> None:
        """Publish an alert (QoS 1); when the queue is full the oldest alert is dropped."""
        topic = self._alert_topic.render(site=site)
        if self._alerts.push((topic, _encode(payload), 1, False), self.log, self.name):
            self.stats.alerts_dropped += 1
        self._pump(self._alerts)

    def publish(self, topic: str, payload: Payload, qos: int = 1, retain: bool = False) -> None:
        """Publish anything; QoS 0 goes straight out (lost if offline), QoS 1/2 are queued."""
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos}")
        data = _encode(payload)
        if qos == 0:
            if self._client is not None:
                self._client.publish(topic, data, 0, retain)
            return
        if self._generic.push((topic, data, qos, retain), self.log, self.name):
            self.stats.publishes_dropped += 1
        self._pump(self._generic)

    @property
    def pending(self) -> int:
        """Messages queued or in flight, not yet confirmed by the broker."""
        return (len(self._state_inflight) + len(self._state_pending)
                + self._alerts.inflight + len(self._alerts.waiting)
                + self._generic.inflight + len(self._generic.waiting))

    def health_dict(self) -> dict[str, Any]:
        """Health plus publisher counters, JSON-friendly."""
        return {**self.health.as_dict(), **asdict(self.stats), "pending": self.pending}

    # ---- event-loop internals --------------------------------------------------------------

    def _send_state(self, topic: str, data: bytes) -> None:
        if self._client is None:
            self._state_pending[topic] = data  # sent once started
            self._idle.clear()
            return
        info = self._client.publish(topic, data, qos=1, retain=True)
        self._state_inflight[topic] = info.mid
        self._owners[info.mid] = topic
        self._idle.clear()

    def _pump(self, box: _BoundedOutbox) -> None:
        client = self._client
        if box.waiting:
            self._idle.clear()
        while client is not None and box.waiting and box.inflight < _WINDOW:
            topic, data, qos, retain = box.waiting.popleft()
            info = client.publish(topic, data, qos=qos, retain=retain)
            box.inflight += 1
            self._owners[info.mid] = box

    def _confirmed(self, mid: int) -> None:
        owner = self._owners.pop(mid, None)
        if owner is None:
            return
        self.stats.published += 1
        if isinstance(owner, str):
            self._state_inflight.pop(owner, None)
            newer = self._state_pending.pop(owner, None)
            if newer is not None:
                self._send_state(owner, newer)
        else:
            owner.inflight -= 1
            self._pump(owner)
        if self.pending == 0:
            self._idle.set()

    def _flush_unstarted(self) -> None:
        # States set before the client existed, and queues waiting for their window.
        for topic in [t for t in self._state_pending if t not in self._state_inflight]:
            self._send_state(topic, self._state_pending.pop(topic))
        self._pump(self._alerts)
        self._pump(self._generic)

    # ---- paho's network thread -------------------------------------------------------------

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, _c: paho.Client, _ud: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        self._connack.answered()
        if reason.is_failure:
            self._call(self.health.set_state, ConnectionState.DISCONNECTED, self.log,
                       f"broker refused: {reason}")
            return
        self._call(self.health.set_state, ConnectionState.CONNECTED, self.log)
        self._call(self._flush_unstarted)

    def _on_connect_fail(self, _c: paho.Client, _ud: Any) -> None:
        self._call(self.health.set_state, ConnectionState.DISCONNECTED, self.log,
                   f"cannot reach broker {self.cfg.host}:{self.cfg.port}")

    def _on_disconnect(self, _c: paho.Client, _ud: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        not_mqtt = self._connack.disconnect_reason(reason_text(reason))
        if self._client is not None:
            self._call(self.health.set_state, ConnectionState.DISCONNECTED, self.log,
                       not_mqtt or f"disconnected: {reason_text(reason)}")

    def _on_socket_open(self, _c: paho.Client, _ud: Any, sock: Any) -> None:
        self._connack.socket_opened(sock)

    def _on_publish(self, _c: paho.Client, _ud: Any, mid: int, _reason: Any,
                    _props: Any) -> None:
        self._call(self._confirmed, mid)


def _encode(payload: Payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":"), default=str).encode()
