"""Validated configuration of a Modbus TCP device and its tags (pydantic v2)."""

from __future__ import annotations

import enum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Largest read of one Modbus request (the protocol's limits for FC 3/4 and FC 1/2).
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000


class Table(enum.StrEnum):
    """Modbus data table; decides the read function code."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT_REGISTER = "input_register"
    HOLDING_REGISTER = "holding_register"

    @property
    def is_bit(self) -> bool:
        """True for the single-bit tables (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class DataType(enum.StrEnum):
    """How the registers of a tag are decoded."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


#: Registers a value of each fixed-size type occupies (bool: one register when `bit` is set).
REGISTER_WIDTH = {
    DataType.BOOL: 1, DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2,
    DataType.UINT32: 2, DataType.FLOAT32: 2, DataType.INT64: 4, DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


class ByteOrder(enum.StrEnum):
    """Byte order of a value on the wire, A = most significant byte.

    ABCD big-endian (Modbus default); DCBA little-endian; BADC bytes swapped in each register;
    CDAB registers (words) swapped. For 64-bit values the pattern extends the same way.
    """

    ABCD = "ABCD"
    DCBA = "DCBA"
    BADC = "BADC"
    CDAB = "CDAB"


class ModbusTagConfig(BaseModel):
    """One value read from a device: where it lives and how to decode it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    unit_id: Annotated[int | None, Field(ge=0, le=255)] = None
    table: Table = Table.HOLDING_REGISTER
    address: Annotated[int, Field(ge=0, le=65535)]
    data_type: DataType = DataType.UINT16
    #: For bool in a register table: which bit (0 = least significant) of the register.
    bit: Annotated[int | None, Field(ge=0, le=15)] = None
    #: For strings: length in registers (2 characters each).
    length: Annotated[int | None, Field(ge=1, le=MAX_REGISTERS_PER_READ)] = None
    byte_order: ByteOrder = ByteOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0
    poll_group: str = "default"

    @model_validator(mode="after")
    def _check_shape(self) -> Self:
        if self.table.is_bit:
            if self.data_type != DataType.BOOL:
                raise ValueError(f"a {self.table.value} tag must have data_type bool")
            if self.bit is not None:
                raise ValueError("'bit' applies to register tables only")
        elif self.data_type == DataType.BOOL and self.bit is None:
            raise ValueError("a bool tag in a register table needs 'bit' (0..15)")
        elif self.bit is not None and self.data_type != DataType.BOOL:
            raise ValueError("'bit' is only allowed with data_type bool")
        if self.data_type == DataType.STRING and self.length is None:
            raise ValueError("a string tag needs 'length' (in registers)")
        if self.data_type != DataType.STRING and self.length is not None:
            raise ValueError("'length' is only allowed with data_type string")
        if self.address + self.width - 1 > 65535:
            raise ValueError("the tag runs past address 65535")
        if self.data_type in (DataType.BOOL, DataType.STRING) and (
            self.scale != 1.0 or self.offset != 0.0
        ):
            raise ValueError("scale/offset apply to numeric tags only")
        return self

    @property
    def width(self) -> int:
        """Addresses the tag occupies: registers, or 1 bit in a bit table."""
        if self.table.is_bit:
            return 1
        if self.data_type == DataType.STRING:
            return self.length or 1
        return REGISTER_WIDTH[self.data_type]


class ModbusDeviceConfig(BaseModel):
    """A Modbus TCP endpoint (possibly a gateway with several unit ids) and its tags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    #: Seconds to wait for one answer (and for connecting).
    timeout: Annotated[float, Field(gt=0, le=60)] = 1.0
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    #: Poll group name -> interval in seconds.
    poll_groups: dict[str, Annotated[float, Field(gt=0, le=86400)]] = Field(
        default_factory=lambda: {"default": 1.0}
    )
    #: Unused registers/bits between two tags that may still be read in the same request.
    max_gap: Annotated[int, Field(ge=0, le=MAX_BITS_PER_READ)] = 10
    max_block_registers: Annotated[int, Field(ge=1, le=MAX_REGISTERS_PER_READ)] = 125
    max_block_bits: Annotated[int, Field(ge=1, le=MAX_BITS_PER_READ)] = 2000
    #: A tag that fails on its own is retried after this many seconds (not every cycle).
    retry_bad_after: Annotated[float, Field(ge=0)] = 10.0
    tags: list[ModbusTagConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_tags(self) -> Self:
        seen: set[str] = set()
        for index, tag in enumerate(self.tags):
            if tag.name in seen:
                raise ValueError(f"tags[{index}]: duplicate tag name {tag.name!r}")
            seen.add(tag.name)
            if tag.poll_group not in self.poll_groups:
                raise ValueError(
                    f"tags[{index}] ({tag.name}): unknown poll_group {tag.poll_group!r}; "
                    f"known: {sorted(self.poll_groups)}"
                )
            if not tag.table.is_bit and tag.width > self.max_block_registers:
                raise ValueError(
                    f"tags[{index}] ({tag.name}): {tag.width} registers exceed "
                    f"max_block_registers={self.max_block_registers}"
                )
        return self

    def unit_of(self, tag: ModbusTagConfig) -> int:
        """The unit id a tag is read from (its own, else the device default)."""
        return self.unit_id if tag.unit_id is None else tag.unit_id
