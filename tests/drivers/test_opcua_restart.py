"""An OPC UA server restart is logged once as lost and once as recovered: no ERROR, no traceback.

Against the asyncua simulator on 127.0.0.1, restarted on the same port: plainly (listener and
connections dropped) and gracefully (sessions closed first, so a pending publish request is
answered BadSessionClosed / BadSessionNotActivated before the socket goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from drivers import ConnectionState
from drivers.opcua import OpcUaDeviceConfig, OpcUaDriver
from simulators.opcua_plc import OpcUaPlc
from tests.servers import free_port
from tests.service.plant import wait_until

pytestmark = pytest.mark.timeout(90)


def device(endpoint: str) -> OpcUaDeviceConfig:
    return OpcUaDeviceConfig.model_validate({
        "name": "plc1", "endpoint": endpoint, "timeout": 2.0, "connect_timeout": 5.0,
        "watchdog_interval": 1.0, "watchdog_timeout": 1.0, "reconnect_initial": 0.2,
        "reconnect_max": 1.0,
        "subscription": {"publishing_interval_ms": 100, "sampling_interval_ms": 50},
        "tags": [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}]})


@contextlib.asynccontextmanager
async def consumed(drv: OpcUaDriver) -> AsyncIterator[list[int]]:
    """Drains the driver in the background; yields the list of GoodCount values seen."""

    seen: list[int] = []

    async def drain() -> None:
        async for batch in drv:
            seen.extend(s.value for s in batch if s.tag == "good" and s.value is not None)

    task = asyncio.create_task(drain())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def restart_gracefully(sim: OpcUaPlc) -> None:
    """A PLC shutting down in order: its sessions end first, then the listener."""
    server = sim._server
    assert server is not None
    for session in list(getattr(server.iserver, "_external_sessions", {}).values()):
        await session.close_session(True)
    await sim.restart_server(downtime=1.0)


def check_log(caplog: pytest.LogCaptureFixture) -> None:
    ours = [r.getMessage() for r in caplog.records if r.name == "drivers.OpcUaDriver"]
    assert ours[0] == "plc1: connected", ours
    assert len([m for m in ours if m.startswith("plc1: link lost: ")]) == 1, ours
    assert ours.count("plc1: link recovered") == 1, ours
    assert len(ours) == 3, ours
    # The client side (our driver, asyncua's client) logs no ERROR and no traceback; the
    # simulator runs in this process too, and its server-side lines are not the client's.
    noisy = [f"{r.name}: {r.getMessage()}" for r in caplog.records
             if (r.name.startswith(("asyncua.client", "drivers")))
             and (r.levelno >= logging.ERROR or r.exc_info)]
    assert noisy == []


@pytest.mark.parametrize("restart", ["plain", "graceful"])
async def test_server_restart_logs_lost_once_and_recovered_once(
        restart: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with OpcUaPlc(port=free_port(), cycle_time=0.1) as sim:
        async with OpcUaDriver(device(sim.endpoint)) as drv, consumed(drv) as seen:
            await wait_until(lambda: len(seen) >= 2, 15, "counts before the restart")
            if restart == "plain":
                await sim.restart_server(downtime=1.0)
            else:
                await restart_gracefully(sim)
            await wait_until(lambda: drv.health.reconnects == 1
                             and drv.health.state == ConnectionState.CONNECTED, 30,
                             "the driver to reconnect")
            before = len(seen)
            await wait_until(lambda: len(seen) >= before + 2, 15, "counts after the restart")
            # Several publish intervals and watchdog rounds on the new session: still quiet.
            await wait_until(lambda: drv.health.requests >= 6, 15, "watchdog rounds")
            check_log(caplog)
