"""Running it for a plant: /readyz says degraded (and why) while a device is down or its loop
restarts; a device loop that crashes is restarted with backoff and loses no count; a second
instance on the same SQLite file and a taken API port each refuse to start in one line."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mes_edge.api import health
from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService, InstanceLock, StartupError
from mes_edge.config import parse_settings
from mes_edge.dispatcher import DispatcherClosed
from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port
from tests.service.plant import (
    PRESS,
    base_plant,
    modbus_plant,
    operation,
    release_order,
    service_of,
    sqlite_path,
    wait_until,
)
from tests.service.process import ROOT, spawn, stop

pytestmark = pytest.mark.timeout(120)


def with_api(doc: dict[str, Any]) -> EdgeService:
    return EdgeService(parse_settings(doc), api_factory=create_api)


async def readyz(port: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"http://127.0.0.1:{port}/readyz")


# ---- /readyz -----------------------------------------------------------------------------------

async def test_readyz_is_degraded_while_a_plc_is_down_and_ready_once_it_answers(
        sqlite_url: str) -> None:
    port = free_port()
    doc = modbus_plant(sqlite_url, port)
    async with with_api(doc) as service:
        api = doc["api"]["port"]
        # Nothing listens on the PLC's port yet.
        await wait_until(lambda: service.health()["press-plc"]["state"] == "disconnected", 15,
                         "the driver to give up its first attempt")
        r = await readyz(api)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "degraded"
        assert body["database"] == "ok" and body["storage"] == "ok"
        assert list(body["problems"]) == ["press-plc"]
        assert f"cannot connect to 127.0.0.1:{port}" in body["problems"]["press-plc"]
        assert body["drivers"]["press-plc"]["loop"]["running"] is True
        machine = Machine(cycle_time=0.05, state=MachineState.IDLE)
        async with ModbusPlc(port=port, machine=machine):
            async def ready() -> bool:
                return (await readyz(api)).status_code == 200

            await wait_until(ready, 30, "/readyz to say ready once the PLC answers")
            body = (await readyz(api)).json()
            assert body["status"] == "ready" and body["problems"] == {}


async def test_readyz_documents_its_status_codes(sqlite_url: str) -> None:
    doc = base_plant(sqlite_url)
    async with with_api(doc) as service:
        assert service.api is not None
        # What the OpenAPI document shows for the route (read from the route itself, so this
        # test does not depend on every other route's schema).
        route = next(r for r in health.router.routes if getattr(r, "path", None) == "/readyz")
        assert {200, 503} <= set(route.responses)  # type: ignore[attr-defined]
        description = route.description  # type: ignore[attr-defined]
        assert "degraded" in description and "HEALTHCHECK" in description
        r = await readyz(doc["api"]["port"])  # no devices, no MQTT: all is well
        assert r.status_code == 200 and r.json()["status"] == "ready"


# ---- a device loop that crashes ----------------------------------------------------------------

async def test_a_crashed_device_loop_restarts_with_backoff_and_loses_no_count(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A real crash: the writer stops under a running pump (DispatcherClosed on its next batch).
    The loop is down (and /readyz says so) until it runs again; the counts the machine made
    meanwhile are recovered from the committed checkpoint, exactly."""
    caplog.set_level(logging.INFO)
    machine = Machine(cycle_time=0.02, scrap_rate=0.0, state=MachineState.IDLE)
    async with ModbusPlc(port=free_port(), machine=machine) as plc:
        doc = modbus_plant(sqlite_url, plc.port)
        api = doc["api"]["port"]
        async with with_api(doc) as service:
            d = service.dispatcher
            assert d is not None
            await wait_until(lambda: ("press-plc", "good_count") in d.checkpoints, 15,
                             "the first reading")
            await release_order(d, "1001", PRESS)
            await plc.apply_step({"do": "run"})
            await wait_until(lambda: operation(d, "1001").done.good > 5, 15, "first counts")

            await d.stop()  # the pump's next batch meets a closed dispatcher
            loop = service.device_loops[0].health
            await wait_until(lambda: loop.crashes >= 1 and not loop.running, 15, "the crash")
            r = await readyz(api)
            assert r.status_code == 503 and r.json()["status"] == "not ready"
            assert "DispatcherClosed" in r.json()["problems"]["press-plc"]
            assert r.json()["drivers"]["press-plc"]["loop"]["running"] is False

            await d.start()  # the writer is back: the loop runs again after its delay
            await wait_until(lambda: loop.running and service.health()["press-plc"]["state"]
                             == "connected", 30, "the device loop to run again")
            await plc.apply_step({"do": "idle"})

            async def ready() -> bool:
                return (await readyz(api)).status_code == 200

            await wait_until(ready, 30, "/readyz to be ready again")
            made = plc.machine.good
            await wait_until(lambda: operation(d, "1001").done.good == made, 15,
                             f"all {made} parts counted")
            await asyncio.sleep(0.3)
            assert operation(d, "1001").done.good == made  # nothing lost, nothing twice
        crashes = [r for r in caplog.records if r.name == "mes_edge.app.pumps"
                   and r.levelno == logging.ERROR]
        assert len(crashes) == loop.crashes >= 1  # one line per crash
        assert crashes[0].getMessage().startswith(
            "device loop press-plc crashed (DispatcherClosed: the dispatcher is stopped); "
            "restarting in ")
        assert isinstance(crashes[0].exc_info[1] if crashes[0].exc_info else None,
                          DispatcherClosed)


