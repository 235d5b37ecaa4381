"""THE key promise: the service SIGKILLed between receiving an MQTT event and committing it
counts that event exactly once after a restart (README, Reliability).

No test hook in production code: the service runs as a subprocess on a SQLite file, and this
test holds that file's write lock (BEGIN IMMEDIATE) so the service's commit of the event blocks
in SQLite's busy wait. The event is then received but not committed, and therefore not acked to
the broker. After SIGKILL and a restart under the same client id, Mosquitto redelivers it from
the persistent session and the dispatcher commits it once; the same message id sent again later
is a duplicate.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from simulators.scanner import ScannerSim
from tests.servers import MosquittoBroker
from tests.service.plant import (
    ASSY,
    SITE,
    base_plant,
    mqtt_section,
    release_order,
    service_of,
    sqlite_path,
    sqlite_query,
    wait_until,
)
from tests.service.process import kill, spawn, stop

pytestmark = pytest.mark.timeout(120)
CLIENT_ID = "edge-kill-test"


async def mqtt_health(base_url: str) -> dict[str, Any] | None:
    """The inbound MQTT driver's health from /readyz (None while the service is not up)."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            r = await client.get(f"{base_url}/readyz")
    except httpx.HTTPError:
        return None
    # 503 too: while the test holds the SQLite write lock the storage is down (not ready),
    # and the driver's health is still in the answer.
    if r.status_code not in (200, 503) or "drivers" not in r.json():
        return None
    health: dict[str, Any] = r.json()["drivers"][f"mqtt-in:{CLIENT_ID}"]
    return health


def good(url: str) -> int:
    return int(sqlite_query(url, "SELECT good FROM operations WHERE order_id='4001'")[0][0])


def committed_copies(url: str, msg_id: str) -> int:
    return int(sqlite_query(url, "SELECT count(*) FROM events WHERE event_id=?",
                            f"event:{ASSY}:{msg_id}")[0][0])


async def test_kill_between_receive_and_commit_counts_the_event_exactly_once(
        tmp_path: Path, sqlite_url: str, mosquitto: MosquittoBroker) -> None:
    # The order exists and its operation runs before the service under test starts.
    async with service_of(base_plant(sqlite_url)) as setup:
        assert setup.dispatcher is not None
        await release_order(setup.dispatcher, "4001", ASSY, qty=100)
    doc = base_plant(sqlite_url, mqtt=mqtt_section(mosquitto.url, CLIENT_ID))
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    base_url = f"http://127.0.0.1:{doc['api']['port']}"
    log = tmp_path / "service.log"

    async def received() -> int:
        health = await mqtt_health(base_url)
        return -1 if health is None else int(health["received"])

    proc = spawn(config, log)
    lock: sqlite3.Connection | None = None
    try:
        async with ScannerSim(mosquitto.url, SITE, ASSY, client_id="term-kill") as term:
            await wait_until(lambda: _connected(base_url, proc), 30,
                             "the service to be up and connected to the broker")
            # A first report proves the whole path works before we interfere. Sent again until
            # it lands (the first session's subscription may not be in place yet): one id, so
            # it counts once however often it is sent.
            for _ in range(20):
                await term.event("report", "4001", "0010", good=1, msg_id="warm-up")
                if await _within(lambda: good(sqlite_url) == 1, 1.0):
                    break
            assert good(sqlite_url) == 1

            # Hold the write lock: the service can receive but not commit.
            lock = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None, timeout=10)
            lock.execute("BEGIN IMMEDIATE")
            seen = await received()
            await term.event("report", "4001", "0010", good=5, msg_id="kill-me")
            await wait_until(_more(received, seen), 10, "the service to receive the event")
            await asyncio.sleep(0.5)  # it is now in the dispatcher, waiting for the lock
            assert lock.execute("SELECT good FROM operations WHERE order_id='4001'").fetchall() \
                == [(1,)]
            kill(proc)
            lock.rollback()
            lock.close()
            lock = None
            assert good(sqlite_url) == 1 and committed_copies(sqlite_url, "kill-me") == 0

            # Restart on the same file under the same client id: the broker redelivers.
            proc = spawn(config, log)
            await wait_until(lambda: good(sqlite_url) == 6, 30,
                             "the redelivered event to be committed")
            await asyncio.sleep(1.0)
            assert good(sqlite_url) == 6
            assert committed_copies(sqlite_url, "kill-me") == 1

            # The terminal sends the same message again: a duplicate, counted never again.
            await term.event("report", "4001", "0010", good=5, msg_id="kill-me")
            await term.event("report", "4001", "0010", good=1)  # a marker after it
            await wait_until(lambda: good(sqlite_url) == 7, 15, "the marker report")
            assert committed_copies(sqlite_url, "kill-me") == 1
    finally:
        if lock is not None:
            lock.close()
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]


async def _connected(base_url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the service exited"
    health = await mqtt_health(base_url)
    return health is not None and health["state"] == "connected"


async def _within(check: Any, seconds: float) -> bool:
    try:
        await wait_until(check, seconds, "")
    except AssertionError:
        return False
    return True


def _more(probe: Any, than: int) -> Any:
    async def check() -> bool:
        return bool(await probe() > than)
    return check
