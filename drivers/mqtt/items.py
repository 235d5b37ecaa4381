"""What the inbound driver yields: a validated scan or event, or a rejection, each with ack().

`message` is an instance of the schema the driver was given for the kind (the plant's contract,
not the driver's), with `site` and `work_center` bound from the topic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.signal import utcnow


@dataclass(kw_only=True, eq=False)
class InboundDelivery:
    """One delivered MQTT message; call `await ack()` once its outcome is committed."""

    topic: str
    #: True when the broker marked it as a redelivery (DUP): dedup by message id downstream.
    redelivered: bool = False
    received_ts: datetime = field(default_factory=utcnow)
    _acker: Callable[[], bool] | None = field(default=None, repr=False)
    _acked: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        """Send the PUBACK (idempotent). Ack only after the event (or rejection) committed.

        If the connection was replaced since this message arrived, nothing is sent: the broker
        redelivers it on the new connection and the event-id dedup makes that harmless.
        """
        if not self._acked:
            self._acked = True
            if self._acker is not None:
                self._acker()

    @property
    def acked(self) -> bool:
        """Whether ack() was called."""
        return self._acked


@dataclass(kw_only=True, eq=False)
class ReceivedScan(InboundDelivery):
    """A valid message of a `scan` topic, validated against the driver's `scan` schema."""

    message: Any


@dataclass(kw_only=True, eq=False)
class ReceivedEvent(InboundDelivery):
    """A valid message of an `event` topic, validated against the driver's `event` schema."""

    message: Any


@dataclass(kw_only=True, eq=False)
class RejectedMessage(InboundDelivery):
    """A message that cannot be used; record it with its reason, then ack it like any other."""

    #: The raw payload, truncated to `PAYLOAD_KEEP_BYTES` so a huge message is not kept whole.
    payload: bytes
    reason: str
    #: "scan" or "event" when the topic matched a template, None for an unknown topic.
    kind: str | None = None
    payload_size: int = 0
    #: The work center of the topic it came on (mes/<site>/<wc>/event), when the topic matched.
    work_center: str | None = None


#: How much of a rejected payload is kept for the record.
PAYLOAD_KEEP_BYTES = 512

InboundItem = ReceivedScan | ReceivedEvent | RejectedMessage
