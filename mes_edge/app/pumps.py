"""The loops that move data from drivers through rules into the dispatcher, and their supervisor.

A device loop is one device's driver and its signal pump, run as one unit. When either fails
(a batch the rules cannot handle, the dispatcher refusing, the driver's own loop dying), the
supervisor logs the crash once, shows the loop as down in /readyz, waits a bounded, jittered,
growing delay and runs it again from the committed counter checkpoints, so nothing a PLC counted
is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from drivers import Backoff, Driver, Signal
from drivers.mqtt import InboundItem, ReceivedEvent, ReceivedScan, RejectedMessage
from drivers.signal import utcnow
from mes_edge.config.settings import RuleSettings
from mes_edge.dispatcher import Dispatcher, Outcome, RawRejection
from mes_edge.rules import ScanParser, SignalRules, StationOperators, scan_event, terminal_event

log = logging.getLogger(__name__)

#: A loop that ran this long before crashing starts again from the initial delay.
STABLE_AFTER_S = 60.0


async def pump_signals(source: AsyncIterable[list[Signal]], rules: SignalRules,
                       dispatcher: Dispatcher,
                       pending: deque[asyncio.Future[Outcome]] | None = None) -> None:
    """Device signals -> rules -> dispatcher, in order. Waits when the dispatcher is full.

    A batch the rules cannot handle (a bug, a value no rule foresaw) ends the pump with that
    error: its device loop is restarted from the committed checkpoints, which recovers the counts
    and state of that batch (skipping it would lose them). `pending` collects, per batch, the
    future of its last item, so a restart can wait for what is already queued to commit.
    """
    async for batch in source:
        items = rules.on_signals(batch)
        if items:
            futures = await dispatcher.submit_many(items)
            if pending is not None:
                while pending and pending[0].done():
                    pending.popleft()
                pending.append(futures[-1])


@dataclass
class LoopHealth:
    """Whether a supervised loop runs, how often it crashed and why (for /readyz)."""

    name: str
    running: bool = False
    crashes: int = 0
    last_error: str | None = None
    since: datetime = field(default_factory=utcnow)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly view."""
        return {"running": self.running, "crashes": self.crashes,
                "last_error": self.last_error, "since": self.since.isoformat()}


async def supervise(run: Callable[[], Awaitable[None]], health: LoopHealth,
                    backoff: Backoff | None = None) -> None:
    """Run `run()` again and again after crashes, until it returns or the task is cancelled.

    Each crash is logged once (with its traceback: a crash is a bug or a real fault) and the
    next run waits a growing, jittered delay (1 s .. 60 s by default); a run that lasted
    STABLE_AFTER_S starts the delays over.
    """
    backoff = backoff or Backoff(initial=1.0, maximum=60.0)
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        health.running, health.since = True, utcnow()
        try:
            await run()
        except asyncio.CancelledError:
            health.running = False
            raise
        except Exception as err:
            if loop.time() - started >= STABLE_AFTER_S:
                backoff.reset()
            delay = backoff.next_delay()
            health.running, health.since = False, utcnow()
            health.crashes += 1
            health.last_error = f"{type(err).__name__}: {err}"[:500]
            log.error("%s crashed (%s); restarting in %.1f s", health.name, health.last_error,
                      delay, exc_info=err)
            await asyncio.sleep(delay)
            continue
        health.running = False
        return  # its source ended: the service is stopping


class DeviceLoop:
    """One device's driver and signal pump; `run()` is one life of both (see supervise)."""

    def __init__(self, name: str, make_driver: Callable[[], Driver],
                 rules: Sequence[RuleSettings], dispatcher: Dispatcher) -> None:
        self.name = name
        self.health = LoopHealth(f"device loop {name}")
        #: The driver of the current run (None before the first).
        self.driver: Driver | None = None
        self._make_driver = make_driver
        self._rules = rules
        self._dispatcher = dispatcher
        self._pending: deque[asyncio.Future[Outcome]] = deque()

    async def run(self) -> None:
        """Start a driver, pump its signals until something fails; always close the driver."""
        # What the last run queued commits first: the new trackers start from the committed
        # checkpoints, and a count still in the queue would otherwise be derived twice.
        pending, self._pending = list(self._pending), deque()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        rules = SignalRules(self._rules, self._dispatcher.checkpoints)
        driver = self.driver = self._make_driver()
        await driver.start()
        pump = asyncio.create_task(pump_signals(driver, rules, self._dispatcher, self._pending),
                                   name=f"pump:{self.name}")
        # Watch the driver's loop task too: a loop that died would otherwise leave the pump
        # waiting for batches for ever.
        driver_task = driver.task
        watched: set[asyncio.Future[None]] = {pump}
        if driver_task is not None:
            watched.add(driver_task)
        try:
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()  # raises why the pump ended
                raise RuntimeError("the signal pump ended")
            assert driver_task is not None
            error = None if driver_task.cancelled() else driver_task.exception()
            raise RuntimeError(f"the driver loop ended: {error!r}") from error
        finally:
            if not pump.done():
                pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await driver.close()


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
