"""Scenario 5: push mode while a Modbus PLC counts (PRESS-01) and a terminal reports (ASSY-03).
The ERP's push target is down (connection refused), then answers 500 (after booking what it got,
so the retries meet keys it already has), then refuses one PRESS-01 confirmation with a 422
until its data is fixed and a supervisor retries it. What the ERP booked (deduplicated by
Idempotency-Key) equals what the line made, in commit order per work order; the refusal held
back only its own work order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.erp import ErpSim
from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.faults.rig import (
    ASSY,
    PRESS,
    Made,
    Service,
    eventually,
    modbus_press,
    plant,
    reconcile,
    until,
)
from tests.faults.terminal import ReportingTerminal
from tests.servers import MosquittoBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PHASE_S = 3.0


async def test_erp_down_then_500_then_422_for_one_confirmation(
        tmp_path: Path, mosquitto: MosquittoBroker, record: Callable[..., None]) -> None:
    erp = ErpSim("http://unused", "unused", mode="push")
    await erp.start()
    machine = Machine(cycle_time=0.01, scrap_rate=0.05, state=MachineState.IDLE, seed=9)
    try:
        async with ModbusPlc(port=free_port(), machine=machine) as plc:
            device, rule = modbus_press(plc.port)
            doc = plant(f"sqlite+aiosqlite:///{tmp_path / 'mes.db'}", mqtt_url=mosquitto.url,
                        devices=[device], rules=[rule],
                        erp={"mode": "push", "push_url": erp.push_url})
            async with Service(tmp_path, doc) as svc, \
                    ReportingTerminal(mosquitto.port, "E-ASSY", period=0.1, seed=9) as terminal:
                await svc.put_order("E-PRESS", PRESS)
                await svc.put_order("E-ASSY", ASSY)
                assert (await svc.station(PRESS, "start", "E-PRESS")).status_code == 200
                await until(svc.mqtt_connected, 30, "the service's MQTT session")
                await terminal.start_operation(svc)
                await plc.apply_step({"do": "run"})
                terminal.start()
                try:
                    refused, assy_meanwhile = await faults(svc, erp)
                finally:
                    await terminal.stop()
                    await plc.apply_step({"do": "idle"})
                await terminal.drain()
                made = {PRESS: Made(machine.good, machine.scrap), ASSY: terminal.made}

                async def booked_everything() -> bool:
                    await svc.flush()
                    rows = reconcile(made, list(erp.received.by_id.values()), None)
                    return all(r.lost == 0 and r.doubled == 0 for r in rows)

                # Bounded; when it never gets there, the numbers below say what is missing.
                await eventually(booked_everything, 60)
                rows = reconcile(made, list(erp.received.by_id.values()),
                                 await svc.unassigned())
                record("ERP push target faults", f"ERP down {PHASE_S:.0f} s, 500 after "
                       f"booking {PHASE_S:.0f} s, 422 for one confirmation then retried",
                       rows, messages=terminal.sent, duplicates_at_erp=erp.received.duplicates,
                       order_violations=len(erp.received.order_violations),
                       refused=refused, assy_delivered_while_refused=assy_meanwhile)
                assert all(r.lost == 0 and r.doubled == 0 for r in rows), \
                    "\n".join(map(str, rows)) + "\n" + svc.log_tail()
                assert erp.received.order_violations == []
                assert refused in erp.received.by_id  # retried and delivered
                assert assy_meanwhile > 0  # the refusal held back PRESS-01's order only
                assert await svc.stop() == 0, svc.log_tail()
    finally:
        await erp.close()


async def faults(svc: Service, erp: ErpSim) -> tuple[str, int]:
    """Down, 500, one 422 resolved by a supervisor's retry. Returns the refused confirmation's
    id and how many ASSY-03 confirmations the ERP booked while it was refused."""
    await until(lambda: _true(len(erp.received.by_id) >= 5), 60, "first deliveries")
    await erp.stop_receiver()  # connection refused
    await asyncio.sleep(PHASE_S)
    erp.set_available(False, status=500, after_booking=True)
    await erp.start_receiver()
    await asyncio.sleep(PHASE_S)
    erp.set_available(True)
    erp.refuse("E-PRESS", 422, "material master of M-1 locked")
    errors: list[dict[str, Any]] = []

    async def delivery_error() -> bool:
        r = await svc.http.get("/api/v1/confirmations/deliveries", headers=svc.sup,
                               params={"state": "error"})
        assert r.status_code == 200, f"GET /confirmations/deliveries: {r.status_code} {r.text}"
        errors[:] = r.json()["deliveries"]
        return bool(errors)

    await until(delivery_error, 60, "the 422 to show as a delivery error")
    assert [e["order_id"] for e in errors] == ["E-PRESS"], errors
    refused = str(errors[0]["confirmation_id"])
    assy_before = _booked(erp, ASSY)
    await asyncio.sleep(PHASE_S)  # the other work order goes on meanwhile
    assy_meanwhile = _booked(erp, ASSY) - assy_before
    erp.clear_refusal("E-PRESS")
    r = await svc.http.post(f"/api/v1/confirmations/{refused}/retry", headers=svc.sup,
                            json={"reason": "material master unlocked"})
    assert r.status_code == 200, f"retry: {r.status_code} {r.text}"
    await until(lambda: _true(refused in erp.received.by_id), 30, "the retried confirmation")
    await asyncio.sleep(1.0)
    return refused, assy_meanwhile


def _booked(erp: ErpSim, work_center: str) -> int:
    return sum(1 for c in erp.received.by_id.values() if c["work_center"] == work_center)


async def _true(value: bool) -> bool:
    return value
