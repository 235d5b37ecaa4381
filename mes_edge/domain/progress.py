"""The machine-state timeline and the OEE rollups a decision adds to them. Pure, no I/O.

The timeline of a work center is the sequence of its states, one `StateSpan` per stretch of one
state, keyed by (work center, start): the open span starts at `WorkCenterState.since`, so it can
always be found again from the committed WIP (after a restart, or on replay). A stop span is the
work center's `Downtime` (same id, reason and who gave it). The dispatcher calls `record` for each
accepted decision and writes what it returns in the same transaction as the event.

Rollups: OEE times and counts per work center per `BUCKET` (15 minutes, aligned on UTC), kept
in whole microseconds so that they add up exactly. A span is booked when it closes (then its
whole length is known, which decides micro-stop or downtime); a later reason that moves a stop
between loss buckets (planned, setup, other) books the difference. Counts are booked in the
bucket of the event's time, with the operation's ideal cycle time (the work center's as fall
back). Planned time (shifts minus breaks) comes from the calendar; a work center without a
calendar is planned around the clock. Open spans are not booked: a query adds them up to now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction

from mes_edge.domain.calendar import Calendar, Interval, planned_intervals
from mes_edge.domain.events import Event, MachineStateChanged
from mes_edge.domain.model import Downtime, MachineState, WorkCenterState
from mes_edge.domain.oee import LossBucket, OeeMode, OeeTotals
from mes_edge.domain.plant import Decision, StateView

BUCKET = timedelta(minutes=15)
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WorkCenterPlan:
    """What OEE needs to know of one work center."""

    calendar: Calendar | None = None
    micro_stop_s: float = 60.0
    ideal_cycle_s: float | None = None


class ProgressRules:
    """Calendars, thresholds and the reason -> loss bucket map (with a cache of planned time)."""

    def __init__(self, work_centers: Mapping[str, WorkCenterPlan], *, timezone: tzinfo = UTC,
                 reason_loss: Mapping[str, LossBucket] | None = None,
                 mode: OeeMode = "iso") -> None:
        self.work_centers = dict(work_centers)
        self.timezone = timezone
        self.reason_loss = dict(reason_loss or {})
        self.mode: OeeMode = mode
        self._days: dict[tuple[str, datetime], list[Interval]] = {}

    def plan(self, work_center: str) -> WorkCenterPlan:
        """The work center's plan (defaults for one not configured)."""
        return self.work_centers.get(work_center) or WorkCenterPlan()

    def loss_of(self, reason: str | None) -> LossBucket | None:
        """The loss bucket of a downtime reason (None: no reason, or not categorised)."""
        return None if reason is None else self.reason_loss.get(reason)

    def planned(self, work_center: str, start: datetime, end: datetime) -> list[Interval]:
        """Planned busy intervals of [start, end) (all of it without a calendar)."""
        cal = self.plan(work_center).calendar
        if start >= end:
            return []
        if cal is None:
            return [Interval(start, end)]
        out: list[Interval] = []
        day = _floor(start, timedelta(days=1))
        while day < end:
            key = (work_center, day)
            whole = self._days.get(key)
            if whole is None:
                if len(self._days) > 20_000:
                    self._days.clear()  # bounded: a long query or a benchmark
                whole = self._days[key] = planned_intervals(cal, self.timezone, day,
                                                            day + timedelta(days=1))
            out += [c for c in (i.clip(start, end) for i in whole) if c is not None]
            day += timedelta(days=1)
        return out


@dataclass(frozen=True, slots=True)
class StateSpan:
    """One interval of a work center's state timeline (end None: still open)."""

    work_center: str
    start: datetime
    end: datetime | None
    state: MachineState
    #: "machine" (the PLC state tag) or "operation" (operation status at an operator station).
    source: str
    downtime_id: str | None = None
    reason: str | None = None
    reason_by: str | None = None


