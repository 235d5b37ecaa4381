"""Barcode scanner / work-center terminal simulator: publishes scans and operator events on MQTT.

Talks MQTT only (paho), per the contract in README's External contracts:
`mes/<site>/<work_center>/scan` and `mes/<site>/<work_center>/event`, QoS 1, unique ids.

    async with ScannerSim("mqtt://127.0.0.1:1883", "plant1", "PRESS-01") as sim:
        await sim.scan("ORD-1001")
        await sim.event("start", "1001", "0010", operator="OP-7")

Command line:
    python -m simulators.scanner --broker mqtt://127.0.0.1:1883 --site plant1 \
        --work-center PRESS-01 --scenario scenario.json      (or .yaml; or --scan CODE ...)

A scenario is a list of steps: {"scan": "CODE"}, {"event": "start", "order": ..., "operation":
...}, {"raw": "not json", "kind": "scan"} (bad input on purpose), {"sleep": 0.5}; any step may
carry "work_center" to speak for another terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

EVENT_TYPES = ("start", "pause", "resume", "complete", "report", "downtime_reason")


class ScannerSim:
    """One simulated scanner/terminal of a work center, publishing with QoS 1."""

    def __init__(self, broker_url: str, site: str, work_center: str, *, scanner: str = "SC-1",
                 client_id: str | None = None, qos: int = 1, timeout: float = 10.0) -> None:
        parts = urlsplit(broker_url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker url must be mqtt://host:port, not {broker_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.tls = parts.scheme == "mqtts"
        self.site = site
        self.work_center = work_center
        self.scanner = scanner
        self.qos = qos
        self.timeout = timeout
        self.client_id = client_id or f"sim-{work_center}-{uuid.uuid4().hex[:8]}"
        self.sent = 0
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        # mid -> future; mids confirmed before anyone waited go to _early (paho's thread can
        # see the PUBACK before publish() returned to us).
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (in paho's thread) and wait for the CONNACK, bounded by `timeout`."""
        self._loop = asyncio.get_running_loop()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.reconnect_delay_set(0.2, 2)  # type: ignore[arg-type]
        client.max_inflight_messages_set(0)
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        self._client = client
        async with asyncio.timeout(self.timeout):
            await self._connected.wait()

    async def close(self) -> None:
        """Disconnect and stop paho's thread."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            async with asyncio.timeout(self.timeout):
                await asyncio.to_thread(client.loop_stop)

    async def __aenter__(self) -> ScannerSim:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # ---- publishing ------------------------------------------------------------------------

    def topic(self, kind: str, work_center: str | None = None) -> str:
        """The contract topic of `kind` ("scan" or "event") for this or another work center."""
        return f"mes/{self.site}/{work_center or self.work_center}/{kind}"

    async def publish_raw(self, topic: str, payload: bytes | str, *, qos: int | None = None,
                          wait: bool = True) -> None:
        """Publish any bytes on any topic (for bad-input tests); waits for the PUBACK."""
        if self._client is None or self._loop is None:
            raise RuntimeError("ScannerSim is not connected")
        info = self._client.publish(topic, payload, qos=self.qos if qos is None else qos)
        self.sent += 1
        if not wait or (self.qos if qos is None else qos) == 0:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                return
            self._waiting[info.mid] = future
        async with asyncio.timeout(self.timeout):
            await future

    async def scan(self, code: str, *, msg_id: str | None = None,
                   work_center: str | None = None, wait: bool = True) -> str:
        """Publish a scan; returns its id."""
        msg_id = msg_id or uuid.uuid4().hex
        body = {"id": msg_id, "code": code, "scanner": self.scanner, "ts": _now()}
        await self.publish_raw(self.topic("scan", work_center), json.dumps(body), wait=wait)
        return msg_id

    async def event(self, type: str, order: str | None = None, operation: str | None = None,
                    *, good: int | None = None, scrap: int | None = None,
                    reason: str | None = None, operator: str | None = None,
                    msg_id: str | None = None, work_center: str | None = None,
                    wait: bool = True) -> str:
        """Publish an operator event (start, pause, resume, complete, report, downtime_reason)."""
        msg_id = msg_id or uuid.uuid4().hex
        body: dict[str, Any] = {"id": msg_id, "type": type, "ts": _now()}
        for key, value in (("order", order), ("operation", operation), ("good", good),
                           ("scrap", scrap), ("reason", reason), ("operator", operator)):
            if value is not None:
                body[key] = value
        await self.publish_raw(self.topic("event", work_center), json.dumps(body), wait=wait)
        return msg_id

    async def run_scenario(self, steps: Sequence[dict[str, Any]]) -> list[str]:
        """Play scenario steps in order; returns the ids of the scans and events sent."""
        ids: list[str] = []
        for number, step in enumerate(steps, 1):
            step = dict(step)
            wc = step.pop("work_center", None)
            if "sleep" in step:
                await asyncio.sleep(float(step["sleep"]))
            elif "scan" in step:
                ids.append(await self.scan(str(step["scan"]), work_center=wc))
            elif "event" in step:
                kind = step.pop("event")
                if kind not in EVENT_TYPES:
                    raise ValueError(f"step {number}: unknown event type {kind!r}")
                ids.append(await self.event(kind, work_center=wc, **step))
            elif "raw" in step:
                await self.publish_raw(self.topic(step.get("kind", "scan"), wc), step["raw"])
            else:
                raise ValueError(f"step {number}: expected scan, event, raw or sleep: {step}")
        return ids

    # ---- paho's network thread -------------------------------------------------------------

    def _on_connect(self, _c: paho.Client, _ud: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure and self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(self, _c: paho.Client, _ud: Any, _f: Any, _r: Any, _p: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._connected.clear)

    def _on_publish(self, _c: paho.Client, _ud: Any, mid: int, _r: Any, _p: Any) -> None:
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._early.add(mid)
                return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def load_scenario(path: Path) -> list[dict[str, Any]]:
    """Steps from a JSON file (a list) or, for .yaml/.yml, a YAML file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        steps = yaml.safe_load(text)
    else:
        steps = json.loads(text)
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError(f"{path}: a scenario is a list of step objects")
    return steps


async def _amain(args: argparse.Namespace) -> int:
    steps: list[dict[str, Any]] = []
    if args.scenario:
        steps.extend(load_scenario(Path(args.scenario)))
    steps.extend({"scan": code} for code in args.scan or [])
    async with ScannerSim(args.broker, args.site, args.work_center, scanner=args.scanner) as sim:
        ids = await sim.run_scenario(steps)
    print(json.dumps({"sent": len(ids), "ids": ids}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: publish a scenario and/or scans, then exit."""
    parser = argparse.ArgumentParser(prog="mes-edge sim scanner",
                                     description="MQTT scanner/terminal simulator",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="MQTT broker URL")
    parser.add_argument("--site", required=True, help="the <site> level of the topics")
    parser.add_argument("--work-center", required=True,
                        help="the <work_center> level of the topics")
    parser.add_argument("--scanner", default="SC-1", help="scanner id sent with each scan")
    parser.add_argument("--scenario", help="JSON or YAML file with a list of steps")
    parser.add_argument("--scan", action="append", help="a code to scan (repeatable)")
    args = parser.parse_args(argv)
    if not args.scenario and not args.scan:
        parser.error("give --scenario FILE and/or --scan CODE")
    return asyncio.run(_amain(args))


if __name__ == "__main__":
    sys.exit(main())
