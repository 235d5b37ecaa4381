"""OPC UA benchmark: notifications/s for 1,000 monitored items, our driver vs a bare asyncua client.

The simulator runs in a separate process (its CPU does not compete with the client's event loop)
and rewrites its 1,000 Bench variables as fast as it can. Both clients subscribe to all of them
with the same publishing/sampling intervals; each is measured over the same window after a
warm-up. Client CPU per notification (process time / notifications) is reported too, because the
asyncua server, not the client, usually sets the ceiling.

    python -m benchmarks.drivers_opcua [--quick]    # prints one JSON line
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import sys
import time
from typing import Any

from asyncua import Client, ua

from drivers.opcua import OpcUaDeviceConfig, OpcUaDriver

ITEMS = 1000
PUBLISHING_INTERVAL_MS = 50.0
#: Server-side queue per monitored item, the same for both clients. With 1 the server conflates
#: changes between publishes and caps every publish at 1,000 notifications; a deeper queue lets
#: the client's throughput, not the conflation, show.
QUEUE_SIZE = 10
#: The simulator rewrites all 1,000 variables this often (seconds): 20,000 changes/s offered.
WRITE_INTERVAL = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_server(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.opcua_plc", "--port", str(port), "--cycle-time", "0",
        "--extra-variables", str(ITEMS), "--extra-interval", str(WRITE_INTERVAL),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    if not line.startswith(b"READY"):
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc


#: The simulator process of the current measurement (for its CPU figures).
_SERVER_PID = [0]


def _node_ids() -> list[str]:
    return [f"ns=2;s=Bench.V{i:04d}" for i in range(ITEMS)]


class _Counter:
    """asyncua SubHandler that only counts (the cheapest possible user code)."""

    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.count += 1


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc; 0.0 where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


async def _measure(read_count: Any, warmup: float, window: float) -> dict[str, float]:
    await asyncio.sleep(warmup)
    pid = _SERVER_PID[0]
    c0, cpu0, t0, s0 = read_count(), time.process_time(), time.perf_counter(), _process_cpu(pid)
    await asyncio.sleep(window)
    c1, cpu1, t1, s1 = read_count(), time.process_time(), time.perf_counter(), _process_cpu(pid)
    n = c1 - c0
    return {"notifications_per_s": round(n / (t1 - t0)),
            "client_cpu_us_per_notification": round((cpu1 - cpu0) / n * 1e6, 2) if n else -1.0,
            "client_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 2),
            "server_cpu_share": round((s1 - s0) / (t1 - t0), 2)}


async def _bare_asyncua(endpoint: str, warmup: float, window: float) -> dict[str, float]:
    counter = _Counter()
    async with Client(endpoint, timeout=10) as client:
        sub = await client.create_subscription(PUBLISHING_INTERVAL_MS, counter)
        await sub.subscribe_data_change([client.get_node(n) for n in _node_ids()],
                                        queuesize=QUEUE_SIZE, sampling_interval=ua.Double(0.0))
        result = await _measure(lambda: counter.count, warmup, window)
        with contextlib.suppress(Exception):
            await sub.delete()
    return result


async def _our_driver(endpoint: str, warmup: float, window: float) -> dict[str, Any]:
    cfg = OpcUaDeviceConfig.model_validate({
        "name": "bench", "endpoint": endpoint, "timeout": 10, "connect_timeout": 30,
        "subscription": {"publishing_interval_ms": PUBLISHING_INTERVAL_MS,
                         "sampling_interval_ms": 0, "queue_size": QUEUE_SIZE},
        "tags": [{"name": f"v{i}", "node": n} for i, n in enumerate(_node_ids())]})
    count = 0
    batches = 0
    drv = OpcUaDriver(cfg)
    async with drv:
        async def consume() -> None:
            nonlocal count, batches
            async for batch in drv:
                count += len(batch)
                batches += 1

        consumer = asyncio.create_task(consume())
        try:
            b0 = batches
            result: dict[str, Any] = await _measure(lambda: count, warmup, window)
            result["mean_batch"] = round(result["notifications_per_s"] * window
                                         / max(1, batches - b0), 1)
            result["polled_tags"] = len(drv.polled_tags)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return result


async def _on_fresh_server(client: Any, warmup: float, window: float) -> dict[str, Any]:
    """Run one client against its own simulator process, so no earlier session weighs on it."""
    port = _free_port()
    proc = await _start_server(port)
    _SERVER_PID[0] = proc.pid
    try:
        result: dict[str, Any] = await client(f"opc.tcp://127.0.0.1:{port}/", warmup, window)
        return result
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)


async def run(quick: bool) -> dict[str, Any]:
    """Measure both clients (alternating, each on a fresh simulator); medians and their ratio."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    warmup, window, rounds = (1.0, 3.0, 1) if quick else (2.0, 8.0, 3)
    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for _ in range(rounds):
        ours.append(await _on_fresh_server(_our_driver, warmup, window))
        bare.append(await _on_fresh_server(_bare_asyncua, warmup, window))

    def median(rows: list[dict[str, Any]], key: str) -> Any:
        return statistics.median(r[key] for r in rows)

    driver_rate = median(ours, "notifications_per_s")
    bare_rate = median(bare, "notifications_per_s")
    return {
        "benchmark": "drivers_opcua",
        "monitored_items": ITEMS,
        "publishing_interval_ms": PUBLISHING_INTERVAL_MS,
        "queue_size": QUEUE_SIZE,
        "window_s": window,
        "rounds": rounds,
        "driver_notifications_per_s": driver_rate,
        "driver_client_cpu_us_per_notification": median(ours, "client_cpu_us_per_notification"),
        "driver_mean_batch": median(ours, "mean_batch"),
        "driver_polled_tags": max(r["polled_tags"] for r in ours),
        "asyncua_notifications_per_s": bare_rate,
        "asyncua_client_cpu_us_per_notification": median(bare, "client_cpu_us_per_notification"),
        "ratio_driver_vs_asyncua": round(driver_rate / max(1, bare_rate), 3),
        # Share of one core used during the window: a server near 1.0 is what sets the pace.
        "driver_run_server_cpu_share": median(ours, "server_cpu_share"),
        "driver_run_client_cpu_share": median(ours, "client_cpu_share"),
        "asyncua_run_server_cpu_share": median(bare, "server_cpu_share"),
        "asyncua_run_client_cpu_share": median(bare, "client_cpu_share"),
        "target_notifications_per_s": 10_000,
        "meets_target": driver_rate >= 10_000,
        "asyncua_version": _asyncua_version(),
    }


def _asyncua_version() -> str:
    from importlib.metadata import version

    return version("asyncua")


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(quick="--quick" in sys.argv))))
