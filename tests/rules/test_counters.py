"""CounterTracker: baselines, deltas, rollover, resets, unassigned jumps, resume after restart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mes_edge.config.settings import CounterRule
from mes_edge.dispatcher import CounterBaseline, RawRejection
from mes_edge.domain import Checkpoint, CountingSource, QuantityReported
from mes_edge.rules import CounterTracker

TS = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def tracker(committed: Checkpoint | None = None, **rule: Any) -> CounterTracker:
    """A tracker of plc1/good on PRESS-01 with the given rule overrides."""
    return CounterTracker(CounterRule(device="plc1", tag="good", **rule), "PRESS-01", committed)


def qty(item: object) -> QuantityReported:
    assert isinstance(item, QuantityReported), item
    return item


def feed(t: CounterTracker, *values: object) -> list[object]:
    """The items of successive readings (None for unchanged readings)."""
    return [t.on_value(v, TS) for v in values]


def test_first_reading_is_a_baseline_that_counts_nothing() -> None:
    item = tracker().on_value(1040, TS)
    assert item == CounterBaseline(Checkpoint("plc1", "good", 1040, 0))


def test_increments_become_machine_counted_quantities_with_checkpoints() -> None:
    t = tracker()
    _, first, same, second = feed(t, 1040, 1043, 1043, 1050)
    assert same is None
    q = qty(first)
    assert (q.good, q.scrap, q.rework) == (3, {}, 0)
    assert q.by == CountingSource.MACHINE and q.work_center == "PRESS-01"
    assert q.order_id is None  # goes to whatever runs on the work center
    assert q.checkpoint == Checkpoint("plc1", "good", 1043, 0)
    assert q.event_id == "plc1/good/0/1043" and q.source_ts == TS
    assert qty(second).good == 7


@pytest.mark.parametrize(("counts", "expect"), [
    ("scrap", {"good": 0, "scrap": {"machine": 2}, "rework": 0}),
    ("rework", {"good": 0, "scrap": {}, "rework": 2}),
])
def test_scrap_and_rework_counters(counts: str, expect: dict[str, object]) -> None:
    q = qty(feed(tracker(counts=counts), 5, 7)[1])
    assert {"good": q.good, "scrap": q.scrap, "rework": q.rework} == expect


def test_scrap_counter_uses_its_configured_reason() -> None:
    q = qty(feed(tracker(counts="scrap", scrap_reason="dent"), 5, 6)[1])
    assert q.scrap == {"dent": 1}


@pytest.mark.parametrize(("bits", "top"), [(16, 0xFFFF), (32, 0xFFFF_FFFF), (64, 2**63 - 1)])
def test_rollover_at_the_type_maximum_counts_exactly(bits: int, top: int) -> None:
    t = tracker(bits=bits)
    if bits == 64:  # a 64-bit counter cannot be stored near its top: it is always a reset
        assert qty(feed(t, top - 2, 3)[1]).good == 3
        return
    items = feed(t, top - 2, top, 1, 4)
    # top-2 -> top: 2; top -> 1: 2 (top -> 0 -> 1); 1 -> 4: 3
    assert [qty(i).good for i in items[1:]] == [2, 2, 3]
    assert qty(items[2]).checkpoint == Checkpoint("plc1", "good", 1, 1)
    assert qty(items[2]).readings == (top, 1) and qty(items[2]).unassigned_reason is None
    assert qty(items[2]).event_id == "plc1/good/1/1"


def test_uint16_wrap_65530_to_7_counts_13() -> None:
    q = qty(feed(tracker(bits=16), 65530, 7)[1])
    assert q.good == 13 and q.readings == (65530, 7)


def test_rollover_to_zero_exactly() -> None:
    items = feed(tracker(bits=16), 65534, 0)
    assert qty(items[1]).good == 2


def test_without_a_resolved_width_a_counter_is_32_bits() -> None:
    # Settings resolves `bits` from the tag's type; a bare rule (and an OPC UA tag) is 32-bit.
    rule = CounterRule(device="plc1", tag="good")
    assert rule.bits is None and rule.width == 32
    assert qty(feed(tracker(), 0xFFFF_FFFA, 7)[1]).good == 13
    # ... so a 16-bit wrap is a reset: only the 7 made since 0 are counted.
    assert qty(feed(tracker(), 65530, 7)[1]).good == 7


@pytest.mark.parametrize("last", [55_536, 60_036, 64_000, 64_511])
def test_a_reset_from_a_high_value_on_16_bits_is_no_rollover(last: int) -> None:
    # With max_delta 10,000 a wrap would be plausible from above 55,535; the rollover window
    # of a 16-bit counter is 1/64 of its range (1,024), so these drops are resets.
    t = tracker(bits=16)
    assert t.window == 1024
    items = feed(t, last, 0, 3)
    assert items[1] == CounterBaseline(Checkpoint("plc1", "good", 0, 1))
    assert qty(items[2]).good == 3
    q = qty(feed(tracker(bits=16), last, 5)[1])  # reset and 5 made since: on_reset count
    assert q.good == 5 and q.readings == (last, 5)


def test_the_rollover_window_bounds_the_parts_across_the_wrap() -> None:
    # 65536 - 64512 + 0 = 1024 parts across the wrap: a rollover; one more is a reset.
    assert qty(feed(tracker(bits=16), 64_512, 0)[1]).good == 1024
    assert qty(feed(tracker(bits=16), 64_600, 1000)[1]).good == 1000  # 936 + 1000 > 1024
    assert isinstance(feed(tracker(bits=16), 64_511, 0)[1], CounterBaseline)
    # A smaller max_delta tightens the window, a configured window overrides the default.
    assert qty(feed(tracker(bits=16, max_delta=100), 65_500, 50)[1]).good == 86  # 36 + 50
    assert qty(feed(tracker(bits=16, max_delta=100), 65_450, 60)[1]).good == 60  # 86 + 60
    wide = tracker(bits=16, rollover_window=5000)
    assert qty(feed(wide, 61_000, 10)[1]).good == 4546


def test_a_32_bit_counter_keeps_max_delta_as_its_rollover_window() -> None:
    t = tracker(bits=32, max_delta=10_000)
    assert t.window == 10_000
    assert qty(feed(t, 2**32 - 9_000, 500)[1]).good == 9_500
    assert isinstance(feed(tracker(bits=32), 2**32 - 20_000, 0)[1], CounterBaseline)


def test_a_window_larger_than_max_delta_is_refused() -> None:
    with pytest.raises(ValueError, match="rollover_window 200 exceeds max_delta 100"):
        CounterRule(device="plc1", tag="good", max_delta=100, rollover_window=200)


def test_reset_to_zero_is_a_new_baseline_never_a_huge_or_negative_delta() -> None:
    t = tracker(bits=32)
    items = feed(t, 500, 510, 0, 4)
    assert qty(items[1]).good == 10
    assert items[2] == CounterBaseline(Checkpoint("plc1", "good", 0, 1))
    assert qty(items[3]).good == 4
    assert qty(items[3]).readings == (0, 4)


def test_reset_to_a_small_value_counts_it_when_on_reset_is_count() -> None:
    # The PLC was reset and made 3 parts before we read it again: those 3 were produced.
    items = feed(tracker(bits=32, on_reset="count"), 500, 3)
    q = qty(items[1])
    assert q.good == 3 and q.checkpoint == Checkpoint("plc1", "good", 3, 1)
    assert q.readings == (500, 3) and q.unassigned_reason is None


def test_reset_to_a_small_value_only_rebaselines_when_on_reset_is_baseline() -> None:
    items = feed(tracker(bits=32, on_reset="baseline"), 500, 3, 5)
    assert items[1] == CounterBaseline(Checkpoint("plc1", "good", 3, 1))
    assert qty(items[2]).good == 2


def test_on_reset_baseline_still_counts_a_true_rollover() -> None:
    items = feed(tracker(bits=16, on_reset="baseline"), 65_530, 7, 9)
    assert [qty(i).good for i in items[1:]] == [13, 2]


def test_drop_to_a_value_above_max_delta_is_a_baseline() -> None:
    items = feed(tracker(bits=32, max_delta=100), 50_000, 20_000, 20_001)
    assert items[1] == CounterBaseline(Checkpoint("plc1", "good", 20_000, 1))
    assert qty(items[2]).good == 1


def test_drop_far_from_the_maximum_is_a_reset_not_a_rollover_on_16_bits() -> None:
    # 30,000 -> 10 on a 16-bit counter: a wrap would be 35,546 > max_delta, so a reset.
    items = feed(tracker(bits=16, max_delta=10_000), 30_000, 10)
    assert qty(items[1]).good == 10


def test_a_jump_over_max_delta_is_counted_whole_as_unassigned_production() -> None:
    t = tracker(max_delta=100)
    items = feed(t, 10, 5_000, 5_002)
    q = qty(items[1])
    # A PLC count is a fact: the whole jump is counted, for a supervisor to assign or write off.
    assert q.good == 4_990 and q.unassigned_reason == "counter_jump"
    assert q.readings == (10, 5_000) and q.by == CountingSource.MACHINE
    assert q.event_id == "plc1/good/0/5000" and q.work_center == "PRESS-01"
    assert q.checkpoint == Checkpoint("plc1", "good", 5_000, 0)
    after = qty(items[2])
    assert after.good == 2 and after.unassigned_reason is None
    assert after.event_id == "plc1/good/0/5002"


def test_a_jump_of_scrap_keeps_its_reason() -> None:
    q = qty(feed(tracker(counts="scrap", scrap_reason="dent", max_delta=10), 0, 50)[1])
    assert q.scrap == {"dent": 50} and q.good == 0 and q.unassigned_reason == "counter_jump"


def test_after_a_long_outage_the_parts_made_meanwhile_are_counted_as_unassigned() -> None:
    # The service comes back to a committed checkpoint of 1,000; the PLC made 25,000 since.
    q = qty(tracker(Checkpoint("plc1", "good", 1_000, 2)).on_value(26_000, TS))
    assert q.good == 25_000 and q.unassigned_reason == "counter_jump"
    assert q.event_id == "plc1/good/2/26000" and q.readings == (1_000, 26_000)


def test_a_jump_of_exactly_max_delta_is_counted() -> None:
    q = qty(feed(tracker(max_delta=100), 10, 110)[1])
    assert q.good == 100 and q.unassigned_reason is None


@pytest.mark.parametrize("raw", [-1, 2.5, "12", None, True, float("nan"), float("inf"), [1]])
def test_non_counter_values_are_rejected_and_leave_the_state_alone(raw: object) -> None:
    t = tracker()
    t.on_value(10, TS)
    rej = t.on_value(raw, TS)
    assert isinstance(rej, RawRejection) and rej.reason_code == "bad_counter_value"
    assert rej.checkpoint is None and rej.work_center == "PRESS-01"
    assert qty(t.on_value(12, TS)).good == 2


def test_whole_floats_are_accepted_as_counter_values() -> None:
    assert qty(feed(tracker(), 10.0, 12.0)[1]).good == 2


def test_event_ids_stay_unique_across_rollover_and_reset_generations() -> None:
    t = tracker(bits=16, max_delta=100)
    values = [65530, 65535, 5, 0, 5, 40, 0, 5, 65500, 65535, 5]
    items = [i for i in feed(t, *values) if isinstance(i, QuantityReported)]
    ids = [i.event_id for i in items]
    assert len(ids) == len(set(ids)) == 8
    # The readings 5 and 65535 were counted in several generations, each with its own id; a
    # forward jump (5 -> 65500) stays in its generation, only drops move it on.
    assert [i for i in ids if i.endswith("/5")] == [
        "plc1/good/1/5", "plc1/good/2/5", "plc1/good/3/5", "plc1/good/4/5"]
    assert [i for i in ids if i.endswith("/65535")] == ["plc1/good/0/65535", "plc1/good/3/65535"]
    assert [i.unassigned_reason for i in items].count("counter_jump") == 1
    # Every count carries its readings, and they chain: each starts where the last one ended
    # (the resets to 0 in between are baselines).
    assert [i.readings for i in items] == [
        (65530, 65535), (65535, 5), (0, 5), (5, 40), (0, 5), (5, 65500), (65500, 65535),
        (65535, 5)]


def test_resume_from_a_committed_checkpoint_counts_what_was_made_while_away() -> None:
    t = tracker(Checkpoint("plc1", "good", 1040, 3))
    q = qty(t.on_value(1052, TS))
    assert q.good == 12 and q.event_id == "plc1/good/3/1052"
    assert q.checkpoint == Checkpoint("plc1", "good", 1052, 3)


def test_resume_with_an_unchanged_reading_counts_nothing() -> None:
    assert tracker(Checkpoint("plc1", "good", 1040, 0)).on_value(1040, TS) is None


def test_resume_after_a_reset_while_away_continues_the_generation() -> None:
    t = tracker(Checkpoint("plc1", "good", 900, 2), on_reset="count")
    q = qty(t.on_value(7, TS))
    assert q.good == 7 and q.checkpoint == Checkpoint("plc1", "good", 7, 3)
    assert q.event_id == "plc1/good/3/7"


def test_the_same_reading_replayed_after_a_restart_gives_the_same_event_id() -> None:
    # Killed after the event was built but before it committed: after the restart the tracker
    # starts from the same committed checkpoint and derives the same id, so it counts once.
    cp = Checkpoint("plc1", "good", 100, 0)
    a = qty(tracker(cp).on_value(105, TS))
    b = qty(tracker(cp).on_value(105, TS))
    assert a.event_id == b.event_id and a.good == b.good == 5
