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


@pytest.mark.parametrize("sim", ["modbus", "opcua", "scanner", "erp"])
def test_simulator_help(sim: str) -> None:
    res = subprocess.run([sys.executable, "-m", "mes_edge.cli", "sim", sim, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and "--" in res.stdout
