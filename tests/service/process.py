"""`mes-edge run` as a child process, for the tests that kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `python -m mes_edge.cli run --config FILE`, its output appended to `log`."""
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "mes_edge.cli", "run", "--config",
                                 str(config)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown code runs, whatever was not committed is lost from memory."""
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Graceful stop (SIGTERM), escalating to SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
