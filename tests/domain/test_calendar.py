"""Shift calendars expanded into UTC: DST nights, night shifts, breaks, rotations, exceptions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from mes_edge.config.calendar import (
    CalendarSettings,
    build_calendars,
    check_work_center_calendars,
)
from mes_edge.config.loader import format_validation_error
from mes_edge.domain.calendar import (
    Break,
    Calendar,
    CalendarError,
    Closure,
    ExtraShift,
    Holiday,
    Interval,
    Shift,
    expand,
    planned_intervals,
    shift_at,
    shifts_between,
    to_utc,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
EARLY = Shift("early", time(6), time(14), (Break(time(9), time(9, 15)),
                                           Break(time(12), time(12, 30))))
LATE = Shift("late", time(14), time(22))
NIGHT = Shift("night", time(22), time(6))
ALL = ("early", "late", "night")
MON_FRI: tuple[str, ...] = ("early", "late")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def week(*days: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(days) + ((),) * (7 - len(days))


def three_shifts(**changes: Any) -> Calendar:
    """Early, late and night every day of the week."""
    fields: dict[str, Any] = {"name": "3x8", "shifts": (EARLY, LATE, NIGHT),
                              "weeks": ((ALL,) * 7,)}
    return Calendar(**(fields | changes))


def one(instances: list[Any], shift: str, day: date) -> Any:
    [found] = [i for i in instances if i.shift == shift and i.production_date == day]
    return found


# --- local time -> UTC ------------------------------------------------------------------------


def test_a_time_in_the_spring_gap_moves_forward_to_the_transition() -> None:
    assert to_utc(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1)  # 03:00 CEST
    assert to_utc(datetime(2026, 3, 29, 2, 0), BERLIN) == utc(2026, 3, 29, 1)
    assert to_utc(datetime(2026, 3, 8, 2, 30), NEW_YORK) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert to_utc(datetime(2026, 3, 29, 3, 0), BERLIN) == utc(2026, 3, 29, 1)  # first valid


def test_an_ambiguous_time_in_the_autumn_overlap_takes_its_first_occurrence() -> None:
    assert to_utc(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)  # CEST
    assert to_utc(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)  # EDT
    assert to_utc(datetime(2026, 11, 1, 2, 0), NEW_YORK) == utc(2026, 11, 1, 7)  # EST again


def test_to_utc_wants_a_naive_local_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_utc(utc(2026, 1, 1), BERLIN)


# --- DST nights -------------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "day", "start", "end", "hours"), [
    (BERLIN, date(2026, 3, 28), utc(2026, 3, 28, 21), utc(2026, 3, 29, 4), 7),
    (BERLIN, date(2026, 10, 24), utc(2026, 10, 24, 20), utc(2026, 10, 25, 5), 9),
    (NEW_YORK, date(2026, 3, 7), utc(2026, 3, 8, 3), utc(2026, 3, 8, 10), 7),
    (NEW_YORK, date(2026, 10, 31), utc(2026, 11, 1, 2), utc(2026, 11, 1, 11), 9),
])
def test_a_night_shift_lasts_7_h_in_spring_and_9_h_in_autumn(
        tz: ZoneInfo, day: date, start: datetime, end: datetime, hours: int) -> None:
    shifts = expand(three_shifts(), tz, day, day + timedelta(days=1))
    night = one(shifts, "night", day)
    assert (night.start, night.end) == (start, end)
    assert night.duration == night.planned_time == hours * H
    # The next shift starts when this one ends.
    assert one(shifts, "early", day + timedelta(days=1)).start == end


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_a_year_of_three_shifts_is_seamless_and_sums_to_the_real_elapsed_time(
        tz: ZoneInfo) -> None:
    shifts = expand(three_shifts(), tz, date(2026, 1, 1), date(2026, 12, 31))
    assert len(shifts) == 3 * 365
    assert all(a.end == b.start for a, b in pairwise(shifts))
    elapsed = shifts[-1].end - shifts[0].start
    # The 23 h spring day and the 25 h autumn day cancel out over the year.
    assert sum((s.duration for s in shifts), timedelta()) == elapsed == 365 * 24 * H
    assert sorted({s.duration for s in shifts}) == [7 * H, 8 * H, 9 * H]


def test_shift_boundaries_inside_the_gap_and_the_overlap_stay_seamless() -> None:
    a = Shift("a", time(18, 30), time(2, 30))
    b = Shift("b", time(2, 30), time(10, 30))
    c = Shift("c", time(10, 30), time(18, 30))
    cal = Calendar("odd", (a, b, c), ((("a", "b", "c"),) * 7,))
    spring = expand(cal, NEW_YORK, date(2026, 3, 7), date(2026, 3, 8))
    a7, b8 = one(spring, "a", date(2026, 3, 7)), one(spring, "b", date(2026, 3, 8))
    # 02:30 does not exist on 2026-03-08: both the end of a and the start of b move to 03:00 EDT.
    assert a7.end == b8.start == utc(2026, 3, 8, 7)
    assert (a7.duration, b8.duration) == (7.5 * H, 7.5 * H)
    c_cal = Calendar("c", (Shift("a", time(17, 30), time(1, 30)),
                           Shift("b", time(1, 30), time(9, 30)),
                           Shift("c", time(9, 30), time(17, 30))), ((("a", "b", "c"),) * 7,))
    autumn = expand(c_cal, NEW_YORK, date(2026, 10, 31), date(2026, 11, 1))
    a31, b1 = one(autumn, "a", date(2026, 10, 31)), one(autumn, "b", date(2026, 11, 1))
    # 01:30 happens twice on 2026-11-01: the first one (EDT) ends a and starts b.
    assert a31.end == b1.start == utc(2026, 11, 1, 5, 30)
    assert (a31.duration, b1.duration) == (8 * H, 9 * H)


def test_a_whole_day_shift_lasts_23_h_on_the_spring_day() -> None:
    cal = Calendar("24h", (Shift("day", time(6), time(6)),), ((("day",),) * 7,))
    [sat, sun, mon] = expand(cal, BERLIN, date(2026, 3, 28), date(2026, 3, 30))
    assert (sat.duration, sun.duration, mon.duration) == (23 * H, 24 * H, 24 * H)


# --- breaks -----------------------------------------------------------------------------------


def test_breaks_are_planned_stops_and_planned_time_comes_from_the_instants() -> None:
    [early] = expand(three_shifts(), BERLIN, date(2026, 6, 1), date(2026, 6, 1))[:1]
    assert early.shift == "early" and early.duration == 8 * H
    assert [(b.start, b.end, b.kind) for b in early.breaks] == [
        (utc(2026, 6, 1, 7), utc(2026, 6, 1, 7, 15), "break"),
        (utc(2026, 6, 1, 10), utc(2026, 6, 1, 10, 30), "break")]
    assert early.planned_time == 8 * H - 45 * timedelta(minutes=1)
    assert [(i.start, i.end) for i in early.busy] == [
        (utc(2026, 6, 1, 4), utc(2026, 6, 1, 7)),
        (utc(2026, 6, 1, 7, 15), utc(2026, 6, 1, 10)),
        (utc(2026, 6, 1, 10, 30), utc(2026, 6, 1, 12))]


def test_breaks_of_a_night_shift_after_midnight_are_on_the_next_day_and_follow_dst() -> None:
    night = Shift("night", time(22), time(6), (Break(time(23, 45), time(0, 15), "meal"),
                                               Break(time(2), time(2, 30), "coffee")))
    cal = three_shifts(shifts=(EARLY, LATE, night))
    june = one(expand(cal, BERLIN, date(2026, 6, 1), date(2026, 6, 1)), "night", date(2026, 6, 1))
    assert [(b.start, b.end, b.name) for b in june.breaks] == [
        (utc(2026, 6, 1, 21, 45), utc(2026, 6, 1, 22, 15), "meal"),
        (utc(2026, 6, 2, 0), utc(2026, 6, 2, 0, 30), "coffee")]
    assert june.planned_time == 7 * H
    # Spring: 02:00-02:30 does not exist, the coffee break shrinks to nothing and is left out.
    spring = one(expand(cal, BERLIN, date(2026, 3, 28), date(2026, 3, 28)), "night",
                 date(2026, 3, 28))
    assert [b.name for b in spring.breaks] == ["meal"]
    assert (spring.duration, spring.planned_time) == (7 * H, 6.5 * H)
    # Autumn: 02:00-02:30 happens twice, the break is the first one (CEST).
    autumn = one(expand(cal, BERLIN, date(2026, 10, 24), date(2026, 10, 24)), "night",
                 date(2026, 10, 24))
    assert autumn.breaks[1].start == utc(2026, 10, 25, 0)
    assert (autumn.duration, autumn.planned_time) == (9 * H, 8 * H)


# --- rotations --------------------------------------------------------------------------------


def test_a_two_week_rotation_alternates_from_its_anchor_also_backwards() -> None:
    cal = Calendar("2w", (EARLY, LATE), (week(*[("early",)] * 5), week(*[("late",)] * 5)),
                   anchor=date(2026, 1, 5))
    shifts = expand(cal, BERLIN, date(2025, 12, 29), date(2026, 1, 25))
    by_week = [sorted({s.shift for s in shifts if 0 <= (s.production_date - d).days < 7})
               for d in (date(2025, 12, 29), date(2026, 1, 5), date(2026, 1, 12),
                         date(2026, 1, 19))]
    assert by_week == [["late"], ["early"], ["late"], ["early"]]
    assert len(shifts) == 4 * 5 and all(s.production_date.weekday() < 5 for s in shifts)


def test_a_three_week_rotation_starting_on_sunday() -> None:
    # US plants start the week on Sunday: the rotation's weeks start on the anchor's weekday.
    cal = Calendar("3w", (EARLY, LATE, NIGHT),
                   tuple(((name,),) * 7 for name in ALL), anchor=date(2026, 1, 4))
    shifts = expand(cal, NEW_YORK, date(2026, 1, 4), date(2026, 1, 31))
    names = {s.production_date: s.shift for s in shifts}
    assert len(shifts) == 28
    assert [names[d] for d in (date(2026, 1, 4), date(2026, 1, 10), date(2026, 1, 11),
                               date(2026, 1, 17), date(2026, 1, 18), date(2026, 1, 24),
                               date(2026, 1, 25), date(2026, 1, 31))] == [
        "early", "early", "late", "late", "night", "night", "early", "early"]


def test_a_rotation_that_overlaps_across_its_wrap_around_is_refused() -> None:
    # Week 2 ends with a Sunday night shift; week 1 starts with a Monday shift at 05:00.
    early5 = Shift("early5", time(5), time(13))
    with pytest.raises(CalendarError, match="overlap"):
        Calendar("bad", (early5, NIGHT), (week(("early5",)), week(*[()] * 6, ("night",))))


# --- exceptions -------------------------------------------------------------------------------


def test_a_holiday_removes_the_shifts_of_its_date_but_not_the_night_before() -> None:
    cal = three_shifts(holidays=(Holiday(date(2026, 12, 25), date(2026, 12, 26), "Christmas"),))
    shifts = expand(cal, BERLIN, date(2026, 12, 24), date(2026, 12, 27))
    assert [(s.production_date.day, s.shift) for s in shifts] == [
        (24, "early"), (24, "late"), (24, "night"), (27, "early"), (27, "late"), (27, "night")]
    # The night of the 24th ends on the holiday morning.
    assert shifts[2].end == utc(2026, 12, 25, 5)
    assert cal.holiday(date(2026, 12, 26)) == cal.holidays[0]


def test_an_extra_shift_runs_on_its_date_even_on_a_holiday() -> None:
    cal = Calendar("5d", (EARLY, LATE), (week(*[MON_FRI] * 5),),
                   holidays=(Holiday(date(2026, 5, 1), date(2026, 5, 1)),),
                   extras=(ExtraShift(date(2026, 5, 2), "early", "catch-up"),
                           ExtraShift(date(2026, 5, 1), "late")))
    shifts = expand(cal, BERLIN, date(2026, 4, 30), date(2026, 5, 3))
    assert [(s.production_date.day, s.shift, s.extra) for s in shifts] == [
        (30, "early", False), (30, "late", False), (1, "late", True), (2, "early", True)]
    assert cal.shifts_on(date(2026, 5, 2)) == ("early",)


def test_extra_shifts_that_already_run_or_overlap_are_refused() -> None:
    shifts, weeks = (EARLY, LATE, NIGHT), (week(*[MON_FRI] * 5),)
    with pytest.raises(CalendarError, match="already runs"):
        Calendar("5d", shifts, weeks, extras=(ExtraShift(date(2026, 5, 4), "early"),))
    with pytest.raises(CalendarError, match="unknown shift 'noon'"):
        Calendar("5d", shifts, weeks, extras=(ExtraShift(date(2026, 5, 4), "noon"),))
    early5 = Shift("early5", time(5), time(13))
    with pytest.raises(CalendarError, match="overlap"):  # 05:00 before the night ends at 06:00
        Calendar("x", (*shifts, early5), (week(*[("night",)] * 5),),
                 extras=(ExtraShift(date(2026, 5, 5), "early5"),))


def test_a_closure_is_planned_downtime_and_a_shift_closed_entirely_is_left_out() -> None:
    cal = three_shifts(closures=(
        Closure(datetime(2026, 6, 1, 10), datetime(2026, 6, 1, 11), "town hall"),
        Closure(datetime(2026, 6, 2, 14), datetime(2026, 6, 3, 6), "maintenance")))
    shifts = expand(cal, BERLIN, date(2026, 6, 1), date(2026, 6, 3))
    early = one(shifts, "early", date(2026, 6, 1))
    # 10:00-11:00 local is a planned stop of its own between the two breaks.
    assert [(b.kind, b.name) for b in early.breaks] == [
        ("break", ""), ("closure", "town hall"), ("break", "")]
    assert early.planned_time == 8 * H - 45 * timedelta(minutes=1) - H
    assert [(s.production_date.day, s.shift) for s in shifts] == [
        (1, "early"), (1, "late"), (1, "night"), (2, "early"),
        (3, "early"), (3, "late"), (3, "night")]


def test_a_closure_over_a_break_counts_that_time_once() -> None:
    cal = three_shifts(closures=(Closure(datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 10)),))
    early = one(expand(cal, BERLIN, date(2026, 6, 1), date(2026, 6, 1)), "early",
                date(2026, 6, 1))
    assert early.planned_time == 8 * H - H - 30 * timedelta(minutes=1)


# --- shift_at, spans --------------------------------------------------------------------------


def test_shift_at_finds_the_night_shift_of_the_previous_date_and_nothing_between() -> None:
    cal = Calendar("2x8", (EARLY, LATE), ((MON_FRI,) * 7,))
    assert shift_at(cal, BERLIN, utc(2026, 6, 1, 21)) is None  # 23:00 local, no night shift
    night_cal = three_shifts()
    found = shift_at(night_cal, BERLIN, utc(2026, 6, 2, 1))  # 03:00 local on the 2nd
    assert found is not None and (found.shift, found.production_date) == ("night", date(2026, 6, 1))
    at_break = shift_at(night_cal, BERLIN, utc(2026, 6, 1, 7, 5))
    assert at_break is not None and at_break.shift == "early" and at_break.in_break(
        utc(2026, 6, 1, 7, 5))
    # The end instant belongs to the next shift.
    nxt = shift_at(night_cal, BERLIN, utc(2026, 6, 1, 12))
    assert nxt is not None and nxt.shift == "late"
    with pytest.raises(ValueError, match="aware"):
        shift_at(night_cal, BERLIN, datetime(2026, 6, 1, 12))


def test_shift_at_across_the_autumn_overlap() -> None:
    found = shift_at(three_shifts(), BERLIN, utc(2026, 10, 25, 4, 30))  # 05:30 CET
    assert found is not None and (found.shift, found.production_date) == (
        "night", date(2026, 10, 24))


def test_planned_intervals_of_a_span_are_clipped_busy_time() -> None:
    cal = three_shifts()
    got = planned_intervals(cal, BERLIN, utc(2026, 6, 1, 6), utc(2026, 6, 1, 13))
    assert got == [Interval(utc(2026, 6, 1, 6), utc(2026, 6, 1, 7)),
                   Interval(utc(2026, 6, 1, 7, 15), utc(2026, 6, 1, 10)),
                   Interval(utc(2026, 6, 1, 10, 30), utc(2026, 6, 1, 12)),
                   Interval(utc(2026, 6, 1, 12), utc(2026, 6, 1, 13))]
    day = planned_intervals(cal, BERLIN, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert sum((i.duration for i in day), timedelta()) == 25 * H - 45 * timedelta(minutes=1)
    assert [s.shift for s in shifts_between(cal, BERLIN, utc(2026, 6, 1, 11),
                                            utc(2026, 6, 1, 13))] == ["early", "late"]
    with pytest.raises(ValueError, match="at or before"):
        planned_intervals(cal, BERLIN, utc(2026, 6, 2), utc(2026, 6, 1))


def test_expand_refuses_a_reversed_or_huge_range() -> None:
    with pytest.raises(ValueError, match="before"):
        expand(three_shifts(), BERLIN, date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="at most"):
        expand(three_shifts(), BERLIN, date(2000, 1, 1), date(2099, 1, 1))


@pytest.mark.parametrize(("shift", "match"), [
    (Shift("s", time(6), time(14), (Break(time(13), time(15)),)), "not inside"),
    (Shift("s", time(22), time(6), (Break(time(21), time(21, 30)),)), "not inside"),
    (Shift("s", time(6), time(14), (Break(time(9), time(10)), Break(time(9, 30), time(11)))),
     "overlap"),
    (Shift("s", time(6), time(7), (Break(time(6), time(7)),)), "whole shift"),
])
def test_bad_breaks_are_refused(shift: Shift, match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        Calendar("bad", (shift,), ((("s",),) * 7,))


# --- the plant file ---------------------------------------------------------------------------

PLANT = """
calendars:
  two-shift:
    shifts:
      early: {start: "06:00", end: "14:00",
              breaks: [{start: "09:00", end: "09:15"}, {start: "12:00", end: "12:30"}]}
      late: {start: "14:00", end: "22:00"}
      night: {start: "22:00", end: "06:00"}
    week: {mon: [early, late], tue: [early, late], wed: [early, late],
           thu: [early, late], fri: [early]}
    exceptions:
      - {kind: holiday, date: 2026-12-25, until: 2026-12-26, name: Christmas}
      - {kind: closure, start: "2026-08-03T00:00", end: "2026-08-15T00:00", name: summer}
      - {kind: extra_shift, date: 2026-12-19, shift: early}
  rotating:
    shifts:
      early: {start: "06:00", end: "14:00"}
      late: {start: "14:00", end: "22:00"}
      night: {start: "22:00", end: "06:00"}
    rotation:
      anchor: 2026-01-05
      weeks: [{mon: [early]}, {mon: [late]}, {mon: [night]}]
