"""A work-center terminal that keeps reporting (QoS 1) at its own pace, whatever the MES or the
broker is doing: it never waits for an acknowledgement before the next report. paho keeps every
unacknowledged message and sends it again after a reconnect, so each report reaches the broker
at least once; the MES must count it exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.faults.rig import ASSY, SITE, Made, Service, until


class ReportingTerminal:
    """Publishes `report` events for one running operation of ASSY-03 every `period` s."""

    def __init__(self, port: int, order_id: str, *, period: float = 0.05, seed: int = 1,
                 client_id: str = "assy-terminal") -> None:
        self.port, self.order_id, self.period = port, order_id, period
        self.client_id = client_id
        self.made = Made()
        self.sent = 0
        self._rng = random.Random(seed)
        self._mids: list[int] = []
        # PUBACKs seen, by message id (paho's thread adds; a message published while
        # disconnected keeps its id when paho sends it again after the reconnect).
        self._acked: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   clean_session=False)
        self._client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]
        self._client.max_inflight_messages_set(0)  # unlimited: never hold a report back
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish

    async def __aenter__(self) -> ReportingTerminal:
        self._client.connect_async("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        await until(self._connected, 10, "the terminal to connect")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self._client.disconnect()
        await asyncio.wait_for(asyncio.to_thread(self._client.loop_stop), 10)

    async def _connected(self) -> bool:
        return bool(self._client.is_connected())

    def publish(self, body: dict[str, Any], msg_id: str | None = None) -> None:
        """Publish without waiting; the message info is kept to check the broker's PUBACK."""
        body = {**body, "id": msg_id or f"{self.client_id}-{self.sent}",
                "ts": datetime.now(UTC).isoformat()}
        info = self._client.publish(f"mes/{SITE}/{ASSY}/event", json.dumps(body), qos=1)
        self._mids.append(info.mid)
        self.sent += 1

    async def start_operation(self, service: Service, within: float = 30) -> None:
        """Start the operation by a terminal event, sent again under the same id (one effect)
        until the MES shows it running: the first one may precede the MES's subscription."""
        deadline = time.monotonic() + within
        while True:
            self.publish({"type": "start", "order": self.order_id, "operation": "0010"},
                         msg_id=f"{self.client_id}-start-{self.order_id}")
            for _ in range(20):
                if (await service.operation(self.order_id))["status"] == "running":
                    return
                await asyncio.sleep(0.1)
            assert time.monotonic() < deadline, f"{self.order_id} did not start"

    def report_once(self) -> None:
        """One report of 1..3 good and now and then one scrap part."""
        good = self._rng.randint(1, 3)
        scrap = 1 if self._rng.random() < 0.2 else 0
        body: dict[str, Any] = {"type": "report", "order": self.order_id, "operation": "0010",
                                "good": good}
        if scrap:
            body.update(scrap=scrap, reason="dent")
        self.publish(body)
        self.made.add(good, scrap)

    def start(self) -> None:
        """Begin reporting in the background."""
        self._task = asyncio.create_task(self._run(), name="assy-terminal")

    async def _run(self) -> None:
        while True:
            self.report_once()
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        """Stop reporting (what was published is still being delivered)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_publish(self, _c: paho.Client, _ud: Any, mid: int, _r: Any, _p: Any) -> None:
        self._acked.add(mid)  # a set add is atomic under the GIL

    @property
    def unacknowledged(self) -> int:
        """Messages the broker has not acknowledged yet."""
        acked = set(self._acked)
        return sum(1 for mid in self._mids if mid not in acked)

    async def drain(self, within: float = 30) -> None:
        """Wait until the broker acknowledged every report."""
        async def done() -> bool:
            return self.unacknowledged == 0
        await until(done, within, f"the broker to acknowledge {self.unacknowledged} reports")
