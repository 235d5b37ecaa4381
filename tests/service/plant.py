"""Plants, orders and waits shared by the end-to-end service tests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.dispatcher import Dispatcher, Status
from mes_edge.domain import Operation
from tests import factory
from tests.servers import free_port

SITE = "test"
PRESS, CNC, ASSY = "PRESS-01", "CNC-02", "ASSY-03"


def base_plant(db_url: str, **extra: Any) -> dict[str, Any]:
    """Three work centers, no devices, no MQTT; `extra` adds or replaces sections."""
    doc: dict[str, Any] = {
        "site": SITE,
        "database": {"url": db_url},
        "api": {"host": "127.0.0.1", "port": free_port()},
        "production": {"tolerance_pct": 0,
                       "confirmation": {"on_report": True, "on_complete": True,
                                        "every_units": 50},
                       "scrap_reasons": [{"code": "dent"}, {"code": "machine"}],
                       "downtime_reasons": [{"code": "tooling"}]},
        "work_centers": [{"id": PRESS, "counting": "machine"},
                         {"id": CNC, "counting": "machine"},
                         {"id": ASSY, "counting": "operator"}],
    }
    doc.update(extra)
    return doc


def modbus_plant(db_url: str, port: int, *, bits: int = 32, **extra: Any) -> dict[str, Any]:
    """PRESS-01 counted by the good counter of a Modbus PLC simulator (polled every 50 ms)."""
    data_type = {16: "uint16", 32: "uint32"}[bits]
    device = {"name": "press-plc", "driver": "modbus", "host": "127.0.0.1", "port": port,
              "timeout": 0.5, "poll_groups": {"fast": 0.05},
              "tags": [{"name": "state", "address": 0, "poll_group": "fast"},
                       {"name": "good_count", "address": 10, "data_type": data_type,
                        "poll_group": "fast"}]}
    rules = [{"work_center": PRESS,
              "counters": [{"device": "press-plc", "tag": "good_count", "bits": bits}],
              "state": {"device": "press-plc", "tag": "state"}}]
    return base_plant(db_url, devices=[device], rules=rules, **extra)


def opcua_plant(db_url: str, endpoint: str) -> dict[str, Any]:
    """CNC-02 counted by the GoodCount of an OPC UA PLC simulator (subscription)."""
    device = {"name": "cnc-plc", "driver": "opcua", "endpoint": endpoint, "timeout": 2,
              "connect_timeout": 5, "watchdog_interval": 0.5, "watchdog_timeout": 1.0,
              "reconnect_initial": 0.2, "reconnect_max": 1.0,
              "subscription": {"publishing_interval_ms": 50, "sampling_interval_ms": 0},
              "tags": [{"name": "good_count", "node": "ns=2;s=Machine.GoodCount"},
                       {"name": "state", "node": "0:Objects/2:Machine/2:State"}]}
    rules = [{"work_center": CNC,
              "counters": [{"device": "cnc-plc", "tag": "good_count", "bits": 32}],
              "state": {"device": "cnc-plc", "tag": "state"}}]
    return base_plant(db_url, devices=[device], rules=rules)


def mqtt_section(url: str, client_id: str = "edge-under-test") -> dict[str, Any]:
    """The service's MQTT connection (persistent session under a fixed client id)."""
    return {"url": url, "client_id": client_id, "site": SITE, "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 1.0}


def service_of(doc: dict[str, Any]) -> EdgeService:
    """An in-process service without the HTTP API (health() is what /readyz shows)."""
    return EdgeService(parse_settings(doc), serve_api=False)


async def release_order(dispatcher: Dispatcher, order_id: str, work_center: str,
                        qty: int = 10_000, *, start: bool = True) -> None:
    """Import a one-operation order (op 0010 on `work_center`) and start the operation."""
    out = await dispatcher.process(factory.order(order_id, qty, wcs=(work_center,)))
    assert out.status == Status.ACCEPTED, out
    if start:
        out = await dispatcher.process(factory.start(order_id, "0010", work_center))
        assert out.status == Status.ACCEPTED, out


def operation(dispatcher: Dispatcher, order_id: str, op_no: str = "0010") -> Operation:
    """The committed state of one operation."""
    order = dispatcher.state.order(order_id)
    assert order is not None, f"order {order_id} unknown"
    op = order.op(op_no)
    assert op is not None
    return op


async def wait_until(check: Callable[[], bool | Awaitable[bool]], within: float,
                     what: str, every: float = 0.05) -> None:
    """Poll `check` until it is true; fail the test with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(every)


def sqlite_path(url: str) -> Path:
    """The file of a sqlite+aiosqlite:/// URL."""
    return Path(url.split(":///", 1)[1])


def sqlite_query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the service's SQLite file directly (WAL lets us read while it writes)."""
    with sqlite3.connect(sqlite_path(url), timeout=10) as conn:
        return list(conn.execute(sql, args))
