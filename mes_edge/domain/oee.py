"""OEE per ISO 22400-2, summed from times and counts (never averaged percentages). Pure.

`compute(span, planned, states, counts, ideal_cycle_s=..., micro_stop_s=..., mode=...)` returns an
`OeeTotals`: the underlying times and counts of one span, which can be added (`a + b`,
`sum(parts, OeeTotals.zero(mode))`), so OEE per hour, shift, day or month is the sum of its parts
and equals the OEE computed over the union. Ratios are computed from the sums, exactly
(fractions), at the end.

Inputs:
- `span`: the interval the figures are for (a shift, an hour, a day...); adjacent spans add up.
- `planned`: planned busy intervals of the span: shifts minus breaks and closures
  (`mes_edge.domain.calendar.planned_intervals`), clipped to `span`. Only time inside them counts.
- `states`: the work center's non-overlapping state timeline (`StateInterval`). Pass whole
  intervals even when they cross the span: each is clipped here, and a stop is a micro-stop by its
  whole length, so splitting a span never reclassifies a stop.
- `counts`: `ProducedCount` per product: good, scrap (all rejects) and the part of the scrap made
  at start-up (e.g. scrap reasons of a start-up category), with the product's ideal cycle time
  (the operation's); `ideal_cycle_s` of `compute` (the work center's) is the fallback.

Classification of planned busy time, by the state (or by the downtime reason's loss bucket):
- `planned` state or `planned` loss: planned downtime, taken OUT of planned busy time (ISO:
  planned busy time = planned operation time - planned downtime);
- `running`: run time (ISO "actual production time");
- `setup` state or `setup` loss: setup time, whatever its length;
- `idle`, `down`, `blocked`, `starved`: a micro-stop when flagged so, or, unflagged, when the whole
  stop is shorter than `micro_stop_s`; otherwise a (long) unplanned stop;
- `unknown` state, or no state at all: unrecorded time. It is NOT counted against availability
  (no data is no evidence of a loss: a service started mid-shift, a gap in the PLC link); it is
  reported apart (`unrecorded`, flag `unrecorded_time`) so nobody mistakes it for uptime.

Figures (each None when its denominator is 0, never 0 or 100 by default):
- Availability = run time / recorded planned busy time (planned busy time minus unrecorded
  time); Performance = sum(ideal cycle x (good + scrap)) /
  run time; Quality = good / (good + scrap); OEE = A x P x Q.
- Mode `iso` (ISO 22400-2): setup and micro-stops are availability losses, run time = running.
  Mode `tpm`: micro-stops are performance losses, run time = running + micro-stops. OEE is the
  same in both modes; only the split between A and P moves.
- A Performance above 100 % is returned as it is and flagged (`performance_above_100`): it means
  the ideal cycle time is wrong. Units without any ideal cycle time make Performance (and OEE)
  None and are flagged (`ideal_cycle_missing`), never guessed.
- Running inside `span` but outside planned busy time (during a break, say) is not in the
  figures; it is reported (`outside_plan_run`, flag `running_outside_plan`): counts made then
  still count and raise Performance.

The six big losses in minutes (`OeeTotals.six_big_losses()`), defined so that they and the fully
productive time (ideal cycle x good) add up to the planned busy time:
breakdowns = long unplanned stops; setup_adjustment = setup time; small_stops = micro-stops;
reduced_speed = running - ideal time of all units made (negative when P > 100 %);
startup_rejects = ideal time of start-up scrap; production_rejects = ideal time of other scrap;
plus `unrecorded`, planned busy time without a known state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Literal, TypeVar

from mes_edge.domain.calendar import Interval

OeeMode = Literal["iso", "tpm"]
_ZERO = timedelta()


class TimelineState(enum.StrEnum):
    """A state of the work-center timeline (machine states plus planned time)."""

    RUNNING = "running"
    IDLE = "idle"
    DOWN = "down"
    SETUP = "setup"
    BLOCKED = "blocked"
    STARVED = "starved"
    PLANNED = "planned"
    UNKNOWN = "unknown"


class LossBucket(enum.StrEnum):
    """Where a downtime reason's category books the lost time."""

    PLANNED = "planned"
    SETUP = "setup"
    BREAKDOWN = "breakdown"
    MATERIAL = "material"
    QUALITY = "quality"
    OTHER = "other"


STOPS = frozenset({TimelineState.IDLE, TimelineState.DOWN, TimelineState.BLOCKED,
                   TimelineState.STARVED})


