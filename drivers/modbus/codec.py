"""Decoding of register blocks into tag values, precomputed once per block for speed.

The trick that keeps all four byte orders cheap: a block's words are packed once big-endian
(A B | C D per register) and, only if some tag needs it, once little-endian (B A | D C). Then

    ABCD = big-endian buffer, '>' struct    DCBA = big-endian buffer, '<' struct
    BADC = little-endian buffer, '>' struct CDAB = little-endian buffer, '<' struct

so every numeric tag of a block is read by a few `Struct.unpack_from` calls (one per buffer and
endianness, with pad bytes between tags), without per-value slicing or byte shuffling.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.errors import DecodeError
from drivers.modbus.config import ByteOrder, DataType, ModbusTagConfig

_STRUCT_CHAR = {
    DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
    DataType.INT64: "q", DataType.UINT64: "Q", DataType.FLOAT32: "f", DataType.FLOAT64: "d",
}
#: byte order -> (use the little-endian word buffer, struct endianness prefix)
_VIEW = {
    ByteOrder.ABCD: (False, ">"), ByteOrder.DCBA: (False, "<"),
    ByteOrder.BADC: (True, ">"), ByteOrder.CDAB: (True, "<"),
}


@dataclass(frozen=True, slots=True)
class _StructLayer:
    """Non-overlapping numeric tags of one view, unpacked by a single Struct call."""

    little_words: bool
    unpack_from: Any
    positions: tuple[int, ...]


class BlockDecoder:
    """Turns the words (or bits) of one read block into the values of its tags, in tag order."""

    __slots__ = (
        "_be_pack",
        "_bit_table",
        "_bits",
        "_layers",
        "_le_pack",
        "_scaled",
        "_strings",
        "count",
        "size",
    )

    def __init__(self, start: int, count: int, tags: Sequence[ModbusTagConfig],
                 *, bit_table: bool) -> None:
        self.count, self.size, self._bit_table = count, len(tags), bit_table
        self._bits: list[tuple[int, int, int]] = []  # (position, word offset, bit)
        self._strings: list[tuple[int, bool, int, int]] = []  # (pos, le, byte start, end)
        self._scaled: list[tuple[int, float, float]] = []
        self._layers: list[_StructLayer] = []
        self._be_pack = struct.Struct(f">{count}H").pack
        self._le_pack = struct.Struct(f"<{count}H").pack
        if bit_table:
            self._bits = [(pos, tag.address - start, -1) for pos, tag in enumerate(tags)]
            return
        numeric: dict[tuple[bool, str], list[tuple[int, int, str]]] = {}
        for pos, tag in enumerate(tags):
            offset = tag.address - start
            if tag.data_type == DataType.BOOL:
                self._bits.append((pos, offset, tag.bit or 0))
            elif tag.data_type == DataType.STRING:
                little = _VIEW[tag.byte_order][0]
                self._strings.append((pos, little, 2 * offset, 2 * (offset + (tag.length or 1))))
            else:
                numeric.setdefault(_VIEW[tag.byte_order], []).append(
                    (2 * offset, pos, _STRUCT_CHAR[tag.data_type]))
                if tag.scale != 1.0 or tag.offset != 0.0:
                    self._scaled.append((pos, tag.scale, tag.offset))
        for (little, endian), items in numeric.items():
            self._layers.extend(_build_layers(little, endian, sorted(items)))

    def decode(self, data: Sequence[int] | Sequence[bool]) -> list[Any]:
        """Values of the block's tags from the words (or bits) a read returned."""
        values: list[Any] = [None] * self.size
        if len(data) < self.count:
            raise DecodeError(f"short answer: {len(data)} of {self.count} values")
        if self._bit_table:
            for pos, offset, _ in self._bits:
                values[pos] = bool(data[offset])
            return values
        be = le = b""
        try:
            for layer in self._layers:
                if layer.little_words:
                    buf = le or (le := self._le_pack(*data[: self.count]))
                else:
                    buf = be or (be := self._be_pack(*data[: self.count]))
                for pos, value in zip(layer.positions, layer.unpack_from(buf), strict=True):
                    values[pos] = value
        except struct.error as err:
            raise DecodeError(f"cannot decode block: {err}") from err
        for pos, offset, bit in self._bits:
            values[pos] = bool((data[offset] >> bit) & 1)
        for pos, little, begin, end in self._strings:
            buf = (le or (le := self._le_pack(*data[: self.count]))) if little else (
                be or (be := self._be_pack(*data[: self.count])))
            values[pos] = buf[begin:end].split(b"\x00", 1)[0].decode("latin-1").rstrip()
        for pos, scale, shift in self._scaled:
            values[pos] = values[pos] * scale + shift
        return values


def _build_layers(little: bool, endian: str, items: list[tuple[int, int, str]]
                  ) -> list[_StructLayer]:
    """Greedy: put each (byte offset, position, char) into the first layer it does not overlap."""
    layers: list[tuple[list[str], list[int], list[int]]] = []  # (format parts, positions, end)
    for byte_offset, pos, char in items:
        size = struct.calcsize(char)
        layer = next((lay for lay in layers if byte_offset >= lay[2][0]), None)
        if layer is None:
            layer = ([endian], [], [0])
            layers.append(layer)
        fmt, positions, end = layer
        if byte_offset > end[0]:
            fmt.append(f"{byte_offset - end[0]}x")
        fmt.append(char)
        positions.append(pos)
        end[0] = byte_offset + size
    return [_StructLayer(little, struct.Struct("".join(fmt)).unpack_from, tuple(positions))
            for fmt, positions, _ in layers]


def encode(tag: ModbusTagConfig, value: Any) -> list[int]:
    """The register words (or one bit) that make `tag` decode to `value` (writes and tests)."""
    if tag.table.is_bit:
        return [int(bool(value))]
    if tag.data_type == DataType.BOOL:
        return [int(bool(value)) << (tag.bit or 0)]
    little, endian = _VIEW[tag.byte_order]
    if tag.data_type == DataType.STRING:
        raw = str(value).encode("latin-1")[: 2 * (tag.length or 1)].ljust(2 * (tag.length or 1),
                                                                         b"\x00")
    else:
        if tag.scale != 1.0 or tag.offset != 0.0:
            value = (value - tag.offset) / tag.scale
        char = _STRUCT_CHAR[tag.data_type]
        if char not in "fd":
            value = round(value)
        raw = struct.pack(endian + char, value)
    words = len(raw) // 2
    return list(struct.unpack(("<" if little else ">") + f"{words}H", raw))


def same_value(old: Any, new: Any) -> bool:
    """Equality for change filtering: NaN equals NaN (else a NaN tag would emit every cycle)."""
    if old == new:
        return True
    return isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
