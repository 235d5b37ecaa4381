"""Shift calendars: local shift patterns expanded into concrete shifts in UTC. Pure, no I/O.

A `Calendar` holds named shifts given as local wall-clock times (`Shift`), the shifts that run on
each weekday for each week of a rotation (a plain weekly pattern is a rotation of one week), and
dated exceptions (`Holiday`, `Closure`, `ExtraShift`). `expand(calendar, tz, first, last)` turns
it into `ShiftInstance`s, each with UTC start and end, its planned stops (breaks and closed
time) in UTC, and its planned (busy) time computed from those instants.

Rules, each one tested in tests/domain/test_calendar.py:

- An end at or before the start is on the next day: a night shift crosses midnight and belongs
  to the production date it starts on. A shift whose end equals its start lasts a whole day.
- Breaks are local times inside their shift; a break time before the shift's start time is on
  the day after the start (a 02:00 break of a 22:00-06:00 shift).
- Durations always come from the UTC instants: a 22:00-06:00 shift lasts 7 h on the spring DST
  night and 9 h on the autumn one. The next shift starts when this one ends, because one local
  time always maps to one instant (`to_utc`):
  - a nonexistent local time (in the spring gap) moves forward to the first valid instant, the
    moment of the transition (02:30 on 2026-03-29 in Berlin becomes 03:00 CEST = 01:00 UTC);
  - an ambiguous local time (in the autumn overlap) takes fold=0, its first occurrence
    (02:30 on 2026-10-25 in Berlin is 02:30 CEST = 00:30 UTC).
  The mapping never goes backwards, so shifts that do not overlap on the wall clock never
  overlap in UTC. A shift or break that shrinks to nothing in a gap is left out.
- Week index of a rotation: whole weeks since `anchor` (dates before it count backwards), modulo
  the number of weeks; the rotation's weeks start on the anchor's weekday.
- Exceptions: a holiday removes every shift whose production date it covers (a night shift that
  starts the evening before still runs); an extra shift adds a defined shift on a date (also on a
  holiday); a closure (local start and end, end exclusive) is planned downtime: the closed part
  of a shift becomes a planned stop of kind "closure", and a shift closed entirely is left out.
- Shifts of one calendar never overlap (checked when the calendar is built, `CalendarError`).

Planned busy time (ISO 22400 "planned busy time" before machine-level planned downtime) is
`ShiftInstance.planned_time`; `planned_intervals(calendar, tz, start, end)` gives the busy
intervals of a span, which is what OEE (`mes_edge.domain.oee`) divides by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Literal

DAY = timedelta(days=1)
#: The longest date range one `expand` call accepts (a bound on work and memory).
MAX_EXPAND_DAYS = 3700
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(ValueError):
    """A calendar contradicts itself (unknown shift, overlap, break outside its shift...)."""


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A half-open span [start, end) of aware instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be aware datetimes")
        if self.end < self.start:
            raise ValueError(f"interval ends ({self.end}) before it starts ({self.start})")

    @property
    def duration(self) -> timedelta:
        """Length of the interval."""
        return self.end - self.start

    def clip(self, start: datetime, end: datetime) -> Interval | None:
        """The part of this interval inside [start, end), None if nothing is."""
        lo, hi = max(self.start, start), min(self.end, end)
        return Interval(lo, hi) if lo < hi else None


@dataclass(frozen=True, slots=True)
class Break:
    """A planned stop inside a shift, in local wall-clock times."""

    start: time
    end: time
    name: str = ""


@dataclass(frozen=True, slots=True)
class Shift:
    """A named shift in local wall-clock times; an end at or before the start is next day."""

    name: str
    start: time
    end: time
    breaks: tuple[Break, ...] = ()

    @property
    def wall_length(self) -> timedelta:
        """Length on the wall clock (24 h when start equals end); real length may differ."""
        return _offset(self.start, self.end, is_end=True)


@dataclass(frozen=True, slots=True)
class Holiday:
    """No shift runs on the production dates `first`..`last` (inclusive)."""

    first: date
    last: date
    name: str = ""


@dataclass(frozen=True, slots=True)
class Closure:
    """Planned closure from local `start` to local `end` (exclusive), naive datetimes."""

    start: datetime
    end: datetime
    name: str = ""


@dataclass(frozen=True, slots=True)
class ExtraShift:
    """A defined shift that also runs on `date` (even on a holiday)."""

    date: date
    shift: str
    name: str = ""


#: Shift names per weekday, Monday first.
Week = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Calendar:
    """A named shift calendar; building one checks it (`CalendarError`)."""

    name: str
    shifts: tuple[Shift, ...]
    weeks: tuple[Week, ...]
    anchor: date = date(2024, 1, 1)
    holidays: tuple[Holiday, ...] = ()
    closures: tuple[Closure, ...] = ()
    extras: tuple[ExtraShift, ...] = ()

    def __post_init__(self) -> None:
        _check(self)

    def shift(self, name: str) -> Shift:
        """The shift called `name`."""
        for s in self.shifts:
            if s.name == name:
                return s
        raise CalendarError(f"calendar {self.name!r} has no shift {name!r}")

    def shifts_on(self, day: date) -> tuple[str, ...]:
        """Names of the shifts whose production date is `day`: pattern, holidays, extras."""
        names = list(_pattern(self, day))
        names += [e.shift for e in self.extras if e.date == day and e.shift not in names]
        return tuple(sorted(names, key=lambda n: self.shift(n).start))

    def holiday(self, day: date) -> Holiday | None:
        """The holiday covering `day`, if any."""
        return next((h for h in self.holidays if h.first <= day <= h.last), None)


StopKind = Literal["break", "closure"]


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """A planned stop of a concrete shift in UTC: a break or the closed part of the shift."""

    start: datetime
    end: datetime
    kind: StopKind
    name: str = ""


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One concrete shift: production date, UTC start and end, planned stops in UTC."""

    calendar: str
    shift: str
    production_date: date
    start: datetime
    end: datetime
    breaks: tuple[PlannedStop, ...] = ()
    extra: bool = False
    busy: tuple[Interval, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "busy", tuple(_subtract(
            Interval(self.start, self.end), [Interval(b.start, b.end) for b in self.breaks])))

    @property
    def duration(self) -> timedelta:
        """From start to end, measured between the instants."""
        return self.end - self.start

    @property
    def planned_time(self) -> timedelta:
        """Duration minus the planned stops (overlapping stops counted once)."""
        return sum((i.duration for i in self.busy), timedelta())

    def contains(self, instant: datetime) -> bool:
        """Whether `instant` falls in [start, end)."""
        return self.start <= instant < self.end

    def in_break(self, instant: datetime) -> bool:
        """Whether `instant` falls in one of the shift's planned stops."""
        return any(b.start <= instant < b.end for b in self.breaks)