"""


def parse(text: str) -> dict[str, CalendarSettings]:
    raw = yaml.safe_load(text)["calendars"]
    return {name: CalendarSettings.model_validate(c) for name, c in raw.items()}


def test_the_documented_plant_file_builds_its_calendars() -> None:
    cals = build_calendars(parse(PLANT))
    two = cals["two-shift"]
    dec = expand(two, BERLIN, date(2026, 12, 18), date(2026, 12, 26))
    assert [(s.production_date.day, s.shift) for s in dec] == [
        (18, "early"), (19, "early"), (21, "early"), (21, "late"), (22, "early"), (22, "late"),
        (23, "early"), (23, "late"), (24, "early"), (24, "late")]
    assert expand(two, BERLIN, date(2026, 8, 3), date(2026, 8, 14)) == []
    rot = cals["rotating"]
    assert [s.shift for s in expand(rot, BERLIN, date(2026, 1, 5), date(2026, 1, 25))] == [
        "early", "late", "night"]
    check_work_center_calendars(parse(PLANT), ["two-shift", None, "rotating"])
    with pytest.raises(ValueError, match=r"work_centers\[1\].calendar: unknown calendar 'x'"):
        check_work_center_calendars(parse(PLANT), ["two-shift", "x"])


@pytest.mark.parametrize(("text", "message"), [
    ('shifts: {a: {start: 14:00, end: "22:00"}}\nweek: {mon: [a]}',
     'shifts.a.start: write the time in quotes, e.g. "14:00"'),
    ('shifts: {a: {start: "25:00", end: "22:00"}}\nweek: {mon: [a]}',
     'shifts.a.start: a local time is written "HH:MM"'),
    ('shifts: {a: {start: "06:00", end: "14:00"}}', "give either `week` or `rotation`"),
    ('shifts: {a: {start: "06:00", end: "14:00"}}\nweek: {mon: [b]}', "unknown shift 'b'"),
    ('shifts: {a: {start: "06:00", end: "14:00"}}\nweek: {mon: [a]}\nwekk: {}',
     "wekk: Extra inputs are not permitted"),
    ('shifts: {a: {start: "06:00", end: "14:00"}}\nweek: {mon: [a]}\n'
     'exceptions: [{kind: holiday, date: 2026-01-02, until: 2026-01-01}]', "is before date"),
    ('shifts: {a: {start: "06:00", end: "14:00"}}\nweek: {mon: [a]}\n'
     'exceptions: [{kind: closure, start: "2026-01-02T00:00+01:00", end: "2026-01-03T00:00"}]',
     "local times, no offset"),
    ('shifts: {a: {start: "06:00", end: "14:00"}}\nweek: {mon: [a]}\n'
     'exceptions: [{kind: vacation, date: 2026-01-02}]', "does not match any of the expected"),
])
def test_bad_calendars_in_the_plant_file_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        CalendarSettings.model_validate(yaml.safe_load(text))
    assert message in format_validation_error(err.value)
