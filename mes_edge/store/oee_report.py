"""OEE per work center (or the plant) per shift, day, hour or span, from the rollups (issue 11).

Figures are summed from the 15-minute rollups (`oee_buckets`) plus the still-open state spans up
to now; planned time comes from the shift calendars at query time. Span bounds (and the
shift / day / hour bounds inside them) must fall on 15-minute boundaries (UTC): the rollups
have no finer grain, and a figure is never guessed from a part of a bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from mes_edge.domain.calendar import shifts_between
from mes_edge.domain.oee import OeeTotals
from mes_edge.domain.progress import BUCKET, BucketTotals, ProgressRules, span_totals, totals
from mes_edge.store.progress import bucket_sums, open_spans
from mes_edge.store.repository import Store

By = Literal["shift", "day", "hour"]
#: The longest span one query covers (bounds work: 400 days of 15-minute buckets).
MAX_SPAN = timedelta(days=400)


class ReportError(ValueError):
    """A query the rollups cannot answer exactly (misaligned bounds, mixed calendars...)."""


@dataclass(frozen=True, slots=True)
class Group:
    """One row of a report: a span with its label (shift name, local date, hour)."""

    start: datetime
    end: datetime
    label: str | None = None


def groups(rules: ProgressRules, work_centers: Sequence[str], start: datetime, end: datetime,
           by: By | None) -> list[Group]:
    """The spans a report is made of."""
    if not start < end:
        raise ReportError("'from' must be before 'to'")
    if end - start > MAX_SPAN:
        raise ReportError(f"at most {MAX_SPAN.days} days per query")
    tz = rules.timezone
    if by is None:
        out = [Group(start, end)]
    elif by == "hour":
        out, t = [], start
        while t < end:
            out.append(Group(t, min(t + timedelta(hours=1), end),
                             t.astimezone(tz).strftime("%Y-%m-%dT%H:%M%z")))
            t += timedelta(hours=1)
    elif by == "day":
        out, day = [], start.astimezone(tz).date()
        while True:
            lo = datetime.combine(day, datetime.min.time(), tz)
            hi = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
            if lo >= end:
                break
            if hi > start:
                out.append(Group(max(lo, start), min(hi, end), day.isoformat()))
            day += timedelta(days=1)
    else:
        calendars = {id(rules.plan(w).calendar): rules.plan(w).calendar for w in work_centers}
        if len(calendars) != 1 or None in calendars.values():
            raise ReportError("by=shift needs work centers that share one shift calendar")
        cal = next(iter(calendars.values()))
        assert cal is not None
        out = [Group(max(s.start, start), min(s.end, end),
                     f"{s.production_date.isoformat()} {s.shift}")
               for s in shifts_between(cal, tz, start, end)]
    for g in out:
        for t in (g.start, g.end):
            if t.timestamp() % BUCKET.total_seconds():
                raise ReportError(f"{t.isoformat()} is not on a 15-minute boundary: OEE is "
                                  "kept per 15 minutes")
    return out


async def report(store: Store, rules: ProgressRules, work_centers: Sequence[str],
                 start: datetime, end: datetime, by: By | None, now: datetime, *,
                 plant: bool = False) -> list[dict[str, Any]]:
    """OEE rows per group: per work center, or (plant=True) summed over `work_centers`."""
    spans = groups(rules, work_centers, start, end, by)
    opened = [s for s in await open_spans(store) if s.work_center in set(work_centers)]
    keys: list[str | None] = [None] if plant else list(work_centers)
    out: list[dict[str, Any]] = []
    for key in keys:
        members = list(work_centers) if key is None else [key]
        if key is None and set(members) >= set(rules.work_centers):
            rows = await bucket_sums(store, start, end)  # summed in SQL, per bucket
        else:
            rows = [r for w in members for r in await bucket_sums(store, start, end,
                                                                   work_center=w)]
        for g in spans:
            parts = [r.totals for r in rows if g.start <= r.bucket_start < g.end]
            for s in opened:
                if s.work_center not in members:
                    continue
                lo, hi = max(s.start, g.start), min(now, g.end)
                if lo < hi:
                    parts += span_totals(rules, s.work_center, lo, hi, s.state,
                                         rules.loss_of(s.reason), length=now - s.start).values()
            planned = sum(sum((i.duration for i in rules.planned(w, g.start, g.end)),
                              timedelta()) // timedelta(microseconds=1) for w in members)
            out.append(row(key, g, totals(rules, planned, parts)))
    return out


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def row(work_center: str | None, g: Group, t: OeeTotals) -> dict[str, Any]:
    """One report row (percentages rounded to 0.01, times in minutes)."""
    losses = t.six_big_losses()
    minutes = lambda td: round(td.total_seconds() / 60, 3)  # noqa: E731
    return {
        "work_center": work_center, "from": g.start, "to": g.end, "label": g.label,
        "mode": t.mode,
        "availability": _pct(t.availability), "performance": _pct(t.performance),
        "quality": _pct(t.quality), "oee": _pct(t.oee), "flags": list(t.flags),
        "planned_busy_min": minutes(t.planned_busy), "run_time_min": minutes(t.run_time),
        "planned_stops_min": minutes(t.planned_stops), "good": t.good, "scrap": t.scrap,
        "losses_min": {
            "breakdowns": losses.breakdowns, "setup_adjustment": losses.setup_adjustment,
            "small_stops": losses.small_stops, "reduced_speed": losses.reduced_speed,
            "startup_rejects": losses.startup_rejects,
            "production_rejects": losses.production_rejects, "unrecorded": losses.unrecorded,
        },
    }


__all__ = ["BucketTotals", "By", "Group", "ReportError", "groups", "report", "row"]
