"""The virtual factory's people: machine operators, an assembly operator and the line's interlocks.

It drives the simulated PLCs and terminals the way a shift would, talking to the MES only
through its protocols (HTTP API to read work orders, MQTT terminal events to start / pause /
report / complete), and keeps its own record of what was produced, so the demo can reconcile it
against what the ERP received. Imports nothing from mes_edge.

A machine work center works an operation like this: start it on the terminal, let the PLC run a
batch (the PLC stops itself after the batch, as a batch preset on a real machine does), wait
until the MES has counted the batch, then complete the operation (or pause it when its input
is not all there yet). The assembly station reports what it assembles in small lots.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from simulators.scanner import ScannerSim

log = logging.getLogger("simulators.factory")


class MachineControl(Protocol):
    """What the factory needs of a simulated PLC."""

    async def run(self, on: bool) -> None: ...

    async def counts(self) -> tuple[int, int]: ...


@dataclass
class Produced:
    """What one station produced (from the PLC counters or the operator's reports)."""

    good: int = 0
    scrap: int = 0


@dataclass
class Station:
    """A work center of the virtual line."""

    work_center: str
    terminal: ScannerSim
    machine: MachineControl | None = None  # None: an operator-counted station
    produced: Produced = field(default_factory=Produced)
    current: str | None = None  # "order/op" being worked
    baseline: tuple[int, int] | None = None


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
        try:
            r = await self.client.get(f"/api/v1/work-orders/{order_id}")
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        for op in r.json()["operations"]:
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
    ) -> None:
        self.api = api
        self.stations = stations
        self.speed = speed
        self.lot = lot
        self.scrap_rate = scrap_rate
        self._rng = random.Random(seed)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._msg = 0

    async def start(self) -> None:
        """Idle every machine, remember its counters, start the workers."""
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
                await self._count_machine(s)

    async def _count_machine(self, s: Station) -> None:
        assert s.machine is not None and s.baseline is not None
        good, scrap = await s.machine.counts()
        s.produced = Produced(good - s.baseline[0], scrap - s.baseline[1])

    async def _event(self, s: Station, type_: str, order: str, op: str, **kw: Any) -> None:
        self._msg += 1
        await s.terminal.event(
            type_,
            order,
            op,
            msg_id=f"{s.work_center}-{time.time_ns()}-{self._msg}",
            operator="demo-operator",
            **kw,
        )

    def _pick(
        self, s: Station, orders: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None] | None:
        for o in orders:
            ops = o["operations"]
            for i, op in enumerate(ops):
                if op["work_center"] != s.work_center:
                    continue
                if op["status"] in ("ready", "paused", "running") and op["available"] > 0:
                    return o["order_id"], op, ops[i - 1] if i > 0 else None
                if (
                    op["status"] in ("paused", "running")
                    and i > 0
                    and ops[i - 1]["status"] in ("completed", "cancelled")
                    and op["available"] == 0
                ):
                    return o["order_id"], op, ops[i - 1]  # all input used: complete it
        return None

    async def _work(self, s: Station) -> None:
        while not self._stopping.is_set():
            picked = self._pick(s, await self.api.open_orders())
            if picked is None:
                await asyncio.sleep(0.3)
                continue
            order_id, op, prev = picked
            try:
                await self._operate(s, order_id, op, prev)
            except Exception:  # a worker never dies of one bad step; it logs and goes on
                log.exception("%s: step on %s/%s failed", s.work_center, order_id, op["op_no"])
                await asyncio.sleep(0.5)

    async def _operate(
        self, s: Station, order_id: str, op: dict[str, Any], prev: dict[str, Any] | None
    ) -> None:
        op_no = op["op_no"]
        s.current = f"{order_id}/{op_no}"
        if op["status"] != "running":
            await self._event(s, "start", order_id, op_no)
            ok = await wait_for(lambda: self._status_is(order_id, op_no, "running"), 30)
            if not ok:
                return
        first = prev is None
        processed = op["good"] + op["scrap"] + op["rework"]
        if first:
            todo = max(op["planned_qty"] - op["good"], 0)
        else:
            todo = op["available"]
        made = 0
        if todo > 0 and not self._stopping.is_set():
            if s.machine is not None:
                made = await self._run_batch(s, todo, count_scrap=not first)
            else:
                made = await self._assemble(s, order_id, op_no, todo)
        # Wait until the MES has counted what we made, then decide: complete or pause.
        expect = processed + made
        await wait_for(lambda: self._processed_at_least(order_id, op_no, expect), 60)
        now = await self.api.operation(order_id, op_no)
        order = await self.api.order(order_id)
        if now is None or order is None:
            return
        ops = order["operations"]
        idx = [o["op_no"] for o in ops].index(op_no)
        prev_done = idx == 0 or ops[idx - 1]["status"] in ("completed", "cancelled")
        done = (now["good"] >= now["planned_qty"]) if idx == 0 else (now["available"] == 0)
        if prev_done and done:
            await self._event(s, "complete", order_id, op_no)
            await wait_for(lambda: self._status_is(order_id, op_no, "completed"), 30)
        else:
            await self._event(s, "pause", order_id, op_no)
            await wait_for(lambda: self._status_is(order_id, op_no, "paused"), 30)
        s.current = None

    async def _run_batch(self, s: Station, todo: int, *, count_scrap: bool) -> int:
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
                await asyncio.sleep(0.01)
        finally:
            await s.machine.run(False)
        good, scrap = await s.machine.counts()
        await self._count_machine(s)
        return (good - start_good) + (scrap - start_scrap)

    async def _assemble(self, s: Station, order_id: str, op_no: str, todo: int) -> int:
        """Assemble `todo` parts in lots, reporting each lot on the terminal; parts made."""
        made = 0
        while made < todo and not self._stopping.is_set():
            n = min(self.lot, todo - made)
            scrap = sum(1 for _ in range(n) if self._rng.random() < self.scrap_rate)
            await asyncio.sleep(max(0.05, 1.0 * n / self.speed))
            kw: dict[str, Any] = {"good": n - scrap}
            if scrap:
                kw.update(scrap=scrap, reason="dent")
            await self._event(s, "report", order_id, op_no, **kw)
            s.produced.good += n - scrap
            s.produced.scrap += scrap
            made += n
        return made

    async def _status_is(self, order_id: str, op_no: str, status: str) -> bool:
        op = await self.api.operation(order_id, op_no)
        return op is not None and op["status"] == status

    async def _processed_at_least(self, order_id: str, op_no: str, n: int) -> bool:
        op = await self.api.operation(order_id, op_no)
        return op is not None and op["good"] + op["scrap"] + op["rework"] >= n


class ModbusMachine:
    """MachineControl for simulators.modbus_plc.ModbusPlc."""

    def __init__(self, plc: Any) -> None:
        self.plc = plc

    async def run(self, on: bool) -> None:
        await self.plc.apply_step({"do": "run" if on else "idle"})

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
