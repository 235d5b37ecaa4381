"""The simulators' command lines (`mes-edge sim ...`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sim", ["modbus", "opcua"])
def test_simulator_command_lines_serve_and_stop(sim: str, tmp_path: Path) -> None:
    port = free_port()
    scenario = tmp_path / "s.yaml"
    scenario.write_text("steps:\n  - {at: 0.2, do: down, for: 0.5}\n  - {at: 1.0, do: run}\n")
    proc = subprocess.Popen([sys.executable, "-m", "mes_edge.cli", "sim", sim, "--port", str(port),
                             "--scenario", str(scenario)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_port(port, timeout=30)
        time.sleep(1.5)  # the scenario plays
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in out, out


#: Options only each simulator has (the generic `mes-edge sim` help has none of them).
SIM_OPTIONS = {
    "modbus": ["--cycle-time", "--counter-type", "--units", "--churn", "--scenario"],
    "opcua": ["--cycle-time", "--security", "--trust", "--user", "--no-subscriptions"],
    "scanner": ["--broker", "--site", "--work-center", "--scanner", "--scan"],
    "erp": ["--mes-url", "--token", "--mode", "--route", "--report-every"],
}


@pytest.mark.parametrize("sim", sorted(SIM_OPTIONS))
def test_simulator_help(sim: str) -> None:
    """`mes-edge sim NAME --help` prints that simulator's own options, with their defaults."""
    res = subprocess.run([sys.executable, "-m", "mes_edge.cli", "sim", sim, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: mes-edge sim {sim} ")
    for option in SIM_OPTIONS[sim]:
        assert option in res.stdout, f"{option} missing from:\n{res.stdout}"
    assert "(default: " in res.stdout
    generic = subprocess.run([sys.executable, "-m", "mes_edge.cli", "sim", "--help"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert generic.returncode == 0 and SIM_OPTIONS[sim][0] not in generic.stdout


@pytest.mark.timeout(120)
def test_erp_simulator_command_line_plays_a_scenario(tmp_path: Path) -> None:
    """`mes-edge sim erp --scenario` releases and holds orders through a running service."""
    import asyncio

    import httpx

    from mes_edge.api.app import create_api
    from mes_edge.app.service import EdgeService
    from mes_edge.config import parse_settings
    from mes_edge.store.tokens import Role, create_token

    async def scenario_run() -> dict[str, str]:
        port = free_port()
        settings = parse_settings({
            "site": "s", "database": {"url": f"sqlite:///{tmp_path / 'mes.db'}"},
            "api": {"port": port}, "work_centers": [{"id": "PRESS-01"}, {"id": "CNC-02"}]})
        service = EdgeService(settings, api_factory=create_api)
        await service.start()
        try:
            assert service.store is not None
            token = await create_token(service.store, Role.ERP, "erp")
            script = tmp_path / "plan.yaml"
            script.write_text("- {at: 0, release: SC-1, quantity: 12, route: [PRESS-01, CNC-02]}\n"
                              "- {at: 0.5, hold: SC-1, reason: material shortage}\n")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mes_edge.cli", "sim", "erp", "--mes-url",
                f"http://127.0.0.1:{port}", "--token", token, "--scenario", str(script),
                "--report-every", "0.5", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            try:
                async with httpx.AsyncClient(timeout=5) as c:
                    for _ in range(100):
                        r = await c.get(f"http://127.0.0.1:{port}/api/v1/work-orders/SC-1",
                                        headers={"Authorization": f"Bearer {token}"})
                        if r.status_code == 200 and r.json()["status"] == "on_hold":
                            return {"status": "on_hold", "reason": r.json()["hold_reason"]}
                        await asyncio.sleep(0.2)
                return {"status": "timeout", "reason": ""}
            finally:
                proc.send_signal(signal.SIGINT)
                await asyncio.wait_for(proc.wait(), 30)
        finally:
            await service.stop()

    result = asyncio.run(scenario_run())
    assert result == {"status": "on_hold", "reason": "material shortage"}
