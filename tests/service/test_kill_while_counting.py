"""Counts stay exact across SIGKILL of the service while the PLC keeps producing: after each
restart the delta is derived from the last COMMITTED checkpoint (README, Reliability)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port
from tests.service.plant import (
    PRESS,
    base_plant,
    modbus_plant,
    release_order,
    service_of,
    sqlite_query,
    wait_until,
)
from tests.service.process import kill, spawn, stop

pytestmark = pytest.mark.timeout(120)


def good(url: str) -> int:
    return int(sqlite_query(url, "SELECT good FROM operations WHERE order_id='5001'")[0][0])


def above(url: str, floor: int) -> Callable[[], bool]:
    """A check that the operation counted more than `floor`."""
    return lambda: good(url) > floor


def checkpoint(url: str) -> int | None:
    rows = sqlite_query(url, "SELECT value FROM counter_checkpoints WHERE device='press-plc' "
                             "AND tag='good_count'")
    return int(rows[0][0]) if rows else None


async def test_sigkill_while_the_plc_counts_loses_and_doubles_nothing(
        tmp_path: Path, sqlite_url: str) -> None:
    async with service_of(base_plant(sqlite_url)) as setup:
        assert setup.dispatcher is not None
        await release_order(setup.dispatcher, "5001", PRESS, qty=100_000)
    machine = Machine(cycle_time=0.01, scrap_rate=0.0, state=MachineState.IDLE)
    async with ModbusPlc(port=free_port(), machine=machine) as plc:
        config = tmp_path / "plant.yaml"
        config.write_text(yaml.safe_dump(modbus_plant(sqlite_url, plc.port)), encoding="utf-8")
        log = tmp_path / "service.log"
        proc = spawn(config, log)
        try:
            await wait_until(lambda: checkpoint(sqlite_url) == 0, 30, "the first reading")
            await plc.apply_step({"do": "run"})
            killed_at = 0
            for delay in (0.7, 0.45):  # killed at two different moments of production
                await wait_until(above(sqlite_url, killed_at), 30,
                                 "counts to be committed (again)")
                await asyncio.sleep(delay)
                kill(proc)
                killed_at = good(sqlite_url)
                await asyncio.sleep(0.5)  # the machine goes on while nobody reads it
                assert machine.good > killed_at + 20
                proc = spawn(config, log)
            await wait_until(above(sqlite_url, killed_at), 30,
                             "counting to resume")
            await plc.apply_step({"do": "idle"})
            await wait_until(lambda: good(sqlite_url) == machine.good, 15,
                             f"good == {machine.good}")
            await asyncio.sleep(0.5)
            assert good(sqlite_url) == machine.good == checkpoint(sqlite_url)
            counted = sqlite_query(sqlite_url, "SELECT count(*), count(DISTINCT event_id) FROM "
                                               "events WHERE type='quantity_reported'")
            assert counted[0][0] == counted[0][1] > 0
            rejected = sqlite_query(sqlite_url, "SELECT reason_code FROM rejected_events")
            assert rejected == []
        finally:
            stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
