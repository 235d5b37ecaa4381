"""Unit tests of the Modbus config validation, read planner and codec (no network)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.errors import DecodeError
from drivers.modbus import (
    BlockDecoder,
    ModbusDeviceConfig,
    ModbusTagConfig,
    encode,
    plan_blocks,
    split_block,
)

ORDERS = ["ABCD", "DCBA", "BADC", "CDAB"]


def tag(name: str, address: int, data_type: str = "uint16", **kw: object) -> ModbusTagConfig:
    return ModbusTagConfig(name=name, address=address, data_type=data_type, **kw)  # type: ignore[arg-type]


def decode_one(t: ModbusTagConfig, words: list[int]) -> object:
    return BlockDecoder(t.address, len(words), [t], bit_table=t.table.is_bit).decode(words)[0]


def test_known_wire_layouts_of_all_byte_orders() -> None:
    # 0x11223344 with A=0x11: the four conventional wire layouts.
    wire = {"ABCD": [0x1122, 0x3344], "DCBA": [0x4433, 0x2211],
            "BADC": [0x2211, 0x4433], "CDAB": [0x3344, 0x1122]}
    for order, words in wire.items():
        t = tag("v", 0, "uint32", byte_order=order)
        assert decode_one(t, words) == 0x11223344, order
        assert encode(t, 0x11223344) == words, order


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("dtype", "value"), [
    ("int16", -1234), ("uint16", 54321), ("int32", -123456789), ("uint32", 4_000_000_000),
    ("int64", -(2**62) + 7), ("uint64", 2**63 + 5), ("float32", 3.5), ("float64", -1.0e100),
])
def test_round_trip_every_type_and_order(order: str, dtype: str, value: float) -> None:
    t = tag("v", 10, dtype, byte_order=order)
    assert decode_one(t, encode(t, value)) == value


@given(st.floats(width=32, allow_nan=False), st.sampled_from(ORDERS))
def test_float32_round_trip_property(value: float, order: str) -> None:
    t = tag("v", 0, "float32", byte_order=order)
    assert decode_one(t, encode(t, value)) == value


def test_bits_scale_string_and_overlaps_in_one_block() -> None:
    tags = [
        tag("b0", 5, "bool", bit=0), tag("b15", 5, "bool", bit=15),
        tag("raw", 5, "uint16"), tag("temp", 6, "int16", scale=0.1, offset=-5.0),
        tag("name", 7, "string", length=3), tag("hi", 10, "uint32"), tag("hi_lo", 11, "uint16"),
    ]
    words = [0x8001, 0xFFF6, *encode(tags[4], "ABCDE"), 0x0001, 0x0002]
    values = BlockDecoder(5, len(words), tags, bit_table=False).decode(words)
    assert values == [True, True, 0x8001, pytest.approx(-6.0), "ABCDE", 0x00010002, 2]


def test_nan_and_short_answers() -> None:
    t = tag("f", 0, "float32")
    value = decode_one(t, list(struct.unpack(">2H", struct.pack(">f", math.nan))))
    assert isinstance(value, float) and math.isnan(value)
    with pytest.raises(DecodeError, match="short answer"):
        BlockDecoder(0, 2, [t], bit_table=False).decode([1])


def test_planner_coalesces_within_gap_and_block_limit() -> None:
    tags = [tag(f"t{i}", i) for i in range(300)] + [tag("far", 1000), tag("near", 1005)]
    blocks = plan_blocks(tags, unit_of=lambda t: 1, max_gap=10)
    assert [(b.start, b.count) for b in blocks] == [(0, 125), (125, 125), (250, 50), (1000, 6)]
    assert plan_blocks([tag("a", 0), tag("b", 12)], unit_of=lambda t: 1, max_gap=10)[0].count == 1
    # A 32-bit tag straddling the 125-register limit starts a new block instead of being cut.
    wide = [tag(f"w{i}", 2 * i, "uint32") for i in range(70)]
    assert all(b.count <= 125 for b in plan_blocks(wide, unit_of=lambda t: 1, max_gap=0))


def test_planner_separates_units_and_tables_and_splits() -> None:
    tags = [tag("a", 0, unit_id=1), tag("b", 1, unit_id=2), tag("c", 2, unit_id=1),
            tag("d", 0, "bool", table="coil"), tag("e", 1999, "bool", table="coil")]
    blocks = plan_blocks(tags, unit_of=lambda t: t.unit_id or 1, max_gap=10)
    assert {(b.unit, b.table.value, b.start, b.count) for b in blocks} == {
        (1, "holding_register", 0, 3), (2, "holding_register", 1, 1),
        (1, "coil", 0, 1), (1, "coil", 1999, 1)}
    left, right = split_block(blocks[-1] if len(blocks[-1].tags) > 1 else
                              next(b for b in blocks if len(b.tags) > 1))
    assert left.tags and right.tags and left.end <= right.start


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="needs 'bit'"):
        tag("x", 0, "bool")
    with pytest.raises(ValidationError, match="needs 'length'"):
        tag("x", 0, "string")
    with pytest.raises(ValidationError, match="must have data_type bool"):
        tag("x", 0, "uint16", table="coil")
    with pytest.raises(ValidationError, match="byte_order"):
        tag("x", 0, "uint32", byte_order="ABDC")
    with pytest.raises(ValidationError, match="unknown poll_group 'fast'"):
        ModbusDeviceConfig(name="d", host="h", tags=[tag("x", 0, poll_group="fast")])
    with pytest.raises(ValidationError, match="duplicate tag name"):
        ModbusDeviceConfig(name="d", host="h", tags=[tag("x", 0), tag("x", 1)])
    with pytest.raises(ValidationError, match="less than or equal to 125"):
        ModbusDeviceConfig(name="d", host="h", max_block_registers=200)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ModbusDeviceConfig(name="d", host="h", hots="x")  # type: ignore[call-arg]
