"""Connection state and health figures every driver keeps and the service exposes."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime

from drivers.signal import utcnow


class ConnectionState(enum.StrEnum):
    """Where a driver's link is; DISCONNECTED while it waits to retry."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


@dataclass
class DriverHealth:
    """Live health of one driver: state, last error, round trip and counters."""

    name: str
    state: ConnectionState = ConnectionState.IDLE
    since: datetime = field(default_factory=utcnow)
    last_error: str | None = None
    rtt_ms: float | None = None
    requests: int = 0
    errors: int = 0
    reconnects: int = 0
    values: int = 0

    def set_state(
        self, state: ConnectionState, logger: logging.Logger, error: str | None = None
    ) -> None:
        """Move to `state`, logging only real transitions (lost once, recovered once)."""
        if error is not None:
            self.last_error = error
        if state == self.state:
            return
        previous, self.state, self.since = self.state, state, utcnow()
        if state == ConnectionState.CONNECTED:
            if previous == ConnectionState.DISCONNECTED:
                self.reconnects += 1
                logger.warning("%s: link recovered", self.name)
            else:
                logger.info("%s: connected", self.name)
        elif state == ConnectionState.DISCONNECTED and previous == ConnectionState.CONNECTED:
            logger.warning("%s: link lost: %s", self.name, self.last_error)
        elif state == ConnectionState.DISCONNECTED and previous == ConnectionState.CONNECTING:
            logger.warning("%s: cannot connect: %s", self.name, self.last_error)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly view for /readyz and the supervisor board."""
        return {
            "name": self.name,
            "state": self.state.value,
            "since": self.since.isoformat(),
            "last_error": self.last_error,
            "rtt_ms": self.rtt_ms,
            "requests": self.requests,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "values": self.values,
        }
