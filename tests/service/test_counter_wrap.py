"""A 16-bit PLC counter read by a real Modbus PLC simulator: with `bits` left out of the rule,
the width comes from the tag's data type, so a wrap counts exactly and a reset from a high
value adds no phantom parts (issue 9, "Counters read the way PLCs count")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mes_edge.app.service import EdgeService
from simulators.machine import Machine, MachineState
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port
from tests.service.plant import (
    PRESS,
    modbus_plant,
    operation,
    release_order,
    service_of,
    sqlite_query,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)
TAG = ("press-plc", "good_count")


@pytest.fixture
async def plc16() -> AsyncIterator[ModbusPlc]:
    """A PLC with a uint16 good counter that only moves when the test sets it."""
    machine = Machine(cycle_time=0, scrap_rate=0.0, state=MachineState.IDLE,
                      counter_type="uint16")
    async with ModbusPlc(port=free_port(), machine=machine, counter_type="uint16") as sim:
        yield sim


def plant_with_default_bits(db_url: str, port: int) -> dict[str, Any]:
    """The Modbus plant with a uint16 good_count tag and a counter rule WITHOUT `bits`."""
    doc = modbus_plant(db_url, port, bits=16)
    counter = doc["rules"][0]["counters"][0]
    del counter["bits"]
    assert doc["devices"][0]["tags"][1] == {"name": "good_count", "address": 10,
                                            "data_type": "uint16", "poll_group": "fast"}
    return doc


async def started_at(plc: ModbusPlc, value: int, doc: dict[str, Any]) -> EdgeService:
    """A service whose first (baseline) reading of the counter will be `value`."""
    await plc.apply_step({"do": "set_counter", "counter": "good", "value": value})
    return service_of(doc)


async def set_counter_and_wait(service: EdgeService, plc: ModbusPlc, value: int) -> None:
    """Preset the PLC's counter and wait until the service has committed that reading."""
    assert service.dispatcher is not None
    d = service.dispatcher
    await plc.apply_step({"do": "set_counter", "counter": "good", "value": value})
    await wait_until(lambda: TAG in d.checkpoints and d.checkpoints[TAG].value == value, 10,
                     f"the reading {value} to be committed")


def counter_events(url: str) -> list[dict[str, Any]]:
    rows = sqlite_query(url, "SELECT payload FROM events WHERE type='quantity_reported' "
                             "ORDER BY seq")
    return [json.loads(p) if isinstance(p, str) else p for (p,) in rows]


def rejections(url: str) -> list[tuple[str, str]]:
    return [(c, r) for c, r in sqlite_query(url, "SELECT reason_code, reason FROM rejected_events")]


async def test_a_uint16_wrap_65530_to_7_counts_exactly_13(plc16: ModbusPlc,
                                                          sqlite_url: str) -> None:
    doc = plant_with_default_bits(sqlite_url, plc16.port)
    async with await started_at(plc16, 65_530, doc) as service:
        assert service.dispatcher is not None
        d = service.dispatcher
        assert service.settings.rules[0].counters[0].bits == 16  # from the tag's data type
        await set_counter_and_wait(service, plc16, 65_530)  # the baseline: counts nothing
        await release_order(d, "1001", PRESS)
        await set_counter_and_wait(service, plc16, 7)  # 65531..65535, 0..7: 13 parts
        assert operation(d, "1001").done.good == 13
        assert d.checkpoints[TAG].generation == 1
    wrap = [e for e in counter_events(sqlite_url) if e["readings"] == [65_530, 7]]
    assert len(wrap) == 1 and len(counter_events(sqlite_url)) == 1
    assert wrap[0]["good"] == 13 and wrap[0]["unassigned_reason"] is None
    assert wrap[0]["event_id"] == "press-plc/good_count/1/7"
    assert rejections(sqlite_url) == []
    assert sqlite_query(sqlite_url, "SELECT good FROM operations WHERE order_id='1001'") == [
        (13,)]


async def test_a_reset_from_a_high_value_adds_no_phantom_parts(plc16: ModbusPlc,
                                                                sqlite_url: str) -> None:
    doc = plant_with_default_bits(sqlite_url, plc16.port)
    async with await started_at(plc16, 60_000, doc) as service:
        assert service.dispatcher is not None
        d = service.dispatcher
        await set_counter_and_wait(service, plc16, 60_000)  # the baseline: counts nothing
        await release_order(d, "1001", PRESS)
        await set_counter_and_wait(service, plc16, 60_036)
        assert operation(d, "1001").done.good == 36
        # Reset to 0 from above 55,535: once taken for a wrap (5,500 phantom parts).
        await set_counter_and_wait(service, plc16, 0)
        assert operation(d, "1001").done.good == 36
        await set_counter_and_wait(service, plc16, 4)
        assert operation(d, "1001").done.good == 40
        assert d.checkpoints[TAG].generation == 1
    assert [e["readings"] for e in counter_events(sqlite_url)] == [[60_000, 60_036], [0, 4]]
    assert rejections(sqlite_url) == []


async def test_a_jump_beyond_max_delta_is_committed_whole_for_a_supervisor(
        plc16: ModbusPlc, sqlite_url: str) -> None:
    doc = plant_with_default_bits(sqlite_url, plc16.port)
    async with await started_at(plc16, 100, doc) as service:
        assert service.dispatcher is not None
        d = service.dispatcher
        await set_counter_and_wait(service, plc16, 100)  # the baseline: counts nothing
        await release_order(d, "1001", PRESS)
        # 20,000 parts between two readings (max_delta is 10,000): once refused and lost.
        await set_counter_and_wait(service, plc16, 20_100)
        await set_counter_and_wait(service, plc16, 20_103)
        assert d.checkpoints[TAG].generation == 0
    events = counter_events(sqlite_url)
    assert [(e["good"], e["readings"], e["unassigned_reason"]) for e in events] == [
        (20_000, [100, 20_100], "counter_jump"), (3, [20_100, 20_103], None)]
    assert [e["event_id"] for e in events] == [
        "press-plc/good_count/0/20100", "press-plc/good_count/0/20103"]
    assert rejections(sqlite_url) == []
