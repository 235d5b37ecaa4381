"""Inbound MQTT: scanner and terminal messages with manual ack, as an async iterator of items.

    async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as inbound:
        async for item in inbound:            # ReceivedScan | ReceivedEvent | RejectedMessage
            ...record it, commit...
            await item.ack()                  # PUBACK only after the commit

Why it is safe: the session is persistent (fixed client id, clean start off), so a message not
acked before a crash or a lost link is redelivered by the broker. Dedup by message id downstream
makes a redelivery harmless.

Threads: paho's network thread (loop_start) decodes and validates each message, then hands it
to the event loop with `call_soon_threadsafe` into a bounded asyncio queue.

Full queue: the network thread waits for a free slot (backpressure), so paho stops reading the
socket and TCP pushes back on the broker; nothing is dropped. With MQTT 5 we also ask for a
Receive Maximum of `max_unacked`; a broker that honours it never sends more unacked QoS 1
messages than the queue holds. Mosquitto 2.0.11 was measured NOT to honour it under a steady
flow (2,000 unacked with Receive Maximum 16), so the thread-side wait is the bound we rely on.
While the thread waits it sends nothing either; if the consumer stalls for longer than 1.5x the
keepalive, the broker drops the link and redelivers the unacked messages on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from drivers.health import ConnectionState, DriverHealth
from drivers.mqtt.config import MqttConfig
from drivers.mqtt.connection import build_client, reason_text, start_client
from drivers.mqtt.items import (
    PAYLOAD_KEEP_BYTES,
    InboundItem,
    ReceivedEvent,
    ReceivedScan,
    RejectedMessage,
)
from drivers.mqtt.payloads import PayloadSchemas, describe_validation_error, validate_payload
from drivers.mqtt.watchdog import ConnackWatchdog

#: How often a network thread waiting for queue space checks whether the driver is closing.
_SLOT_POLL_S = 0.25


@dataclass
class InboundStats:
    """Counters of the inbound driver (written by one thread each, read anywhere)."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    redelivered: int = 0
    acked: int = 0
    #: Acks not sent because the link was replaced meanwhile (the broker redelivers).
    acks_skipped: int = 0
    #: Times the network thread had to wait for queue space (backpressure engaged).
    backpressure_waits: int = 0
    subscribe_failures: int = 0


