"""Modbus TCP driver: validated config, coalescing read planner, fast codec, polling driver."""

from drivers.modbus.codec import BlockDecoder, encode
from drivers.modbus.config import (
    ByteOrder,
    DataType,
    ModbusDeviceConfig,
    ModbusTagConfig,
    Table,
)
from drivers.modbus.driver import GroupStats, ModbusDriver
from drivers.modbus.planner import ReadBlock, plan_blocks, split_block

__all__ = [
    "BlockDecoder",
    "ByteOrder",
    "DataType",
    "GroupStats",
    "ModbusDeviceConfig",
    "ModbusDriver",
    "ModbusTagConfig",
    "ReadBlock",
    "Table",
    "encode",
    "plan_blocks",
    "split_block",
]
