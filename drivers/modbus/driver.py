"""Modbus TCP driver: one connection per device, poll groups at fixed rate, change-filtered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.backoff import Backoff
from drivers.base import Driver
from drivers.errors import ConnectError, DecodeError, DeviceTimeout, ProtocolError
from drivers.health import ConnectionState
from drivers.modbus.codec import BlockDecoder, same_value
from drivers.modbus.config import ModbusDeviceConfig, Table
from drivers.modbus.planner import ReadBlock, plan_blocks, split_block
from drivers.signal import Quality, Signal, utcnow

#: Exception codes after which a multi-tag block is split and narrowed (illegal address/value).
_SPLIT_CODES = frozenset({2, 3})
#: Consecutive unanswered requests after which the link is treated as lost.
_TIMEOUTS_BEFORE_RECONNECT = 3


class _QuietPymodbus(logging.Filter):
    """Drops pymodbus's own error lines (a hex dump per failed request, no device name).

    The driver translates every pymodbus failure into its connection state and logs a loss
    and a recovery once, with the device's name; pymodbus's lines would repeat each retry.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


def _quiet_pymodbus() -> None:
    logger = logging.getLogger("pymodbus.logging")
    if not any(isinstance(f, _QuietPymodbus) for f in logger.filters):
        logger.addFilter(_QuietPymodbus())


@dataclass(slots=True)
class PlannedRead:
    """A block in a poll group's learned plan, with its decoder and tag slots."""

    block: ReadBlock
    decoder: BlockDecoder
    slots: tuple[int, ...]
    #: For a single tag the device refuses: when to try it again, and why it failed.
    retry_at: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class GroupStats:
    """Achieved cadence of one poll group (what the benchmark reports)."""

    interval: float
    cycles: int = 0
    skipped: int = 0
    last_duration_s: float = 0.0
    max_duration_s: float = 0.0
    total_duration_s: float = 0.0
    requests_last_cycle: int = 0
    first_start: float | None = None
    last_start: float | None = None

    @property
    def achieved_period_s(self) -> float | None:
        """Mean time between cycle starts (the achieved cycle time)."""
        if self.cycles < 2 or self.first_start is None or self.last_start is None:
            return None
        return (self.last_start - self.first_start) / (self.cycles - 1)

    @property
    def mean_duration_s(self) -> float:
        """Mean time one cycle took from first request to last answer."""
        return self.total_duration_s / self.cycles if self.cycles else 0.0


@dataclass(slots=True)
class _PollGroup:
    name: str
    plan: list[PlannedRead]
    stats: GroupStats
    emit_all: bool = True
    slots: list[int] = field(default_factory=list)


