"""MQTT inbound benchmark: publish-to-yield and publish-to-ack latency at a fixed offered rate.

A separate process publishes contract scans (QoS 1) at 1,000 msg/s to a private Mosquitto on a
free port (or the broker given); MqttInboundDriver yields them and the consumer acks each one,
after awaiting `on_message(item)` when given (the lead hooks a commit in there to measure
publish-to-commit). Latency uses the system-wide monotonic clock, so the publisher process
stamps the id with its send time.

    python -m benchmarks.drivers_mqtt [--quick] [--broker mqtt://host:port]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from drivers.mqtt import MqttConfig, MqttInboundDriver, ReceivedScan
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS

RATE = 1000  # offered messages per second

# The publisher process: paho, QoS 1, one message every 1/rate s on an absolute schedule.
_PUBLISHER = """
import json, sys, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
host, topic = sys.argv[1], sys.argv[3]
port, rate, count = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub-" + str(time.monotonic_ns()))
c.max_inflight_messages_set(0)
c.connect(host, port)
c.loop_start()
time.sleep(0.2)
start = time.monotonic()
for i in range(count):
    due = start + i / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    body = {"id": f"{i}:{time.monotonic_ns()}", "code": f"BENCH-{i}", "scanner": "SC-B",
            "ts": "2026-01-01T00:00:00+00:00"}
    c.publish(topic, json.dumps(body), qos=1)
time.sleep(0.5)
c.disconnect()
c.loop_stop()
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _private_mosquitto() -> Iterator[str]:
    """A throwaway Mosquitto on a free port; yields its URL."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        "max_queued_messages 100000\n")
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                             timeout=0.5):
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"mosquitto did not start on port {port}")
                time.sleep(0.05)
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 3)


async def _measure(url: str, seconds: float,
                   on_message: Callable[[Any], Awaitable[None]] | None) -> dict[str, Any]:
    count = int(RATE * seconds)
    cfg = MqttConfig(url=url, client_id=f"bench-edge-{uuid.uuid4().hex[:8]}")
    to_yield: list[float] = []
    to_ack: list[float] = []
    rejected = 0
    async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(10):
            await driver.wait_ready()
        pub = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PUBLISHER, cfg.host, str(cfg.port), "mes/bench/WC-1/scan",
            str(RATE), str(count))
        first = last = 0.0
        try:
            async with asyncio.timeout(seconds + 30):
                while len(to_yield) + rejected < count:
                    item = await anext(driver)
                    got = time.monotonic_ns()
                    if not isinstance(item, ReceivedScan):
                        rejected += 1
                        await item.ack()
                        continue
                    sent = int(item.message.id.split(":")[1])
                    to_yield.append((got - sent) / 1e6)
                    if on_message is not None:
                        await on_message(item)
                    await item.ack()
                    done = time.monotonic_ns()
                    to_ack.append((done - sent) / 1e6)
                    first = first or sent / 1e9
                    last = done / 1e9
        finally:
            async with asyncio.timeout(10):
                await pub.wait()
        stats = driver.health_dict()
    yield_ms, ack_ms = sorted(to_yield), sorted(to_ack)
    return {
        "benchmark": "drivers_mqtt",
        "offered_rate": RATE,
        "messages": count,
        "received": len(to_yield),
        "rejected": rejected,
        "msgs_per_s": round(len(to_yield) / (last - first), 1) if last > first else None,
        "yield_p50_ms": _percentile(yield_ms, 0.50),
        "yield_p99_ms": _percentile(yield_ms, 0.99),
        "yield_max_ms": _percentile(yield_ms, 1.0),
        "ack_p50_ms": _percentile(ack_ms, 0.50),
        "ack_p99_ms": _percentile(ack_ms, 0.99),
        "ack_max_ms": _percentile(ack_ms, 1.0),
        "with_on_message": on_message is not None,
        "backpressure_waits": stats["backpressure_waits"],
        "target_p99_ms": 20.0,
    }


async def run(quick: bool, on_message: Callable[[Any], Awaitable[None]] | None = None,
              broker_url: str | None = None) -> dict[str, Any]:
    """Publish at 1,000 msg/s for 2 s (quick) or 5 s and report latency percentiles."""
    seconds = 2.0 if quick else 5.0
    if broker_url is not None:
        return await _measure(broker_url, seconds, on_message)
    with _private_mosquitto() as url:
        return await _measure(url, seconds, on_message)


def main(argv: list[str] | None = None) -> None:
    """Print the result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--broker", help="use this broker instead of a private Mosquitto")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.quick, broker_url=args.broker))))


if __name__ == "__main__":
    main()
