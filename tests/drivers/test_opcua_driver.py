"""OpcUaDriver against the real asyncua PLC simulator: subscribe, poll, reconnect, watchdog."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from drivers import ConnectionState, Quality, Signal
from drivers.opcua import OpcUaDeviceConfig, OpcUaDriver
from simulators.opcua_plc import OpcUaPlc
from tests.servers import free_port, wait_port

pytestmark = pytest.mark.timeout(60)

FAST = {"publishing_interval_ms": 50, "sampling_interval_ms": 0}


def device(endpoint: str, tags: list[dict[str, Any]], **extra: Any) -> OpcUaDeviceConfig:
    """A device config with short timings so tests stay quick."""
    base: dict[str, Any] = {
        "name": "plc1", "endpoint": endpoint, "timeout": 2.0, "connect_timeout": 5.0,
        "watchdog_interval": 1.0, "watchdog_timeout": 1.0, "reconnect_initial": 0.2,
        "reconnect_max": 1.0, "poll_interval": 0.2, "subscription": FAST, "tags": tags,
    }
    base.update(extra)
    return OpcUaDeviceConfig.model_validate(base)


async def wait_for_signal(drv: OpcUaDriver, seen: dict[str, Signal],
                          done: Callable[[dict[str, Signal]], bool], within: float = 5.0) -> None:
    """Read batches into `seen` (latest per tag) until `done(seen)` holds."""
    async with asyncio.timeout(within):
        while not done(seen):
            batch = await anext(aiter(drv))
            assert batch, "batches are never empty"
            for sig in batch:
                seen[sig.tag] = sig


async def wait_state(drv: OpcUaDriver, state: ConnectionState, within: float) -> float:
    """Wait until the driver's health shows `state`; return how long it took."""
    t0 = time.monotonic()
    async with asyncio.timeout(within):
        while drv.health.state != state:  # noqa: ASYNC110 - health has no event to wait on
            await asyncio.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
async def plc() -> AsyncIterator[OpcUaPlc]:
    async with OpcUaPlc(port=free_port(), simulate=False, unmonitorable=["CycleTime"]) as sim:
        yield sim


# ---- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"tags": [{"name": "a", "node": "Machine.GoodCount"}]}, "neither a node id"),
    ({"tags": [{"name": "a", "node": "ns=x;s=Good"}]}, "invalid node id"),
    ({"tags": [{"name": "a", "node": "ns=2;i=1"}, {"name": "a", "node": "i=2"}]}, "duplicate"),
    ({"endpoint": "http://plc:4840"}, "opc.tcp://"),
    ({"security": {"policy": "Basic256Sha256"}}, "needs 'certificate'"),
    ({"security": {"policy": "None", "mode": "Sign"}}, "needs policy Basic256Sha256"),
    ({"security": {"policy": "Basic128"}}, "Basic256Sha256"),
    ({"subscription": {"deadband_type": "percent", "deadband_value": 150}}, "between 0 and 100"),
    ({"watchdog_interval": 8, "watchdog_timeout": 5}, "within 10 s"),
    ({"tags": [{"name": "a", "node": "ns=2;i=1", "mode": "sometimes"}]}, "subscribe"),
    ({"colour": "red"}, "Extra inputs"),
])
def test_bad_config_is_a_clear_error(change: dict[str, Any], message: str) -> None:
    raw: dict[str, Any] = {"name": "plc1", "endpoint": "opc.tcp://127.0.0.1:4840",
                           "tags": [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}]}
    raw.update(change)
    with pytest.raises(ValidationError, match=message):
        OpcUaDeviceConfig.model_validate(raw)


def test_node_forms_are_recognised() -> None:
    cfg = device("opc.tcp://127.0.0.1:1", [
        {"name": "s", "node": "ns=2;s=Machine.GoodCount"},
        {"name": "i", "node": "ns=2;i=1001"},
        {"name": "p", "node": "0:Objects/2:Machine/2:GoodCount"},
    ])
    assert [t.is_browse_path for t in cfg.tags] == [False, False, True]
    path = [q.to_string() for q in cfg.tags[2].browse_path]
    assert path == ["0:Objects", "2:Machine", "2:GoodCount"]
    assert "password" not in repr(device("opc.tcp://h:1", [{"name": "i", "node": "i=1"}],
                                         username="u", password="secret"))


# ---- subscriptions and polling ---------------------------------------------------------------


