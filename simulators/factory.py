"""The virtual factory's people: machine operators, an assembly operator and the line's interlocks.

It drives the simulated PLCs and terminals the way a shift would, talking to the MES only
through its protocols (HTTP API to read work orders, MQTT terminal events to start / pause /
report / complete), and keeps its own record of what was produced, so the demo can reconcile it
against what the ERP received. Imports nothing from mes_edge.

A machine operator works an operation like this: start it on the terminal, run the machine for
what there is to make (the first operation: the planned good quantity; a later one: what its
predecessor handed over), stop the machine, and complete the operation once there is nothing
more to come, or wait at the machine for more input. Like a real operator it goes by its own
count of what it made, never by whether the MES has counted it yet: a part the machine counts
after the operation was completed becomes unassigned production of the work center in the MES.
The assembly station reports what it assembles in small lots; as a terminal shows each report
was taken, it completes only once the MES shows its own reports.

Time: every duration of the factory (machine cycles, handling, assembly, patience) is divided
by `speed`, so a test can run ten minutes of factory time in a fraction of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from simulators.scanner import ScannerSim

log = logging.getLogger("simulators.factory")
_FINISHED = ("completed", "cancelled")
_WORKABLE = ("ready", "paused", "running")


class MachineControl(Protocol):
    """What the factory needs of a simulated PLC."""

    async def run(self, on: bool) -> None: ...

    async def counts(self) -> tuple[int, int]: ...


@dataclass
class Produced:
    """What one station produced (from the PLC counters or the operator's reports)."""

    good: int = 0
    scrap: int = 0

    @property
    def processed(self) -> int:
        return self.good + self.scrap


@dataclass
class Station:
    """A work center of the virtual line."""

    work_center: str
    terminal: ScannerSim
    machine: MachineControl | None = None  # None: an operator-counted station
    produced: Produced = field(default_factory=Produced)
    current: str | None = None  # "order/op" being worked
    baseline: tuple[int, int] | None = None
    #: What this station made per (order, op), by its own count.
    made: dict[tuple[str, str], Produced] = field(default_factory=dict)
    #: Manual station: its reports by message id until their operation is completed.
    reports: dict[str, tuple[tuple[str, str], Produced]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """What a station's operator does next: `work` `todo` parts, `complete`, `wait` for input."""

    order_id: str
    op: dict[str, Any]
    action: str
    todo: int = 0
    first: bool = False  # the order's first operation (raw material is not limited)


class Api:
    """Reads the MES's work orders (retrying while the MES is unreachable)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=5, headers={"Authorization": f"Bearer {token}"}
        )

    async def open_orders(self) -> list[dict[str, Any]]:
        """Released and in-progress orders, oldest first ([] while the MES is down)."""
        try:
            r = await self.client.get(
                "/api/v1/work-orders", params={"status": ["released", "in_progress"], "limit": 1000}
            )
        except httpx.HTTPError:
            return []
        if r.status_code != 200:
            return []
        orders: list[dict[str, Any]] = r.json()["work_orders"]
        return sorted(orders, key=lambda o: o["order_id"])

    async def operation(self, order_id: str, op_no: str) -> dict[str, Any] | None:
        """One operation as the MES has it now (None while unreachable)."""
        order = await self.order(order_id)
        for op in (order or {}).get("operations", []):
            if op["op_no"] == op_no:
                result: dict[str, Any] = op
                return result
        return None

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """The whole order (None while unreachable)."""
        try:
            r = await self.client.get(f"/api/v1/work-orders/{order_id}")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    async def refused_ids(self, work_center: str) -> set[str] | None:
        """Event ids the MES refused lately on `work_center` (None while unreachable)."""
        try:
            r = await self.client.get("/api/v1/rejected-events",
                                      params={"work_center": work_center, "limit": 1000})
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        rows = r.json()
        if isinstance(rows, dict):  # a paged envelope
            rows = next((v for v in rows.values() if isinstance(v, list)), [])
        return {row["event_id"] for row in rows if row.get("event_id")}

    async def close(self) -> None:
        await self.client.aclose()


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.1
) -> bool:
    """Poll an async condition until true or the timeout; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


def next_step(s: Station, orders: list[dict[str, Any]]) -> Step | None:
    """The operator's decision for station `s` from the MES's orders and its own counts.

    The operation running on the station comes first (only one may run). Otherwise the oldest
    order with something to make, or with an operation that has nothing more to come (it is
    completed, also from `paused`: an operation whose input is all used cannot be resumed).
    """
    steps = [st for o in orders for st in _steps_of(s, o)]
    running = [st for st in steps if st.op["status"] == "running"]
    if running:
        return running[0]
    return next((st for st in steps if st.action != "wait"), None)


def _steps_of(s: Station, order: dict[str, Any]) -> list[Step]:
    ops = order["operations"]
    out = []
    for i, op in enumerate(ops):
        if op["work_center"] != s.work_center or op["status"] not in _WORKABLE:
            continue
        mine = s.made.get((order["order_id"], op["op_no"]), Produced())
        good = max(op["good"], mine.good)
        processed = max(op["good"] + op["scrap"] + op["rework"], mine.processed)
        if i == 0:  # raw material is not limited: make the planned good quantity
            todo, input_done = op["planned_qty"] - good, True
        else:  # process what the predecessor handed over (as far as the MES knows it)
            prev = ops[i - 1]
            todo, input_done = prev["good"] - processed, prev["status"] in _FINISHED
            if s.machine is None:  # a manual report beyond plan + tolerance is refused
                limit = math.floor(op["planned_qty"] * (1 + order["tolerance_pct"] / 100))
                todo = min(todo, limit - good)
        if todo > 0 and (i == 0 or op["status"] != "ready" or op["available"] > 0):
            out.append(Step(order["order_id"], op, "work", todo, first=i == 0))
        elif input_done and op["status"] != "ready":
            reports_in = s.machine is not None or (
                op["good"] + op["scrap"] + op["rework"] >= mine.processed)
            out.append(Step(order["order_id"], op, "complete" if reports_in else "wait"))
        elif op["status"] == "running":
            out.append(Step(order["order_id"], op, "wait"))
    return out


@dataclass(frozen=True)
class Breakdown:
    """A machine that breaks down once, `after` factory seconds into the run, for `lasting`
    factory seconds; its operator gives `reason` on the terminal while it is down."""

    work_center: str
    after: float
    lasting: float
    reason: str


class Line:
    """The people of the virtual line: one worker task per station."""

    def __init__(
        self,
        api: Api,
        stations: list[Station],
        *,
        seed: int = 7,
        speed: float = 1.0,
        lot: int = 5,
        scrap_rate: float = 0.05,
        patience: float = 30.0,
        breakdown: Breakdown | None = None,
    ) -> None:
        self.api = api
        self.stations = stations
        self.speed = speed
        self.lot = lot
        self.scrap_rate = scrap_rate
        #: Factory seconds an operator waits at a running operation for more input, then pauses.
        self.patience = patience
        self._rng = random.Random(seed)
        self.breakdown = breakdown
        self._started = time.monotonic()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._msg = 0

    async def start(self) -> None:
        """Idle every machine, remember its counters, start the workers."""
        self._started = time.monotonic()
        for s in self.stations:
            if s.machine is not None:
                await s.machine.run(False)
                s.baseline = await s.machine.counts()
            self._tasks.append(asyncio.create_task(self._work(s), name=f"worker:{s.work_center}"))

    async def stop(self) -> None:
        """Finish the step under way, idle the machines, and return when all is settled."""
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self.stations:
            if s.machine is not None:
                await s.machine.run(False)
        await self.refresh()

    async def refresh(self) -> None:
        """Read every machine's counters into `produced` (all it made since `start`)."""
        for s in self.stations:
            if s.machine is not None and s.baseline is not None:
                good, scrap = await s.machine.counts()
                s.produced = Produced(good - s.baseline[0], scrap - s.baseline[1])

    async def _sleep(self, factory_seconds: float) -> None:
        await asyncio.sleep(max(0.02, factory_seconds / self.speed))

    async def _event(self, s: Station, type_: str, order: str, op: str, **kw: Any) -> str:
        self._msg += 1
        msg_id = f"{s.work_center}-{time.time_ns()}-{self._msg}"
        await s.terminal.event(type_, order, op, msg_id=msg_id, operator="demo-operator", **kw)
        return msg_id

    async def _drop_refused(self, s: Station) -> None:
        """A terminal shows a refused report: what the MES refused was not made as far as the
        books go (the reconciliation counts what terminals reported and the MES accepted)."""
        refused = await self.api.refused_ids(s.work_center)
        for msg_id in [m for m in s.reports if f"event:{s.work_center}:{m}" in (refused or ())]:
            key, qty = s.reports.pop(msg_id)
            log.warning("%s: the MES refused report %s (%s+%s) of %s/%s", s.work_center, msg_id,
                        qty.good, qty.scrap, *key)
            for book in (s.produced, s.made.get(key, Produced())):
                book.good -= qty.good
                book.scrap -= qty.scrap

    async def _work(self, s: Station) -> None:
        waiting_since: float | None = None
        checked = time.monotonic()
        while not self._stopping.is_set():
            if s.reports and time.monotonic() - checked > 30:
                checked = time.monotonic()
                await self._drop_refused(s)
            step = next_step(s, await self.api.open_orders())
            if step is None or step.action == "wait":
                if step is not None and step.op["status"] == "running":
                    waiting_since = waiting_since or time.monotonic()
                    if time.monotonic() - waiting_since > self.patience / self.speed:
                        await self._command(s, step, "pause", "paused")
                        waiting_since = None
                await asyncio.sleep(0.3)
                continue
            waiting_since = None
            try:
                await self._operate(s, step)
            except Exception:  # a worker never dies of one bad step; it logs and goes on
                log.exception("%s: step on %s/%s failed", s.work_center, step.order_id,
                              step.op["op_no"])
                await asyncio.sleep(0.5)

    async def _command(self, s: Station, step: Step, type_: str, status: str) -> bool:
        """Tap `type_` on the terminal and wait (bounded) until the MES shows it done."""
        order_id, op_no = step.order_id, step.op["op_no"]
        await self._event(s, type_, order_id, op_no)
        return await wait_for(lambda: self._status_is(order_id, op_no, status), 30)

    async def _operate(self, s: Station, step: Step) -> None:
        order_id, op_no = step.order_id, step.op["op_no"]
        s.current = f"{order_id}/{op_no}"
        if step.action == "complete":
            await self._command(s, step, "complete", "completed")
            s.made.pop((order_id, op_no), None)
            for msg_id in [m for m, (key, _) in s.reports.items() if key == (order_id, op_no)]:
                del s.reports[msg_id]
            s.current = None
            return
        if step.op["status"] != "running":
            kind = "resume" if step.op["status"] == "paused" else "start"
            if not await self._command(s, step, kind, "running"):
                return
        mine = s.made.setdefault((order_id, op_no), Produced())
        if s.machine is not None:
            made = await self._run_batch(s, step.todo, count_scrap=not step.first)
            mine.good += made.good
            mine.scrap += made.scrap
        else:
            await self._assemble(s, order_id, op_no, step.todo, mine)
        await self._sleep(self._rng.uniform(0.5, 2.0))  # unloading, walking to the terminal

    async def _run_batch(self, s: Station, todo: int, *, count_scrap: bool) -> Produced:
        """Run the machine until it made `todo` parts (good ones only for the first operation,
        whose raw material is not limited; good + scrap for later ones, which can only process
        what was handed over) or the line stops. Returns the parts made."""
        assert s.machine is not None
        start_good, start_scrap = await s.machine.counts()
        await s.machine.run(True)
        try:
            while not self._stopping.is_set():
                good, scrap = await s.machine.counts()
                made = good - start_good + (scrap - start_scrap if count_scrap else 0)
                if made >= todo:
                    break
                if self._breakdown_due(s):
                    await self._break_down(s)
                await asyncio.sleep(0.01)
        finally:
            await s.machine.run(False)
        good, scrap = await s.machine.counts()
        return Produced(good - start_good, scrap - start_scrap)

    async def _assemble(self, s: Station, order_id: str, op_no: str, todo: int,
                        mine: Produced) -> None:
        """Assemble `todo` parts in lots, reporting each lot on the terminal."""
        made = 0
        while made < todo and not self._stopping.is_set():
            n = min(self.lot, todo - made)
            scrap = sum(1 for _ in range(n) if self._rng.random() < self.scrap_rate)
            await self._sleep(1.0 * n)
            kw: dict[str, Any] = {"good": n - scrap}
            if scrap:
                kw.update(scrap=scrap, reason="dent")
            msg_id = await self._event(s, "report", order_id, op_no, **kw)
            s.reports[msg_id] = ((order_id, op_no), Produced(n - scrap, scrap))
            s.produced.good += n - scrap
            s.produced.scrap += scrap
            mine.good += n - scrap
            mine.scrap += scrap
            made += n

    def _breakdown_due(self, s: Station) -> bool:
        b = self.breakdown
        return (b is not None and b.work_center == s.work_center
                and time.monotonic() - self._started >= b.after / self.speed
                and callable(getattr(s.machine, "down", None)))

    async def _break_down(self, s: Station) -> None:
        """The machine stops with a fault; a third of the way into it the operator tells the
        terminal why; then it is repaired and runs on (counts are the machine's, untouched)."""
        b = self.breakdown
        assert b is not None and s.machine is not None
        self.breakdown = None  # once
        log.info("%s breaks down for %.0f s (%s)", s.work_center, b.lasting / self.speed, b.reason)
        await s.machine.down()  # type: ignore[attr-defined]
        try:
            await self._sleep_unless_stopping(b.lasting / 3)
            await s.terminal.event("downtime_reason", reason=b.reason, operator="demo-operator",
                                   msg_id=f"{s.work_center}-reason-{time.time_ns()}")
            await self._sleep_unless_stopping(b.lasting * 2 / 3)
        finally:
            await s.machine.run(True)

    async def _sleep_unless_stopping(self, factory_seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(factory_seconds / self.speed):
                await self._stopping.wait()

    async def _status_is(self, order_id: str, op_no: str, status: str) -> bool:
        op = await self.api.operation(order_id, op_no)
        return op is not None and op["status"] == status


class ModbusMachine:
    """MachineControl for simulators.modbus_plc.ModbusPlc."""

    def __init__(self, plc: Any) -> None:
        self.plc = plc

    async def run(self, on: bool) -> None:
        await self.plc.apply_step({"do": "run" if on else "idle"})

    async def down(self) -> None:
        """A fault: the PLC shows DOWN until the machine is run again."""
        await self.plc.apply_step({"do": "down"})

    async def counts(self) -> tuple[int, int]:
        return int(self.plc.machine.good), int(self.plc.machine.scrap)


class OpcUaMachine:
    """MachineControl for simulators.opcua_plc.OpcUaPlc."""

    def __init__(self, plc: Any) -> None:
        self.plc = plc

    async def run(self, on: bool) -> None:
        await self.plc.set_state(1 if on else 2)

    async def counts(self) -> tuple[int, int]:
        return int(await self.plc.get_value("GoodCount")), int(
            await self.plc.get_value("ScrapCount")
        )
