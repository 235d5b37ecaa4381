"""Scenario 3: Mosquitto is SIGKILLed and restarted on the same port, twice, while a terminal
keeps publishing reports with QoS 1 (never waiting) and a Modbus PLC keeps counting. Every
report the terminal published counts exactly once; the PLC's counts are untouched."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.faults.rig import ASSY, PRESS, Made, Service, modbus_press, plant, settle, until
from tests.faults.terminal import ReportingTerminal
from tests.servers import MosquittoBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BROKER_KILLS = 2


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker that saves its state on every change: a SIGKILLed Mosquitto keeps only what it
    saved, and what it acknowledged but had not saved yet is gone (its own limit, not the MES's;
    with the default 1 s autosave such losses were seen in this very test)."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.conf.write_text(broker.conf.read_text() + "autosave_on_changes true\n")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_mosquitto_killed_and_restarted_while_a_qos1_publisher_goes_on(
        tmp_path: Path, mosquitto: MosquittoBroker, record: Callable[..., None]) -> None:
    machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.IDLE, seed=3)
    async with ModbusPlc(port=free_port(), machine=machine) as plc:
        device, rule = modbus_press(plc.port)
        doc = plant(f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}", mqtt_url=mosquitto.url,
                    devices=[device], rules=[rule])
        async with Service(tmp_path, doc) as svc, \
                ReportingTerminal(mosquitto.port, "B-ASSY", period=0.02, seed=3) as terminal:
            await svc.put_order("B-PRESS", PRESS)
            await svc.put_order("B-ASSY", ASSY)
            assert (await svc.station(PRESS, "start", "B-PRESS")).status_code == 200
            await until(svc.mqtt_connected, 30, "the service's MQTT session")
            await terminal.start_operation(svc)
            await plc.apply_step({"do": "run"})
            terminal.start()
            unacked_while_down = []
            try:
                for _ in range(BROKER_KILLS):
                    # The next kill comes once the backlog of the previous outage is counted
                    # (else the broker is killed again while it holds that backlog for us).
                    before = terminal.made.good

                    async def progress(before: int = before) -> bool:
                        return (await svc.operation("B-ASSY"))["good"] > before + 30

                    await until(progress, 60, "reports counted")
                    await asyncio.sleep(random.uniform(0.0, 1.0))
                    await asyncio.to_thread(mosquitto.kill)
                    await asyncio.sleep(3.0)  # the terminal goes on publishing into the void
                    unacked_while_down.append(terminal.unacknowledged)
                    await asyncio.to_thread(mosquitto.start)
                await asyncio.sleep(2.0)
            finally:
                await terminal.stop()
                await plc.apply_step({"do": "idle"})
            await terminal.drain()
            rows = await settle(svc, lambda: {PRESS: Made(machine.good, machine.scrap),
                                              ASSY: terminal.made})
            rejected = await svc.rejected()
            record("Mosquitto killed", f"{BROKER_KILLS} x SIGKILL of the broker, 3 s down, "
                   "restart on the same port", rows, messages=terminal.sent,
                   unacked_while_down=unacked_while_down, rejected=len(rejected))
            assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
                "\n".join(map(str, rows)) + "\n" + svc.log_tail()
            assert all(n > 0 for n in unacked_while_down)  # the fault really bit
            assert rejected == [], rejected
            assert await svc.stop() == 0, svc.log_tail()
