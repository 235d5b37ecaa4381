"""The plant's terminal message contract (README, MQTT in): scans and terminal events.

These models are what scanners and terminals must send; the MQTT inbound driver validates each
message against the model of its kind (`TERMINAL_SCHEMAS`, handed to it by the composition root),
and the station API builds the same messages for scans typed on a tablet.

Quantities are strict JSON integers (a string "3" or a boolean is a wrong type, not a number),
never negative and capped, so an absurd value is a recorded rejection and not a huge count.
`site` and `work_center` are bound from the topic, never taken from the JSON body.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

#: Upper bound of one reported quantity; beyond it a report is taken as a typo or a bad device.
MAX_REPORTED_QUANTITY = 1_000_000

MessageId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Quantity = Annotated[int, Field(strict=True, ge=0, le=MAX_REPORTED_QUANTITY)]


#: A time with its zone checked (naive times are refused), normalised to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda v: to_utc(v))]


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC."""
    return value.astimezone(UTC)


class EventType(enum.StrEnum):
    """What an operator did on a terminal."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    REPORT = "report"
    DOWNTIME_REASON = "downtime_reason"


class _Inbound(BaseModel):
    # Unknown keys are ignored so terminals with newer firmware keep working.
    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=1024)

    id: MessageId
    site: str = Field(default="", description="bound from the topic")
    work_center: str = Field(default="", description="bound from the topic")
    ts: UtcDatetime | None = None


class ScanMessage(_Inbound):
    """A barcode scan: order, operation, serial, badge or lot code, parsed later by rules."""

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
    scanner: ShortText | None = None


class TerminalEventMessage(_Inbound):
    """An explicit operator event: start, pause, resume, complete, report, downtime reason."""

    type: EventType
    order: ShortText | None = None
    operation: ShortText | None = None
    good: Quantity | None = None
    scrap: Quantity | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None
    operator: ShortText | None = None

    @model_validator(mode="after")
    def _fields_the_type_needs(self) -> Self:
        if self.type != EventType.DOWNTIME_REASON and (not self.order or not self.operation):
            raise ValueError(f"'{self.type}' needs 'order' and 'operation'")
        if self.type == EventType.REPORT and self.good is None and self.scrap is None:
            raise ValueError("'report' needs 'good' and/or 'scrap'")
        if self.type == EventType.DOWNTIME_REASON and not self.reason:
            raise ValueError("'downtime_reason' needs 'reason'")
        return self


InboundPayload = ScanMessage | TerminalEventMessage

#: Inbound kinds and the model each one's payload must satisfy (the MQTT driver's schemas).
TERMINAL_SCHEMAS: dict[str, type[ScanMessage] | type[TerminalEventMessage]] = {
    "scan": ScanMessage,
    "event": TerminalEventMessage,
}


def parse_payload(kind: str, raw: bytes, bound: dict[str, str]) -> InboundPayload:
    """Validate `raw` as the `kind` payload plus the topic-bound fields; ValidationError if bad."""
    model = TERMINAL_SCHEMAS[kind]
    parsed = model.model_validate_json(raw)
    # The topic is the authority on where a message came from: a body cannot claim another
    # work center.
    return parsed.model_copy(
        update={"site": bound.get("site", ""), "work_center": bound.get("work_center", "")}
    )

