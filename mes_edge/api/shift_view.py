"""The running shift of a work center as the board and the tablet draw it (issue 11).

One read per work center: the shift (or, without a calendar, the local day) up to now, its
A / P / Q / OEE summed exactly like `GET /api/v1/oee` (the 15-minute rollups plus the open span;
the window ends at now, and nothing is booked after now, so the last bucket is whole), the state
timeline clipped to the window with reasons, and the stops of planned time grouped by reason
(the Pareto). With a calendar and no shift running it shows the last shift of the past two days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from mes_edge.domain.calendar import ShiftInstance, shift_at, shifts_between
from mes_edge.domain.progress import BUCKET, ProgressRules, span_totals, totals
from mes_edge.domain.progress import StateSpan as Span
from mes_edge.store.oee_report import Group, row
from mes_edge.store.progress import bucket_sums, open_spans, spans
from mes_edge.store.repository import Store

#: Reasons on the Pareto chart; the rest is summed as "other reasons".
PARETO_TOP = 6
#: How far back a board looks for the last shift when none is running.
LOOK_BACK = timedelta(days=2)

DowntimeOut = Callable[[Span, datetime], dict[str, Any]]


def _aligned(t: datetime) -> bool:
    return not t.timestamp() % BUCKET.total_seconds()


def _shift_out(s: ShiftInstance, running: bool) -> dict[str, Any]:
    return {"name": s.shift, "calendar": s.calendar, "production_date": s.production_date,
            "start": s.start, "end": s.end, "running": running,
            "breaks": [{"start": b.start, "end": b.end, "name": b.name, "kind": b.kind}
                       for b in s.breaks]}


def window(rules: ProgressRules, work_center: str, now: datetime
           ) -> tuple[dict[str, Any] | None, datetime, datetime]:
    """(shift shown or None, window start, window end) for a work center at `now`."""
    cal = rules.plan(work_center).calendar
    if cal is None:  # planned around the clock: the local day so far
        day = now.astimezone(rules.timezone).date()
        return None, datetime.combine(day, time(), rules.timezone), now
    current = shift_at(cal, rules.timezone, now)
    if current is not None:
        return _shift_out(current, True), current.start, now
    past = [s for s in shifts_between(cal, rules.timezone, now - LOOK_BACK, now) if s.end <= now]
    if not past:
        return None, now, now
    last = past[-1]
    return _shift_out(last, False), last.start, last.end


async def figures(store: Store, rules: ProgressRules, work_center: str, lo: datetime,
                  hi: datetime, now: datetime, opened: list[Span]) -> dict[str, Any] | None:
    """OEE of [lo, hi) (hi <= now), or None when the rollups cannot answer it exactly."""
    if not lo < hi or not _aligned(lo) or (hi < now and not _aligned(hi)):
        return None
    end = lo + -(-(hi - lo) // BUCKET) * BUCKET  # the bucket holding `hi` (all booked <= now)
    parts = [r.totals for r in await bucket_sums(store, lo, end, work_center=work_center)]
    for s in opened:
        a, b = max(s.start, lo), min(now, hi)
        if s.work_center == work_center and a < b:
            parts += span_totals(rules, work_center, a, b, s.state, rules.loss_of(s.reason),
                                 length=now - s.start).values()
    planned = sum((i.duration for i in rules.planned(work_center, lo, hi)), timedelta())
    return row(work_center, Group(lo, hi), totals(rules, planned // timedelta(microseconds=1),
                                                  parts))


def pareto(stops: list[dict[str, Any]], lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """Minutes of the stops that count (planned time, not micro-stops) per reason, largest
    first, with the cumulative share; beyond PARETO_TOP the rest is one "other" bar."""
    by: dict[str | None, dict[str, Any]] = {}
    for d in stops:
        if d["micro_stop"] or not d["in_planned_time"]:
            continue
        a, b = max(d["start"], lo), min(d["end"] or hi, hi)
        if a >= b:
            continue
        bar = by.setdefault(d["reason"], {"reason": d["reason"], "text": d["reason_text"],
                                           "loss": d["loss"], "minutes": 0.0, "stops": 0})
        bar["minutes"] += (b - a).total_seconds() / 60
        bar["stops"] += 1
    bars = sorted(by.values(), key=lambda x: (-x["minutes"], x["reason"] or ""))
    if len(bars) > PARETO_TOP:
        rest = bars[PARETO_TOP - 1:]
        bars = [*bars[:PARETO_TOP - 1], {
            "reason": "*other", "text": None, "loss": None,
            "minutes": sum(x["minutes"] for x in rest), "stops": sum(x["stops"] for x in rest)}]
    total = sum(x["minutes"] for x in bars) or 1.0
    cumulative = 0.0
    for x in bars:
        cumulative += x["minutes"]
        x["minutes"] = round(x["minutes"], 2)
        x["cumulative_pct"] = round(100 * cumulative / total, 1)
    return bars


async def work_center_view(store: Store, rules: ProgressRules, work_center: str, name: str,
                           now: datetime, opened: list[Span], downtime_out: DowntimeOut
                           ) -> dict[str, Any]:
    """Shift, figures, timeline and Pareto of one work center."""
    shift, lo, hi = window(rules, work_center, now)
    found = await spans(store, lo, hi, work_centers=[work_center]) if lo < hi else []
    timeline = []
    stops = []
    for s in found:
        if s.downtime_id is not None:
            d = downtime_out(s, now)
            stops.append(d)
        else:
            d = {"micro_stop": False, "reason": s.reason, "reason_text": None,
                 "in_planned_time": True}
        timeline.append({
            "state": s.state.value, "start": max(s.start, lo), "end": min(s.end or hi, hi),
            "open": s.end is None, "downtime_id": s.downtime_id, "reason": d["reason"],
            "reason_text": d["reason_text"],
            "micro_stop": d["micro_stop"], "in_planned_time": d["in_planned_time"]})
    counted = [d for d in stops if not d["micro_stop"] and d["in_planned_time"]]
    downtime_min = sum((min(d["end"] or hi, hi) - max(d["start"], lo)).total_seconds()
                       for d in counted) / 60
    return {
        "work_center": work_center, "name": name, "shift": shift, "from": lo, "to": hi,
        "figures": await figures(store, rules, work_center, lo, hi, now, opened),
        "downtime_min": round(downtime_min, 2),
        "micro_stops": sum(1 for d in stops if d["micro_stop"]),
        "reason_missing": sum(1 for d in stops if d["reason_missing"]),
        "timeline": timeline, "pareto": pareto(stops, lo, hi),
    }


async def shift_views(store: Store, rules: ProgressRules, work_centers: list[tuple[str, str]],
                      now: datetime, downtime_out: DowntimeOut) -> list[dict[str, Any]]:
    """The running shift of each (id, name) work center."""
    opened = await open_spans(store)
    return [await work_center_view(store, rules, wc, name, now, opened, downtime_out)
            for wc, name in work_centers]
