"""`mes-edge demo`: the virtual factory reconciles exactly, also across a SIGKILL of the service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import MosquittoBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[1]


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mes_edge.cli", "demo", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port()), *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def check_reconciliation(out: str) -> None:
    assert "everything matches exactly" in out, out[-4000:]
    table = out.split("reconciliation (what the line produced")[1]
    for wc in ("PRESS-01", "CNC-02", "ASSY-03"):
        row = next(line for line in table.splitlines() if line.startswith(wc))
        produced_good, erp_good = int(row.split()[1]), int(row.split()[2])
        assert row.endswith("match") and produced_good == erp_good
        assert produced_good > 0, f"{wc} produced nothing: {row}"


def test_demo_runs_and_reconciles_exactly(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--duration", "30")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-4000:]
    assert "token erp" in out and "open http://127.0.0.1:" in out
    check_reconciliation(out)


def test_demo_survives_sigkill_of_the_service(tmp_path: Path) -> None:
    # Mosquitto keeps unacknowledged QoS 1 messages of a killed client for its next session;
    # the built-in demo broker (amqtt) does not redeliver them, so this test uses Mosquitto.
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        proc = demo(tmp_path, "--duration", "40", "--service", "subprocess",
                    "--mqtt-url", broker.url)
        pid_file = tmp_path / "data" / "service.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        time.sleep(15)  # in the middle of production
        victim = int(pid_file.read_text())
        os.kill(victim, signal.SIGKILL)
        out, _ = proc.communicate(timeout=240)
    finally:
        broker.stop()
    assert proc.returncode == 0, out[-4000:]
    assert "restarting it on the same data" in out
    check_reconciliation(out)


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = demo(tmp_path)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    seen = ""
    while "is running" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen[-2000:]
        seen += proc.stdout.readline()
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, (seen + out)[-3000:]
    assert "mes-edge stopped" in out and "Traceback" not in seen + out
