"""CounterTracker: baselines, deltas, rollover, resets, refused jumps and resume after restart."""

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


@pytest.mark.parametrize(("bits", "top"), [(16, 0xFFFF), (32, 0xFFFF_FFFF)])
def test_rollover_at_the_type_maximum_counts_exactly(bits: int, top: int) -> None:
    t = tracker(bits=bits)
    items = feed(t, top - 2, top, 1, 4)
    # top-2 -> top: 2; top -> 1: 2 (top -> 0 -> 1); 1 -> 4: 3
    assert [qty(i).good for i in items[1:]] == [2, 2, 3]
    assert qty(items[2]).checkpoint == Checkpoint("plc1", "good", 1, 1)


def test_rollover_to_zero_exactly() -> None:
    items = feed(tracker(bits=16), 65534, 0)
    assert qty(items[1]).good == 2


def test_reset_to_zero_is_a_new_baseline_never_a_huge_or_negative_delta() -> None:
    t = tracker(bits=32)
    items = feed(t, 500, 510, 0, 4)
    assert qty(items[1]).good == 10
    assert items[2] == CounterBaseline(Checkpoint("plc1", "good", 0, 1))
    assert qty(items[3]).good == 4


def test_reset_to_a_small_value_counts_it_when_on_reset_is_count() -> None:
    # The PLC was reset and made 3 parts before we read it again: those 3 were produced.
    items = feed(tracker(bits=32, on_reset="count"), 500, 3)
    q = qty(items[1])
    assert q.good == 3 and q.checkpoint == Checkpoint("plc1", "good", 3, 1)


def test_reset_to_a_small_value_only_rebaselines_when_on_reset_is_baseline() -> None:
    items = feed(tracker(bits=32, on_reset="baseline"), 500, 3, 5)
    assert items[1] == CounterBaseline(Checkpoint("plc1", "good", 3, 1))
    assert qty(items[2]).good == 2


def test_drop_to_a_value_above_max_delta_is_a_baseline() -> None:
    items = feed(tracker(bits=32, max_delta=100), 50_000, 20_000, 20_001)
    assert items[1] == CounterBaseline(Checkpoint("plc1", "good", 20_000, 1))
    assert qty(items[2]).good == 1


def test_drop_far_from_the_maximum_is_a_reset_not_a_rollover_on_16_bits() -> None:
    # 30,000 -> 10 on a 16-bit counter: a wrap would be 35,546 > max_delta, so a reset.
    items = feed(tracker(bits=16, max_delta=10_000), 30_000, 10)
    assert qty(items[1]).good == 10


def test_jump_over_max_delta_is_refused_and_recorded_with_its_checkpoint() -> None:
    t = tracker(max_delta=100)
    items = feed(t, 10, 5_000, 5_002)
    rej = items[1]
    assert isinstance(rej, RawRejection)
    assert rej.reason_code == "counter_jump" and rej.work_center == "PRESS-01"
    assert rej.payload == {"from": 10, "to": 5_000}
    # The checkpoint moves on, so the refused jump is never counted later either.
    assert rej.checkpoint == Checkpoint("plc1", "good", 5_000, 1)
    assert qty(items[2]).good == 2


def test_a_jump_of_exactly_max_delta_is_counted() -> None:
    assert qty(feed(tracker(max_delta=100), 10, 110)[1]).good == 100


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
    ids = [i.event_id for i in feed(t, *values) if isinstance(i, QuantityReported)]
    assert len(ids) == len(set(ids)) >= 5
    # The readings 5 and 65535 were counted in several generations, each with its own id.
    assert [i for i in ids if i.endswith("/5")] == [
        "plc1/good/1/5", "plc1/good/2/5", "plc1/good/3/5", "plc1/good/5/5"]
    assert [i for i in ids if i.endswith("/65535")] == ["plc1/good/0/65535", "plc1/good/4/65535"]


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
