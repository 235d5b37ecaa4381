"""The image's behaviour that needs no Docker engine: what the ENTRYPOINT does with and without
a mounted plant file, the HEALTHCHECK probing the configured port, the example plant of
compose.yaml, and a database password with @ / : % reaching a real PostgreSQL unquoted."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mes_edge.store.engine import create_engine
from tests.servers import PostgresServer, free_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "p@ss/w:rd%40?#x y"  # everything that breaks a URL built by string formatting


def _instructions() -> dict[str, str]:
    """The Dockerfile's instructions (continuation lines joined), last one of each kind."""
    out: dict[str, str] = {}
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out[word] = (out.get(word, "") + " " + rest).strip() if word == "ENV" else rest
    return out


def _env() -> dict[str, str]:
    pairs = _instructions()["ENV"].split()
    return dict(p.split("=", 1) for p in pairs)


def _entrypoint(tmp_path: Path, args: list[str] | None = None,
                **env: str) -> subprocess.CompletedProcess[str]:
    """Run the ENTRYPOINT with the CMD (or args) under /bin/sh, with `mes-edge` recording its
    arguments instead of starting a service (what is exec'ed is the thing under test)."""
    entrypoint = json.loads(_instructions()["ENTRYPOINT"])
    cmd = args if args is not None else json.loads(_instructions()["CMD"])
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    recorder = bindir / "mes-edge"
    recorder.write_text('#!/bin/sh\necho "exec: mes-edge $*"\n')
    recorder.chmod(0o755)
    environ = {"PATH": f"{bindir}:/usr/bin:/bin", **_env(), **env}
    return subprocess.run([*entrypoint, *cmd], env=environ, capture_output=True, text=True,
                          timeout=30)


def test_image_has_no_plant_of_its_own() -> None:
    text_ = (ROOT / "Dockerfile").read_text()
    assert "cp config/demo.yaml" not in text_  # the demo plant is never the default plant
    assert _env()["MES_EDGE_PLANT"] == "/etc/mes-edge/plant.yaml"
    assert json.loads(_instructions()["CMD"]) == ["run"]


def test_without_a_mounted_plant_the_container_refuses_in_one_line(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, MES_EDGE_PLANT=str(tmp_path / "absent.yaml"))
    assert result.returncode == 64
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mes-edge: no plant file at {tmp_path / 'absent.yaml'}")
    assert "MES_EDGE_DEMO=1" in line


def test_the_demo_plant_runs_only_when_asked(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, MES_EDGE_PLANT=str(tmp_path / "absent.yaml"),
                         MES_EDGE_DEMO="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exec: mes-edge run --config /opt/mes-edge/config/demo.yaml"
    assert "DEMO plant" in result.stderr
    # The image ships the demo plant where the flag looks for it.
    assert _env()["MES_EDGE_DEMO_PLANT"] == "/opt/mes-edge/config/demo.yaml"
    assert "COPY config ./config" in (ROOT / "Dockerfile").read_text()


def test_a_mounted_plant_is_run_and_wins_over_the_demo_flag(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("site: x\n")
    result = _entrypoint(tmp_path, MES_EDGE_PLANT=str(plant), MES_EDGE_DEMO="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exec: mes-edge run --config {plant}"
    assert result.stderr == ""


def test_other_commands_pass_through(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, ["token", "list", "--config", "/etc/mes-edge/plant.yaml"],
                         MES_EDGE_PLANT=str(tmp_path / "absent.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exec: mes-edge token list --config /etc/mes-edge/plant.yaml"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _healthcheck(port: int) -> int:
    healthcheck = _instructions()["HEALTHCHECK"]
    probe = json.loads(healthcheck[healthcheck.index("CMD ") + 4:])
    assert probe[0] == "python"
    environ = {**os.environ, "MES_EDGE_API__PORT": str(port)}
    return subprocess.run([sys.executable, *probe[1:]], env=environ, capture_output=True,
                          timeout=30).returncode


def test_healthcheck_follows_the_configured_port(health_server: int) -> None:
    assert _env()["MES_EDGE_API__PORT"] == "8000"  # the image's default, EXPOSEd
    assert _healthcheck(health_server) == 0
    assert _healthcheck(free_port()) != 0  # nothing listens there: unhealthy


def test_compose_example_plant_checks_clean() -> None:
    exe = shutil.which("mes-edge", path=Path(sys.executable).parent) or shutil.which("mes-edge")
    assert exe, "the project is installed (tests/run.sh)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_EDGE_")}
    result = subprocess.run([exe, "check-config", str(ROOT / "config" / "plant.yaml")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK - site 'line-a'" in result.stdout
    assert "database postgresql+asyncpg" in result.stdout


class PasswordPostgres(PostgresServer):
    """A PostgreSQL cluster that really checks passwords (scram-sha-256), unlike the fixtures'."""

    def start(self) -> None:
        pwfile = self.tmp / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                  "-A", "scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", self._options(),
                  "-l", str(self.tmp / "pg.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[PasswordPostgres]:
    server = PasswordPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _select_one(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("select 1"))).scalar_one())
    finally:
        await engine.dispose()


def test_database_password_with_url_characters_comes_from_the_environment(
    password_postgres: PasswordPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    # compose.yaml's form: the URL names the user only, PGPASSWORD carries the password as is.
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{password_postgres.port}/postgres"
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert asyncio.run(asyncio.wait_for(_select_one(url), 30)) == 1
    # The server does check it: a wrong password is refused.
    monkeypatch.setenv("PGPASSWORD", PASSWORD + "-wrong")
    with pytest.raises((DBAPIError, OSError)) as err:
        asyncio.run(asyncio.wait_for(_select_one(url), 30))
    assert "password authentication failed" in str(err.value)
