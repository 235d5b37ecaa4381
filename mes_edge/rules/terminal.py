"""Scanner and terminal messages -> domain events; barcode parsing by configured patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mes_edge.config.settings import ScanPattern
from mes_edge.contracts.terminal import EventType, ScanMessage, TerminalEventMessage
from mes_edge.domain import (
    CountingSource,
    DowntimeReasonGiven,
    Event,
    OperationAction,
    OperationCommand,
    QuantityReported,
    RawRejection,
)


@dataclass(frozen=True, slots=True)
class ParsedScan:
    """What a barcode is: its kind and the named fields of the pattern that matched."""

    kind: str
    fields: dict[str, str]


class ScanParser:
    """Matches a barcode against the configured patterns, first match wins."""

    def __init__(self, patterns: Iterable[ScanPattern]) -> None:
        self._patterns = [(p.kind, re.compile(p.pattern)) for p in patterns]

    def parse(self, code: str) -> ParsedScan | None:
        """The parsed scan, or None when no pattern matches."""
        for kind, rx in self._patterns:
            m = rx.fullmatch(code.strip())
            if m:
                return ParsedScan(kind, {k: v for k, v in m.groupdict().items() if v is not None})
        return None


@dataclass
class StationOperators:
    """Who is logged in at each work center (by badge scan or PIN), for the `actor` of events."""

    current: dict[str, str] = field(default_factory=dict)

    def login(self, work_center: str, operator: str) -> None:
        self.current[work_center] = operator

    def logout(self, work_center: str) -> None:
        self.current.pop(work_center, None)

    def of(self, work_center: str) -> str | None:
        return self.current.get(work_center)


_ACTIONS = {
    EventType.START: OperationAction.START,
    EventType.PAUSE: OperationAction.PAUSE,
    EventType.RESUME: OperationAction.RESUME,
    EventType.COMPLETE: OperationAction.COMPLETE,
}


def terminal_event(msg: TerminalEventMessage, source: str, operators: StationOperators) -> Event:
    """The domain event of a terminal message (README's contract: `event` topic)."""
    common: dict[str, Any] = {
        "event_id": f"event:{msg.work_center}:{msg.id}",
        "source": source,
        "actor": msg.operator or operators.of(msg.work_center),
        "source_ts": msg.ts,
    }
    if msg.type in _ACTIONS:
        return OperationCommand(
            work_center=msg.work_center,
            action=_ACTIONS[msg.type],
            order_id=msg.order,
            op_no=msg.operation,
            **common,
        )
    if msg.type == EventType.REPORT:
        scrap = {(msg.reason or "unspecified"): msg.scrap} if msg.scrap else {}
        return QuantityReported(
            work_center=msg.work_center,
            by=CountingSource.OPERATOR,
            good=msg.good or 0,
            scrap=scrap,
            order_id=msg.order,
            op_no=msg.operation,
            **common,
        )
    return DowntimeReasonGiven(work_center=msg.work_center, reason=msg.reason or "", **common)


def scan_event(
    msg: ScanMessage, source: str, parser: ScanParser, operators: StationOperators
) -> Event | RawRejection | None:
    """What a scan means: start an order operation, log an operator in, or a rejection.

    Returns None when the scan changes nothing durable (an operator badge only sets who works
    at the station).
    """
    parsed = parser.parse(msg.code)
    base: dict[str, Any] = {
        "source": source,
        "event_id": f"scan:{msg.work_center}:{msg.id}",
        "work_center": msg.work_center,
        "payload": {"code": msg.code, "scanner": msg.scanner},
        "type": "scan",
    }
    if parsed is None:
        return RawRejection(
            reason_code="unknown_barcode",
            reason=f"barcode {msg.code!r} matches no configured pattern",
            **base,
        )
    if parsed.kind == "operator":
        operators.login(msg.work_center, parsed.fields.get("badge", msg.code))
        return None
    if parsed.kind == "order_operation":
        return OperationCommand(
            event_id=f"scan:{msg.work_center}:{msg.id}",
            source=source,
            actor=operators.of(msg.work_center),
            source_ts=msg.ts,
            work_center=msg.work_center,
            action=OperationAction.START,
            order_id=parsed.fields.get("order"),
            op_no=parsed.fields.get("operation"),
        )
    return RawRejection(
        reason_code="not_supported",
        reason=f"{parsed.kind} scans are recognised but serial/lot genealogy is "
        "not implemented yet",
        **base,
    )