def to_utc(local: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of a naive local time: gap -> the transition, overlap -> fold=0."""
    if local.tzinfo is not None:
        raise ValueError(f"expected a naive local time, got {local.isoformat()}")
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == local:
        return first  # exists; when ambiguous, fold=0 is its first occurrence
    # In a gap, fold=1 reads the time with the offset after the transition (an instant before
    # it) and fold=0 with the offset before (an instant after it): bisect to the transition.
    lo = int(local.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp())
    after = first.astimezone(tz).utcoffset()
    for _ in range(64):  # the gap is at most a day: about 17 halvings to one second
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def expand(calendar: Calendar, tz: tzinfo, first_date: date, last_date: date
           ) -> list[ShiftInstance]:
    """The shifts whose production dates are `first_date`..`last_date`, ordered by start."""
    if last_date < first_date:
        raise ValueError(f"last_date {last_date} is before first_date {first_date}")
    if (last_date - first_date).days >= MAX_EXPAND_DAYS:
        raise ValueError(f"at most {MAX_EXPAND_DAYS} days per expansion")
    closures = [(Interval(to_utc(c.start, tz), to_utc(c.end, tz)), c.name)
                for c in calendar.closures]
    out: list[ShiftInstance] = []
    day = first_date
    while day <= last_date:
        for name in calendar.shifts_on(day):
            inst = _instance(calendar, calendar.shift(name), day, tz, closures)
            if inst is not None:
                out.append(inst)
        day += DAY
    out.sort(key=lambda i: i.start)
    return out


def shift_at(calendar: Calendar, tz: tzinfo, instant: datetime) -> ShiftInstance | None:
    """The shift running at `instant` (breaks included), or None."""
    local_day = _aware(instant, "instant").astimezone(tz).date()
    # A shift lasts at most a wall-clock day (+1 h on a DST night), so it started yesterday
    # or today.
    return next((s for s in expand(calendar, tz, local_day - DAY, local_day)
                 if s.contains(instant)), None)


def shifts_between(calendar: Calendar, tz: tzinfo, start: datetime, end: datetime
                   ) -> list[ShiftInstance]:
    """The shifts that overlap [start, end), ordered by start."""
    _span(start, end)
    first = start.astimezone(tz).date() - DAY
    last = end.astimezone(tz).date()
    return [s for s in expand(calendar, tz, first, last) if s.start < end and start < s.end]


def planned_intervals(calendar: Calendar, tz: tzinfo, start: datetime, end: datetime
                      ) -> list[Interval]:
    """The planned busy intervals (shifts minus planned stops) inside [start, end)."""
    out: list[Interval] = []
    for inst in shifts_between(calendar, tz, start, end):
        out += [c for c in (i.clip(start, end) for i in inst.busy) if c is not None]
    return out


def _instance(calendar: Calendar, shift: Shift, day: date, tz: tzinfo,
              closures: Sequence[tuple[Interval, str]]) -> ShiftInstance | None:
    start_l, end_l = _wall_span(shift, day)
    start, end = to_utc(start_l, tz), to_utc(end_l, tz)
    if end <= start:
        return None  # the whole shift fell into a DST gap
    stops: list[PlannedStop] = []
    for b in shift.breaks:
        b0 = to_utc(start_l + _offset(shift.start, b.start, is_end=False), tz)
        b1 = to_utc(start_l + _offset(shift.start, b.end, is_end=True), tz)
        if b0 < b1:
            stops.append(PlannedStop(b0, b1, "break", b.name))
    for span, name in closures:
        part = span.clip(start, end)
        if part is not None:
            stops.append(PlannedStop(part.start, part.end, "closure", name))
    stops.sort(key=lambda s: (s.start, s.end))
    inst = ShiftInstance(calendar.name, shift.name, day, start, end, tuple(stops),
                         extra=shift.name not in _pattern(calendar, day))
    return inst if inst.busy else None  # closed entirely


def _pattern(calendar: Calendar, day: date) -> tuple[str, ...]:
    if calendar.holiday(day):
        return ()
    return calendar.weeks[((day - calendar.anchor).days // 7) % len(calendar.weeks)][
        day.weekday()]


def _offset(start: time, t: time, *, is_end: bool) -> timedelta:
    """Wall-clock time from `start` to the next `t` (an end equal to start: a whole day)."""
    d = datetime.combine(date.min, t) - datetime.combine(date.min, start)
    if d < timedelta(0) or (d == timedelta(0) and is_end):
        d += DAY
    return d


def _wall_span(shift: Shift, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, shift.start)
    return start, start + shift.wall_length


def _subtract(whole: Interval, parts: Iterable[Interval]) -> list[Interval]:
    """`whole` minus the union of `parts`, as ordered disjoint intervals."""
    out: list[Interval] = []
    cursor = whole.start
    for p in sorted(parts):
        if p.start > cursor:
            out.append(Interval(cursor, min(p.start, whole.end)))
        cursor = max(cursor, p.end)
        if cursor >= whole.end:
            break
    if cursor < whole.end:
        out.append(Interval(cursor, whole.end))
    return [i for i in out if i.start < i.end]


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with a time zone)")
    return value


def _span(start: datetime, end: datetime) -> None:
    _aware(start, "start")
    _aware(end, "end")
    if end <= start:
        raise ValueError(f"span ends ({end}) at or before it starts ({start})")


def _check(cal: Calendar) -> None:
    """Raise CalendarError on the first contradiction in `cal`."""
    where = f"calendar {cal.name!r}"
    names = [s.name for s in cal.shifts]
    if not names:
        raise CalendarError(f"{where}: no shifts defined")
    if len(set(names)) != len(names):
        raise CalendarError(f"{where}: a shift name is defined twice")
    for s in cal.shifts:
        _check_breaks(f"{where}, shift {s.name!r}", s)
    if not cal.weeks:
        raise CalendarError(f"{where}: no weekly pattern")
    for w, week in enumerate(cal.weeks, 1):
        if len(week) != 7:
            raise CalendarError(f"{where}: week {w} must list 7 weekdays")
        for k, day in enumerate(week):
            for n in day:
                if n not in names:
                    raise CalendarError(
                        f"{where}: week {w} {WEEKDAYS[k]}: unknown shift {n!r} "
                        f"(defined: {', '.join(names)})")
            if len(set(day)) != len(day):
                raise CalendarError(f"{where}: week {w} {WEEKDAYS[k]}: a shift listed twice")
    _check_cycle(cal, where)
    for h in cal.holidays:
        if h.last < h.first:
            raise CalendarError(f"{where}: holiday {h.name!r} ends before it starts")
    for c in cal.closures:
        if c.start.tzinfo is not None or c.end.tzinfo is not None:
            raise CalendarError(f"{where}: closure {c.name!r}: give local times, no offset")
        if c.end <= c.start:
            raise CalendarError(f"{where}: closure {c.name!r} ends at or before its start")
    for e in cal.extras:
        if e.shift not in names:
            raise CalendarError(f"{where}: extra shift on {e.date}: unknown shift {e.shift!r}")
        if e.shift in _pattern(cal, e.date):
            raise CalendarError(
                f"{where}: extra shift {e.shift!r} on {e.date} already runs that day")
        spans = sorted(_wall_span(cal.shift(n), d) for d in (e.date - DAY, e.date, e.date + DAY)
                       for n in cal.shifts_on(d))
        _no_overlap(spans, f"{where}: extra shift {e.shift!r} on {e.date}")


def _check_breaks(where: str, s: Shift) -> None:
    spans = []
    for b in s.breaks:
        b0 = _offset(s.start, b.start, is_end=False)
        b1 = _offset(s.start, b.end, is_end=True)
        if not (b0 < b1 <= s.wall_length):
            raise CalendarError(
                f"{where}: break {b.start:%H:%M}-{b.end:%H:%M} is not inside the shift "
                f"{s.start:%H:%M}-{s.end:%H:%M}")
        spans.append((b0, b1))
    spans.sort()
    for (_, e0), (s1, _) in pairwise(spans):
        if s1 < e0:
            raise CalendarError(f"{where}: breaks overlap")
    if sum((e - b for b, e in spans), timedelta()) >= s.wall_length:
        raise CalendarError(f"{where}: breaks cover the whole shift")


def _check_cycle(cal: Calendar, where: str) -> None:
    """No two pattern shifts overlap anywhere in the rotation, including its wrap-around."""
    origin = date(2001, 1, 1)  # a Monday; only wall-clock differences matter here
    spans = []
    for w, week in enumerate(cal.weeks):
        for k, day in enumerate(week):
            for n in day:
                spans.append(_wall_span(cal.shift(n), origin + timedelta(days=7 * w + k)))
    cycle = timedelta(days=7 * len(cal.weeks))
    spans += [(a + cycle, b + cycle) for a, b in spans]  # the next cycle, for the wrap-around
    _no_overlap(sorted(spans), f"{where}: weekly pattern")


def _no_overlap(spans: Sequence[tuple[datetime, datetime]], where: str) -> None:
    """`spans` sorted by start; raise on the first one that starts before an earlier ends."""
    latest: tuple[datetime, datetime] | None = None  # the span that ends last so far
    for span in spans:
        if latest is not None and span[0] < latest[1]:
            raise CalendarError(
                f"{where}: shifts overlap ({latest[0]:%a %H:%M}-{latest[1]:%a %H:%M} and one "
                f"starting {span[0]:%a %H:%M})")
        if latest is None or span[1] > latest[1]:
            latest = span
