"""The loops that move data from drivers through rules into the dispatcher."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterable

from drivers import Signal
from drivers.mqtt import InboundItem, ReceivedEvent, ReceivedScan, RejectedMessage
from mes_edge.dispatcher import Dispatcher, Outcome, RawRejection
from mes_edge.rules import ScanParser, SignalRules, StationOperators, scan_event, terminal_event

log = logging.getLogger(__name__)


async def pump_signals(source: AsyncIterable[list[Signal]], rules: SignalRules,
                       dispatcher: Dispatcher) -> None:
    """Device signals -> rules -> dispatcher, in order. Waits when the dispatcher is full.

    A signal the rules cannot handle (a bug, a value no rule foresaw) is logged and skipped:
    one bad reading must not stop a device's data for good.
    """
    async for batch in source:
        try:
            items = rules.on_signals(batch)
        except Exception:
            log.exception("rules failed on a batch of %d signals; skipped", len(batch))
            continue
        if items:
            await dispatcher.submit_many(items)


class MqttPump:
    """MQTT items -> events -> dispatcher; each message is acked only after its commit.

    Acks go through a bounded queue in arrival order, so the pump never waits for a commit
    before reading the next message (group commit can batch them) but never gets more than
    `window` messages ahead of the database either.
    """

    def __init__(self, dispatcher: Dispatcher, parser: ScanParser, operators: StationOperators,
                 *, window: int = 512) -> None:
        self.dispatcher = dispatcher
        self.parser = parser
        self.operators = operators
        self._acks: asyncio.Queue[tuple[asyncio.Future[Outcome] | None, InboundItem]] = (
            asyncio.Queue(maxsize=window))

    def to_item(self, item: InboundItem) -> object | None:
        """The dispatcher item of an MQTT item (None: nothing durable to record)."""
        source = f"mqtt:{item.topic}"
        if isinstance(item, RejectedMessage):
            # A stable id: a redelivery of the same bad message meets the same verdict and is
            # recorded once. It belongs to the work center of its topic.
            digest = hashlib.sha256(f"{item.topic}\x1f{item.payload_size}\x1f".encode()
                                    + item.payload).hexdigest()
            return RawRejection(source=source, reason_code="bad_message", reason=item.reason,
                                payload={"raw": item.payload.decode("utf-8", "replace")},
                                type=item.kind, received_ts=item.received_ts,
                                work_center=item.work_center,
                                event_id=f"mqtt-bad:{digest[:40]}")
        if isinstance(item, ReceivedEvent):
            return terminal_event(item.message, source, self.operators)
        if isinstance(item, ReceivedScan):
            return scan_event(item.message, source, self.parser, self.operators)
        return None

    async def run(self, inbound: AsyncIterable[InboundItem]) -> None:
        """Consume the inbound driver until it ends or the task is cancelled."""
        acker = asyncio.create_task(self._ack_loop(), name="mqtt-acker")
        try:
            async for item in inbound:
                try:
                    converted = self.to_item(item)
                except Exception as err:  # never let one message stop the pump
                    log.exception("cannot convert MQTT message on %s", item.topic)
                    converted = RawRejection(source=f"mqtt:{item.topic}", reason_code="internal",
                                             reason=f"could not be processed: {err}"[:500],
                                             payload={"topic": item.topic})
                future = await self.dispatcher.submit(converted) if converted is not None else None  # type: ignore[arg-type]
                await self._acks.put((future, item))
        finally:
            acker.cancel()
            await asyncio.gather(acker, return_exceptions=True)

    async def _ack_loop(self) -> None:
        while True:
            future, item = await self._acks.get()
            if future is not None:
                await future  # committed (accepted, duplicate or recorded as rejected)
            await item.ack()
