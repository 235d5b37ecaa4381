"""Scenario 6: a supervisor pauses the running operation, later resumes and completes it, while
the Modbus PLC keeps making parts the whole time (a real line does not stop for the MES). The
parts made while nothing ran are unassigned production of PRESS-01: nothing refused, nothing
lost. A supervisor then assigns part of them to the next operation and writes the rest off;
machine totals = ERP feed + open unassigned + written off, exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.faults.rig import PRESS, Made, Service, eventually, modbus_press, plant, settle, until
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

IDLE_OP_S = 1.5  # how long the machine runs with no operation running, each time


async def test_pause_and_complete_while_the_machine_keeps_running(
        tmp_path: Path, record: Callable[..., None]) -> None:
    machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.IDLE, seed=13)
    async with ModbusPlc(port=free_port(), machine=machine) as plc:
        device, rule = modbus_press(plc.port)
        doc = plant(f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}", devices=[device], rules=[rule])
        async with Service(tmp_path, doc) as svc:
            await svc.put_order("U-1", PRESS)
            await svc.put_order("U-2", PRESS)
            assert (await svc.station(PRESS, "start", "U-1")).status_code == 200
            await plc.apply_step({"do": "run"})
            try:
                async def counted(floor: int) -> bool:
                    return bool((await svc.operation("U-1"))["good"] > floor)

                await until(lambda: counted(100), 60, "U-1 counting")
                r = await svc.station(PRESS, "pause", "U-1")
                assert r.status_code == 200, r.text
                await asyncio.sleep(IDLE_OP_S)  # the machine goes on: unassigned production
                r = await svc.station(PRESS, "resume", "U-1")
                assert r.status_code == 200, r.text
                resumed_at = (await svc.operation("U-1"))["good"]
                await until(lambda: counted(resumed_at + 100), 60, "U-1 counting again")
                r = await svc.station(PRESS, "complete", "U-1")
                assert r.status_code == 200, r.text
                await asyncio.sleep(IDLE_OP_S)  # ... and after the completion too
            finally:
                await plc.apply_step({"do": "idle"})

            made = Made(machine.good, machine.scrap)

            async def all_read() -> bool:  # every part is in U-1 or unassigned
                op = await svc.operation("U-1")
                open_ = ((await svc.unassigned()) or {}).get(PRESS, {}).get("open") or {}
                scrap = sum((open_.get("scrap") or {}).values())
                return bool(op["good"] + open_.get("good", 0) == made.good
                            and op["scrap"] + scrap == made.scrap)

            await eventually(all_read, 30)
            unassigned = await svc.unassigned()
            open_before = dict(((unassigned or {}).get(PRESS) or {}).get("open") or {})
            resolved: dict[str, object] = {}
            if unassigned is not None and open_before.get("good"):
                good, scrap = int(open_before["good"]), dict(open_before.get("scrap") or {})
                assert (await svc.station(PRESS, "start", "U-2")).status_code == 200
                r = await svc.http.post(
                    f"/api/v1/production/unassigned/{PRESS}/assign", headers=svc.sup,
                    json={"order_id": "U-2", "op_no": "0010", "good": good // 2, "scrap": {},
                          "rework": 0, "reason": "made for U-2 before it was started"})
                resolved["assign"] = (r.status_code, r.text[:200])
                r = await svc.http.post(
                    f"/api/v1/production/unassigned/{PRESS}/write-off", headers=svc.sup,
                    json={"good": good - good // 2, "scrap": scrap, "rework": 0,
                          "reason": "test parts of the setter"})
                resolved["write_off"] = (r.status_code, r.text[:200])
            rows = await settle(svc, lambda: {PRESS: made})
            rejected = await svc.rejected()
            record("Pause and completion while the machine runs",
                   f"pause {IDLE_OP_S} s, then completion, the PLC producing throughout",
                   rows, rejected=len(rejected), unassigned_api=unassigned is not None,
                   open_before=open_before, **resolved)
            assert unassigned is not None, \
                "GET /api/v1/production/unassigned does not exist (yet)\n" + "\n".join(map(
                    str, rows))
            assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
                "\n".join(map(str, rows)) + "\n" + svc.log_tail()
            assert open_before.get("good", 0) > 0, "no unassigned production: the fault missed"
            assert resolved["assign"][0] == 200 and resolved["write_off"][0] == 200, resolved  # type: ignore[index]
            row = rows[0]
            assert row.open == Made() and row.written_off.good == open_before["good"] - (
                open_before["good"] // 2)
            assert rejected == [], rejected
            assert await svc.stop() == 0, svc.log_tail()
