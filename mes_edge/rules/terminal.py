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


@dataclass(frozen=True, slots=True)
class OperatorCard:
    """What the terminals need to know of an active operator (never the PIN hash)."""

    badge: str
    has_pin: bool
    work_centers: frozenset[str]  # empty: every work center


@dataclass
class StationOperators:
    """Who is signed in at each work center (badge scan or badge + PIN), for the `actor` of
    events, and the roster of active operators a terminal's badge scan is checked against.

    The service loads the roster from the store at start and refreshes it; without one, no
    badge scan signs anybody in (a scanner cannot prove more than the badge).
    """

    current: dict[str, str] = field(default_factory=dict)
    roster: dict[str, OperatorCard] = field(default_factory=dict)
    #: security.require_pin: a badge scan alone never signs in.
    require_pin: bool = False
    #: security.unverified_operator: "record" (actor marked unverified) or "refuse".
    unverified: str = "record"

    def login(self, work_center: str, operator: str) -> None:
        self.current[work_center] = operator

    def logout(self, work_center: str) -> None:
        self.current.pop(work_center, None)

    def of(self, work_center: str) -> str | None:
        return self.current.get(work_center)

    def set_roster(self, cards: Iterable[OperatorCard]) -> None:
        """Replace the roster; an operator no longer in it (disabled) is signed out."""
        self.roster = {c.badge: c for c in cards}
        for wc, badge in list(self.current.items()):
            if badge not in self.roster:
                del self.current[wc]

    def scan_refusal(self, badge: str, work_center: str) -> tuple[str, str] | None:
        """Why a badge scan at a terminal may not sign in (code, text), or None."""
        card = self.roster.get(badge)
        if card is None:
            return "unknown_badge", f"badge {badge!r} is not an active operator"
        if card.has_pin or self.require_pin:
            return "pin_required", f"badge {badge!r} signs in with its PIN on the tablet"
        if card.work_centers and work_center not in card.work_centers:
            return "not_qualified", f"operator {badge} is not qualified for {work_center}"
        return None


_ACTIONS = {
    EventType.START: OperationAction.START,
    EventType.PAUSE: OperationAction.PAUSE,
    EventType.RESUME: OperationAction.RESUME,
    EventType.COMPLETE: OperationAction.COMPLETE,
}


def terminal_event(msg: TerminalEventMessage, source: str,
                   operators: StationOperators) -> Event | RawRejection:
    """The domain event of a terminal message (README's contract: `event` topic).

    The message's `operator` is a claim: it is the actor only when that operator is signed in
    at this station; otherwise the event is kept with the actor `unverified:<claim>`, or refused
    when the plant says so (security.unverified_operator).
    """
    signed_in = operators.of(msg.work_center)
    actor = signed_in
    if msg.operator and msg.operator != signed_in:
        if operators.unverified == "refuse":
            return RawRejection(
                source=source, event_id=f"event:{msg.work_center}:{msg.id}",
                work_center=msg.work_center, type=msg.type.value,
                actor=f"unverified:{msg.operator}",
                payload={"operator": msg.operator, "order": msg.order,
                         "operation": msg.operation},
                reason_code="operator_not_signed_in",
                reason=f"operator {msg.operator!r} is not signed in at {msg.work_center}")
        actor = f"unverified:{msg.operator}"
    common: dict[str, Any] = {
        "event_id": f"event:{msg.work_center}:{msg.id}",
        "source": source,
        "actor": actor,
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
        badge = parsed.fields.get("badge", msg.code.strip())
        refusal = operators.scan_refusal(badge, msg.work_center)
        if refusal is not None:
            return RawRejection(reason_code=refusal[0], reason=refusal[1], **base)
        operators.login(msg.work_center, badge)
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
