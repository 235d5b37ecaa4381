"""All driver benchmarks in one run, plus MQTT publish-to-COMMITTED latency through the service.

    python -m benchmarks.drivers [--quick]

Runs benchmarks.drivers_modbus, drivers_opcua and drivers_mqtt (each a driver on its own), then
starts a real EdgeService (SQLite file in a temporary directory, a private Mosquitto, one
operator-counted work center with a running order) and has a separate process publish operator
`report` events (QoS 1) at 1,000 msg/s. A dispatcher listener stamps each event when its group
commit is done; the publisher stamped the send time into the message id (the monotonic clock is
system-wide on Linux), so publish -> committed latency is measured per event.

Prints a readable summary, then as the LAST line one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import drivers_modbus, drivers_mqtt, drivers_opcua
from mes_edge.config import parse_settings
from mes_edge.dispatcher import CommittedBatch, Status
from mes_edge.domain import (
    OperationAction,
    OperationCommand,
    OperationSpec,
    OrderReceived,
    OrderSpec,
    QuantityReported,
)

RATE = 1000  # offered operator reports per second
WORK_CENTER = "ASSY-03"
ORDER = "BENCH-1"

# The publisher process: paho, QoS 1, one report every 1/rate s on an absolute schedule; the id
# carries the send time. A separate process, so publishing does not share the service's loop.
_PUBLISHER = """
import json, sys, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
host, port, topic, rate, count, order = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                                         int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-term-" + str(time.monotonic_ns()))
c.max_inflight_messages_set(0)
c.connect(host, port)
c.loop_start()
time.sleep(0.2)
start = time.monotonic()
for i in range(count):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    body = {"id": f"{i}:{time.monotonic_ns()}", "type": "report", "order": order,
            "operation": "0010", "good": 1}
    c.publish(topic, json.dumps(body), qos=1)
