"""The Modbus PLC simulator on its own: machine registers, scenario steps, request counting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import HR_GOOD, HR_STATE, ModbusPlc, load_scenario
from tests.servers import free_port

pytestmark = pytest.mark.timeout(30)


async def read(client: AsyncModbusTcpClient, address: int, count: int = 1) -> list[int]:
    response = await client.read_holding_registers(address, count=count, device_id=1)
    assert not response.isError(), response
    return list(response.registers)


def test_machine_is_deterministic_and_rolls_over() -> None:
    runs = []
    for _ in range(2):
        m = Machine(cycle_time=1.0, counter_type="uint16", scrap_rate=0.2, stop_probability=0.05,
                    seed=7)
        m.set_counter("good", 0xFFFE)
        for t in range(200):
            m.tick(float(t))
        runs.append((m.good, m.scrap, m.state))
    assert runs[0] == runs[1]
    assert runs[0][0] < 0xFFFE  # wrapped past 65535


async def until_register(client: AsyncModbusTcpClient, address: int, check: object,
                         within: float = 5.0) -> int:
    """Read a register every 20 ms until `check(value)`; returns how many reads it took."""
    for reads in range(1, int(within / 0.02)):
        if check((await read(client, address))[0]):  # type: ignore[operator]
            return reads
        await asyncio.sleep(0.02)
    raise AssertionError(f"register {address} never satisfied the check")


async def test_scenario_rollover_down_and_holes() -> None:
    scenario = [
        {"at": 0.0, "do": "set_counter", "counter": "good", "value": 65534},
        {"at": 0.5, "do": "down", "for": 0.5},
        {"at": 0.5, "do": "holes", "start": 500, "count": 2},
    ]
    async with ModbusPlc(port=free_port(), cycle_time=0.05, counter_type="uint16",
                         scenario=scenario) as plc:
        client = AsyncModbusTcpClient("127.0.0.1", port=plc.port, timeout=1, retries=0,
                                      reconnect_delay=0)
        assert await client.connect()
        try:
            reads = await until_register(client, HR_GOOD, lambda v: v < 1000)  # rolled over
            reads += await until_register(client, HR_STATE, lambda v: v == MachineState.DOWN)
            refused = await client.read_holding_registers(499, count=3, device_id=1)
            assert refused.isError() and refused.exception_code == 2
            reads += await until_register(client, HR_STATE, lambda v: v == MachineState.RUNNING)
            assert plc.request_count(3) == reads + 1
        finally:
            client.close()


async def test_stall_and_restart_keep_memory() -> None:
    async with ModbusPlc(port=free_port()) as plc:
        plc.set_registers(100, [1, 2, 3])
        client = AsyncModbusTcpClient("127.0.0.1", port=plc.port, timeout=0.3, retries=0,
                                      reconnect_delay=0)
        assert await client.connect()
        try:
            plc.stall()
            with pytest.raises(Exception, match="No response"):
                await client.read_holding_registers(100, count=3, device_id=1)
            plc.stall(False)
            await plc.restart_server(0.1)
            assert await client.connect()
            assert await read(client, 100, 3) == [1, 2, 3]
        finally:
            client.close()


def test_scenario_files_json_and_yaml(tmp_path: Path) -> None:
    steps = [{"at": 1, "do": "down", "for": 2}]
    (tmp_path / "s.json").write_text(json.dumps({"steps": steps}))
    (tmp_path / "s.yaml").write_text("- at: 1\n  do: down\n  for: 2\n")
    assert load_scenario(tmp_path / "s.json") == steps == load_scenario(tmp_path / "s.yaml")
