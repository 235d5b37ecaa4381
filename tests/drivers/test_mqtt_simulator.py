"""The scanner simulator's command line plays a scenario the driver understands."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from drivers.mqtt import MqttConfig, MqttInboundDriver, ReceivedEvent, ReceivedScan, RejectedMessage
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS
from simulators.scanner import main
from tests.servers import MosquittoBroker


async def test_scenario_file_from_the_command_line(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    scenario = tmp_path / "shift.json"
    scenario.write_text(json.dumps([
        {"scan": "ORD-1001"},
        {"event": "start", "order": "1001", "operation": "0010", "operator": "OP-7"},
        {"sleep": 0.05},
        {"event": "report", "order": "1001", "operation": "0010", "good": 5, "scrap": 1,
         "reason": "burr", "work_center": "LATHE-02"},
        {"raw": "{oops", "kind": "event"},
    ]))
    cfg = MqttConfig(url=mosquitto.url, client_id=f"edge-{uuid.uuid4().hex[:8]}")
    async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        argv = ["--broker", mosquitto.url, "--site", "plant1", "--work-center", "PRESS-01",
                "--scenario", str(scenario)]
        async with asyncio.timeout(15):
            assert await asyncio.to_thread(main, argv) == 0
            items = [await anext(driver) for _ in range(4)]
        scan, start, report, bad = items
        assert isinstance(scan, ReceivedScan) and scan.message.code == "ORD-1001"
        assert isinstance(start, ReceivedEvent) and start.message.operator == "OP-7"
        assert isinstance(report, ReceivedEvent)
        assert (report.message.work_center, report.message.good) == ("LATHE-02", 5)
        assert isinstance(bad, RejectedMessage) and bad.kind == "event"
        assert len({scan.message.id, start.message.id, report.message.id}) == 3  # unique ids
        for item in items:
            await item.ack()
