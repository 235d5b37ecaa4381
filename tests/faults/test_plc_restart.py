"""Scenario 4: the Modbus and the OPC UA PLC simulators are each rebooted mid-run: the old server
process state is gone, a new one listens on the same port with its counters back at 0 and the
machine producing again at once. A reboot stops the machine it controls, so the old PLC stops
producing half a second before it goes away (ten Modbus polls, ten OPC UA publishing intervals:
a timed stop, the PLC never waits for the MES). Each work center then reconciles exactly with
the sum of what the PLC counted in each of its lives: the reset is neither a huge delta nor a
negative one, and the parts counted after the reboot are not lost to a re-baseline. Both PLCs
reboot at the same moment (one line-wide power dip), which also keeps the run short."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from simulators.opcua_plc import IDLE, RUNNING, OpcUaPlc
from tests.faults.rig import (
    CNC,
    PRESS,
    Made,
    Service,
    modbus_press,
    opcua_cnc,
    plant,
    settle,
    until,
)
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STOP_BEFORE_REBOOT_S = 0.5
DOWN_S = 1.0
#: Parts each PLC counts before its reboot. A reset can only be seen while the new counter is
#: still below the old one at the MES's first reading after the reboot (no counter can tell
#: "reset and counted past the old value" from "counted on"), so the first life is long
#: compared with a reconnect (~1-3 s here, 50-100 parts per second).
FIRST_LIFE = 600


async def test_modbus_and_opcua_plcs_rebooted_with_counters_back_at_zero(
        tmp_path: Path, record: Callable[..., None]) -> None:
    modbus_port, opcua_port = free_port(), free_port()
    press_lives: list[Machine] = []
    cnc_done = 0  # GoodCount of the OPC UA PLC's finished lives

    def press_plc() -> ModbusPlc:
        machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.RUNNING,
                          seed=len(press_lives) + 11)
        press_lives.append(machine)
        return ModbusPlc(port=modbus_port, machine=machine)

    modbus = press_plc()
    opcua = OpcUaPlc(port=opcua_port, cycle_time=0.02, seed=5)
    await opcua.start()
    await opcua.set_state(IDLE)
    modbus.machine.set_state(MachineState.IDLE)
    await modbus.start()
    try:
        press_device, press_rule = modbus_press(modbus_port)
        cnc_device, cnc_rule = opcua_cnc(opcua.endpoint)
        doc = plant(f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}",
                    devices=[press_device, cnc_device], rules=[press_rule, cnc_rule])
        async with Service(tmp_path, doc) as svc:
            for order, wc in (("R-PRESS", PRESS), ("R-CNC", CNC)):
                await svc.put_order(order, wc)
                assert (await svc.station(wc, "start", order)).status_code == 200
            await modbus.apply_step({"do": "run"})
            await opcua.set_state(RUNNING)

            async def counted(order: str, floor: int) -> None:
                async def check() -> bool:
                    return bool((await svc.operation(order))["good"] > floor)
                await until(check, 60, f"{order} to count beyond {floor}")

            await counted("R-PRESS", FIRST_LIFE)
            await counted("R-CNC", FIRST_LIFE)

            async def reboot_modbus() -> None:
                nonlocal modbus
                modbus.machine.set_state(MachineState.IDLE)  # the machine stops with its PLC
                await asyncio.sleep(STOP_BEFORE_REBOOT_S)
                await modbus.close()
                await asyncio.sleep(DOWN_S)
                modbus = press_plc()  # counters at 0, running at once
                await modbus.start()

            async def reboot_opcua() -> None:
                nonlocal opcua, cnc_done
                await opcua.set_state(IDLE)
                await asyncio.sleep(STOP_BEFORE_REBOOT_S)
                cnc_done += int(await opcua.get_value("GoodCount"))
                await opcua.close()
                await asyncio.sleep(DOWN_S)
                opcua = OpcUaPlc(port=opcua_port, cycle_time=0.02, seed=6)
                await opcua.start()  # GoodCount 0, running

            await asyncio.gather(reboot_modbus(), reboot_opcua())
            await counted("R-PRESS", press_lives[0].good + 100)
            await counted("R-CNC", cnc_done + 50)

            modbus.machine.set_state(MachineState.IDLE)
            await opcua.set_state(IDLE)
            cnc_total = cnc_done + int(await opcua.get_value("GoodCount"))

            def made() -> dict[str, Made]:
                return {PRESS: Made(sum(m.good for m in press_lives),
                                    sum(m.scrap for m in press_lives)),
                        CNC: Made(cnc_total)}

            rows = await settle(svc, made)
            rejected = await svc.rejected()
            record("PLC simulators rebooted", "Modbus PLC and OPC UA PLC each restarted, "
                   "counters back to 0", rows, rejected=len(rejected),
                   press_lives=[m.good for m in press_lives], cnc_total=cnc_total)
            assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
                "\n".join(map(str, rows)) + "\n" + svc.log_tail()
            assert rejected == [], rejected
            assert await svc.stop() == 0, svc.log_tail()
    finally:
        await modbus.close()
        await opcua.close()
