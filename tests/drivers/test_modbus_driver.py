"""ModbusDriver against the real simulator server (pymodbus TCP on 127.0.0.1, free port)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from drivers import Backoff, ConnectionState, Quality, Signal
from drivers.modbus import (
    ByteOrder,
    DataType,
    ModbusDeviceConfig,
    ModbusDriver,
    ModbusTagConfig,
    encode,
)
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def plc() -> AsyncIterator[ModbusPlc]:
    async with ModbusPlc(port=free_port(), units=(1, 2), size=2000) as server:
        yield server


def device(plc: ModbusPlc, tags: list[dict[str, Any]], **kw: Any) -> ModbusDeviceConfig:
    kw.setdefault("poll_groups", {"default": 0.1})
    return ModbusDeviceConfig.model_validate(
        {"name": "plc1", "host": "127.0.0.1", "port": plc.port, "timeout": 0.3, "tags": tags, **kw})


def driver(cfg: ModbusDeviceConfig) -> ModbusDriver:
    return ModbusDriver(cfg, backoff=Backoff(initial=0.05, maximum=0.2))


class Latest:
    """Consumes a driver's batches and keeps the latest signal per tag."""

    def __init__(self, drv: ModbusDriver) -> None:
        self.drv = drv
        self.signals: dict[str, Signal] = {}
        self.batches: list[list[Signal]] = []

    async def until(self, check: Callable[[dict[str, Signal]], bool], within: float = 10.0
                    ) -> dict[str, Signal]:
        """Read batches until `check(latest)` holds (bounded in time)."""
        async with asyncio.timeout(within):
            while not check(self.signals):
                batch = await self.drv._queue.get()
                self.batches.append(batch)
                self.signals.update((s.tag, s) for s in batch)
        return self.signals

    async def next_batch(self, within: float = 5.0) -> list[Signal]:
        async with asyncio.timeout(within):
            batch = await self.drv._queue.get()
        self.batches.append(batch)
        self.signals.update((s.tag, s) for s in batch)
        return batch


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll a condition every 20 ms until it holds; fail after `within` seconds."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def good(*names: str) -> Callable[[dict[str, Signal]], bool]:
    return lambda s: all(n in s and s[n].quality == Quality.GOOD for n in names)


async def test_thousand_tags_take_ceil_n_over_125_requests_per_range(plc: ModbusPlc) -> None:
    plc.set_registers(100, list(range(600)))
    plc.set_registers(0, [7] * 400, table="input_register")
    tags = [{"name": f"h{i}", "address": 100 + i} for i in range(600)]
    tags += [{"name": f"i{i}", "address": i, "table": "input_register"} for i in range(400)]
    cfg = device(plc, tags, poll_groups={"default": 30.0})
    async with driver(cfg) as drv:
        latest = await Latest(drv).until(lambda s: len(s) == 1000)
        assert plc.requests[3] == math.ceil(600 / 125) and plc.requests[4] == math.ceil(400 / 125)
        assert latest["h599"].value == 599 and latest["i0"].value == 7
        assert all(s.quality == Quality.GOOD for s in latest.values())
    cfg = device(plc, tags, poll_groups={"default": 0.1})
    async with driver(cfg) as drv:
        await Latest(drv).until(lambda s: len(s) == 1000)
        await asyncio.sleep(0.45)
        stats = drv.stats["default"]
        assert stats.cycles >= 3 and stats.requests_last_cycle == 9
        # The achieved period is a speed figure: benchmarks/drivers_modbus.py measures it.


async def test_hole_splits_block_other_tags_good_and_plan_is_learned(plc: ModbusPlc) -> None:
    plc.set_registers(200, [1000 + i for i in range(20)])
    plc.set_holes(210)
    plc.set_holes(231)  # a hole in the gap between two tags
    tags = [{"name": f"t{i}", "address": 200 + i} for i in range(20)]
    tags += [{"name": "g0", "address": 230}, {"name": "g1", "address": 232}]
    async with driver(device(plc, tags)) as drv:
        latest = await Latest(drv).until(lambda s: len(s) == 22)
        assert latest["t10"].quality == Quality.BAD and "exception 2" in (latest["t10"].error or "")
        assert all(latest[f"t{i}"].value == 1000 + i for i in range(20) if i != 10)
        assert all(latest[n].quality == Quality.GOOD for n in latest if n != "t10")
        plan = drv.plan()
        assert all(not (b.start <= 210 < b.end) or b.count == 1 for b in plan)
        assert all(not (b.start <= 231 < b.end) for b in plan)
        # Next cycles reuse the learned plan: one request per good block, the bad tag waits.
        await asyncio.sleep(0.25)
        plc.reset_request_counts()
        cycles = drv.stats["default"].cycles
        await asyncio.sleep(0.3)
        done = drv.stats["default"].cycles - cycles
        assert plc.request_count(3) <= (done + 1) * (len(plan) - 1)
        assert drv.health.state == ConnectionState.CONNECTED


async def test_every_byte_order_and_type_decodes_known_values(plc: ModbusPlc) -> None:
    known = {"int32": -123456789, "uint32": 3_000_000_001, "float32": -2.5,
             "float64": 12345.678901234}
    tags: list[ModbusTagConfig] = []
    address = 300
    for order in ("ABCD", "DCBA", "BADC", "CDAB"):
        for dtype, value in known.items():
            tag = ModbusTagConfig(name=f"{dtype}_{order}", address=address,
                                  data_type=DataType(dtype), byte_order=ByteOrder(order),
                                  unit_id=2)
            plc.set_registers(address, encode(tag, value), unit=2)
            tags.append(tag)
            address += tag.width
    async with driver(device(plc, [t.model_dump() for t in tags])) as drv:
        latest = await Latest(drv).until(lambda s: len(s) == len(tags))
    for tag in tags:
        assert latest[tag.name].quality == Quality.GOOD
        assert latest[tag.name].value == pytest.approx(known[tag.data_type.value]), tag.name
    assert plc.request_count(3) >= 1


