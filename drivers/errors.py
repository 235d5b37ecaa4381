"""One exception tree for all drivers; protocol library errors are translated at the boundary."""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error a driver raises or reports."""


class DriverConfigError(DriverError):
    """The device or tag configuration cannot work (bad address, unknown type, ...)."""


class ConnectError(DriverError):
    """The link to the device could not be opened or was lost."""


class DeviceTimeout(DriverError):
    """The device did not answer within the configured timeout."""


class ProtocolError(DriverError):
    """The device answered with a protocol-level error (e.g. a Modbus exception code)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DecodeError(DriverError):
    """Raw data could not be decoded into the tag's data type."""


class PayloadError(DriverError):
    """An inbound message (e.g. MQTT JSON) is malformed or fails validation."""
