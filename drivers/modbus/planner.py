"""Read planning: coalesce tags into as few Modbus requests as possible, split when refused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drivers.modbus.config import ModbusTagConfig, Table


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers/bits of `table` from `start` on unit `unit`."""

    unit: int
    table: Table
    start: int
    count: int
    #: Tags served by this read, sorted by address.
    tags: tuple[ModbusTagConfig, ...]

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.start + self.count


def block_of(unit: int, table: Table, tags: Iterable[ModbusTagConfig]) -> ReadBlock:
    """The smallest block covering `tags` (all of one unit and table)."""
    ordered = tuple(sorted(tags, key=lambda t: (t.address, t.width)))
    start = ordered[0].address
    end = max(t.address + t.width for t in ordered)
    return ReadBlock(unit, table, start, end - start, ordered)


def plan_blocks(
    tags: Iterable[ModbusTagConfig],
    *,
    unit_of: Callable[[ModbusTagConfig], int],
    max_gap: int,
    max_registers: int = 125,
    max_bits: int = 2000,
) -> list[ReadBlock]:
    """Group tags of the same unit and table whose addresses are within `max_gap` of each other.

    A block never exceeds `max_registers` (register tables) or `max_bits` (bit tables); tags
    sharing registers (bits of one word, overlapping definitions) simply share the block.
    """
    by_key: dict[tuple[int, Table], list[ModbusTagConfig]] = {}
    for tag in tags:
        by_key.setdefault((unit_of(tag), tag.table), []).append(tag)
    blocks: list[ReadBlock] = []
    for (unit, table), group in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
        limit = max_bits if table.is_bit else max_registers
        group.sort(key=lambda t: (t.address, t.width))
        current: list[ModbusTagConfig] = []
        start = end = 0
        for tag in group:
            tag_end = tag.address + tag.width
            if current and tag.address <= end + max_gap and max(end, tag_end) - start <= limit:
                current.append(tag)
                end = max(end, tag_end)
                continue
            if current:
                blocks.append(block_of(unit, table, current))
            current, start, end = [tag], tag.address, tag_end
        if current:
            blocks.append(block_of(unit, table, current))
    return blocks


def split_block(block: ReadBlock) -> tuple[ReadBlock, ReadBlock]:
    """Two blocks with half the tags each (the device refused the whole block)."""
    if len(block.tags) < 2:
        raise ValueError("a block of one tag cannot be split")
    half = len(block.tags) // 2
    return (block_of(block.unit, block.table, block.tags[:half]),
            block_of(block.unit, block.table, block.tags[half:]))
