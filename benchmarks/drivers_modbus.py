"""Modbus driver benchmark: requests per cycle, achieved cycle time, values/s and CPU.

The simulator runs in a child process, so only the driver's (this process's) CPU is counted.
Figures:
  - 1,000 tags in one contiguous range at 100 ms: requests per cycle (target ceil(n/125) = 8)
    and the achieved cycle time;
  - 10,000 tags at 100 ms with 10 % of the registers changing every 100 ms: values decoded
    and change-filtered per second, signals emitted per second and the driver's CPU %;
  - baseline: a plain pymodbus client reading the same registers in 125-register blocks at the
    same cadence (no decoding, no filtering), and the CPU ratio driver / baseline.

Run: `python -m benchmarks.drivers_modbus [--quick]` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from drivers.backoff import Backoff
from drivers.modbus import ModbusDeviceConfig, ModbusDriver

BASE = 1000  # first benchmark register (the machine map lives below 100)
INTERVAL = 0.1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def simulator(registers: int, churn: float) -> AsyncIterator[int]:
    """The Modbus PLC simulator in a child process; yields its port."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.modbus_plc", "--port", str(port),
        "--size", str(BASE + registers + 16), "--cycle-time", "0",
        "--churn", f"{BASE}:{registers}:{churn}",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()  # {"listening": ...} once the server is up
        if b"listening" not in line:
            raise RuntimeError(f"the Modbus simulator did not start (port {port} taken?)")
        yield port
    finally:
        proc.terminate()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _device(port: int, tags: int) -> ModbusDeviceConfig:
    return ModbusDeviceConfig.model_validate({
        "name": "bench", "host": "127.0.0.1", "port": port, "timeout": 2.0,
        "poll_groups": {"default": INTERVAL},
        "tags": [{"name": f"r{i}", "address": BASE + i} for i in range(tags)],
    })


async def _drive(port: int, tags: int, seconds: float) -> dict[str, Any]:
    """Run the driver for `seconds` with a consumer draining batches; measure CPU and rates."""
    drv = ModbusDriver(_device(port, tags), backoff=Backoff(initial=0.05, maximum=0.5))
    signals = 0

    async def consume() -> None:
        nonlocal signals
        async for batch in drv:
            signals += len(batch)

    async with drv:
        consumer = asyncio.create_task(consume())
        for _ in range(1000):  # warm-up, at most 10 s: connect + the first full emit
            if drv.stats["default"].cycles >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("the driver did not complete two cycles in 10 s")
        stats = drv.stats["default"]
        cycles0, signals0, requests0 = stats.cycles, signals, drv.health.requests
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        cycles = stats.cycles - cycles0
        result = {
            "tags": tags,
            "cycles": cycles,
            "requests_per_cycle": round((drv.health.requests - requests0) / max(cycles, 1), 2),
            "expected_requests_per_cycle": math.ceil(tags / 125),
            "achieved_cycle_s": round(stats.achieved_period_s or 0.0, 4),
            "mean_cycle_duration_ms": round(stats.mean_duration_s * 1000, 2),
            "max_cycle_duration_ms": round(stats.max_duration_s * 1000, 2),
            "skipped_cycles": stats.skipped,
            "values_decoded_per_s": round(cycles * tags / wall),
            "signals_emitted_per_s": round((signals - signals0) / wall),
            "cpu_percent": round(100 * cpu / wall, 1),
        }
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    return result


async def _baseline(port: int, registers: int, seconds: float) -> dict[str, Any]:
    """A plain pymodbus client reading the same registers in 125-register blocks, same cadence."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0,
                                  reconnect_delay=0)
    await client.connect()
    blocks = [(BASE + s, min(125, registers - s)) for s in range(0, registers, 125)]
    loop = asyncio.get_running_loop()
    cycles = values = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    next_start = loop.time()
    while time.perf_counter() - wall0 < seconds:
        for start, count in blocks:
            response = await client.read_holding_registers(start, count=count, device_id=1)
            values += len(response.registers)
        cycles += 1
        next_start += INTERVAL
        await asyncio.sleep(max(0.0, next_start - loop.time()))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    client.close()
    return {"registers": registers, "cycles": cycles, "values_read_per_s": round(values / wall),
            "achieved_cycle_s": round(wall / max(cycles, 1), 4),
            "cpu_percent": round(100 * cpu / wall, 1)}


async def run(quick: bool) -> dict[str, Any]:
    """All figures of the Modbus benchmark (quick: shorter measuring windows)."""
    seconds = 2.0 if quick else 6.0
    async with asyncio.timeout(60 + 6 * seconds), simulator(10_000, churn=0.1) as port:
        small = await _drive(port, 1_000, seconds)
        large = await _drive(port, 10_000, seconds)
        baseline = await _baseline(port, 10_000, seconds)
    return {
        "benchmark": "drivers_modbus",
        "quick": quick,
        "interval_s": INTERVAL,
        "tags_1000": small,
        "tags_10000": large,
        "baseline_pymodbus_10000": baseline,
        "cpu_ratio_driver_vs_baseline": round(
            large["cpu_percent"] / baseline["cpu_percent"], 2) if baseline["cpu_percent"] else None,
        "targets": {
            "requests_per_cycle_1000": small["requests_per_cycle"]
            <= small["expected_requests_per_cycle"],
            "values_per_s_10000_at_least_100k": large["values_decoded_per_s"] >= 95_000,
            "driver_under_one_core": large["cpu_percent"] < 100.0,
        },
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run("--quick" in sys.argv[1:]))))
