"""The fault suite's rig: a real `mes-edge run` process with its plant file, tokens and HTTP
client, and the reconciliation of what the line made against what the ERP gets.

The service always runs as a child process (so it can be SIGKILLed for real); simulators run in
the test's event loop as real protocol servers and keep their own pace whatever the MES does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from mes_edge.store import Store
from mes_edge.store.tokens import Role, create_token
from tests.servers import free_port
from tests.service.process import kill, spawn, stop

SITE = "faults"
PRESS, CNC, ASSY = "PRESS-01", "CNC-02", "ASSY-03"


def plant(db_url: str, *, mqtt_url: str | None = None,
          devices: list[dict[str, Any]] | None = None, rules: list[dict[str, Any]] | None = None,
          **extra: Any) -> dict[str, Any]:
    """PRESS-01 and CNC-02 counted by machines, ASSY-03 by its terminal; big orders, a
    confirmation every 20 machine units, every operator report confirmed at once."""
    doc: dict[str, Any] = {
        "site": SITE,
        "database": {"url": db_url},
        "api": {"host": "127.0.0.1", "port": free_port()},
        "production": {"tolerance_pct": 0,
                       "confirmation": {"on_report": True, "on_complete": True,
                                        "every_units": 20},
                       "scrap_reasons": [{"code": "dent"}, {"code": "machine"}]},
        "work_centers": [{"id": PRESS, "counting": "machine"},
                         {"id": CNC, "counting": "machine"},
                         {"id": ASSY, "counting": "operator"}],
        "devices": devices or [],
        "rules": rules or [],
    }
    if mqtt_url is not None:
        doc["mqtt"] = {"url": mqtt_url, "client_id": "faults-edge", "site": SITE,
                       "reconnect_min_delay": 0.1, "reconnect_max_delay": 1.0}
    doc.update(extra)
    return doc


def modbus_press(port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device and the rule of PRESS-01: good and scrap counters of a Modbus PLC (50 ms)."""
    device = {"name": "press-plc", "driver": "modbus", "host": "127.0.0.1", "port": port,
              "timeout": 0.5, "poll_groups": {"fast": 0.05},
              "tags": [{"name": "state", "address": 0, "poll_group": "fast"},
                       {"name": "good_count", "address": 10, "data_type": "uint32",
                        "poll_group": "fast"},
                       {"name": "scrap_count", "address": 14, "data_type": "uint32",
                        "poll_group": "fast"}]}
    rule = {"work_center": PRESS,
            "counters": [{"device": "press-plc", "tag": "good_count", "bits": 32,
                          "on_reset": "count"},
                         {"device": "press-plc", "tag": "scrap_count", "bits": 32,
                          "counts": "scrap", "scrap_reason": "machine", "on_reset": "count"}],
            "state": {"device": "press-plc", "tag": "state"}}
    return device, rule


