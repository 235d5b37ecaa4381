"""Scenario 1: the service is SIGKILLed five times at random moments while a Modbus PLC counts
good and scrap parts and an MQTT terminal (QoS 1, Mosquitto) keeps reporting. Afterwards every
work center reconciles exactly: PLC / terminal totals = ERP feed + unassigned + written off.

The seed is printed; MES_FAULTS_SEED=<n> replays the same kill moments."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.faults.rig import ASSY, PRESS, Made, Service, modbus_press, plant, settle, until
from tests.faults.terminal import ReportingTerminal
from tests.servers import MosquittoBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KILLS = 5


async def test_five_sigkills_while_a_plc_counts_and_a_terminal_reports(
        tmp_path: Path, mosquitto: MosquittoBroker, record: Callable[..., None]) -> None:
    seed = int(os.environ.get("MES_FAULTS_SEED") or random.randrange(1 << 30))
    print(f"MES_FAULTS_SEED={seed}")
    rng = random.Random(seed)
    machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.IDLE, seed=seed)
    async with ModbusPlc(port=free_port(), machine=machine) as plc:
        device, rule = modbus_press(plc.port)
        doc = plant(f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}", mqtt_url=mosquitto.url,
                    devices=[device], rules=[rule])
        async with Service(tmp_path, doc) as svc, \
                ReportingTerminal(mosquitto.port, "K-ASSY", seed=seed) as terminal:
            await svc.put_order("K-PRESS", PRESS)
            await svc.put_order("K-ASSY", ASSY)
            assert (await svc.station(PRESS, "start", "K-PRESS")).status_code == 200
            await until(svc.mqtt_connected, 30, "the service's MQTT session")
            await terminal.start_operation(svc)
            await plc.apply_step({"do": "run"})
            terminal.start()
            try:
                for _ in range(KILLS):
                    press = (await svc.operation("K-PRESS"))["good"]
                    assy = (await svc.operation("K-ASSY"))["good"]

                    async def progress(press: int = press, assy: int = assy) -> bool:
                        return ((await svc.operation("K-PRESS"))["good"] > press
                                and (await svc.operation("K-ASSY"))["good"] > assy)

                    await until(progress, 60, "PLC counts and terminal reports committed")
                    await asyncio.sleep(rng.uniform(0.05, 1.5))
                    await svc.kill()
                    await asyncio.sleep(rng.uniform(0.1, 1.0))  # the line goes on meanwhile
                    await svc.start()
                await asyncio.sleep(1.0)
            finally:
                await terminal.stop()
                await plc.apply_step({"do": "idle"})
            await terminal.drain()

            def made() -> dict[str, Made]:
                return {PRESS: Made(machine.good, machine.scrap), ASSY: terminal.made}

            rows = await settle(svc, made)
            rejected = await svc.rejected()
            record("SIGKILL of the service", f"{svc.kills} x SIGKILL at random moments "
                   f"(seed {seed})", rows, messages=terminal.sent,
                   rejected=len(rejected))
            assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
                "\n".join(map(str, rows)) + "\n" + svc.log_tail()
            assert rejected == [], rejected
            assert svc.kills == KILLS and machine.good > 0 and terminal.made.good > 0
            assert await svc.stop() == 0, svc.log_tail()