@dataclass(frozen=True, slots=True)
class BucketTotals:
    """OEE times (microseconds, inside planned time unless said) and counts of one bucket."""

    running_us: int = 0
    outside_run_us: int = 0  # running outside planned time
    micro_us: int = 0
    setup_us: int = 0
    stops_us: int = 0
    planned_stops_us: int = 0
    unknown_us: int = 0
    good: int = 0
    scrap: int = 0
    units_without_ideal: int = 0
    ideal_us: int = 0
    scrap_ideal_us: int = 0

    def __add__(self, other: BucketTotals) -> BucketTotals:
        return BucketTotals(*(getattr(self, f.name) + getattr(other, f.name)
                              for f in fields(self)))

    def __neg__(self) -> BucketTotals:
        return BucketTotals(*(-getattr(self, f.name) for f in fields(self)))

    @property
    def covered_us(self) -> int:
        """Planned time with a booked state (what is left of planned time is unrecorded)."""
        return (self.running_us + self.micro_us + self.setup_us + self.stops_us
                + self.planned_stops_us + self.unknown_us)

    def as_row(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


COLUMNS = tuple(f.name for f in fields(BucketTotals))


@dataclass
class ProgressDelta:
    """What one decision adds: spans to upsert, totals to add per (work center, bucket)."""

    spans: list[StateSpan] = field(default_factory=list)
    buckets: dict[tuple[str, datetime], BucketTotals] = field(default_factory=dict)

    def add(self, work_center: str, parts: Mapping[datetime, BucketTotals], sign: int = 1
            ) -> None:
        for start, t in parts.items():
            key = (work_center, start)
            self.buckets[key] = self.buckets.get(key, BucketTotals()) + (t if sign > 0 else -t)

    def merge(self, other: ProgressDelta) -> None:
        self.spans += other.spans
        for (wc, start), t in other.buckets.items():
            self.add(wc, {start: t})


def bucket_of(instant: datetime) -> datetime:
    """Start of the rollup bucket holding `instant`."""
    return _floor(instant, BUCKET)


def _floor(instant: datetime, step: timedelta) -> datetime:
    return _EPOCH + ((instant - _EPOCH) // step) * step


def category(state: MachineState, loss: LossBucket | None, length: timedelta,
             micro_stop_s: float) -> str:
    """Where a span's planned time goes (a BucketTotals field), by state, loss and length."""
    if loss is LossBucket.PLANNED:
        return "planned_stops_us"
    if state is MachineState.RUNNING:
        return "running_us"
    if state is MachineState.SETUP or loss is LossBucket.SETUP:
        return "setup_us"
    if state is MachineState.UNKNOWN:
        return "unknown_us"
    return "micro_us" if length < timedelta(seconds=micro_stop_s) else "stops_us"


def span_totals(rules: ProgressRules, work_center: str, start: datetime, end: datetime,
                state: MachineState, loss: LossBucket | None, *,
                length: timedelta | None = None) -> dict[datetime, BucketTotals]:
    """The bucket totals of one span [start, end) (`length`: the whole stop, if longer)."""
    where = category(state, loss, length if length is not None else end - start,
                     rules.plan(work_center).micro_stop_s)
    plan = rules.planned(work_center, start, end)
    out: dict[datetime, BucketTotals] = {}
    b = bucket_of(start)
    j = 0
    while b < end:
        lo, hi = max(b, start), min(b + BUCKET, end)
        inside = timedelta()
        while j < len(plan) and plan[j].end <= lo:
            j += 1
        k = j
        while k < len(plan) and plan[k].start < hi:
            part = plan[k].clip(lo, hi)
            inside += part.duration if part else timedelta()
            k += 1
        values = {where: inside // _US}
        if where == "running_us":
            values["outside_run_us"] = (hi - lo - inside) // _US
        if any(values.values()):
            out[b] = BucketTotals(**values)
        b += BUCKET
    return out


def count_totals(good: int, scrap: int, ideal_cycle_s: float | None) -> BucketTotals:
    """Totals of units made (scrap: every reject, rework included)."""
    made = good + scrap
    if ideal_cycle_s is None:
        return BucketTotals(good=good, scrap=scrap, units_without_ideal=made)
    ideal = round(ideal_cycle_s * 1_000_000)
    return BucketTotals(good=good, scrap=scrap, ideal_us=ideal * made, scrap_ideal_us=ideal * scrap)


def _span(d: Downtime, source: str) -> StateSpan:
    return StateSpan(work_center=d.work_center, start=d.start, end=d.end, state=d.state,
                     source=source, downtime_id=d.downtime_id, reason=d.reason,
                     reason_by=d.reason_by)


def _known_downtimes(wc: WorkCenterState) -> dict[str, Downtime]:
    found = {d.downtime_id: d for d in wc.recent_downtimes}
    if wc.downtime is not None:
        found[wc.downtime.downtime_id] = wc.downtime
    return found


def record(view: StateView, rules: ProgressRules, event: Event, decision: Decision
           ) -> ProgressDelta:
    """The timeline spans and rollup totals an accepted decision adds (`view`: state before).

    When a reason was given (or changed) and by whom is in the event log
    (DowntimeReasonGiven); the span keeps the current reason and who gave it.
    """
    out = ProgressDelta()
    source = "machine" if isinstance(event, MachineStateChanged) else "operation"
    changed = {d.downtime_id: d for d in decision.downtimes}
    for wc_id, after in decision.work_centers.items():
        before = view.work_center(wc_id) or WorkCenterState(work_center=wc_id)
        known = _known_downtimes(before)
        handled: set[str] = set()
        if after.machine_state != before.machine_state and after.since is not None:
            if before.since is not None and before.since < after.since:
                closing = before.downtime
                if closing is not None:
                    closing = changed.get(closing.downtime_id, closing)
                    handled.add(closing.downtime_id)
                    span = _span(replace(closing, end=after.since), source)
                else:
                    span = StateSpan(wc_id, before.since, after.since, before.machine_state,
                                     source)
                out.spans.append(span)
                out.add(wc_id, span_totals(rules, wc_id, span.start, after.since, span.state,
                                           rules.loss_of(span.reason)))
            if after.downtime is not None:
                handled.add(after.downtime.downtime_id)
                out.spans.append(_span(after.downtime, source))
            else:
                out.spans.append(StateSpan(wc_id, after.since, None, after.machine_state, source))
        for d in decision.downtimes:
            if d.work_center != wc_id or d.downtime_id in handled:
                continue
            old = known.get(d.downtime_id)
            if old is not None and old.reason == d.reason and old.end == d.end:
                continue
            out.spans.append(_span(d, source))
            if d.end is not None and old is not None and old.end is not None:
                before_loss, after_loss = rules.loss_of(old.reason), rules.loss_of(d.reason)
                if _moves(before_loss) != _moves(after_loss):
                    out.add(wc_id, span_totals(rules, wc_id, d.start, d.end, d.state,
                                               before_loss), sign=-1)
                    out.add(wc_id, span_totals(rules, wc_id, d.start, d.end, d.state, after_loss))
    _count(view, rules, event, decision, out)
    return out


def _moves(loss: LossBucket | None) -> LossBucket | None:
    """The part of a loss bucket that changes where time is booked (planned, setup, other)."""
    return loss if loss in (LossBucket.PLANNED, LossBucket.SETUP) else None


def _count(view: StateView, rules: ProgressRules, event: Event, decision: Decision,
           out: ProgressDelta) -> None:
    """Units made: what operations and the work centers' unassigned production gained."""
    bucket = bucket_of(event.ts)
    for oid, order in decision.orders.items():
        before = view.order(oid)
        for op in order.operations:
            old = before.op(op.op_no) if before is not None else None
            good = op.done.good - (old.done.good if old else 0)
            scrap = (op.done.scrap_total + op.done.rework
                     - ((old.done.scrap_total + old.done.rework) if old else 0))
            if good or scrap:
                ideal = op.ideal_cycle_s or rules.plan(op.work_center).ideal_cycle_s
                out.add(op.work_center, {bucket: count_totals(good, scrap, ideal)})
    for wc_id, wc in decision.work_centers.items():
        old_wc = view.work_center(wc_id) or WorkCenterState(work_center=wc_id)
        now = wc.unassigned.plus(wc.written_off_total)
        then = old_wc.unassigned.plus(old_wc.written_off_total)
        good = now.good - then.good
        scrap = now.scrap_total + now.rework - then.scrap_total - then.rework
        if good or scrap:
            out.add(wc_id, {bucket: count_totals(good, scrap, rules.plan(wc_id).ideal_cycle_s)})


def totals(rules: ProgressRules, planned_us: int, parts: Iterable[BucketTotals]) -> OeeTotals:
    """OeeTotals of a span: its planned time (calendar) and the sum of its bucket totals."""
    t = sum(parts, BucketTotals())
    td = lambda us: timedelta(microseconds=us)  # noqa: E731
    unrecorded = planned_us - t.covered_us + t.unknown_us
    return OeeTotals(
        mode=rules.mode, planned_busy=td(planned_us - t.planned_stops_us),
        running=td(t.running_us), micro_stops=td(t.micro_us), setup=td(t.setup_us),
        stops=td(t.stops_us), unrecorded=td(max(unrecorded, 0)),
        planned_stops=td(t.planned_stops_us), outside_plan_run=td(t.outside_run_us),
        good=t.good, scrap=t.scrap, units_without_ideal=t.units_without_ideal,
        ideal_s=Fraction(t.ideal_us, 1_000_000), scrap_ideal_s=Fraction(t.scrap_ideal_us,
                                                                        1_000_000))