async def test_subscription_delivers_values_for_every_node_form(plc: OpcUaPlc) -> None:
    cfg = device(plc.endpoint, [
        {"name": "good", "node": "ns=2;s=Machine.GoodCount"},
        {"name": "state", "node": "ns=2;i=1001"},
        {"name": "scrap", "node": "0:Objects/2:Machine/2:ScrapCount"},
        {"name": "missing", "node": "0:Objects/2:Machine/2:NoSuchThing"},
    ])
    seen: dict[str, Signal] = {}
    async with OpcUaDriver(cfg) as drv:
        await wait_for_signal(drv, seen, lambda s: {"good", "state", "scrap", "missing"} <= set(s))
        assert (seen["good"].value, seen["state"].value, seen["scrap"].value) == (0, 1, 0)
        missing = seen["missing"]
        assert missing.quality is Quality.BAD and "BadNoMatch" in (missing.error or "")
        assert drv.polled_tags == set(), "all existing nodes are subscribed"

        await plc.set_counter("GoodCount", 1043)
        await plc.set_state(3)
        await plc.set_counter("ScrapCount", 2)
        await wait_for_signal(drv, seen, lambda s: (s["good"].value, s["state"].value,
                                                   s["scrap"].value) == (1043, 3, 2))
        good = seen["good"]
        assert (good.device, good.quality) == ("plc1", Quality.GOOD)
        assert good.source_ts is not None and good.source_ts.tzinfo is not None
        assert abs((good.received_ts - good.source_ts).total_seconds()) < 5
        assert drv.health.state == ConnectionState.CONNECTED


async def test_polling_fallback_for_refused_items_and_poll_mode(plc: OpcUaPlc) -> None:
    cfg = device(plc.endpoint, [
        {"name": "good", "node": "ns=2;s=Machine.GoodCount"},
        {"name": "cycle", "node": "ns=2;s=Machine.CycleTime"},  # the server refuses to monitor it
        {"name": "state", "node": "ns=2;i=1001", "mode": "poll", "poll_interval": 0.1},
    ])
    seen: dict[str, Signal] = {}
    async with OpcUaDriver(cfg) as drv:
        await wait_for_signal(drv, seen, lambda s: {"good", "cycle", "state"} <= set(s))
        assert drv.polled_tags == {"cycle", "state"}
        await plc.set_value("CycleTime", 2.5)
        await plc.set_state(4)
        await wait_for_signal(drv, seen, lambda s: (s["cycle"].value, s["state"].value) == (2.5, 4))
        assert seen["cycle"].quality is Quality.GOOD and seen["cycle"].source_ts is not None


async def test_server_without_subscriptions_is_polled() -> None:
    async with OpcUaPlc(port=free_port(), simulate=False, subscriptions=False) as sim:
        cfg = device(sim.endpoint, [{"name": "good", "node": "ns=2;s=Machine.GoodCount"},
                                    {"name": "state", "node": "0:Objects/2:Machine/2:State"}])
        seen: dict[str, Signal] = {}
        async with OpcUaDriver(cfg) as drv:
            await wait_for_signal(drv, seen, lambda s: {"good", "state"} <= set(s))
            assert drv.polled_tags == {"good", "state"}
            await sim.set_counter("GoodCount", 12)
            await wait_for_signal(drv, seen, lambda s: s["good"].value == 12)


async def test_counter_rollover_values_come_through() -> None:
    async with OpcUaPlc(port=free_port(), simulate=False, counter_type="UInt16") as sim:
        cfg = device(sim.endpoint, [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}])
        seen: dict[str, Signal] = {}
        async with OpcUaDriver(cfg) as drv:
            await sim.set_counter("GoodCount", 65535)
            await wait_for_signal(drv, seen, lambda s: s.get("good") is not None
                                  and s["good"].value == 65535)
            await sim.set_counter("GoodCount", 65536)  # wraps to 0 like the PLC's UInt16
            await wait_for_signal(drv, seen, lambda s: s["good"].value == 0)


async def test_slow_consumer_gets_backpressure_not_a_reconnect(plc: OpcUaPlc) -> None:
    sub = {**FAST, "keepalive_count": 5, "lifetime_count": 100}  # stale after 3 s of silence
    cfg = device(plc.endpoint, [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}],
                 subscription=sub, queue_size=1)
    seen: dict[str, Signal] = {}
    async with OpcUaDriver(cfg) as drv:
        await wait_for_signal(drv, seen, lambda s: "good" in s)
        for value in range(1, 41):  # 4 s of changes nobody reads: the queue stays full
            await plc.set_counter("GoodCount", value)
            await asyncio.sleep(0.1)
        await wait_for_signal(drv, seen, lambda s: s["good"].value == 40)
        assert drv.health.state == ConnectionState.CONNECTED
        assert drv.health.reconnects == 0 and drv.health.errors == 0


