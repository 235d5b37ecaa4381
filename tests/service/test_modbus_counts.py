"""Modbus PLC counts reach the running operation exactly: rollover, reset, link outage and a
service restart on the same database (README, Reliability)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mes_edge.app.service import EdgeService
from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port
from tests.service.plant import (
    PRESS,
    modbus_plant,
    operation,
    release_order,
    service_of,
    sqlite_query,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)
CYCLE = 0.02  # a part every 20 ms: ~50 parts/s, many per 50 ms poll


@pytest.fixture
async def plc() -> AsyncIterator[ModbusPlc]:
    """A machine that stands idle (counters still) until the test runs it."""
    machine = Machine(cycle_time=CYCLE, scrap_rate=0.0, state=MachineState.IDLE)
    sim = ModbusPlc(port=free_port(), machine=machine)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


async def run_for(plc: ModbusPlc, seconds: float) -> None:
    """Let the machine produce for a while, then stop it (counters hold their value)."""
    await plc.apply_step({"do": "run"})
    await asyncio.sleep(seconds)
    await plc.apply_step({"do": "idle"})


async def baseline_read(service: EdgeService) -> None:
    """Wait until the service has committed its first reading of the counter."""
    assert service.dispatcher is not None
    d = service.dispatcher
    await wait_until(lambda: ("press-plc", "good_count") in d.checkpoints, 10,
                     "the first counter reading to be committed")


async def counted(service: EdgeService, order_id: str, expected: int, within: float = 10) -> None:
    assert service.dispatcher is not None
    d = service.dispatcher
    await wait_until(lambda: operation(d, order_id).done.good == expected, within,
                     f"good == {expected} on {order_id}")
    await asyncio.sleep(0.3)  # and nothing more arrives afterwards
    assert operation(d, order_id).done.good == expected


def counter_rejections(url: str) -> list[tuple[str, str]]:
    return [(c, r) for c, r in sqlite_query(url, "SELECT reason_code, reason FROM rejected_events")
            if c in ("counter_jump", "bad_counter_value")]


async def test_plc_counts_flow_to_the_running_operation(plc: ModbusPlc, sqlite_url: str) -> None:
    async with service_of(modbus_plant(sqlite_url, plc.port)) as service:
        assert service.dispatcher is not None
        await baseline_read(service)
        await release_order(service.dispatcher, "1001", PRESS)
        await run_for(plc, 1.0)
        assert plc.machine.good > 20
        await counted(service, "1001", plc.machine.good)
        wc = service.dispatcher.state.work_center(PRESS)
        assert wc is not None and wc.machine_state.value == "idle"  # the state tag flowed too
    # What the operation holds is committed: the operations row says the same.
    assert sqlite_query(sqlite_url, "SELECT good FROM operations WHERE order_id='1001'") == [
        (plc.machine.good,)]


@pytest.mark.parametrize(("counter_type", "bits"), [("uint16", 16), ("uint32", 32)])
async def test_counter_rollover_keeps_counts_exact(sqlite_url: str, counter_type: str,
                                                   bits: int) -> None:
    machine = Machine(cycle_time=CYCLE, scrap_rate=0.0, state=MachineState.IDLE,
                      counter_type=counter_type)
    start = machine.counter_max - 15
    machine.set_counter("good", start)
    async with ModbusPlc(port=free_port(), machine=machine, counter_type=counter_type) as plc, \
            service_of(modbus_plant(sqlite_url, plc.port, bits=bits)) as service:
        assert service.dispatcher is not None
        await baseline_read(service)
        await release_order(service.dispatcher, "1001", PRESS)
        await run_for(plc, 1.0)
        assert machine.good < start, "the counter did not wrap"
        made = machine.good + machine.counter_max + 1 - start
        await counted(service, "1001", made)
    assert counter_rejections(sqlite_url) == []


async def test_counter_reset_on_the_plc_is_detected(plc: ModbusPlc, sqlite_url: str) -> None:
    async with service_of(modbus_plant(sqlite_url, plc.port)) as service:
        assert service.dispatcher is not None
        d = service.dispatcher
        await baseline_read(service)
        await release_order(d, "1001", PRESS)
        await run_for(plc, 0.5)
        before = plc.machine.good
        await counted(service, "1001", before)
        # Reset while standing: a new baseline, never a negative or 4-billion delta.
        await plc.apply_step({"do": "reset_counter", "counter": "good"})
        await wait_until(lambda: d.checkpoints[("press-plc", "good_count")].value == 0, 5,
                         "the reset to be seen")
        assert operation(d, "1001").done.good == before
        await run_for(plc, 0.5)
        after = plc.machine.good
        assert after > 0
        await counted(service, "1001", before + after)
        # Reset while running: the parts made since the reset are counted (on_reset: count).
        await plc.apply_step({"do": "run"})
        await plc.apply_step({"do": "reset_counter", "counter": "good"})
        await asyncio.sleep(0.4)
        await plc.apply_step({"do": "idle"})
        total = before + after + plc.machine.good
        await counted(service, "1001", total)
        assert d.checkpoints[("press-plc", "good_count")].generation >= 2
    assert counter_rejections(sqlite_url) == []


async def test_counts_made_during_a_link_outage_are_recovered(plc: ModbusPlc,
                                                                sqlite_url: str) -> None:
    async with service_of(modbus_plant(sqlite_url, plc.port)) as service:
        assert service.dispatcher is not None
        d = service.dispatcher
        await baseline_read(service)
        await release_order(d, "1001", PRESS)
        await plc.apply_step({"do": "run"})
        await asyncio.sleep(0.3)
        await plc.stop_server()  # the cable is pulled; the machine keeps producing
        await wait_until(lambda: service.health()["press-plc"]["state"] == "disconnected", 10,
                         "the driver to show the link as lost")
        good_while_down = operation(d, "1001").done.good
        made_at_loss = plc.machine.good
        await asyncio.sleep(1.0)
        assert plc.machine.good > made_at_loss + 20  # produced while we could not see it
        assert operation(d, "1001").done.good == good_while_down  # and we did not count it yet
        await plc.start_server()
        await wait_until(lambda: service.health()["press-plc"]["state"] == "connected", 15,
                         "the driver to reconnect")
        await plc.apply_step({"do": "idle"})
        await counted(service, "1001", plc.machine.good)
        assert service.health()["press-plc"]["reconnects"] >= 1
    assert counter_rejections(sqlite_url) == []


async def test_counts_made_while_the_service_was_down_come_from_the_checkpoint(
        plc: ModbusPlc, sqlite_url: str) -> None:
    doc = modbus_plant(sqlite_url, plc.port)
    async with service_of(doc) as service:
        assert service.dispatcher is not None
        await baseline_read(service)
        await release_order(service.dispatcher, "1001", PRESS)
        await run_for(plc, 0.5)
        first = plc.machine.good
        await counted(service, "1001", first)
    # The service is stopped; the machine keeps producing.
    await run_for(plc, 0.7)
    assert plc.machine.good > first + 10
    async with service_of(doc) as service:
        assert service.dispatcher is not None
        assert service.dispatcher.checkpoints[("press-plc", "good_count")].value == first
        await counted(service, "1001", plc.machine.good)