class MqttInboundDriver:
    """Subscribes to the scan/event topics and yields validated items or rejections."""

    def __init__(self, cfg: MqttConfig, *, schemas: PayloadSchemas,
                 name: str | None = None) -> None:
        """`schemas`: the pydantic model each inbound kind (`scan`, `event`) must satisfy."""
        self.cfg = cfg
        self.name = name or f"mqtt-in:{cfg.client_id}"
        self.health = DriverHealth(name=self.name)
        self.stats = InboundStats()
        self.log = logging.getLogger("drivers.MqttInboundDriver")
        self._templates = cfg.topics.templates()
        missing = sorted(set(self._templates) - set(schemas))
        if missing:
            raise ValueError(f"no payload schema for inbound kind(s) {', '.join(missing)}")
        self._schemas = dict(schemas)
        self._fixed = {"site": cfg.site} if cfg.site else {}
        self._queue: asyncio.Queue[InboundItem] = asyncio.Queue(maxsize=cfg.max_unacked)
        # Slots are taken by the network thread before handing over and given back when the
        # consumer takes the item, so put_nowait on the loop side can never overflow.
        self._slots = threading.Semaphore(cfg.max_unacked)
        self._closing = threading.Event()
        self._closed = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._held: InboundItem | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        # Bumped on each successful CONNACK; an item acks only on the connection it came from.
        self._generation = 0
        self._connack = ConnackWatchdog(f"{cfg.host}:{cfg.port}", cfg.connect_timeout,
                                        loop=lambda: self._loop, closing=self._closing.is_set)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in paho's thread (idempotent, non-blocking)."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        client = build_client(self.cfg, client_id=self.cfg.client_id, manual_ack=True,
                              persistent=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = self._on_socket_open
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self.health.set_state(ConnectionState.CONNECTING, self.log)
        start_client(client, self.cfg, persistent=True, receive_maximum=self.cfg.max_unacked)

    async def close(self) -> None:
        """Disconnect cleanly (unacked messages stay in the broker session) and join paho."""
        self._closing.set()
        self._connack.cancel()
        client, self._client = self._client, None
        if client is not None:
            # Let paho's thread write the PUBACKs queued by the last ack() calls first: paho
            # closes the socket right after writing DISCONNECT, and acks caught behind a
            # close were measured to get lost (the messages then come back: harmless, but noisy).
            for _ in range(200):  # at most ~1 s
                if not client.want_write():
                    break
                await asyncio.sleep(0.005)
            client.disconnect()
            try:
                async with asyncio.timeout(10):
                    await asyncio.to_thread(client.loop_stop)
            except TimeoutError:
                self.log.error("%s: paho network thread did not stop within 10 s", self.name)
        self._closed.set()
        self.health.set_state(ConnectionState.CLOSED, self.log)

    async def __aenter__(self) -> MqttInboundDriver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- consumer side (event loop) --------------------------------------------------------

    def __aiter__(self) -> MqttInboundDriver:
        return self

    async def __anext__(self) -> InboundItem:
        """The next item; ends (StopAsyncIteration) once the driver is closed and drained."""
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if self._queue.empty():
            if self._closed.is_set():
                raise StopAsyncIteration
            getter = asyncio.ensure_future(self._queue.get())
            closer = asyncio.ensure_future(self._closed.wait())
            try:
                await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closer.cancel()
                if not getter.done():
                    getter.cancel()
                elif not getter.cancelled():
                    # Cancelled while an item was already taken: keep it for the next call
                    # rather than lose it from this session.
                    self._slots.release()
                    self._held = getter.result()
            with contextlib.suppress(asyncio.CancelledError):
                await closer
            if self._held is None:
                raise StopAsyncIteration
            item, self._held = self._held, None
            return item
        item = self._queue.get_nowait()
        self._slots.release()
        return item

    async def wait_ready(self) -> None:
        """Wait until the broker confirmed our subscriptions (bound it with asyncio.timeout)."""
        await self._subscribed.wait()

    def take_ready(self, limit: int) -> list[InboundItem]:
        """Up to `limit` items already queued, without waiting (for group commit batches)."""
        items: list[InboundItem] = []
        while len(items) < limit and not self._queue.empty():
            items.append(self._queue.get_nowait())
            self._slots.release()
        return items

    def health_dict(self) -> dict[str, Any]:
        """Health plus MQTT counters, JSON-friendly."""
        return {**self.health.as_dict(), **asdict(self.stats), "queued": self._queue.qsize()}

    def _ack(self, mid: int, qos: int, generation: int) -> bool:
        client = self._client
        if qos == 0:
            return True
        if client is None or generation != self._generation or not client.is_connected():
            self.stats.acks_skipped += 1
            return False
        client.ack(mid, qos)  # queues the PUBACK for paho's thread; never blocks
        self.stats.acked += 1
        return True

    # ---- paho's network thread -------------------------------------------------------------

    def _to_loop(self, state: ConnectionState, error: str | None = None) -> None:
        loop = self._loop
        if loop is None or self._closing.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(self.health.set_state, state, self.log, error)

    def _on_socket_open(self, _c: paho.Client, _ud: Any, sock: Any) -> None:
        self._connack.socket_opened(sock)

    def _on_connect(self, client: paho.Client, _ud: Any, flags: Any, reason: Any,
                    _props: Any) -> None:
        self._connack.answered()
        if reason.is_failure:
            self._to_loop(ConnectionState.DISCONNECTED, f"broker refused: {reason}")
            return
        self._generation += 1
        # Subscribing again each time is harmless with a kept session and needed without one.
        if self.cfg.protocol == "5":
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            client.subscribe([(t.subscription(self._fixed), options)
                              for t in self._templates.values()])
        else:
            client.subscribe([(t.subscription(self._fixed), 1) for t in self._templates.values()])
        self._to_loop(ConnectionState.CONNECTED)

    def _on_subscribe(self, _c: paho.Client, _ud: Any, _mid: int, reasons: list[Any],
                      _props: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self.stats.subscribe_failures += 1
            self.log.error("%s: subscription refused: %s", self.name, ", ".join(failed))
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_connect_fail(self, _c: paho.Client, _ud: Any) -> None:
        self._to_loop(ConnectionState.DISCONNECTED,
                      f"cannot reach broker {self.cfg.host}:{self.cfg.port}")

    def _on_disconnect(self, _c: paho.Client, _ud: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        # A socket that never got a CONNACK: whatever listens there is not an MQTT broker.
        not_mqtt = self._connack.disconnect_reason(reason_text(reason))
        if not_mqtt is not None:
            self._to_loop(ConnectionState.DISCONNECTED, not_mqtt)
        else:
            self._to_loop(ConnectionState.DISCONNECTED, f"disconnected: {reason_text(reason)}")
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._subscribed.clear)

    def _on_message(self, _c: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        item = self._decode(msg)
        self._hand_over(item)

    def _decode(self, msg: paho.MQTTMessage) -> InboundItem:
        """Turn one message into an item; every failure becomes a RejectedMessage."""
        stats = self.stats
        stats.received += 1
        self.health.requests += 1
        generation = self._generation
        mid, qos = msg.mid, msg.qos

        def acker() -> bool:
            return self._ack(mid, qos, generation)

        redelivered = bool(msg.dup)
        stats.redelivered += redelivered
        raw = bytes(msg.payload)  # paho may hand a bytearray
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            return self._reject(repr(msg._topic), raw, "topic is not valid UTF-8", None,
                                acker, redelivered)
        matched = self._match(topic)
        if matched is None:
            return self._reject(topic, raw, "unknown topic", None, acker, redelivered)
        kind, bound = matched
        wc = bound.get("work_center")
        if len(raw) > self.cfg.max_payload_bytes:
            reason = f"payload of {len(raw)} bytes exceeds {self.cfg.max_payload_bytes} bytes"
            return self._reject(topic, raw, reason, kind, acker, redelivered, wc)
        try:
            message = validate_payload(self._schemas[kind], raw, bound)
        except ValidationError as err:
            return self._reject(topic, raw, describe_validation_error(err), kind, acker,
                                redelivered, wc)
        stats.accepted += 1
        self.health.values += 1
        if kind == "scan":
            return ReceivedScan(topic=topic, message=message, redelivered=redelivered,
                                _acker=acker)
        return ReceivedEvent(topic=topic, message=message, redelivered=redelivered,
                             _acker=acker)

    def _match(self, topic: str) -> tuple[str, dict[str, str]] | None:
        # A kept session may still deliver topics of an older configuration: those do not match.
        for kind, template in self._templates.items():
            bound = template.match(topic)
            if bound is not None and all(bound.get(k) == v for k, v in self._fixed.items()):
                return kind, bound
        return None

    def _reject(self, topic: str, raw: bytes, reason: str, kind: str | None,
                acker: Any, redelivered: bool, work_center: str | None = None,
                ) -> RejectedMessage:
        self.stats.rejected += 1
        self.health.errors += 1
        self.log.info("%s: rejected message on %s: %s", self.name, topic, reason)
        return RejectedMessage(topic=topic, payload=bytes(raw[:PAYLOAD_KEEP_BYTES]), reason=reason,
                               kind=kind, payload_size=len(raw), redelivered=redelivered,
                               work_center=work_center, _acker=acker)

    def _hand_over(self, item: InboundItem) -> None:
        """Queue the item for the loop, waiting while the queue is full (backpressure)."""
        if not self._slots.acquire(blocking=False):
            self.stats.backpressure_waits += 1
            while not self._slots.acquire(timeout=_SLOT_POLL_S):
                if self._closing.is_set():
                    return  # not acked, so the broker redelivers it to the next session
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop closed under us; the message stays unacked
            self._slots.release()
