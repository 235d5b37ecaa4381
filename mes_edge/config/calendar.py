"""Shift calendars in the plant file: validated models that build `mes_edge.domain.calendar`.

In the plant file (times are the site's local wall-clock times, `site_timezone`):

```yaml
site_timezone: Europe/Berlin
calendars:
  two-shift:
    shifts:
      early: {start: "06:00", end: "14:00",
              breaks: [{start: "09:00", end: "09:15"}, {start: "12:00", end: "12:30"}]}
      late: {start: "14:00", end: "22:00"}
      night: {start: "22:00", end: "06:00"}   # ends next day; belongs to the date it starts
    week: {mon: [early, late], tue: [early, late], wed: [early, late],
           thu: [early, late], fri: [early]}
    exceptions:
      - {kind: holiday, date: 2026-12-25, until: 2026-12-26, name: Christmas}
      - {kind: closure, start: "2026-08-03T00:00", end: "2026-08-15T00:00", name: summer}
      - {kind: extra_shift, date: 2026-12-19, shift: early}
  rotating:
    shifts: {...}
    rotation:            # instead of `week`: one pattern per week, repeating
      anchor: 2026-01-05 # week 1 of the rotation starts on this date
      weeks: [{mon: [early]}, {mon: [late]}, {mon: [night]}]
work_centers:
  - {id: PRESS-01, calendar: two-shift}
```

Times must be quoted ("14:00"): unquoted, YAML reads 14:00 as the number 840, which is refused
with a message saying so. Closures take local date-times without offset; their end is exclusive.

`CalendarSettings.to_calendar(name)` builds the domain `Calendar` (which checks overlaps, breaks
outside their shift, unknown shift names; those errors come back as validation errors of the
calendar). `Settings` takes them with `calendars: dict[Name, CalendarSettings]`, and
`check_work_center_calendars` checks what the work centers name.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mes_edge.domain.calendar import (
    WEEKDAYS,
    Break,
    Calendar,
    CalendarError,
    Closure,
    ExtraShift,
    Holiday,
    Shift,
)

_HHMM = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
ShiftName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


def _local_time(value: object) -> object:
    """ "HH:MM" -> time; a YAML sexagesimal number gets a message saying to quote it."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ValueError("give a local time without a zone (the site's time zone applies)")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('a local time is written "HH:MM"')
    if isinstance(value, int):
        raise ValueError(
            f'write the time in quotes, e.g. "{value // 60:02d}:{value % 60:02d}": unquoted, '
            f"YAML reads HH:MM as a number ({value})")
    m = _HHMM.match(value.strip())
    if not m:
        raise ValueError(f'a local time is written "HH:MM" (00:00 to 23:59), got {value!r}')
    return dt.time(int(m["h"]), int(m["m"]))


LocalTime = Annotated[dt.time, BeforeValidator(_local_time)]


class _Strict(BaseModel):
    """Unknown keys are errors (the same rule as every section of settings.py)."""

    model_config = ConfigDict(extra="forbid")


class BreakSettings(_Strict):
    """A planned break inside a shift, local times."""

    start: LocalTime
    end: LocalTime
    name: str = ""


class ShiftSettings(_Strict):
    """A shift in local times; an end at or before the start is on the next day."""

    start: LocalTime
    end: LocalTime
    breaks: list[BreakSettings] = Field(default_factory=list)


class WeekSettings(_Strict):
    """The shifts that run on each weekday (a weekday left out has none)."""

    mon: list[ShiftName] = Field(default_factory=list)
    tue: list[ShiftName] = Field(default_factory=list)
    wed: list[ShiftName] = Field(default_factory=list)
    thu: list[ShiftName] = Field(default_factory=list)
    fri: list[ShiftName] = Field(default_factory=list)
    sat: list[ShiftName] = Field(default_factory=list)
    sun: list[ShiftName] = Field(default_factory=list)

    def days(self) -> tuple[tuple[str, ...], ...]:
        """Shift names per weekday, Monday first."""
        return tuple(tuple(getattr(self, d)) for d in WEEKDAYS)


class RotationSettings(_Strict):
    """A pattern per week, repeating; week 1 starts on `anchor` (and on every N weeks from it)."""

    anchor: dt.date
    weeks: list[WeekSettings] = Field(min_length=1)


class HolidaySettings(_Strict):
    """No shift on the production date `date` (through `until`, inclusive, when given)."""

    kind: Literal["holiday"]
    date: dt.date
    until: dt.date | None = None
    name: str = ""


class ClosureSettings(_Strict):
    """Planned closure from local `start` to local `end` (exclusive): planned downtime."""

    kind: Literal["closure"]
    start: dt.datetime
    end: dt.datetime
    name: str = ""


class ExtraShiftSettings(_Strict):
    """A defined shift that also runs on `date` (also on a holiday)."""

    kind: Literal["extra_shift"]
    date: dt.date
    shift: ShiftName
    name: str = ""


CalendarException = Annotated[
    HolidaySettings | ClosureSettings | ExtraShiftSettings, Field(discriminator="kind")]


class CalendarSettings(_Strict):
    """A named shift calendar: shifts, a weekly pattern or a rotation, dated exceptions."""

    shifts: dict[ShiftName, ShiftSettings] = Field(min_length=1)
    week: WeekSettings | None = None
    rotation: RotationSettings | None = None
    exceptions: list[CalendarException] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSettings:
        if (self.week is None) == (self.rotation is None):
            raise ValueError("give either `week` or `rotation` (one of them)")
        for i, e in enumerate(self.exceptions):
            if isinstance(e, ClosureSettings) and (e.start.tzinfo or e.end.tzinfo):
                raise ValueError(f"exceptions[{i}]: a closure takes local times, no offset")
            if isinstance(e, HolidaySettings) and e.until is not None and e.until < e.date:
                raise ValueError(f"exceptions[{i}]: until {e.until} is before date {e.date}")
        try:
            self.to_calendar("calendar")
        except CalendarError as err:
            raise ValueError(str(err).removeprefix("calendar 'calendar': ")) from err
        return self

    def to_calendar(self, name: str) -> Calendar:
        """The domain calendar called `name` (raises CalendarError if it contradicts itself)."""
        shifts = tuple(
            Shift(n, s.start, s.end, tuple(Break(b.start, b.end, b.name) for b in s.breaks))
            for n, s in self.shifts.items())
        if self.rotation is not None:
            weeks = tuple(w.days() for w in self.rotation.weeks)
            anchor = self.rotation.anchor
        else:
            weeks = (self.week.days(),) if self.week else ()
            anchor = dt.date(2024, 1, 1)  # a Monday; a single week does not depend on it
        ex = self.exceptions
        return Calendar(
            name=name, shifts=shifts, weeks=weeks, anchor=anchor,
            holidays=tuple(Holiday(e.date, e.until or e.date, e.name)
                           for e in ex if isinstance(e, HolidaySettings)),
            closures=tuple(Closure(e.start, e.end, e.name)
                           for e in ex if isinstance(e, ClosureSettings)),
            extras=tuple(ExtraShift(e.date, e.shift, e.name)
                         for e in ex if isinstance(e, ExtraShiftSettings)),
        )


def build_calendars(calendars: Mapping[str, CalendarSettings]) -> dict[str, Calendar]:
    """The domain calendars of the plant file, by name."""
    return {name: c.to_calendar(name) for name, c in calendars.items()}


def check_work_center_calendars(
    calendars: Mapping[str, CalendarSettings], named: Iterable[str | None]
) -> None:
    """Raise ValueError naming `work_centers[i].calendar` if it names an unknown calendar."""
    for i, name in enumerate(named):
        if name is not None and name not in calendars:
            raise ValueError(
                f"work_centers[{i}].calendar: unknown calendar {name!r} "
                f"(defined: {', '.join(calendars) or 'none'})")
