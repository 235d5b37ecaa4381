"""OPC UA driver (asyncua): subscriptions with polling fallback, watchdog, reconnect, security."""

from drivers.opcua.config import (
    OpcUaDeviceConfig,
    OpcUaSecurityConfig,
    OpcUaSubscriptionConfig,
    OpcUaTagConfig,
)
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.errors import OpcUaAuthError, OpcUaSecurityError
from drivers.opcua.session import OpcUaSession

__all__ = [
    "OpcUaAuthError",
    "OpcUaDeviceConfig",
    "OpcUaDriver",
    "OpcUaSecurityConfig",
    "OpcUaSecurityError",
    "OpcUaSession",
    "OpcUaSubscriptionConfig",
    "OpcUaTagConfig",
]
