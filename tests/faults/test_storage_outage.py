"""Scenario 2: the storage itself fails for ~10 s while a Modbus PLC counts and an MQTT terminal
reports, then comes back. A storage failure is never an event's fault: totals reconcile exactly,
nothing is refused for "storage", API writes meanwhile answer 503 with Retry-After, and /readyz
is not ready and says why.

Faults: a real PostgreSQL stopped with `pg_ctl stop -m fast` and started again; SQLite held
under an exclusive lock (`BEGIN EXCLUSIVE`) by another process for longer than every busy
timeout of the service; SQLite on a small tmpfs filled up to the last byte (disk full)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.faults.rig import ASSY, PRESS, Made, Service, modbus_press, plant, settle, until
from tests.faults.terminal import ReportingTerminal
from tests.servers import MosquittoBroker, PostgresServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

OUTAGE_S = 10.0


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of its own: the session's shared one must not be stopped under others."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def sqlite_locked_by_another_process(db: Path) -> AsyncIterator[None]:
    """Another process takes the write lock and keeps it (the service's busy timeouts expire)."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(db)!r}, timeout=30, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"  # until the test closes our stdin
        "c.execute('COMMIT')\n",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    line = await asyncio.wait_for(holder.stdout.readline(), 30)
    assert line.strip() == b"locked", line
    try:
        yield
    finally:
        holder.stdin.close()
        assert await asyncio.wait_for(holder.wait(), 30) == 0


async def write_during_outage(svc: Service, seen: dict[str, Any]) -> None:
    """An ERP write while the storage is broken: the contract says 503 with Retry-After."""
    try:
        r = await svc.http.put("/api/v1/work-orders/S-DURING", headers=svc.erp, json={
            "revision": 1, "material": "M-1", "quantity": 5,
            "operations": [{"op_no": "0010", "work_center": PRESS}]}, timeout=15)
        seen["write"] = (r.status_code, r.headers.get("retry-after"), r.text[:300])
    except httpx.HTTPError as err:
        seen["write"] = (None, None, f"{type(err).__name__}: {err}")


async def outage_run(svc: Service, plc: ModbusPlc, machine: Machine, terminal: ReportingTerminal,
                     fault: Callable[[], contextlib.AbstractAsyncContextManager[Any]]
                     ) -> dict[str, Any]:
    """Produce, break the storage for OUTAGE_S while producing and probing the API, heal,
    produce again. Returns what the API said during the outage."""
    seen: dict[str, Any] = {"readyz": [], "write": None}
    await svc.put_order("S-PRESS", PRESS)
    await svc.put_order("S-ASSY", ASSY)
    assert (await svc.station(PRESS, "start", "S-PRESS")).status_code == 200
    await until(svc.mqtt_connected, 30, "the service's MQTT session")
    await terminal.start_operation(svc)
    await plc.apply_step({"do": "run"})
    terminal.start()
    try:
        async def progress() -> bool:
            return ((await svc.operation("S-PRESS"))["good"] > 50
                    and (await svc.operation("S-ASSY"))["good"] > 20)

        await until(progress, 60, "counts before the outage")
        async with fault():
            broken_at = time.monotonic()
            await asyncio.sleep(2.0)  # the service meets the fault with real traffic
            write = asyncio.create_task(write_during_outage(svc, seen))
            try:
                while time.monotonic() - broken_at < OUTAGE_S:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        r = await svc.http.get("/readyz", timeout=5)
                        seen["readyz"].append((r.status_code, r.json()))
                    await asyncio.sleep(0.5)
            finally:
                await write
        after = (await svc.operation("S-PRESS"))["good"]

        async def counting_again() -> bool:
            return (await svc.operation("S-PRESS"))["good"] > after + 50

        await until(counting_again, 60, "counting after the storage came back")
        await until(svc.ready, 30, "/readyz ready again")
    finally:
        await terminal.stop()
        await plc.apply_step({"do": "idle"})
    await terminal.drain()
    return seen


def not_ready_with_reason(readyz: list[tuple[int, dict[str, Any]]]) -> bool:
    """Some /readyz answer during the outage was 503 and said what is wrong with the storage."""
    for code, body in readyz:
        dispatcher = body.get("dispatcher") or {}
        reason = (body.get("database") not in (None, "ok")
                  or body.get("storage") not in (None, "ok") or dispatcher.get("storage_error")
                  or dispatcher.get("storage_down") or body.get("reason"))
        if code == 503 and body.get("status") == "not ready" and reason:
            return True
    return False


async def check_outage(svc: Service, machine: Machine, terminal: ReportingTerminal,
                       seen: dict[str, Any], scenario: str, faults: str,
                       record: Callable[..., None]) -> None:
    rows = await settle(svc, lambda: {PRESS: Made(machine.good, machine.scrap),
                                      ASSY: terminal.made}, within=60)
    storage = [r for r in await svc.rejected() if r["reason_code"] == "storage"]
    write = seen["write"]
    record(scenario, faults, rows, messages=terminal.sent, storage_refusals=len(storage),
           write_during_outage=write[:2], readyz_said_why=not_ready_with_reason(seen["readyz"]))
    assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
        "\n".join(map(str, rows)) + "\n" + svc.log_tail()
    assert storage == [], storage
    assert write[0] == 503 and write[1], f"an API write during the outage answered {write}"
    assert not_ready_with_reason(seen["readyz"]), seen["readyz"][:3]
    assert await svc.stop() == 0, svc.log_tail()


def line(db_url: str, workdir: Path, broker: MosquittoBroker, seed: int = 7
         ) -> tuple[Machine, ModbusPlc, Service, ReportingTerminal]:
    machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.IDLE, seed=seed)
    plc = ModbusPlc(port=free_port(), machine=machine)
    device, rule = modbus_press(plc.port)
    svc = Service(workdir, plant(db_url, mqtt_url=broker.url, devices=[device], rules=[rule]))
    return machine, plc, svc, ReportingTerminal(broker.port, "S-ASSY", seed=seed)


async def test_postgresql_stopped_and_started(tmp_path: Path, mosquitto: MosquittoBroker,
                                              record: Callable[..., None]) -> None:
    with postgres() as pg:
        machine, plc, svc, terminal = line(pg.create_database("outage"), tmp_path, mosquitto)

        @contextlib.asynccontextmanager
        async def stopped() -> AsyncIterator[None]:
            await asyncio.to_thread(pg.halt, "fast")
            try:
                yield
            finally:
                await asyncio.to_thread(pg.resume)

        async with plc, svc, terminal:
            seen = await outage_run(svc, plc, machine, terminal, stopped)
            await check_outage(svc, machine, terminal, seen, "PostgreSQL stopped",
                               f"`pg_ctl stop -m fast`, {OUTAGE_S:.0f} s, `pg_ctl start`",
                               record)


async def test_sqlite_locked_by_another_process(tmp_path: Path, mosquitto: MosquittoBroker,
                                                record: Callable[..., None]) -> None:
    db = tmp_path / "mes.db"
    machine, plc, svc, terminal = line(f"sqlite+aiosqlite:///{db}", tmp_path, mosquitto)
    async with plc, svc, terminal:
        seen = await outage_run(svc, plc, machine, terminal,
                                lambda: sqlite_locked_by_another_process(db))
        await check_outage(svc, machine, terminal, seen, "SQLite locked",
                           f"another process holds `BEGIN EXCLUSIVE` {OUTAGE_S:.0f} s", record)