async def test_bits_scale_offset_string_coils_and_input_registers(plc: ModbusPlc) -> None:
    plc.set_registers(400, [0b1000_0000_0000_0101, 215, *encode(
        ModbusTagConfig(name="s", address=402, data_type="string", length=4),  # type: ignore[arg-type]
        "PRESS-1")])
    plc.set_bits(3, [True, False, True], table="coil")
    plc.set_bits(9, [True], table="discrete_input")
    plc.set_registers(0, [0xFFFE], table="input_register", unit=2)
    tags = [
        {"name": "b0", "address": 400, "data_type": "bool", "bit": 0},
        {"name": "b1", "address": 400, "data_type": "bool", "bit": 1},
        {"name": "b15", "address": 400, "data_type": "bool", "bit": 15},
        {"name": "temp", "address": 401, "data_type": "uint16", "scale": 0.1, "offset": -1.5},
        {"name": "name", "address": 402, "data_type": "string", "length": 4},
        {"name": "c3", "address": 3, "table": "coil", "data_type": "bool"},
        {"name": "c4", "address": 4, "table": "coil", "data_type": "bool"},
        {"name": "c5", "address": 5, "table": "coil", "data_type": "bool"},
        {"name": "d9", "address": 9, "table": "discrete_input", "data_type": "bool"},
        {"name": "ir", "address": 0, "table": "input_register", "data_type": "int16",
         "unit_id": 2},
    ]
    async with driver(device(plc, tags)) as drv:
        s = await Latest(drv).until(lambda s: len(s) == len(tags))
    assert [s[n].value for n in ("b0", "b1", "b15", "c3", "c4", "c5", "d9")] == [
        True, False, True, True, False, True, True]
    assert s["temp"].value == pytest.approx(20.0)
    assert s["name"].value == "PRESS-1"
    assert s["ir"].value == -2
    assert plc.request_count(1) >= 1 and plc.request_count(2) >= 1


async def test_only_changes_are_emitted(plc: ModbusPlc) -> None:
    tags = [{"name": f"t{i}", "address": 500 + i} for i in range(50)]
    async with driver(device(plc, tags, poll_groups={"default": 0.05})) as drv:
        latest = Latest(drv)
        first = await latest.next_batch()
        assert len(first) == 50
        plc.set_registers(507, [42])
        changed = await latest.next_batch()
        assert [(s.tag, s.value) for s in changed] == [("t7", 42)]


async def test_server_restart_disconnected_then_reconnects_and_rereads(plc: ModbusPlc) -> None:
    plc.set_registers(600, [0, 10])
    tags = [{"name": "good_count", "address": 600, "data_type": "uint32"}]
    async with driver(device(plc, tags)) as drv:
        latest = Latest(drv)
        await latest.until(lambda s: "good_count" in s and s["good_count"].value == 10)
        await plc.stop_server()
        await latest.until(lambda s: s["good_count"].quality == Quality.BAD)
        await eventually(lambda: drv.health.state == ConnectionState.DISCONNECTED)
        plc.set_registers(600, [0, 25])  # parts counted while the link was down
        await asyncio.sleep(0.3)
        assert drv.health.state == ConnectionState.DISCONNECTED
        await plc.start_server()
        s = await latest.until(lambda s: s["good_count"].quality == Quality.GOOD)
        assert s["good_count"].value == 25
        assert drv.health.state == ConnectionState.CONNECTED and drv.health.reconnects == 1


async def test_timeout_marks_bad_and_poller_survives(plc: ModbusPlc) -> None:
    plc.set_registers(700, [5])
    tags = [{"name": "x", "address": 700}]
    async with driver(device(plc, tags)) as drv:
        latest = Latest(drv)
        await latest.until(good("x"))
        plc.stall()
        s = await latest.until(lambda s: s["x"].quality == Quality.BAD)
        assert "no answer" in (s["x"].error or "")
        plc.set_registers(700, [6])
        plc.stall(False)
        s = await latest.until(lambda s: s["x"].quality == Quality.GOOD, within=10)
        assert s["x"].value == 6
        assert drv._task is not None and not drv._task.done()
        assert drv.health.errors >= 1


async def test_connect_refused_is_disconnected_not_a_crash() -> None:
    cfg = ModbusDeviceConfig(name="nowhere", host="127.0.0.1", port=free_port(), timeout=0.2,
                             tags=[{"name": "x", "address": 0}])  # type: ignore[list-item]
    async with driver(cfg) as drv:
        await eventually(lambda: drv.health.state == ConnectionState.DISCONNECTED
                         and drv.health.errors >= 2)
        assert drv._task is not None and not drv._task.done()
    assert drv.health.state == ConnectionState.CLOSED


async def test_two_devices_poll_in_parallel_each_on_its_own_connection() -> None:
    async with ModbusPlc(port=free_port()) as plc_a, ModbusPlc(port=free_port()) as plc_b:
        plc_a.set_registers(100, [1])
        plc_b.set_registers(100, [2])
        plc_b.stall()  # a stuck device must not hold up the other one
        drv_a = driver(device(plc_a, [{"name": "x", "address": 100}]))
        drv_b = driver(device(plc_b, [{"name": "x", "address": 100}]))
        async with drv_a, drv_b:
            s = await Latest(drv_a).until(good("x"), within=3)
            assert s["x"].value == 1
            plc_b.stall(False)
            s = await Latest(drv_b).until(good("x"), within=5)
            assert s["x"].value == 2
