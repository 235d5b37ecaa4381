"""OPC UA driver: subscriptions with polling fallback, a liveness watchdog and reconnect.

    async with OpcUaDriver(cfg) as drv:
        async for batch in drv:      # list[Signal]: one batch per publish response or poll
            ...

Per connection: open a session, resolve node ids (browse paths translated), create one
subscription and its monitored items. Tags whose monitored item the server refuses (any Bad
status but an unknown node), and all tags when the server refuses the subscription, are polled
with batched Reads instead, like tags configured with mode "poll". Polled tags are reported when
value or status change (and once after every connect). Initial notifications of the new
subscription and the first poll re-read every value after a reconnect.

A dead session is noticed by asyncua at once when the socket closes, and otherwise by the
watchdog, which reads ServerStatus.State every `watchdog_interval` seconds and gives up after
`watchdog_timeout` (config keeps their sum <= 10 s). Then the session is dropped and a new one is
opened with exponential backoff; the driver itself keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from asyncua import ua

from drivers.backoff import Backoff
from drivers.base import Driver
from drivers.errors import ConnectError, DriverError
from drivers.health import ConnectionState
from drivers.opcua.config import OpcUaDeviceConfig, OpcUaTagConfig
from drivers.opcua.errors import status_name, translate
from drivers.opcua.session import MonitorRequest, OpcUaSession
from drivers.signal import Quality, Signal, utcnow

_GOOD, _UNCERTAIN, _BAD = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
#: Monitored item failures that polling cannot cure either: report the tag as Bad instead.
_NODE_ERRORS = frozenset({ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid,
                          ua.StatusCodes.BadAttributeIdInvalid})


#: Status codes with which a server ends a session or channel (a restart, a shutdown).
_SESSION_ENDED = frozenset({
    ua.StatusCodes.BadSessionClosed, ua.StatusCodes.BadSessionIdInvalid,
    ua.StatusCodes.BadSessionNotActivated, ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadSecureChannelIdInvalid, ua.StatusCodes.BadConnectionClosed,
    ua.StatusCodes.BadServerHalted, ua.StatusCodes.BadShutdown, ua.StatusCodes.BadNotConnected,
    ua.StatusCodes.BadCommunicationError,
})


def _link_ended(exc: BaseException | None) -> bool:
    if isinstance(exc, ConnectionError | OSError | EOFError):
        return True
    return isinstance(exc, ua.UaStatusCodeError) and int(exc.code) in _SESSION_ENDED


class _QuietLinkLoss(logging.Filter):
    """Drops asyncua's tracebacks about a link or session that ended under it.

    When a server restarts, asyncua's publish loop logs "Publish iteration crashed" with a
    traceback every second (BadSessionClosed, a closed socket) and its disconnect() logs the
    close_session it could not send. The driver reports that loss once ("link lost"), and the
    recovery once; these lines would only repeat it as ERRORs.
    """

    _MESSAGES = ("Publish iteration crashed", "close_session raised during disconnect",
                 "close_secure_channel raised during disconnect")

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (_link_ended(exc) and record.getMessage().startswith(self._MESSAGES))


for _name in ("asyncua.client.ua_session.UaSession", "asyncua.client.client"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _QuietLinkLoss) for f in _logger.filters):
        _logger.addFilter(_QuietLinkLoss())


@dataclass(frozen=True, slots=True)
class _Polled:
    tag: str
    node_id: ua.NodeId


class OpcUaDriver(Driver):
    """Reads the configured tags of one OPC UA server and emits them as Signal batches."""

    def __init__(self, cfg: OpcUaDeviceConfig) -> None:
        super().__init__(cfg.name, queue_size=cfg.queue_size)
        self.cfg = cfg
        self.backoff = Backoff(initial=cfg.reconnect_initial, maximum=cfg.reconnect_max)
        #: The typed error of the last failure (also in health.last_error as text).
        self.last_exception: DriverError | None = None
        #: Tag names polled in the current session (configured poll mode and fallbacks).
        self.polled_tags: set[str] = set()
        self._handles: dict[int, str] = {}
        self._session: OpcUaSession | None = None
        # Stale-subscription detection: when the last publish response (data or keep-alive)
        # came, and whether we are blocked handing a batch to a slow consumer (legitimately quiet).
        self._subscribed = False
        self._last_publish = 0.0
        self._emitting = False
        sub = cfg.subscription
        keepalive_s = sub.keepalive_count * sub.publishing_interval_ms / 1000.0
        self._stale_after = max(3.0 * keepalive_s, 3.0)
        self._lost: asyncio.Future[DriverError] | None = None
        self._warned: set[str] = set()

    # ---- connection loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        self.health.set_state(ConnectionState.CONNECTING, self.log)
        while True:
            lost: asyncio.Future[DriverError] = asyncio.get_running_loop().create_future()
            # Each session reports into its own future, so a late callback from a session
            # being torn down can never end the next one.
            self._lost = lost
            session = self._session = OpcUaSession(self.cfg, functools.partial(_on_lost, lost))
            try:
                try:
                    async with asyncio.timeout(self.cfg.connect_timeout):
                        polled, bad = await self._setup(session)
                except TimeoutError as err:
                    raise translate(err, f"connect to {self.cfg.endpoint}") from err
                self.backoff.reset()
                self.health.set_state(ConnectionState.CONNECTED, self.log)
                await self._emit(bad)  # outside the connect timeout: the consumer may be slow
                await self._serve(session, polled)
            except DriverError as err:
                self._fail(err)
            finally:
                self._session = None
                await session.close()
            await asyncio.sleep(self.backoff.next_delay())

    def _fail(self, err: DriverError) -> None:
        self.last_exception = err
        self.health.errors += 1
        error = f"{type(err).__name__}: {err}"
        self.health.set_state(ConnectionState.DISCONNECTED, self.log, error)

    async def _setup(self, session: OpcUaSession) -> tuple[list[_Polled], list[Signal]]:
        """Open, resolve and subscribe; return the tags to poll and Bad signals of broken tags."""
        self._handles, self._subscribed = {}, False
        await session.open()
        self.health.requests += 1
        resolved = await session.resolve(self.cfg.tags)
        bad: list[Signal] = []
        polled: list[_Polled] = []
        to_monitor: list[tuple[OpcUaTagConfig, ua.NodeId]] = []
        for tag in self.cfg.tags:
            node = resolved[tag.name]
            if isinstance(node, str):
                bad.append(self._bad_signal(tag.name, node))
            elif tag.mode == "poll":
                polled.append(_Polled(tag.name, node))
            else:
                to_monitor.append((tag, node))
        if to_monitor:
            polled += await self._subscribe(session, to_monitor, bad)
        self.polled_tags = {p.tag for p in polled}
        return polled, bad

    async def _subscribe(self, session: OpcUaSession,
                         items: list[tuple[OpcUaTagConfig, ua.NodeId]],
                         bad: list[Signal]) -> list[_Polled]:
        """Monitor the items; return those that must be polled instead."""
        try:
            await session.create_subscription(self._on_publish)
        except DriverError as err:
            if not isinstance(err, ConnectError):
                self._warn_once("nosub", "%s: subscription refused (%s); polling %d tags instead",
                                self.name, err, len(items))
                return [_Polled(t.name, n) for t, n in items]
            raise
        self._subscribed, self._last_publish = True, time.monotonic()
        sub = self.cfg.subscription
        self._handles = {i: tag.name for i, (tag, _) in enumerate(items, start=1)}
        requests = [
            MonitorRequest(
                handle=i, node_id=node,
                sampling_interval_ms=(sub.sampling_interval_ms if tag.sampling_interval_ms is None
                                      else tag.sampling_interval_ms),
                deadband_type=tag.deadband_type or sub.deadband_type,
                deadband_value=(sub.deadband_value if tag.deadband_type is None
                                else tag.deadband_value or 0.0),
                queue_size=sub.queue_size)
            for i, (tag, node) in enumerate(items, start=1)]
        statuses = await session.monitor(requests)
        fallback: list[_Polled] = []
        for req in requests:
            status = statuses[req.handle]
            if status.is_good():
                continue
            name = self._handles.pop(req.handle)
            if status.value in _NODE_ERRORS:
                bad.append(self._bad_signal(name, f"cannot monitor: {status_name(status.value)}"))
            else:
                fallback.append(_Polled(name, req.node_id))
                self._warn_once(f"mon:{name}", "%s: server refused to monitor %s (%s); polling it",
                                self.name, name, status_name(status.value))
        return fallback

    async def _serve(self, session: OpcUaSession, polled: list[_Polled]) -> None:
        """Run watchdog and pollers until one fails or the link is lost; raise why."""
        assert self._lost is not None
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._watchdog(session), name=f"{self.name}:watchdog"),
            asyncio.ensure_future(self._lost),
        ]
        groups: dict[float, list[_Polled]] = {}
        intervals = {t.name: t.poll_interval or self.cfg.poll_interval for t in self.cfg.tags}
        for item in polled:
            groups.setdefault(intervals[item.tag], []).append(item)
        for interval, group in groups.items():
            tasks.append(asyncio.create_task(self._poll(session, group, interval),
                                             name=f"{self.name}:poll:{interval}"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finished = done.pop()
        if finished.cancelled():
            raise ConnectError("session ended")
        result = finished.exception() or finished.result()
        raise result if isinstance(result, DriverError) else translate(result, "session")

    async def _watchdog(self, session: OpcUaSession) -> None:
        while True:
            await asyncio.sleep(self.cfg.watchdog_interval)
            rtt = await session.ping(self.cfg.watchdog_timeout)
            self.health.requests += 1
            self.health.rtt_ms = round(rtt * 1000.0, 3)
            quiet = time.monotonic() - self._last_publish
            if self._subscribed and not self._emitting and quiet > self._stale_after:
                # The session answers but the subscription went silent (expired or deleted on
                # the server, asyncua's publish loop ended): only a new session brings it back.
                raise ConnectError(f"subscription stale: no publish response for {quiet:.1f} s")

    async def _poll(self, session: OpcUaSession, items: list[_Polled], interval: float) -> None:
        """Read the group every `interval` seconds; emit what changed since the last read."""
        node_ids = [i.node_id for i in items]
        last: dict[str, tuple[Any, int]] = {}
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            values = await session.read(node_ids, self.cfg.poll_batch_size)
            self.health.requests += -(-len(node_ids) // self.cfg.poll_batch_size)
            now = utcnow()
            batch: list[Signal] = []
            for item, dv in zip(items, values, strict=True):
                value = dv.Value.Value if dv.Value is not None else None
                code = dv.StatusCode.value if dv.StatusCode is not None else 0
                if self.cfg.poll_report == "change" and last.get(item.tag) == (value, code):
                    continue
                last[item.tag] = (value, code)
                batch.append(_signal(self.name, item.tag, value, code,
                                     dv.SourceTimestamp or dv.ServerTimestamp, now))
            await self._emit(batch)
            # Fixed rate without drift; after a slow read (or backpressure) start again from now.
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    # ---- the hot path: one publish response -> one batch -------------------------------------

    async def _on_publish(self, result: ua.PublishResult) -> None:
        """asyncua's publish loop awaits this, so a full queue slows publishing (backpressure)."""
        self._last_publish = time.monotonic()
        data = result.NotificationMessage.NotificationData
        if not data:
            return  # keep-alive
        handles, device, now = self._handles, self.name, utcnow()
        batch: list[Signal] = []
        append = batch.append
        for notification in data:
            if type(notification) is ua.DataChangeNotification:
                for item in notification.MonitoredItems:
                    tag = handles.get(item.ClientHandle)
                    if tag is None:
                        continue
                    dv = item.Value
                    variant = dv.Value
                    code = dv.StatusCode.value if dv.StatusCode is not None else 0
                    if code == 0:
                        append(Signal(device, tag, variant.Value if variant is not None else None,
                                      _GOOD, dv.SourceTimestamp or dv.ServerTimestamp, now))
                    else:
                        append(_signal(device, tag, variant.Value if variant is not None else None,
                                       code, dv.SourceTimestamp or dv.ServerTimestamp, now))
            elif isinstance(notification, ua.StatusChangeNotification):
                code = notification.Status.value
                # The server ended our subscription (timeout, shutdown): start a new session.
                if code != 0 and self._lost is not None:
                    _resolve(self._lost, ConnectError(f"subscription ended: {status_name(code)}"))
        if batch:
            self._emitting = True
            try:
                await self._emit(batch)
            finally:
                self._emitting = False
                self._last_publish = time.monotonic()

    # ---- helpers -----------------------------------------------------------------------------

    def _bad_signal(self, tag: str, error: str) -> Signal:
        self._warn_once(f"bad:{tag}:{error}", "%s: tag %s: %s", self.name, tag, error)
        return Signal(self.name, tag, None, _BAD, None, utcnow(), error)

    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        """Config-like problems repeat on every reconnect; say them once per driver."""
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(msg, *args)


def _on_lost(lost: asyncio.Future[DriverError], exc: Exception) -> None:
    """asyncua noticed the socket close: end the session's serve loop."""
    _resolve(lost, translate(exc, "connection lost"))


def _resolve(lost: asyncio.Future[DriverError], err: DriverError) -> None:
    """Report why a session ended (first reason wins)."""
    if not lost.done():
        lost.set_result(err)


def _signal(device: str, tag: str, value: Any, code: int, ts: Any, now: Any) -> Signal:
    """A Signal with the quality of an OPC UA status code (severity in the top two bits)."""
    severity = code >> 30
    if severity == 0:
        return Signal(device, tag, value, _GOOD, ts, now)
    quality = _UNCERTAIN if severity == 1 else _BAD
    return Signal(device, tag, value if quality is _UNCERTAIN else None, quality, ts, now,
                  status_name(code))
