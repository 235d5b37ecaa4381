"""Protocol drivers: Modbus TCP, OPC UA and MQTT. They emit Signals and know nothing of orders."""

from drivers.backoff import Backoff
from drivers.base import Driver
from drivers.errors import (
    ConnectError,
    DecodeError,
    DeviceTimeout,
    DriverConfigError,
    DriverError,
    PayloadError,
    ProtocolError,
)
from drivers.health import ConnectionState, DriverHealth
from drivers.signal import Quality, Signal, utcnow

__all__ = [
    "Backoff",
    "ConnectError",
    "ConnectionState",
    "DecodeError",
    "DeviceTimeout",
    "Driver",
    "DriverConfigError",
    "DriverError",
    "DriverHealth",
    "PayloadError",
    "ProtocolError",
    "Quality",
    "Signal",
    "utcnow",
]