class ModbusDriver(Driver):
    """Polls one Modbus TCP device (all its unit ids) over one connection, one request at a time."""

    def __init__(self, config: ModbusDeviceConfig, *, queue_size: int = 64,
                 backoff: Backoff | None = None) -> None:
        super().__init__(config.name, queue_size=queue_size)
        _quiet_pymodbus()
        self.config = config
        # A TCP connect proves nothing (an HTTP server or an MQTT broker accepts it too): the
        # link counts as connected once the device answered one request in Modbus TCP.
        self._verified = False
        self._backoff = backoff or Backoff()
        self._client: AsyncModbusTcpClient | None = None
        # One request in flight per connection: every read goes through this lock.
        self._io_lock = asyncio.Lock()
        self._consecutive_timeouts = 0
        self._tags = list(config.tags)
        self._slot = {tag.name: i for i, tag in enumerate(self._tags)}
        self._values: list[Any] = [None] * len(self._tags)
        self._quality: list[Quality | None] = [None] * len(self._tags)
        self.groups = {name: self._plan_group(name, interval)
                       for name, interval in config.poll_groups.items()}

    async def __aenter__(self) -> ModbusDriver:
        # Typed override: the base returns `Driver`, and callers want the Modbus view (stats).
        await self.start()
        return self

    # ------------------------------------------------------------------ public view
    @property
    def stats(self) -> dict[str, GroupStats]:
        """Achieved cycle time and request figures per poll group."""
        return {name: group.stats for name, group in self.groups.items()}

    def plan(self, group: str = "default") -> list[ReadBlock]:
        """The current (possibly learned) read plan of a poll group."""
        return [read.block for read in self.groups[group].plan]

    def value(self, tag: str) -> tuple[Any, Quality | None]:
        """Last decoded value and quality of a tag."""
        slot = self._slot[tag]
        return self._values[slot], self._quality[slot]

    # ------------------------------------------------------------------ planning
    def _plan_group(self, name: str, interval: float) -> _PollGroup:
        tags = [t for t in self._tags if t.poll_group == name]
        blocks = plan_blocks(tags, unit_of=self.config.unit_of, max_gap=self.config.max_gap,
                             max_registers=self.config.max_block_registers,
                             max_bits=self.config.max_block_bits)
        group = _PollGroup(name, [self._planned(b) for b in blocks], GroupStats(interval))
        group.slots = [self._slot[t.name] for t in tags]
        return group

    def _planned(self, block: ReadBlock) -> PlannedRead:
        decoder = BlockDecoder(block.start, block.count, block.tags,
                               bit_table=block.table.is_bit)
        return PlannedRead(block, decoder, tuple(self._slot[t.name] for t in block.tags))

    # ------------------------------------------------------------------ connection loop
    async def _run(self) -> None:
        self.health.set_state(ConnectionState.CONNECTING, self.log)
        while True:
            try:
                await self._connect()
            except ConnectError as err:
                # Stay DISCONNECTED across retries so the loss is logged once, not per retry.
                self.health.errors += 1
                self.health.set_state(ConnectionState.DISCONNECTED, self.log, str(err))
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._verified = False
            for group in self.groups.values():
                group.emit_all = True  # re-read and re-emit everything after (re)connect
            lost: BaseException = ConnectError("poll loops ended")
            try:
                async with asyncio.TaskGroup() as tasks:
                    for group in self.groups.values():
                        tasks.create_task(self._poll_loop(group), name=f"{self.name}:{group.name}")
            except* ConnectError as errors:
                lost = errors.exceptions[0]
            await self._disconnect()
            error = str(lost)
            if not self._verified:
                # Never answered in Modbus: a wrong port or another protocol. Stays
                # DISCONNECTED (one line when it first happens) and the backoff keeps growing.
                cfg = self.config
                error = f"{cfg.host}:{cfg.port} does not answer Modbus TCP: {lost}"
                self.health.errors += 1
            self.health.set_state(ConnectionState.DISCONNECTED, self.log, error)
            await self._mark_all_bad(error)
            await asyncio.sleep(self._backoff.next_delay())

    async def _connect(self) -> None:
        cfg = self.config
        if self._client is None:
            # reconnect_delay=0: pymodbus must not reconnect behind our back (we own backoff).
            self._client = AsyncModbusTcpClient(cfg.host, port=cfg.port, timeout=cfg.timeout,
                                                retries=0, reconnect_delay=0,
                                                name=f"modbus:{cfg.name}")
        try:
            async with asyncio.timeout(cfg.timeout * 2):
                ok = await self._client.connect()
        except TimeoutError:
            ok = False
        if not ok or not self._client.connected:
            raise ConnectError(f"cannot connect to {cfg.host}:{cfg.port}")
        self._consecutive_timeouts = 0

    async def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()

    async def _mark_all_bad(self, error: str) -> None:
        now = utcnow()
        batch = [Signal(self.name, tag.name, self._values[i], Quality.BAD, now, error=error)
                 for i, tag in enumerate(self._tags) if self._quality[i] != Quality.BAD]
        for i in range(len(self._tags)):
            self._quality[i] = Quality.BAD
        await self._emit(batch)

    # ------------------------------------------------------------------ polling
    async def _poll_loop(self, group: _PollGroup) -> None:
        """Fixed-rate cycles: next = previous + interval; missed cycles are skipped, not burst."""
        loop = asyncio.get_running_loop()
        interval, stats = group.stats.interval, group.stats
        next_start = loop.time()
        while True:
            started = loop.time()
            stats.first_start = stats.first_start or started
            stats.last_start = started
            requests_before = self.health.requests
            batch = await self._poll_once(group)
            duration = loop.time() - started
            stats.cycles += 1
            stats.last_duration_s = duration
            stats.total_duration_s += duration
            stats.max_duration_s = max(stats.max_duration_s, duration)
            stats.requests_last_cycle = self.health.requests - requests_before
            await self._emit(batch)
            next_start += interval
            now = loop.time()
            if next_start <= now:
                missed = int((now - next_start) // interval) + 1
                stats.skipped += missed
                next_start += missed * interval
            await asyncio.sleep(next_start - now)

    async def _poll_once(self, group: _PollGroup) -> list[Signal]:
        """Read every block of the plan once; returns the signals that changed."""
        batch: list[Signal] = []
        emit_all, group.emit_all = group.emit_all, False
        timed_out_units: set[int] = set()
        reads = list(group.plan)
        new_plan: list[PlannedRead] | None = None
        for index, read in enumerate(reads):
            block = read.block
            if block.unit in timed_out_units:
                # One timeout per unit per cycle is enough: the rest would wait the same.
                self._collect_bad(read, f"skipped: unit {block.unit} timed out", batch, emit_all)
                continue
            if read.error is not None and time.monotonic() < read.retry_at:
                self._collect_bad(read, read.error, batch, emit_all)
                continue
            try:
                learned = await self._read_narrowing(read, batch, emit_all)
            except DeviceTimeout as err:
                timed_out_units.add(block.unit)
                self._collect_bad(read, str(err), batch, emit_all)
                continue
            if learned is not None:
                if new_plan is None:
                    new_plan = reads[:index]
                new_plan.extend(learned)
            elif new_plan is not None:
                new_plan.append(read)
        if new_plan is not None:
            group.plan = new_plan
            self.log.info("%s/%s: learned read plan of %d blocks", self.name, group.name,
                          len(new_plan))
        return batch

    async def _read_narrowing(self, read: PlannedRead, batch: list[Signal], emit_all: bool
                              ) -> list[PlannedRead] | None:
        """Read a block; when refused, split and narrow. Returns the new blocks if it split."""
        try:
            data = await self._read(read.block)
            values = read.decoder.decode(data)
        except ProtocolError as err:
            if err.code not in _SPLIT_CODES:
                self._collect_bad(read, str(err), batch, emit_all)
                return None
            if len(read.block.tags) == 1:
                # This tag alone is unreadable: BAD, and retried only now and then.
                read.error = str(err)
                read.retry_at = time.monotonic() + self.config.retry_bad_after
                self._collect_bad(read, read.error, batch, emit_all)
                return None
            learned: list[PlannedRead] = []
            for half in split_block(read.block):
                part = self._planned(half)
                learned.extend(await self._read_narrowing(part, batch, emit_all) or [part])
            return learned
        except DecodeError as err:
            self._collect_bad(read, str(err), batch, emit_all)
            return None
        read.error = None
        self._collect(read, values, batch, emit_all)
        return None

    async def _read(self, block: ReadBlock) -> list[int] | list[bool]:
        """One request; translates pymodbus outcomes into the driver error tree."""
        async with self._io_lock:
            client = self._client
            if client is None or not client.connected:
                raise ConnectError("link lost")
            call = _READERS[block.table](client)
            started = time.perf_counter()
            self.health.requests += 1
            try:
                async with asyncio.timeout(self.config.timeout * 2):  # belt and braces
                    response = await call(block.start, count=block.count, device_id=block.unit)
            except (ModbusIOException, TimeoutError) as err:
                self.health.errors += 1
                if not client.connected:
                    raise ConnectError("the connection was closed" if not self._verified
                                       else "link lost") from err
                if not self._verified:
                    raise ConnectError(f"no answer within {self.config.timeout}s") from err
                self._consecutive_timeouts += 1
                if self._consecutive_timeouts >= _TIMEOUTS_BEFORE_RECONNECT:
                    raise ConnectError(
                        f"no answer to {self._consecutive_timeouts} requests in a row") from err
                raise DeviceTimeout(f"no answer within {self.config.timeout}s") from err
            except ConnectionException as err:
                self.health.errors += 1
                raise ConnectError(str(err)) from err
            except ModbusException as err:
                self.health.errors += 1
                raise ProtocolError(str(err)) from err
            self._consecutive_timeouts = 0
            self.health.rtt_ms = (time.perf_counter() - started) * 1000.0
            if not self._verified:  # a Modbus answer (an exception response is one too)
                self._verified = True
                self.health.set_state(ConnectionState.CONNECTED, self.log)
                self._backoff.reset()
        if response.isError():
            self.health.errors += 1
            code = getattr(response, "exception_code", None)
            raise ProtocolError(
                f"exception {code} reading unit {block.unit} {block.table.value} "
                f"{block.start}+{block.count}", code=code)
        return response.bits if block.table.is_bit else response.registers

    # ------------------------------------------------------------------ change filter
    def _collect(self, read: PlannedRead, values: list[Any], batch: list[Signal],
                 emit_all: bool) -> None:
        """Remember new values; add a Signal only for tags whose value or quality changed."""
        last_values, qualities, tags, good = self._values, self._quality, self._tags, Quality.GOOD
        now: Any = None
        for slot, value in zip(read.slots, values, strict=True):
            if (not emit_all and qualities[slot] is good
                    and same_value(last_values[slot], value)):
                continue
            last_values[slot], qualities[slot] = value, good
            now = now or utcnow()  # one timestamp per block, and only when something changed
            batch.append(Signal(self.name, tags[slot].name, value, good, now, now))

    def _collect_bad(self, read: PlannedRead, error: str, batch: list[Signal],
                     emit_all: bool) -> None:
        now = utcnow()
        for slot in read.slots:
            if emit_all or self._quality[slot] != Quality.BAD:
                self._quality[slot] = Quality.BAD
                batch.append(Signal(self.name, self._tags[slot].name, self._values[slot],
                                    Quality.BAD, now, now, error=error))


def _reader(name: str) -> Callable[[AsyncModbusTcpClient], Callable[..., Awaitable[Any]]]:
    return lambda client: getattr(client, name)


_READERS = {
    Table.COIL: _reader("read_coils"),
    Table.DISCRETE_INPUT: _reader("read_discrete_inputs"),
    Table.HOLDING_REGISTER: _reader("read_holding_registers"),
    Table.INPUT_REGISTER: _reader("read_input_registers"),
}

