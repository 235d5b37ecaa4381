"""StateTracker, TriggerTracker and SignalRules routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drivers import Quality, Signal
from mes_edge.config.settings import CounterRule, RuleSettings, StateRule, TriggerRule
from mes_edge.dispatcher import CounterBaseline
from mes_edge.domain import (
    Checkpoint,
    MachineState,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    QuantityReported,
)
from mes_edge.rules import SignalRules, StateTracker, TriggerTracker

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_state_codes_map_to_states_and_only_changes_are_emitted() -> None:
    t = StateTracker(StateRule(device="plc1", tag="state"), "PRESS-01")
    items = [t.on_value(code, at(i)) for i, code in enumerate([1, 1, 3, 3, 2, 4, 1])]
    states = [i.state if isinstance(i, MachineStateChanged) else None for i in items]
    assert states == [MachineState.RUNNING, None, MachineState.DOWN, None, MachineState.IDLE,
                      MachineState.SETUP, MachineState.RUNNING]
    first = items[0]
    assert isinstance(first, MachineStateChanged)
    assert first.work_center == "PRESS-01" and first.source == "plc1" and first.source_ts == T0


def test_state_event_ids_differ_for_each_change() -> None:
    t = StateTracker(StateRule(device="plc1", tag="state"), "PRESS-01")
    ids = [i.event_id for i in (t.on_value(c, at(n)) for n, c in enumerate([1, 3, 1, 3]))
           if isinstance(i, MachineStateChanged)]
    assert len(set(ids)) == 4


def test_a_configured_code_map_is_used() -> None:
    rule = StateRule(device="plc1", tag="state",
                     map={10: MachineState.SETUP, 20: MachineState.RUNNING})
    t = StateTracker(rule, "CNC-02")
    a, b = t.on_value(10, at(0)), t.on_value(20, at(1))
    assert isinstance(a, MachineStateChanged) and a.state == MachineState.SETUP
    assert isinstance(b, MachineStateChanged) and b.state == MachineState.RUNNING


def test_unknown_codes_and_garbage_are_unknown_state_once() -> None:
    t = StateTracker(StateRule(device="plc1", tag="state"), "PRESS-01")
    t.on_value(1, at(0))
    unknown = t.on_value(99, at(1))
    assert isinstance(unknown, MachineStateChanged) and unknown.state == MachineState.UNKNOWN
    for n, garbage in enumerate(["x", None, float("nan"), float("inf"), 98], start=2):
        assert t.on_value(garbage, at(n)) is None  # still UNKNOWN: no new event
    back = t.on_value(1, at(9))
    assert isinstance(back, MachineStateChanged) and back.state == MachineState.RUNNING


def test_rising_edge_trigger() -> None:
    t = TriggerTracker(TriggerRule(device="plc1", tag="done", action="complete"), "PRESS-01")
    items = [t.on_value(v, at(i)) for i, v in enumerate([True, False, True, True, False, True])]
    # The first reading is no edge even when it is True (we do not know what it was before).
    fired = [i for i, item in enumerate(items) if item is not None]
    assert fired == [2, 5]
    cmd = items[2]
    assert isinstance(cmd, OperationCommand)
    assert cmd.action == OperationAction.COMPLETE and cmd.work_center == "PRESS-01"
    assert cmd.order_id is None and cmd.source_ts == at(2)
    assert cmd.event_id != items[5].event_id  # type: ignore[union-attr]


def test_falling_edge_trigger() -> None:
    t = TriggerTracker(TriggerRule(device="plc1", tag="run", edge="falling", action="pause"),
                       "PRESS-01")
    items = [t.on_value(v, at(i)) for i, v in enumerate([0, 1, 0, 0, 1, 0])]
    fired = [i for i, item in enumerate(items) if item is not None]
    assert fired == [2, 5]
    assert isinstance(items[2], OperationCommand) and items[2].action == OperationAction.PAUSE


def test_first_reading_is_never_an_edge() -> None:
    for first in (True, False):
        t = TriggerTracker(TriggerRule(device="plc1", tag="x", action="resume"), "PRESS-01")
        assert t.on_value(first, at(0)) is None


def _rules(checkpoints: dict[tuple[str, str], Checkpoint] | None = None) -> SignalRules:
    rule = RuleSettings(
        work_center="PRESS-01",
        counters=[CounterRule.model_validate({"device": "plc1", "tag": "good"}),
                  CounterRule.model_validate({"device": "plc1", "tag": "scrap",
                                              "counts": "scrap"})],
        state=StateRule(device="plc1", tag="state"),
        triggers=[TriggerRule(device="plc1", tag="done", action="complete")])
    return SignalRules([rule], checkpoints or {})


def test_signal_rules_route_by_device_and_tag_in_signal_order() -> None:
    rules = _rules({("plc1", "good"): Checkpoint("plc1", "good", 100, 0)})
    out = rules.on_signals([
        Signal("plc1", "good", 104, source_ts=at(1)),
        Signal("plc1", "scrap", 7, source_ts=at(1)),
        Signal("plc1", "state", 1, source_ts=at(1)),
        Signal("plc1", "done", False, source_ts=at(1)),
        Signal("plc2", "good", 5, source_ts=at(1)),  # not configured: ignored
        Signal("plc1", "other", 5, source_ts=at(1)),
    ])
    assert isinstance(out[0], QuantityReported) and out[0].good == 4
    assert out[1] == CounterBaseline(Checkpoint("plc1", "scrap", 7, 0))
    assert isinstance(out[2], MachineStateChanged)
    assert len(out) == 3  # the trigger's first reading is no edge


def test_bad_quality_and_missing_values_are_ignored() -> None:
    rules = _rules({("plc1", "good"): Checkpoint("plc1", "good", 100, 0)})
    assert rules.on_signals([
        Signal("plc1", "good", 10**9, quality=Quality.BAD, error="timeout"),
        Signal("plc1", "good", None, quality=Quality.UNCERTAIN),
        Signal("plc1", "state", 3, quality=Quality.BAD),
    ]) == []
    # The BAD reading did not move the counter: the next good reading counts from 100.
    out = rules.on_signals([Signal("plc1", "good", 101)])
    assert isinstance(out[0], QuantityReported) and out[0].good == 1


def test_signal_without_source_time_uses_its_receive_time() -> None:
    rules = _rules()
    sig = Signal("plc1", "state", 1, received_ts=at(5))
    out = rules.on_signals([sig])
    assert isinstance(out[0], MachineStateChanged) and out[0].source_ts == at(5)