@dataclass(frozen=True, slots=True)
class StateInterval:
    """One interval of the state timeline; `micro_stop` None: decided by micro_stop_s."""

    start: datetime
    end: datetime
    state: TimelineState
    micro_stop: bool | None = None
    loss: LossBucket | None = None

    def __post_init__(self) -> None:
        Interval(self.start, self.end)  # aware and ordered, or ValueError
        object.__setattr__(self, "state", _member(TimelineState, self.state, "state"))
        if self.loss is not None:
            object.__setattr__(self, "loss", _member(LossBucket, self.loss, "loss"))
        if self.micro_stop is not None and self.state not in STOPS:
            raise ValueError(f"micro_stop applies to stops, not to state {self.state}")

    @property
    def duration(self) -> timedelta:
        """Length of the whole interval."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ProducedCount:
    """Units made of one product; `startup_scrap` is the part of `scrap` made at start-up."""

    product: str
    good: int
    scrap: int = 0
    startup_scrap: int = 0
    ideal_cycle_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("good", "scrap", "startup_scrap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{self.product}: {name} must be a whole number >= 0")
        if self.startup_scrap > self.scrap:
            raise ValueError(f"{self.product}: startup_scrap exceeds scrap")
        if self.ideal_cycle_s is not None and not self.ideal_cycle_s > 0:
            raise ValueError(f"{self.product}: ideal_cycle_s must be > 0")


@dataclass(frozen=True, slots=True)
class SixBigLosses:
    """The six big losses in minutes (None: needs an ideal cycle time that is missing)."""

    breakdowns: float
    setup_adjustment: float
    small_stops: float
    reduced_speed: float | None
    startup_rejects: float | None
    production_rejects: float | None
    unrecorded: float


@dataclass(frozen=True, slots=True)
class OeeTotals:
    """Times and counts of a span; add them to aggregate, read the figures from the sums."""

    mode: OeeMode = "iso"
    planned_busy: timedelta = _ZERO
    running: timedelta = _ZERO
    micro_stops: timedelta = _ZERO
    setup: timedelta = _ZERO
    stops: timedelta = _ZERO
    unrecorded: timedelta = _ZERO
    planned_stops: timedelta = _ZERO
    outside_plan_run: timedelta = _ZERO
    good: int = 0
    scrap: int = 0
    startup_scrap: int = 0
    units_without_ideal: int = 0
    ideal_s: Fraction = Fraction(0)
    scrap_ideal_s: Fraction = Fraction(0)
    startup_scrap_ideal_s: Fraction = Fraction(0)

    @classmethod
    def zero(cls, mode: OeeMode = "iso") -> OeeTotals:
        """The neutral element of `+` for `mode` (start value of `sum`)."""
        return cls(mode=_mode(mode))

    def __add__(self, other: OeeTotals) -> OeeTotals:
        if not isinstance(other, OeeTotals):
            return NotImplemented
        if other.mode != self.mode:
            raise ValueError(f"cannot add OEE totals of modes {self.mode} and {other.mode}")
        return OeeTotals(self.mode, *(getattr(self, f.name) + getattr(other, f.name)
                                      for f in fields(self) if f.name != "mode"))

    @property
    def run_time(self) -> timedelta:
        """Time Performance is measured against: running (+ micro-stops in tpm mode)."""
        return self.running + (self.micro_stops if self.mode == "tpm" else _ZERO)

    def availability_exact(self) -> Fraction | None:
        """run time / recorded planned busy time, exactly; None without any (a span with no
        recorded state shows no availability rather than 0 %)."""
        return _ratio(_seconds(self.run_time), _seconds(self.planned_busy - self.unrecorded))

    def performance_exact(self) -> Fraction | None:
        """ideal time / run time, exactly; None without run time or with an ideal missing."""
        if self.units_without_ideal:
            return None
        return _ratio(self.ideal_s, _seconds(self.run_time))

    def quality_exact(self) -> Fraction | None:
        """good / (good + scrap), exactly; None when nothing was made."""
        return _ratio(Fraction(self.good), Fraction(self.good + self.scrap))

    def oee_exact(self) -> Fraction | None:
        """A x P x Q, exactly; None when any of them is None."""
        a, p, q = self.availability_exact(), self.performance_exact(), self.quality_exact()
        return None if a is None or p is None or q is None else a * p * q

    @property
    def availability(self) -> float | None:
        """Availability as a fraction of 1 (0.8881 is 88.81 %)."""
        return _float(self.availability_exact())

    @property
    def performance(self) -> float | None:
        """Performance as a fraction of 1; may exceed 1 (flagged, never capped)."""
        return _float(self.performance_exact())

    @property
    def quality(self) -> float | None:
        """Quality as a fraction of 1."""
        return _float(self.quality_exact())

    @property
    def oee(self) -> float | None:
        """OEE as a fraction of 1."""
        return _float(self.oee_exact())

    @property
    def performance_above_100(self) -> bool:
        """Performance over 100 %: the ideal cycle time is wrong (too slow)."""
        p = self.performance_exact()
        return p is not None and p > 1

    @property
    def flags(self) -> tuple[str, ...]:
        """What a reader must know about these figures."""
        out = []
        if self.performance_above_100:
            out.append("performance_above_100")
        if self.units_without_ideal:
            out.append("ideal_cycle_missing")
        if self.unrecorded:
            out.append("unrecorded_time")
        if self.outside_plan_run:
            out.append("running_outside_plan")
        return tuple(out)

    def six_big_losses(self) -> SixBigLosses:
        """The six big losses in minutes (see the module docstring for their definitions)."""
        known = not self.units_without_ideal
        return SixBigLosses(
            breakdowns=_minutes(_seconds(self.stops)),
            setup_adjustment=_minutes(_seconds(self.setup)),
            small_stops=_minutes(_seconds(self.micro_stops)),
            reduced_speed=_minutes(_seconds(self.running) - self.ideal_s) if known else None,
            startup_rejects=_minutes(self.startup_scrap_ideal_s) if known else None,
            production_rejects=(_minutes(self.scrap_ideal_s - self.startup_scrap_ideal_s)
                                if known else None),
            unrecorded=_minutes(_seconds(self.unrecorded)),
        )

    def fully_productive_minutes(self) -> float | None:
        """Ideal time of the good units, in minutes (None with an ideal cycle missing)."""
        if self.units_without_ideal:
            return None
        return _minutes(self.ideal_s - self.scrap_ideal_s)


def compute(span: Interval, planned: Iterable[Interval], states: Iterable[StateInterval],
            counts: Iterable[ProducedCount], *, ideal_cycle_s: float | None = None,
            micro_stop_s: float = 60.0, mode: OeeMode = "iso") -> OeeTotals:
    """The OEE totals of `span`: its planned busy intervals, timeline and counts (see above)."""
    mode = _mode(mode)
    if micro_stop_s < 0:
        raise ValueError("micro_stop_s must be >= 0")
    if ideal_cycle_s is not None and not ideal_cycle_s > 0:
        raise ValueError("ideal_cycle_s must be > 0")
    clipped = (i.clip(span.start, span.end) for i in planned)
    plan = _disjoint(sorted((i for i in clipped if i), key=lambda i: i.start), "planned intervals")
    timeline = _disjoint(sorted(states, key=lambda s: s.start), "state intervals")
    micro = timedelta(seconds=micro_stop_s)
    booked = {k: _ZERO for k in ("running", "micro", "setup", "stops", "unknown", "planned")}
    outside = _ZERO
    j = 0
    for s in timeline:
        while j < len(plan) and plan[j].end <= s.start:
            j += 1
        inside = _ZERO
        k = j
        while k < len(plan) and plan[k].start < s.end:
            part = plan[k].clip(s.start, s.end)
            inside += part.duration if part else _ZERO
            k += 1
        booked[_bucket(s, micro)] += inside
        if s.state is TimelineState.RUNNING:
            in_span = Interval(s.start, s.end).clip(span.start, span.end)
            outside += (in_span.duration if in_span else _ZERO) - inside
    total = sum((i.duration for i in plan), _ZERO)
    covered = sum(booked.values(), _ZERO)
    totals = OeeTotals(
        mode=mode, planned_busy=total - booked["planned"], running=booked["running"],
        micro_stops=booked["micro"], setup=booked["setup"], stops=booked["stops"],
        unrecorded=booked["unknown"] + (total - covered), planned_stops=booked["planned"],
        outside_plan_run=outside)
    return sum((_counted(c, ideal_cycle_s, mode) for c in counts), totals)


def _bucket(s: StateInterval, micro: timedelta) -> str:
    if s.state is TimelineState.PLANNED or s.loss is LossBucket.PLANNED:
        return "planned"
    if s.state is TimelineState.RUNNING:
        return "running"
    if s.state is TimelineState.SETUP or s.loss is LossBucket.SETUP:
        return "setup"
    if s.state is TimelineState.UNKNOWN:
        return "unknown"
    is_micro = s.micro_stop if s.micro_stop is not None else s.duration < micro
    return "micro" if is_micro else "stops"


def _counted(c: ProducedCount, fallback: float | None, mode: OeeMode) -> OeeTotals:
    ideal = c.ideal_cycle_s if c.ideal_cycle_s is not None else fallback
    made = c.good + c.scrap
    if ideal is None:
        return OeeTotals(mode=mode, good=c.good, scrap=c.scrap, startup_scrap=c.startup_scrap,
                         units_without_ideal=made)
    cycle = Fraction(ideal)
    return OeeTotals(mode=mode, good=c.good, scrap=c.scrap, startup_scrap=c.startup_scrap,
                     ideal_s=cycle * made, scrap_ideal_s=cycle * c.scrap,
                     startup_scrap_ideal_s=cycle * c.startup_scrap)


_Span = TypeVar("_Span", Interval, StateInterval)


def _disjoint(items: list[_Span], what: str) -> list[_Span]:
    for a, b in pairwise(items):
        if b.start < a.end:
            raise ValueError(f"{what} overlap: {a.start}-{a.end} and {b.start}-{b.end}")
    return items


_E = TypeVar("_E", TimelineState, LossBucket)


def _member(kind: type[_E], value: str, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {what} {value!r} (one of: {known})") from None


def _mode(mode: str) -> OeeMode:
    if mode == "iso":
        return "iso"
    if mode == "tpm":
        return "tpm"
    raise ValueError(f"OEE mode must be 'iso' or 'tpm', got {mode!r}")


def _seconds(td: timedelta) -> Fraction:
    return Fraction(td // timedelta(microseconds=1), 1_000_000)


def _ratio(num: Fraction, den: Fraction) -> Fraction | None:
    return None if den == 0 else num / den


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _minutes(seconds: Fraction) -> float:
    return float(seconds / 60)
