"""Push mode across a SIGKILL of the service in the middle of pushing: the ERP ends with every
confirmation exactly once (by key), in order per work order, adding up to the PLC's count."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mes_edge.store import Store
from mes_edge.store.tokens import Role, create_token
from simulators.erp import ErpSim
from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from simulators.scanner import ScannerSim
from tests.servers import MosquittoBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]


def start_service(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mes_edge.cli", "run", "--config", str(config)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_sigkill_during_push(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    db = tmp_path / "mes.db"
    api_port, plc_port = free_port(), free_port()
    erp = ErpSim("http://unused", "unused", mode="push", push_delay=0.03)
    await erp.start()
    plant = {
        "site": "t", "database": {"url": f"sqlite:///{db}"},
        "api": {"port": api_port},
        "mqtt": {"url": mosquitto.url, "client_id": "push-crash", "site": "t"},
        "erp": {"mode": "push", "push_url": erp.push_url},
        "production": {"tolerance_pct": 0, "confirmation": {"every_units": 5}},
        "work_centers": [{"id": "PRESS-01", "counting": "machine"}],
        "devices": [{"name": "plc", "driver": "modbus", "host": "127.0.0.1", "port": plc_port,
                     "poll_groups": {"default": 0.05},
                     "tags": [{"name": "good", "address": 10, "data_type": "uint32"}]}],
        "rules": [{"work_center": "PRESS-01", "counters": [{"device": "plc", "tag": "good"}]}],
    }
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump(plant))
    store = await Store.open(f"sqlite:///{db}")
    erp_token = await create_token(store, Role.ERP, "erp")
    sup_token = await create_token(store, Role.SUPERVISOR, "sup")
    await store.close()
    machine = Machine(cycle_time=0.02, scrap_rate=0.0, state=MachineState.IDLE)
    base = f"http://127.0.0.1:{api_port}"
    service = start_service(config)
    async with ModbusPlc(port=plc_port, machine=machine) as plc, \
            httpx.AsyncClient(base_url=base, timeout=5) as http, \
            ScannerSim(mosquitto.url, "t", "PRESS-01", client_id="term") as terminal:
        try:
            erp_h = {"Authorization": f"Bearer {erp_token}"}
            sup_h = {"Authorization": f"Bearer {sup_token}"}

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await until(ready, 60, "the service")
            r = await http.put("/api/v1/work-orders/K-1", headers=erp_h, json={
                "revision": 1, "material": "M", "quantity": 100_000,
                "operations": [{"op_no": "0010", "work_center": "PRESS-01"}]})
            assert r.status_code == 201, r.text
            await terminal.event("start", "K-1", "0010", msg_id="start-1")

            async def op() -> dict[str, Any]:
                r = await http.get("/api/v1/work-orders/K-1", headers=erp_h)
                return r.json()["operations"][0]  # type: ignore[no-any-return]

            async def running() -> bool:
                try:
                    return (await op())["status"] == "running"
                except httpx.HTTPError:
                    return False

            await until(running, 30, "the operation to run")
            await plc.apply_step({"do": "run"})
            await until(lambda: _gt(len(erp.received.by_id), 15), 60, "pushes under way")
            service.send_signal(signal.SIGKILL)  # in the middle of pushing
            service.wait(timeout=10)
            killed_at = len(erp.received.by_id)
            await asyncio.sleep(1.0)  # the machine goes on counting meanwhile
            service = start_service(config)
            await until(ready, 60, "the restarted service")
            await asyncio.sleep(1.0)
            await plc.apply_step({"do": "idle"})
            made = machine.good

            async def counted() -> bool:
                try:
                    return (await op())["good"] == made
                except httpx.HTTPError:
                    return False

            await until(counted, 60, "every count in WIP")
            assert (await http.post("/api/v1/confirmations/flush", headers=sup_h)).status_code \
                == 200
            feed = (await http.get("/api/v1/confirmations", headers=erp_h,
                                   params={"limit": 1000})).json()
            expected = {c["confirmation_id"] for c in feed["confirmations"]}
            await until(lambda: _eq(set(erp.received.by_id), expected), 60, "all pushed")
        finally:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
                service.wait(timeout=30)
            await erp.close()
    assert killed_at < len(expected)
    assert erp.received.order_violations == []
    assert erp.totals_by_order()["K-1"]["good"] == made
    assert sum(c["yield"] for c in feed["confirmations"]) == made


async def _gt(a: int, b: int) -> bool:
    return a > b


async def _eq(a: object, b: object) -> bool:
    return a == b
