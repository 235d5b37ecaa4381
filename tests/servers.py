"""Real servers for the tests, started on free ports on 127.0.0.1: Mosquitto and PostgreSQL.

Binaries come from Debian's packages (tests/run.sh installs them when missing). Each server is
owned by a small class with start/stop so tests can also restart it mid-run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Wait until something accepts TCP connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class MosquittoBroker:
    """A private Mosquitto on a free port with persistence, so a restart keeps sessions."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError(
                "mosquitto not installed: run tests/run.sh (apt-get install mosquitto)"
            )
        self.exe = exe
        self.port = port or free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "log_dest stderr",
        ]
        if _is_root():
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.workdir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_port(self.port)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), which writes the persistence file."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the broker: it saves nothing, what it held only in memory is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    if exe:
        return Path(exe).parent
    raise RuntimeError("PostgreSQL server binaries not installed: run tests/run.sh")


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port (trust auth, fsync on)."""

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="mes-edge-pg-"))
        self.datadir = self.tmp / "data"
        self.sockdir = self.tmp / "sock"
        self.sockdir.mkdir()
        self._as: list[str] = []
        if _is_root():
            # PostgreSQL refuses to run as root: run it as the postgres user Debian creates.
            shutil.chown(self.tmp, "postgres")
            shutil.chown(self.sockdir, "postgres")
            os.chmod(self.tmp, 0o755)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            self._options(),
            "-l",
            str(self.tmp / "pg.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        wait_port(self.port)

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=100 -c shared_buffers=64MB"
        )

    def halt(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m <mode>`, keeping the cluster: clients are cut off, new ones refused."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t",
                  "60", "stop")

    def resume(self) -> None:
        """`pg_ctl start` the cluster `halt` stopped, on the same port."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", self._options(),
                  "-l", str(self.tmp / "pg.log"), "-w", "-t", "60", "start")
        wait_port(self.port)

    def create_database(self, name: str) -> str:
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            name,
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        shutil.rmtree(self.tmp, ignore_errors=True)