# ---- one instance per SQLite file; the port checked first --------------------------------------

async def test_a_second_instance_on_the_same_sqlite_file_refuses_to_start(
        sqlite_url: str) -> None:
    first = service_of(base_plant(sqlite_url))
    await first.start()
    try:
        assert InstanceLock.held(sqlite_url)
        second = service_of(base_plant(sqlite_url))
        with pytest.raises(StartupError, match=r"^another mes-edge instance \(pid \d+\) is "
                           r"running on .*mes\.db; stop it first"):
            await second.start()
        assert second.store is None  # it stopped before touching the database
    finally:
        await first.stop()
    assert not InstanceLock.held(sqlite_url)
    async with service_of(base_plant(sqlite_url)):  # free again once the first stopped
        pass


async def test_instances_on_one_postgresql_database_are_allowed(postgres_url: str) -> None:
    async with service_of(base_plant(postgres_url)), service_of(base_plant(postgres_url)):
        assert not InstanceLock.held(postgres_url)


def run_cli(config: Path, within: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mes_edge.cli", "run", "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=within, check=False)


async def test_cli_second_instance_and_taken_port_fail_in_one_line(
        tmp_path: Path, sqlite_url: str) -> None:
    doc = base_plant(sqlite_url)
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    log = tmp_path / "first.log"
    proc = spawn(config, log)
    try:
        async def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return (await readyz(doc["api"]["port"])).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(up, 60, "the first instance")
        other = tmp_path / "other.yaml"  # another port, the same database
        other.write_text(yaml.safe_dump({**doc, "api": {"host": "127.0.0.1",
                                                        "port": free_port()}}), encoding="utf-8")
        second = await asyncio.to_thread(run_cli, other)
        assert second.returncode == 1
        assert second.stdout == ""
        lines = second.stderr.splitlines()
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith("mes-edge: another mes-edge instance (pid ")
        assert str(sqlite_path(sqlite_url)) in lines[0]
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]

    # A taken API port: said in one line, before migrations or drivers ran.
    fresh = tmp_path / "fresh.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = tmp_path / "busy.yaml"
        busy.write_text(yaml.safe_dump(base_plant(
            f"sqlite:///{fresh}", api={"host": "127.0.0.1", "port": port})), encoding="utf-8")
        result = await asyncio.to_thread(run_cli, busy)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mes-edge: cannot listen on 127.0.0.1:{port}: the port is already in use (another "
        "mes-edge or another program); stop it or set api.port"], result.stderr
    assert not fresh.exists()  # no migration ran


async def test_service_start_fails_with_startup_error_on_a_taken_port(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        doc = base_plant(sqlite_url, api={"host": "127.0.0.1", "port": taken.getsockname()[1]})
        service = with_api(doc)
        with pytest.raises(StartupError, match="the port is already in use"):
            await service.start()
    assert service.store is None and not InstanceLock.held(sqlite_url)