# ---- link loss -------------------------------------------------------------------------------


async def test_server_restart_mid_subscription_resumes_without_driver_restart(
    plc: OpcUaPlc, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = device(plc.endpoint, [{"name": "good", "node": "ns=2;s=Machine.GoodCount"},
                                {"name": "cycle", "node": "ns=2;s=Machine.CycleTime"}])
    seen: dict[str, Signal] = {}
    async with OpcUaDriver(cfg) as drv:
        await wait_for_signal(drv, seen, lambda s: {"good", "cycle"} <= set(s))
        await plc.set_counter("GoodCount", 5)
        await wait_for_signal(drv, seen, lambda s: s["good"].value == 5)

        t0 = time.monotonic()
        await plc.stop_server()
        await wait_state(drv, ConnectionState.DISCONNECTED, within=10)
        assert time.monotonic() - t0 < 10
        await plc.set_counter("GoodCount", 9)  # counted while the link was down
        await plc.set_value("CycleTime", 3.0)
        await asyncio.sleep(1.5)  # several failed reconnects: logged once, not per retry
        await plc.start_server()

        await wait_state(drv, ConnectionState.CONNECTED, within=10)
        await wait_for_signal(drv, seen, lambda s: (s["good"].value, s["cycle"].value) == (9, 3.0))
        await plc.set_counter("GoodCount", 10)
        await wait_for_signal(drv, seen, lambda s: s["good"].value == 10)
        assert drv.health.reconnects == 1 and drv.health.last_error
        assert drv.health.rtt_ms is None or drv.health.rtt_ms > 0
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("drivers.")]
    assert sum("link lost" in m for m in messages) == 1
    assert sum("link recovered" in m for m in messages) == 1
    assert not [m for m in messages if "cannot connect" in m]


async def test_subscription_lost_on_a_live_session_is_recreated(plc: OpcUaPlc) -> None:
    sub = {**FAST, "keepalive_count": 5, "lifetime_count": 15}  # keep-alive every 0.25 s
    cfg = device(plc.endpoint, [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}],
                 subscription=sub)
    seen: dict[str, Signal] = {}
    async with OpcUaDriver(cfg) as drv:
        await wait_for_signal(drv, seen, lambda s: "good" in s)
        session = drv._session  # the live session, broken on purpose below
        assert session is not None and session.subscription_id is not None
        # The server forgets the subscription; the session itself stays healthy.
        await session.client.uaclient.delete_subscriptions([session.subscription_id])
        await wait_state(drv, ConnectionState.DISCONNECTED, within=10)
        assert "subscription stale" in (drv.health.last_error or "")
        await wait_state(drv, ConnectionState.CONNECTED, within=10)
        await plc.set_counter("GoodCount", 3)
        await wait_for_signal(drv, seen, lambda s: s["good"].value == 3)


async def test_hung_server_is_detected_by_the_watchdog_within_10_s() -> None:
    """A frozen PLC keeps its TCP connection open; only the watchdog can notice."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.opcua_plc", "--port", str(port), "--cycle-time", "0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_port, port, 20.0)
        cfg = device(f"opc.tcp://127.0.0.1:{port}/",
                     [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}])
        seen: dict[str, Signal] = {}
        async with OpcUaDriver(cfg) as drv:
            await wait_for_signal(drv, seen, lambda s: "good" in s, within=10)
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                took = await wait_state(drv, ConnectionState.DISCONNECTED, within=10)
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            # Bound: watchdog_interval + watchdog_timeout (2 s here; 5 s with the defaults).
            assert took < 3.5, took
            assert "watchdog" in (drv.health.last_error or "")
            await wait_state(drv, ConnectionState.CONNECTED, within=10)
            seen.clear()
            await wait_for_signal(drv, seen, lambda s: "good" in s, within=5)
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


async def test_driver_starts_while_server_is_down_and_close_is_prompt() -> None:
    port = free_port()
    cfg = device(f"opc.tcp://127.0.0.1:{port}/", [{"name": "good", "node": "ns=2;i=1001"}])
    drv = OpcUaDriver(cfg)
    await drv.start()
    await wait_state(drv, ConnectionState.DISCONNECTED, within=5)
    async with OpcUaPlc(port=port, simulate=False):
        await wait_state(drv, ConnectionState.CONNECTED, within=5)
        t0 = time.monotonic()
        await drv.close()
        assert time.monotonic() - t0 < 15  # close does not wait out timeouts
    assert drv.health.state == ConnectionState.CLOSED
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, leftovers
