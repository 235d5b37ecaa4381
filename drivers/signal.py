"""The one thing every driver produces: a Signal, a timestamped value of one device tag."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class Quality(enum.StrEnum):
    """OPC-style quality of a value: GOOD values may be acted on, BAD ones never."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


def utcnow() -> datetime:
    """Timezone-aware now in UTC (the only clock drivers use)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Signal:
    """A value of one tag of one device, as read or pushed by a driver."""

    device: str
    tag: str
    value: Any
    quality: Quality = Quality.GOOD
    source_ts: datetime | None = None
    received_ts: datetime = field(default_factory=utcnow)
    #: Why the quality is not GOOD (a typed error's message), else None.
    error: str | None = None