time.sleep(0.5)
c.disconnect()
c.loop_stop()
"""


def _plant(db_url: str, mqtt_url: str) -> dict[str, Any]:
    return {
        "site": "bench",
        "database": {"url": db_url},
        "mqtt": {"url": mqtt_url, "client_id": "bench-edge", "site": "bench"},
        "production": {"tolerance_pct": 0, "max_quantity_per_event": 10},
        "work_centers": [{"id": WORK_CENTER, "counting": "operator"}],
    }


async def _prepare(dispatcher: Any, quantity: int) -> None:
    """A released order with one operation on the work center, started."""
    spec = OrderSpec(order_id=ORDER, revision=1, material="BENCH", quantity=quantity,
                     operations=(OperationSpec(op_no="0010", work_center=WORK_CENTER),))
    for event in (OrderReceived(event_id="bench-order", spec=spec, source="bench"),
                  OperationCommand(event_id="bench-start", work_center=WORK_CENTER,
                                   action=OperationAction.START, order_id=ORDER, op_no="0010",
                                   source="bench")):
        outcome = await dispatcher.process(event)
        if outcome.status != Status.ACCEPTED:
            raise RuntimeError(f"benchmark set-up refused: {outcome}")


async def publish_to_commit(quick: bool) -> dict[str, Any]:
    """Publish reports at RATE to a running service; latency until each one is committed."""
    from mes_edge.app.service import EdgeService  # heavy import: only when measuring

    seconds = 3.0 if quick else 10.0
    count = int(RATE * seconds)
    latencies_ms: list[float] = []
    first_sent = last_commit = 0
    all_committed = asyncio.Event()

    def on_commit(batch: CommittedBatch) -> None:
        nonlocal first_sent, last_commit
        now = time.monotonic_ns()
        for _, event in batch.events:
            if isinstance(event, QuantityReported) and event.event_id.startswith("event:"):
                sent = int(event.event_id.rsplit(":", 1)[1])
                first_sent = first_sent or sent
                latencies_ms.append((now - sent) / 1e6)
                last_commit = now
        if len(latencies_ms) >= count:
            all_committed.set()

    with drivers_mqtt._private_mosquitto() as mqtt_url, \
            tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'mes.db'}"
        service = EdgeService(parse_settings(_plant(db_url, mqtt_url)), serve_api=False)
        await service.start()
        try:
            assert service.dispatcher is not None and service.mqtt_in is not None
            async with asyncio.timeout(10):
                await service.mqtt_in.wait_ready()
            await _prepare(service.dispatcher, quantity=10 * count)
            unsubscribe = service.dispatcher.subscribe(on_commit)
            stats0 = (service.dispatcher.stats.batches, service.dispatcher.stats.accepted)
            host, port = mqtt_url.removeprefix("mqtt://").split(":")
            pub = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _PUBLISHER, host, port, f"mes/bench/{WORK_CENTER}/event",
                str(RATE), str(count), ORDER)
            try:
                async with asyncio.timeout(seconds + 60):
                    await all_committed.wait()
            finally:
                async with asyncio.timeout(15):
                    await pub.wait()
                unsubscribe()
            batches = service.dispatcher.stats.batches - stats0[0]
            accepted = service.dispatcher.stats.accepted - stats0[1]
            order = service.dispatcher.state.order(ORDER)
            op = order.op("0010") if order else None
            good = op.done.good if op else -1
        finally:
            await service.stop()
    ordered = sorted(latencies_ms)
    wall = (last_commit - first_sent) / 1e9
    return {
        "benchmark": "mqtt_publish_to_commit",
        "offered_rate": RATE,
        "events": count,
        "committed": len(latencies_ms),
        "accepted": accepted,
        "operation_good": good,
        "exact": good == count == accepted,
        "events_per_s": round(len(latencies_ms) / wall, 1) if wall > 0 else None,
        "commit_p50_ms": drivers_mqtt._percentile(ordered, 0.50),
        "commit_p99_ms": drivers_mqtt._percentile(ordered, 0.99),
        "commit_max_ms": drivers_mqtt._percentile(ordered, 1.0),
        "group_commits": batches,
        "mean_events_per_commit": round(len(latencies_ms) / max(1, batches), 1),
    }


def _summary(modbus: dict[str, Any], opcua: dict[str, Any], mqtt: dict[str, Any],
             edge: dict[str, Any]) -> str:
    small, large = modbus["tags_1000"], modbus["tags_10000"]
    base = modbus["baseline_pymodbus_10000"]
    return "\n".join([
        "Modbus TCP (driver + pymodbus simulator in a child process, 100 ms poll):",
        f"  1,000 tags:  {small['requests_per_cycle']} requests/cycle "
        f"(ideal {small['expected_requests_per_cycle']}), achieved cycle "
        f"{small['achieved_cycle_s'] * 1000:.1f} ms, mean cycle work "
        f"{small['mean_cycle_duration_ms']} ms",
        f"  10,000 tags: {large['values_decoded_per_s']:,} values/s decoded, "
        f"{large['signals_emitted_per_s']:,} changes/s emitted, driver CPU "
        f"{large['cpu_percent']}% (bare pymodbus reading the same: {base['cpu_percent']}%)",
        "OPC UA (1,000 monitored items, asyncua simulator in a child process):",
        f"  driver {opcua['driver_notifications_per_s']:,} notifications/s, bare asyncua "
        f"{opcua['asyncua_notifications_per_s']:,}/s, ratio {opcua['ratio_driver_vs_asyncua']}",
        f"MQTT inbound driver alone ({mqtt['offered_rate']} msg/s): "
        f"{mqtt['msgs_per_s']} msg/s, publish->yield p50 {mqtt['yield_p50_ms']} ms "
        f"p99 {mqtt['yield_p99_ms']} ms",
        f"MQTT through the service ({edge['offered_rate']} reports/s, SQLite, Mosquitto): "
        f"{edge['events_per_s']} events/s committed, publish->COMMITTED p50 "
        f"{edge['commit_p50_ms']} ms p99 {edge['commit_p99_ms']} ms max "
        f"{edge['commit_max_ms']} ms, {edge['mean_events_per_commit']} events per group commit, "
        f"exact: {edge['exact']}",
    ])


async def run(quick: bool) -> dict[str, Any]:
    """Every driver figure; the headline figures under `headline`."""
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    modbus = await drivers_modbus.run(quick)
    opcua = await drivers_opcua.run(quick)
    mqtt = await drivers_mqtt.run(quick)
    edge = await publish_to_commit(quick)
    small, large = modbus["tags_1000"], modbus["tags_10000"]
    headline = {
        "quick": quick,
        "modbus_1000_tags_requests_per_cycle": small["requests_per_cycle"],
        "modbus_1000_tags_achieved_cycle_ms": round(small["achieved_cycle_s"] * 1000, 1),
        "modbus_10000_tags_values_per_s": large["values_decoded_per_s"],
        "modbus_10000_tags_driver_cpu_percent": large["cpu_percent"],
        "opcua_1000_items_notifications_per_s": opcua["driver_notifications_per_s"],
        "opcua_bare_asyncua_notifications_per_s": opcua["asyncua_notifications_per_s"],
        "opcua_ratio_driver_vs_asyncua": opcua["ratio_driver_vs_asyncua"],
        "mqtt_offered_msgs_per_s": edge["offered_rate"],
        "mqtt_publish_to_commit_events_per_s": edge["events_per_s"],
        "mqtt_publish_to_commit_p50_ms": edge["commit_p50_ms"],
        "mqtt_publish_to_commit_p99_ms": edge["commit_p99_ms"],
        "mqtt_publish_to_commit_exact": edge["exact"],
        "seconds": round(time.monotonic() - started, 1),
    }
    return {"modbus": modbus, "opcua": opcua, "mqtt_inbound": mqtt, "mqtt_edge": edge,
            "summary": _summary(modbus, opcua, mqtt, edge), "headline": headline}


def main(argv: list[str] | None = None) -> None:
    """Print the summary and, as the last line, the headline figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (under a minute)")
    parser.add_argument("--full", action="store_true", help="also print every figure as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.quick))
    print(result["summary"])
    if args.full:
        print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=1))
    print(json.dumps(result["headline"]), flush=True)


if __name__ == "__main__":
    main()
