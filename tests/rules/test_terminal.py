"""ScanParser, scan_event and terminal_event: what scans and operator terminal messages mean."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mes_edge.config.settings import DEFAULT_SCAN_PATTERNS, ScanPattern
from mes_edge.contracts.terminal import EventType, ScanMessage, TerminalEventMessage
from mes_edge.dispatcher import RawRejection
from mes_edge.domain import (
    CountingSource,
    DowntimeReasonGiven,
    OperationAction,
    OperationCommand,
    QuantityReported,
)
from mes_edge.rules import ParsedScan, ScanParser, StationOperators, scan_event, terminal_event
from mes_edge.rules.terminal import OperatorCard

#: B-17 is a known, active operator without a PIN, allowed everywhere: an `OP:` scan signs in
#: only such a badge (tests/rules/test_operator_identity.py covers the refusals).
B17 = OperatorCard("B-17", False, frozenset())

TS = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
SRC = "mqtt:mes/test/PRESS-01/scan"


def scan(code: str, msg_id: str = "s1") -> ScanMessage:
    return ScanMessage(
        id=msg_id, code=code, scanner="SC-1", ts=TS, site="test", work_center="PRESS-01"
    )


def term(type: str, **kw: Any) -> TerminalEventMessage:
    return TerminalEventMessage(
        id=kw.pop("id", "m1"), type=EventType(type), ts=TS, site="test", work_center="ASSY-03", **kw
    )


@pytest.fixture
def parser() -> ScanParser:
    return ScanParser(DEFAULT_SCAN_PATTERNS)


def test_parser_recognises_the_default_patterns(parser: ScanParser) -> None:
    assert parser.parse("WO:1001/0010") == ParsedScan(
        "order_operation", {"order": "1001", "operation": "0010"}
    )
    assert parser.parse("  OP:B-17 ") == ParsedScan("operator", {"badge": "B-17"})
    assert parser.parse("SN:X99") == ParsedScan("serial", {"serial": "X99"})
    assert parser.parse("LOT:STEEL/L42") == ParsedScan("lot", {"material": "STEEL", "lot": "L42"})
    assert parser.parse("WO:1001") is None and parser.parse("hello") is None


def test_parser_first_configured_match_wins_and_must_match_whole_code() -> None:
    p = ScanParser(
        [
            ScanPattern(kind="operator", pattern=r"B(?P<badge>\d{3})"),
            ScanPattern(kind="order_operation", pattern=r"(?P<order>\d+)-(?P<operation>\d{4})"),
        ]
    )
    assert p.parse("B123") == ParsedScan("operator", {"badge": "123"})
    assert p.parse("B1234") is None  # fullmatch, not a prefix match
    assert p.parse("77-0020") == ParsedScan("order_operation", {"order": "77", "operation": "0020"})


def test_order_operation_scan_starts_it_by_whoever_is_logged_in(parser: ScanParser) -> None:
    ops = StationOperators()
    ops.set_roster([B17])
    assert scan_event(scan("OP:B-17", "s0"), SRC, parser, ops) is None  # badge: nothing durable
    assert ops.of("PRESS-01") == "B-17"
    cmd = scan_event(scan("WO:1001/0010"), SRC, parser, ops)
    assert isinstance(cmd, OperationCommand)
    assert (cmd.action, cmd.order_id, cmd.op_no, cmd.work_center) == (
        OperationAction.START,
        "1001",
        "0010",
        "PRESS-01",
    )
    assert cmd.actor == "B-17" and cmd.event_id == "scan:PRESS-01:s1" and cmd.source == SRC
    assert cmd.source_ts == TS


def test_badge_login_is_per_work_center(parser: ScanParser) -> None:
    ops = StationOperators()
    ops.set_roster([B17])
    scan_event(scan("OP:B-17"), SRC, parser, ops)
    assert ops.of("PRESS-01") == "B-17"
    assert ops.of("CNC-02") is None
    ops.logout("PRESS-01")
    assert ops.of("PRESS-01") is None


def test_unknown_barcode_is_a_recorded_rejection(parser: ScanParser) -> None:
    rej = scan_event(scan("%%garbage%%", "s9"), SRC, parser, StationOperators())
    assert isinstance(rej, RawRejection)
    assert rej.reason_code == "unknown_barcode" and "%%garbage%%" in rej.reason
    assert (
        rej.event_id == "scan:PRESS-01:s9" and rej.work_center == "PRESS-01" and rej.type == "scan"
    )
    assert rej.payload == {"code": "%%garbage%%", "scanner": "SC-1"}


@pytest.mark.parametrize("code", ["SN:X99", "LOT:STEEL/L42"])
def test_serial_and_lot_scans_say_not_supported(parser: ScanParser, code: str) -> None:
    rej = scan_event(scan(code), SRC, parser, StationOperators())
    assert isinstance(rej, RawRejection) and rej.reason_code == "not_supported"
    assert "not implemented" in rej.reason


@pytest.mark.parametrize(
    ("type", "action"),
    [
        ("start", OperationAction.START),
        ("pause", OperationAction.PAUSE),
        ("resume", OperationAction.RESUME),
        ("complete", OperationAction.COMPLETE),
    ],
)
def test_terminal_commands(type: str, action: OperationAction) -> None:
    ops = StationOperators()
    ops.login("ASSY-03", "op-7")  # the operator a terminal names must be signed in there
    ev = terminal_event(term(type, order="1001", operation="0030", operator="op-7"), "t", ops)
    assert isinstance(ev, OperationCommand)
    assert (ev.action, ev.order_id, ev.op_no, ev.work_center, ev.actor) == (
        action,
        "1001",
        "0030",
        "ASSY-03",
        "op-7",
    )
    assert ev.event_id == "event:ASSY-03:m1" and ev.source_ts == TS


def test_terminal_actor_falls_back_to_the_logged_in_operator() -> None:
    ops = StationOperators()
    ops.login("ASSY-03", "B-5")
    ev = terminal_event(term("start", order="1001", operation="0030"), "t", ops)
    assert ev.actor == "B-5"


def test_report_with_good_and_scrap_with_reason() -> None:
    ev = terminal_event(
        term("report", order="1001", operation="0030", good=5, scrap=2, reason="dent"),
        "t",
        StationOperators(),
    )
    assert isinstance(ev, QuantityReported)
    assert (ev.good, ev.scrap, ev.by) == (5, {"dent": 2}, CountingSource.OPERATOR)
    assert (ev.order_id, ev.op_no, ev.work_center) == ("1001", "0030", "ASSY-03")


def test_report_scrap_without_reason_and_good_only() -> None:
    ev = terminal_event(
        term("report", order="1", operation="0010", scrap=1), "t", StationOperators()
    )
    assert isinstance(ev, QuantityReported) and ev.scrap == {"unspecified": 1} and ev.good == 0
    ev = terminal_event(
        term("report", order="1", operation="0010", good=3), "t", StationOperators()
    )
    assert isinstance(ev, QuantityReported) and ev.scrap == {} and ev.good == 3


def test_downtime_reason() -> None:
    ev = terminal_event(term("downtime_reason", reason="tooling"), "t", StationOperators())
    assert isinstance(ev, DowntimeReasonGiven)
    assert (ev.reason, ev.work_center, ev.event_id) == ("tooling", "ASSY-03", "event:ASSY-03:m1")


def test_the_same_message_id_gives_the_same_event_id() -> None:
    # At-least-once on the wire, exactly-once in effect: the dispatcher dedups on this id.
    a = terminal_event(
        term("report", id="x", order="1", operation="0010", good=1), "t", StationOperators()
    )
    b = terminal_event(
        term("report", id="x", order="1", operation="0010", good=1), "t", StationOperators()
    )
    assert a.event_id == b.event_id == "event:ASSY-03:x"
