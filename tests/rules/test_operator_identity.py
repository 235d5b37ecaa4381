"""Issue 12: what a terminal can claim. A badge scan signs in only an active operator who needs
no PIN; an event's `operator` is the actor only when signed in at that station."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mes_edge.config.settings import DEFAULT_SCAN_PATTERNS
from mes_edge.contracts.terminal import EventType, ScanMessage, TerminalEventMessage
from mes_edge.domain import OperationCommand, QuantityReported, RawRejection
from mes_edge.rules import ScanParser, StationOperators, scan_event, terminal_event
from mes_edge.rules.terminal import OperatorCard

TS = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
PARSER = ScanParser(DEFAULT_SCAN_PATTERNS)


def scan(code: str, wc: str = "ASSY-03") -> ScanMessage:
    return ScanMessage(id="s1", code=code, scanner="SC-1", ts=TS, site="t", work_center=wc)


def event(type: str, **kw: Any) -> TerminalEventMessage:
    return TerminalEventMessage(id="m1", type=EventType(type), ts=TS, site="t",
                                work_center="ASSY-03", **kw)


def claim() -> TerminalEventMessage:
    """A report naming an operator nobody signed in."""
    return event("report", order="1", operation="0010", good=3, operator="op-9")


def roster(**kw: Any) -> StationOperators:
    ops = StationOperators(**kw)
    ops.set_roster([OperatorCard("B-1", False, frozenset()),
                    OperatorCard("B-2", True, frozenset()),
                    OperatorCard("B-3", False, frozenset({"PRESS-01"}))])
    return ops


def test_a_badge_scan_signs_in_only_a_known_active_operator_without_pin() -> None:
    ops = roster()
    for code, reason in (("OP:ANYTHING", "unknown_badge"), ("OP:B-2", "pin_required"),
                         ("OP:B-3", "not_qualified")):
        refused = scan_event(scan(code), "mqtt", PARSER, ops)
        assert isinstance(refused, RawRejection) and refused.reason_code == reason, code
        assert ops.of("ASSY-03") is None
    assert scan_event(scan("OP:B-1"), "mqtt", PARSER, ops) is None
    assert ops.of("ASSY-03") == "B-1"
    # Where the plant requires PINs, no badge scan alone signs in.
    strict = roster(require_pin=True)
    refused = scan_event(scan("OP:B-1"), "mqtt", PARSER, strict)
    assert isinstance(refused, RawRejection) and refused.reason_code == "pin_required"
    # A disabled operator (gone from the roster) is signed out.
    ops.set_roster([])
    assert ops.of("ASSY-03") is None


def test_an_event_operator_is_the_actor_only_when_signed_in_there() -> None:
    ops = roster()
    ev = terminal_event(claim(), "mqtt", ops)
    assert isinstance(ev, QuantityReported) and ev.actor == "unverified:op-9"
    ops.login("ASSY-03", "B-1")
    ev = terminal_event(event("start", order="1", operation="0010", operator="B-1"), "mqtt", ops)
    assert isinstance(ev, OperationCommand) and ev.actor == "B-1"
    ev = terminal_event(event("start", order="1", operation="0010"), "mqtt", ops)
    assert isinstance(ev, OperationCommand) and ev.actor == "B-1"
    refusing = roster(unverified="refuse")
    refused = terminal_event(claim(), "mqtt", refusing)
    assert isinstance(refused, RawRejection)
    assert refused.reason_code == "operator_not_signed_in"
    assert refused.event_id == "event:ASSY-03:m1" and refused.actor == "unverified:op-9"
