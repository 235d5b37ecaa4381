"""OEE (ISO 22400-2) from planned busy time, a state timeline and counts; sums, not averages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes_edge.domain.calendar import Break, Calendar, Interval, Shift, expand, planned_intervals
from mes_edge.domain.oee import (
    LossBucket,
    OeeTotals,
    ProducedCount,
    StateInterval,
    TimelineState,
    compute,
)

BERLIN = ZoneInfo("Europe/Berlin")
MIN = timedelta(minutes=1)
RUN, IDLE, DOWN, SETUP = (TimelineState.RUNNING, TimelineState.IDLE, TimelineState.DOWN,
                          TimelineState.SETUP)
T0 = datetime(2026, 6, 1, 4, tzinfo=UTC)  # 06:00 in Berlin


def at(minutes: float) -> datetime:
    return T0 + minutes * MIN


def span(a: float, b: float) -> Interval:
    return Interval(at(a), at(b))


def state(a: float, b: float, s: TimelineState, **kw: object) -> StateInterval:
    return StateInterval(at(a), at(b), s, **kw)  # type: ignore[arg-type]


def pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def figures(t: OeeTotals) -> tuple[float | None, ...]:
    return pct(t.availability), pct(t.performance), pct(t.quality), pct(t.oee)


def test_the_published_worked_example() -> None:
    # A 480-minute shift, two 15-minute breaks and a 30-minute meal (60 minutes of breaks),
    # 47 minutes down, ideal cycle 1.0 s, 19,271 parts of which 423 rejects.
    shift = Shift("early", time(6), time(14), (Break(time(8), time(8, 15)),
                                               Break(time(10), time(10, 30), "meal"),
                                               Break(time(12), time(12, 15))))
    cal = Calendar("one", (shift,), (((("early",),) * 7),))
    [inst] = expand(cal, BERLIN, date(2026, 6, 1), date(2026, 6, 1))
    assert (inst.duration, inst.planned_time) == (480 * MIN, 420 * MIN)
    planned = planned_intervals(cal, BERLIN, inst.start, inst.end)
    timeline = [state(0, 120, RUN), state(120, 135, IDLE), state(135, 240, RUN),
                state(240, 270, IDLE), state(270, 317, DOWN), state(317, 360, RUN),
                state(360, 375, IDLE), state(375, 480, RUN)]
    made = [ProducedCount("P-1", good=19_271 - 423, scrap=423)]
    totals = compute(Interval(inst.start, inst.end), planned, timeline, made, ideal_cycle_s=1.0)
    assert (totals.planned_busy, totals.running, totals.stops) == (420 * MIN, 373 * MIN,
                                                                   47 * MIN)
    assert figures(totals) == (88.81, 86.11, 97.80, 74.79)
    assert totals.availability_exact() == Fraction(373, 420)
    assert totals.performance_exact() == Fraction(19_271, 373 * 60)
    assert totals.quality_exact() == Fraction(18_848, 19_271)
    assert totals.flags == ()
    losses = totals.six_big_losses()
    assert (losses.breakdowns, losses.small_stops, losses.setup_adjustment) == (47, 0, 0)
    assert losses.production_rejects == pytest.approx(423 / 60)
    assert losses.reduced_speed == pytest.approx(373 - 19_271 / 60)
    # The losses and the fully productive time add up to the planned busy time.
    productive = totals.fully_productive_minutes()
    assert productive is not None
    assert sum(v for v in vars_of(losses) if v is not None) + productive == pytest.approx(420)


def vars_of(obj: object) -> list[float | None]:
    return [getattr(obj, name) for name in obj.__slots__]  # type: ignore[attr-defined]


def _mixed_shift() -> tuple[list[Interval], list[StateInterval], list[ProducedCount]]:
    """100 planned minutes: 20 setup, 10 micro-stops of 30 s, one 10-minute stop, run."""
    timeline = [state(0, 20, SETUP)]
    t = 20.0
    for _ in range(10):
        timeline += [state(t, t + 2.5, RUN), state(t + 2.5, t + 3, IDLE)]
        t += 3
    timeline += [state(50, 60, DOWN), state(60, 100, RUN)]
    return [span(0, 100)], timeline, [ProducedCount("P-1", 3_000, 60, 20, ideal_cycle_s=1.0)]


def test_iso_counts_setup_and_micro_stops_against_availability_tpm_micro_stops_performance(
        ) -> None:
    planned, timeline, counts = _mixed_shift()
    iso = compute(span(0, 100), planned, timeline, counts, micro_stop_s=60, mode="iso")
    tpm = compute(span(0, 100), planned, timeline, counts, micro_stop_s=60, mode="tpm")
    assert (iso.running, iso.micro_stops, iso.setup, iso.stops) == (
        65 * MIN, 5 * MIN, 20 * MIN, 10 * MIN)
    assert iso.availability_exact() == Fraction(65, 100)
    assert tpm.availability_exact() == Fraction(70, 100)
    assert iso.performance_exact() == Fraction(3_060, 65 * 60)
    assert tpm.performance_exact() == Fraction(3_060, 70 * 60)
    # The split moves, OEE does not.
    assert iso.oee_exact() == tpm.oee_exact() == Fraction(3_060, 6_000) * Fraction(3_000, 3_060)
    assert iso.six_big_losses() == tpm.six_big_losses()
    losses = iso.six_big_losses()
    assert (losses.setup_adjustment, losses.small_stops, losses.breakdowns) == (20, 5, 10)
    assert (losses.startup_rejects, losses.production_rejects) == (pytest.approx(20 / 60),
                                                                   pytest.approx(40 / 60))


def test_a_stop_is_a_micro_stop_by_threshold_or_by_flag_and_setup_never_is() -> None:
    planned = [span(0, 60)]
    timeline = [state(0, 10, RUN), state(10, 10.5, DOWN), state(10.5, 20, RUN),
                state(20, 22, DOWN), state(22, 30, RUN), state(30, 30.5, SETUP),
                state(30.5, 40, RUN), state(40, 45, DOWN, micro_stop=True),
                state(45, 50, RUN), state(50, 50.25, IDLE, micro_stop=False), state(50.25, 60, RUN)]
    t = compute(span(0, 60), planned, timeline, [], micro_stop_s=60)
    assert (t.micro_stops, t.stops, t.setup) == (5.5 * MIN, 2.25 * MIN, 0.5 * MIN)
    assert compute(span(0, 60), planned, timeline, [], micro_stop_s=0).micro_stops == 5 * MIN


def test_reasons_in_the_planned_bucket_leave_planned_busy_time_and_setup_reasons_are_setup(
        ) -> None:
    timeline = [state(0, 30, RUN), state(30, 50, DOWN, loss=LossBucket.PLANNED),
                state(50, 60, TimelineState.PLANNED), state(60, 80, IDLE, loss=LossBucket.SETUP),
                state(80, 100, RUN)]
    t = compute(span(0, 100), [span(0, 100)], timeline, [])
    assert (t.planned_busy, t.planned_stops, t.setup, t.running) == (
        70 * MIN, 30 * MIN, 20 * MIN, 50 * MIN)
    assert t.availability_exact() == Fraction(50, 70)


def test_time_without_a_known_state_is_unrecorded_and_running_outside_plan_is_reported() -> None:
    # The span is 0-130 with planned busy time 0-100; the timeline starts before the span.
    timeline = [state(-30, 40, RUN), state(40, 50, TimelineState.UNKNOWN), state(70, 160, RUN)]
    t = compute(span(0, 130), [span(0, 100)], timeline,
                [ProducedCount("P-1", 10, ideal_cycle_s=6.0)])
    assert (t.running, t.unrecorded, t.outside_plan_run) == (70 * MIN, 30 * MIN, 30 * MIN)
    # The 30 unrecorded minutes are no evidence of a loss: availability is measured over the
    # 70 recorded planned minutes, and the gap is reported apart.
    assert t.availability_exact() == Fraction(70, 70)
    assert t.flags == ("unrecorded_time", "running_outside_plan")
    assert t.six_big_losses().unrecorded == 30


def test_zero_planned_busy_time_gives_none_not_zero_or_100() -> None:
    counts = [ProducedCount("P-1", 5, 1, ideal_cycle_s=1.0)]
    empty = compute(span(0, 10), [], [state(0, 10, RUN)], counts)
    assert (empty.availability, empty.performance, empty.oee) == (None, None, None)
    assert empty.quality == pytest.approx(5 / 6)  # units were made: their quality is known
    closed = compute(span(0, 60), [span(0, 60)], [state(0, 60, TimelineState.PLANNED)], [])
    assert closed.planned_busy == timedelta() and figures(closed) == (None, None, None, None)
    idle = compute(span(0, 60), [span(0, 60)], [state(0, 60, DOWN)], [])
    assert figures(idle) == (0.0, None, None, None)


def test_performance_above_100_is_returned_as_it_is_and_flagged() -> None:
    t = compute(span(0, 10), [span(0, 10)], [state(0, 10, RUN)], [ProducedCount("P-1", 1_000)],
                ideal_cycle_s=1.0)
    assert t.performance_exact() == Fraction(1_000, 600)
    assert pct(t.performance) == 166.67 and pct(t.oee) == 166.67
    assert t.performance_above_100 and "performance_above_100" in t.flags
    speed = t.six_big_losses().reduced_speed
    assert speed is not None and speed == pytest.approx(10 - 1_000 / 60)  # negative, not hidden


def test_ideal_cycle_of_the_operation_first_then_the_work_center_and_none_is_flagged() -> None:
    counts = [ProducedCount("fast", 600, ideal_cycle_s=0.5), ProducedCount("default", 300)]
    t = compute(span(0, 10), [span(0, 10)], [state(0, 10, RUN)], counts, ideal_cycle_s=1.0)
    assert t.ideal_s == 600 and t.performance_exact() == 1
    unknown = compute(span(0, 10), [span(0, 10)], [state(0, 10, RUN)], counts)
    assert unknown.units_without_ideal == 300 and unknown.performance is None
    assert unknown.oee is None and unknown.availability == 1.0
    assert "ideal_cycle_missing" in unknown.flags
    assert unknown.six_big_losses().reduced_speed is None


def test_summing_two_shifts_equals_computing_over_their_union() -> None:
    # Shift 1 is 0-60, shift 2 is 60-120; a 40-second stop crosses the boundary (20 s in each):
    # it stays a micro-stop in both halves because it is judged by its whole length.
    timeline = [state(0, 30, RUN), state(30, 45, DOWN), state(45, 59 + 2 / 3, RUN),
                state(59 + 2 / 3, 60 + 1 / 3, IDLE), state(60 + 1 / 3, 90, RUN),
                state(90, 100, SETUP), state(100, 120, RUN)]
    first = [ProducedCount("A", 1_500, 30, 10, ideal_cycle_s=1.2)]
    second = [ProducedCount("A", 800, 10, ideal_cycle_s=1.2), ProducedCount("B", 400, 5)]
    one = compute(span(0, 60), [span(0, 60)], timeline, first, ideal_cycle_s=0.9)
    two = compute(span(60, 120), [span(60, 120)], timeline, second, ideal_cycle_s=0.9)
    union = compute(span(0, 120), [span(0, 60), span(60, 120)], timeline, first + second,
                    ideal_cycle_s=0.9)
    assert one + two == union == sum([one, two], OeeTotals.zero())
    assert one.micro_stops == two.micro_stops == timedelta(seconds=20)
    assert union.oee_exact() == (one + two).oee_exact()
    # Not the average of the shift figures.
    assert one.oee is not None and two.oee is not None and union.oee is not None
    assert union.oee != pytest.approx((one.oee + two.oee) / 2)


def test_hours_of_a_calendar_shift_add_up_to_the_shift() -> None:
    cal = Calendar("c", (Shift("s", time(6), time(14), (Break(time(9), time(9, 30)),)),),
                   ((("s",),) * 7,))
    [inst] = expand(cal, BERLIN, date(2026, 6, 1), date(2026, 6, 1))
    timeline = [state(0, 200, RUN), state(200, 290, DOWN), state(290, 480, RUN)]
    hours = []
    for h in range(8):
        hour = Interval(inst.start + h * 60 * MIN, inst.start + (h + 1) * 60 * MIN)
        hours.append(compute(hour, planned_intervals(cal, BERLIN, hour.start, hour.end),
                             timeline, []))
    whole = compute(Interval(inst.start, inst.end),
                    planned_intervals(cal, BERLIN, inst.start, inst.end), timeline, [])
    assert sum(hours, OeeTotals.zero()) == whole
    # The break is minutes 180-210: 20 of them running (reported apart), 10 of them down.
    assert (whole.planned_busy, whole.stops, whole.outside_plan_run) == (
        450 * MIN, 80 * MIN, 20 * MIN)


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="state intervals overlap"):
        compute(span(0, 10), [span(0, 10)], [state(0, 6, RUN), state(5, 10, DOWN)], [])
    with pytest.raises(ValueError, match="planned intervals overlap"):
        compute(span(0, 20), [span(0, 10), span(5, 20)], [], [])
    with pytest.raises(ValueError, match="good must be a whole number"):
        ProducedCount("P-1", -1)
    with pytest.raises(ValueError, match="startup_scrap exceeds scrap"):
        ProducedCount("P-1", 1, scrap=1, startup_scrap=2)
    with pytest.raises(ValueError, match="ideal_cycle_s must be > 0"):
        ProducedCount("P-1", 1, ideal_cycle_s=0)
    with pytest.raises(ValueError, match="micro_stop applies to stops"):
        state(0, 1, RUN, micro_stop=True)
    with pytest.raises(ValueError, match="unknown state 'runing' \\(one of: running, idle"):
        StateInterval(at(0), at(1), "runing")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        StateInterval(datetime(2026, 1, 1), datetime(2026, 1, 2), RUN)
    with pytest.raises(ValueError, match="mode must be"):
        compute(span(0, 1), [], [], [], mode="oee")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot add"):
        OeeTotals.zero("iso") + OeeTotals.zero("tpm")


_STATES = st.sampled_from([RUN, RUN, RUN, IDLE, DOWN, SETUP, TimelineState.PLANNED,
                           TimelineState.UNKNOWN])


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.tuples(st.integers(1, 40), _STATES), min_size=1, max_size=25),
       cut=st.integers(1, 199), micro=st.sampled_from([0, 30, 120, 600]),
       mode=st.sampled_from(["iso", "tpm"]))
def test_any_split_of_a_span_sums_to_the_whole(
        lengths: list[tuple[int, TimelineState]], cut: int, micro: int, mode: str) -> None:
    timeline, t = [], -20
    for minutes, s in lengths:
        timeline.append(state(t, t + minutes, s))
        t += minutes
    kw = {"micro_stop_s": micro, "mode": mode}
    planned = [span(0, 90), span(110, 200)]  # a break in the middle
    parts = (compute(span(0, cut), planned, timeline, [], **kw)  # type: ignore[arg-type]
             + compute(span(cut, 200), planned, timeline, [], **kw))  # type: ignore[arg-type]
    assert parts == compute(span(0, 200), planned, timeline, [], **kw)  # type: ignore[arg-type]
    assert (parts.planned_busy + parts.planned_stops == 180 * MIN
            == parts.running + parts.micro_stops + parts.setup + parts.stops + parts.unrecorded
            + parts.planned_stops)