def opcua_cnc(endpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device and the rule of CNC-02: the GoodCount of an OPC UA PLC (subscription)."""
    device = {"name": "cnc-plc", "driver": "opcua", "endpoint": endpoint, "timeout": 2,
              "connect_timeout": 5, "watchdog_interval": 0.5, "watchdog_timeout": 1.0,
              "reconnect_initial": 0.2, "reconnect_max": 1.0,
              "subscription": {"publishing_interval_ms": 50, "sampling_interval_ms": 0},
              "tags": [{"name": "good_count", "node": "ns=2;s=Machine.GoodCount"},
                       {"name": "state", "node": "0:Objects/2:Machine/2:State"}]}
    rule = {"work_center": CNC,
            "counters": [{"device": "cnc-plc", "tag": "good_count", "bits": 32,
                          "on_reset": "count"}],
            "state": {"device": "cnc-plc", "tag": "state"}}
    return device, rule


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str,
                every: float = 0.1) -> None:
    """Await `check` until it is true; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(every)


async def eventually(check: Callable[[], Awaitable[bool]], within: float,
                     every: float = 0.5) -> bool:
    """Await `check` until it is true or `within` seconds passed; whether it became true."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


class Service:
    """`mes-edge run` as a child process, with an ERP and a supervisor token."""

    def __init__(self, workdir: Path, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.workdir = workdir
        self.config = workdir / "plant.yaml"
        self.config.write_text(yaml.safe_dump(doc), encoding="utf-8")
        self.log = workdir / "service.log"
        self.url = f"http://127.0.0.1:{doc['api']['port']}"
        self.proc: Any = None
        self.kills = 0
        self.http = httpx.AsyncClient(base_url=self.url, timeout=10)
        self.erp: dict[str, str] = {}
        self.sup: dict[str, str] = {}

    async def __aenter__(self) -> Service:
        store = await Store.open(self.doc["database"]["url"])  # also migrates the schema
        try:
            self.erp = {"Authorization": f"Bearer {await create_token(store, Role.ERP, 'erp')}"}
            self.sup = {"Authorization":
                        f"Bearer {await create_token(store, Role.SUPERVISOR, 'sup')}"}
        finally:
            await store.close()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            await asyncio.to_thread(stop, self.proc)
        await self.http.aclose()

    async def start(self, within: float = 60) -> None:
        """Spawn the service and wait until /readyz answers 200."""
        self.proc = spawn(self.config, self.log)
        await until(self.ready, within, "the service to be ready")

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        await asyncio.to_thread(kill, self.proc)
        self.proc = None
        self.kills += 1

    async def stop(self) -> int:
        """Graceful stop; the exit code."""
        proc, self.proc = self.proc, None
        await asyncio.to_thread(stop, proc)
        return int(proc.returncode)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the service's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    async def ready(self) -> bool:
        try:
            return (await self.http.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def mqtt_connected(self) -> bool:
        """The service's inbound MQTT client is connected to the broker."""
        try:
            drivers = (await self.http.get("/readyz")).json().get("drivers", {})
        except (httpx.HTTPError, ValueError):
            return False
        return any(name.startswith("mqtt-in") and d.get("state") == "connected"
                   for name, d in drivers.items())

    async def put_order(self, order_id: str, work_center: str, qty: int = 1_000_000) -> None:
        """The ERP releases a one-operation order (0010 on `work_center`)."""
        r = await self.http.put(f"/api/v1/work-orders/{order_id}", headers=self.erp, json={
            "revision": 1, "material": "M-1", "quantity": qty,
            "operations": [{"op_no": "0010", "work_center": work_center}]})
        assert r.status_code in (200, 201), r.text

    async def station(self, work_center: str, action: str, order_id: str | None = None,
                      op_no: str = "0010") -> httpx.Response:
        """A supervisor's start / pause / resume / complete on a station."""
        body = {"order_id": order_id, "op_no": op_no} if order_id else None
        return await self.http.post(f"/api/v1/stations/{work_center}/{action}", json=body,
                                    headers=self.sup)

    async def operation(self, order_id: str, op_no: str = "0010") -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/work-orders/{order_id}", headers=self.erp)
        r.raise_for_status()
        return next(o for o in r.json()["operations"] if o["op_no"] == op_no)  # type: ignore[no-any-return]

    async def flush(self) -> None:
        r = await self.http.post("/api/v1/confirmations/flush", headers=self.sup)
        assert r.status_code == 200, r.text

    async def feed(self) -> list[dict[str, Any]]:
        """The whole confirmation feed, page by page, as the ERP reads it."""
        out: list[dict[str, Any]] = []
        cursor = 0
        for _ in range(10_000):
            r = await self.http.get("/api/v1/confirmations", headers=self.erp,
                                    params={"after": cursor, "limit": 500})
            r.raise_for_status()
            page = r.json()
            out.extend(page["confirmations"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return out
        raise AssertionError("the feed never ended")

    async def unassigned(self) -> dict[str, dict[str, Any]] | None:
        """GET /production/unassigned by work center; None while the endpoint does not exist."""
        r = await self.http.get("/api/v1/production/unassigned", headers=self.sup)
        if r.status_code == 404 and r.json().get("detail") == "Not Found":
            return None
        r.raise_for_status()
        return {w["work_center"]: w for w in r.json()["work_centers"]}

    async def rejected(self) -> list[dict[str, Any]]:
        """The rejected events (newest first), whichever envelope the list comes in."""
        r = await self.http.get("/api/v1/rejected-events", headers=self.sup,
                                params={"limit": 1000})
        r.raise_for_status()
        body = r.json()
        if isinstance(body, dict):
            body = next(v for v in body.values() if isinstance(v, list))
        return body  # type: ignore[no-any-return]


@dataclass
class Made:
    """What one work center really produced (PLC counters, or accepted terminal reports)."""

    good: int = 0
    scrap: int = 0

    def add(self, good: int, scrap: int = 0) -> None:
        self.good += good
        self.scrap += scrap


@dataclass
class Row:
    """The reconciliation of one work center."""

    work_center: str
    made: Made
    erp: Made = field(default_factory=Made)
    open: Made = field(default_factory=Made)
    written_off: Made = field(default_factory=Made)

    @property
    def accounted(self) -> Made:
        return Made(self.erp.good + self.open.good + self.written_off.good,
                    self.erp.scrap + self.open.scrap + self.written_off.scrap)

    @property
    def lost(self) -> int:
        a = self.accounted
        return max(0, self.made.good - a.good) + max(0, self.made.scrap - a.scrap)

    @property
    def doubled(self) -> int:
        a = self.accounted
        return max(0, a.good - self.made.good) + max(0, a.scrap - self.made.scrap)

    def __str__(self) -> str:
        return (f"{self.work_center}: made {self.made.good}+{self.made.scrap} scrap = ERP "
                f"{self.erp.good}+{self.erp.scrap} + unassigned {self.open.good}+"
                f"{self.open.scrap} + written off {self.written_off.good}+"
                f"{self.written_off.scrap} -> lost {self.lost}, doubled {self.doubled}")


def _qty(part: dict[str, Any] | None) -> Made:
    if not part:
        return Made()
    scrap = part.get("scrap", 0)
    return Made(int(part.get("good", 0)),
                int(sum(scrap.values()) if isinstance(scrap, dict) else scrap))


def reconcile(made: dict[str, Made], feed: list[dict[str, Any]],
              unassigned: dict[str, dict[str, Any]] | None) -> list[Row]:
    """Per work center: made = ERP feed (reversals netted) + open unassigned + written off.
    Without the unassigned endpoint both are taken as 0, so `lost` is then an upper bound."""
    rows = {wc: Row(wc, m) for wc, m in made.items()}
    seen: set[str] = set()
    for c in feed:
        if c["confirmation_id"] in seen or c["work_center"] not in rows:
            continue
        seen.add(c["confirmation_id"])
        sign = -1 if c.get("reverses") else 1
        rows[c["work_center"]].erp.add(sign * (c["yield"] + c["rework"]), sign * c["scrap"])
    for wc, entry in (unassigned or {}).items():
        if wc in rows:
            rows[wc].open = _qty(entry.get("open"))
            rows[wc].written_off = _qty(entry.get("written_off"))
    return list(rows.values())


async def settle(service: Service, made: Callable[[], dict[str, Made]],
                 within: float = 30) -> list[Row]:
    """Wait (bounded) until every unit made is accounted for, flush, and reconcile. Returns the
    rows even when they never match: the caller records the numbers, then asserts."""
    deadline = time.monotonic() + within
    while True:
        await service.flush()
        rows = reconcile(made(), await service.feed(), await service.unassigned())
        if all(r.lost == 0 and r.doubled == 0 for r in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.5)
