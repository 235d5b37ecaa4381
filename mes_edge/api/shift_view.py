"""The running shift of a work center as the board and the tablet draw it (issue 11).

Per work center: the shift (or, without a calendar, the local day) up to now, its A / P / Q /
OEE summed exactly like `GET /api/v1/oee` (the 15-minute rollups plus the open span; the window
ends at now, and nothing is booked after now, so the last bucket is whole), the state timeline
clipped to the window with reasons, and the stops of planned time grouped by reason (the
Pareto). With a calendar and no shift running it shows the last shift of the past two days.
Three reads for all the work centers together: the open spans, every timeline in its window,
every window's rollup buckets.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from mes_edge.domain.calendar import ShiftInstance, shift_at, shifts_between
from mes_edge.domain.progress import BUCKET, BucketTotals, ProgressRules, span_totals, totals
from mes_edge.domain.progress import StateSpan as Span
from mes_edge.store.oee_report import Group, row
from mes_edge.store.progress import open_spans, timelines, window_totals
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


def figure_window(lo: datetime, hi: datetime, now: datetime) -> tuple[datetime, datetime] | None:
    """The rollup buckets [lo, end) that answer the figures of [lo, hi) (hi <= now), or None
    when the rollups cannot answer it exactly (bounds off the 15-minute grid)."""
    if not lo < hi or not _aligned(lo) or (hi < now and not _aligned(hi)):
        return None
    return lo, lo + -(-(hi - lo) // BUCKET) * BUCKET  # the bucket holding `hi` (all booked <= now)


def figures_of(rules: ProgressRules, work_center: str, lo: datetime, hi: datetime,
               now: datetime, buckets: list[BucketTotals], opened: list[Span]
               ) -> dict[str, Any]:
    """OEE of [lo, hi) from its rollup totals (the buckets of figure_window, summed or not)
    plus the open span up to now."""
    parts = list(buckets)
    for s in opened:
        a, b = max(s.start, lo), min(now, hi)
        if s.work_center == work_center and a < b:
            parts += span_totals(rules, work_center, a, b, s.state, rules.loss_of(s.reason),
                                 length=now - s.start).values()
    planned = sum((i.duration for i in rules.planned(work_center, lo, hi)), timedelta())
    return row(work_center, Group(lo, hi), totals(rules, planned // timedelta(microseconds=1),
                                                  parts))


async def figures(store: Store, rules: ProgressRules, work_center: str, lo: datetime,
                  hi: datetime, now: datetime, opened: list[Span]) -> dict[str, Any] | None:
    """OEE of [lo, hi) (hi <= now), or None when the rollups cannot answer it exactly."""
    w = figure_window(lo, hi, now)
    if w is None:
        return None
    found = (await window_totals(store, {work_center: w}))[work_center]
    return figures_of(rules, work_center, lo, hi, now, [found], opened)


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


@dataclass
class _Kept:
    """One work center's window as read and drawn before (see `_read_timelines`)."""

    lo: datetime
    seen: int = 0  # the newest updated_seq read
    spans: dict[datetime, tuple[Span, int]] = field(default_factory=dict)  # by start
    #: start -> (updated_seq, timeline entry, stop) of closed spans wholly inside the window:
    #: drawn once, the same until the span changes (a closed span no longer depends on now).
    drawn: dict[datetime, tuple[int, dict[str, Any], dict[str, Any] | None]] = field(
        default_factory=dict)
    #: The last merge of the timeline for a screen's resolution (merge_timeline).
    merged: MergeMemo | None = None


#: Per store, per work center: what the last board or tablet refresh read. A refresh every few
#: seconds re-reads only the spans written since (a day of a busy plant is tens of thousands).
_KEPT: weakref.WeakKeyDictionary[Store, dict[str, _Kept]] = weakref.WeakKeyDictionary()


async def _read_timelines(store: Store, windows: dict[str, tuple[datetime, datetime]]
                          ) -> dict[str, _Kept]:
    """Every work center's spans in its window: what was read before plus what changed since;
    read again from scratch where the counts disagree (a window that moved, a write between the
    two statements, a span that came into the window without being written)."""
    kept = _KEPT.setdefault(store, {})
    for wc, (lo, _) in windows.items():
        k = kept.get(wc)
        if k is None or k.lo != lo:
            kept[wc] = _Kept(lo)
    asked = {wc: (lo, hi, kept[wc].seen) for wc, (lo, hi) in windows.items()}
    for attempt in range(2):
        read = await timelines(store, asked)
        again = {}
        for wc, r in read.items():
            k = kept[wc]
            for span, seq in r.changed:
                k.spans[span.start] = (span, seq)
                k.seen = max(k.seen, seq)
            if len(k.spans) != r.total and attempt == 0:
                kept[wc] = _Kept(k.lo)
                again[wc] = (k.lo, asked[wc][1], 0)
        if not again:
            break
        asked = again
    return {wc: kept[wc] for wc in windows}


def _draw(s: Span, seq: int, k: _Kept, hi: datetime, now: datetime,
          downtime_out: DowntimeOut) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A span's timeline entry and, for a stop, its downtime (downtime_out)."""
    inside = s.end is not None and s.start >= k.lo and s.end <= hi
    if inside and (hit := k.drawn.get(s.start)) is not None and hit[0] == seq:
        return hit[1], hit[2]
    stop = downtime_out(s, now) if s.downtime_id is not None else None
    d = stop or {"micro_stop": False, "reason": s.reason, "reason_text": None,
                 "in_planned_time": True}
    entry = {
        "state": s.state.value, "start": max(s.start, k.lo), "end": min(s.end or hi, hi),
        "open": s.end is None, "downtime_id": s.downtime_id, "reason": d["reason"],
        "reason_text": d["reason_text"], "reason_by": s.reason_by,
        "micro_stop": d["micro_stop"], "in_planned_time": d["in_planned_time"]}
    if inside:
        k.drawn[s.start] = (seq, entry, stop)
    return entry, stop


def _segment(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several consecutive timeline entries drawn as one: coloured by the state that takes most
    of its time (a micro-stop colour when that state's time is all micro-stops), with the count
    of spans, stops and micro-stops and the seconds per state for the hover text."""
    seconds: dict[str, float] = {}
    micro: dict[str, float] = {}
    for e in entries:
        length = (e["end"] - e["start"]).total_seconds()
        seconds[e["state"]] = seconds.get(e["state"], 0.0) + length
        if e["micro_stop"]:
            micro[e["state"]] = micro.get(e["state"], 0.0) + length
    state = max(seconds, key=lambda s: seconds[s])  # the first of equals, in time order
    return {
        "state": state, "start": entries[0]["start"], "end": entries[-1]["end"],
        "open": entries[-1]["open"], "downtime_id": None, "reason": None, "reason_text": None,
        "reason_by": None, "micro_stop": micro.get(state, -1.0) == seconds[state],
        "in_planned_time": any(e["in_planned_time"] for e in entries),
        "merged": len(entries), "stops": sum(1 for e in entries if e["downtime_id"] is not None),
        "micro_stops": sum(1 for e in entries if e["micro_stop"]),
        "seconds": {s: round(v, 3) for s, v in seconds.items()},
    }


@dataclass
class MergeMemo:
    """A work center's last merge (merge_timeline), reused up to where its timeline changed."""

    resolution: timedelta
    timeline: list[dict[str, Any]]
    #: (first, end) indices into `timeline` of each segment, and the segment.
    out: list[tuple[int, int, dict[str, Any]]]
    #: Where the merge can start again: (index, start of the segment still open there or None).
    #: What came out before an index depends only on the entries before it (and on whether
    #: the entry there joins the one before it).
    restarts: list[tuple[int, int | None]]


def _merge_from(timeline: list[dict[str, Any]], first: int, pending: tuple[int, int] | None,
                resolution: timedelta, out: list[tuple[int, int, dict[str, Any]]],
                restarts: list[tuple[int, int | None]]) -> None:
    """merge_timeline of timeline[first:], appended to `out`; `pending`: the last segment
    before `first`, still open to a short tail."""
    chunk: int | None = None  # where the chunk of short spans being filled starts
    chunk_len = timedelta()
    n = len(timeline)

    def emit(seg: tuple[int, int]) -> None:
        i, j = seg
        out.append((i, j, timeline[i] if j - i == 1 else _segment(timeline[i:j])))

    def flush(at: int) -> None:
        nonlocal chunk, chunk_len, pending
        if chunk is not None:
            if chunk_len < resolution and pending is not None:  # a short tail joins it
                pending = (pending[0], at)
            else:
                if pending is not None:
                    emit(pending)
                pending = (chunk, at)
        if pending is not None:
            emit(pending)
        pending, chunk, chunk_len = None, None, timedelta()

    i = first
    while i < n:
        e = timeline[i]
        j = i + 1  # spans that join: same state, contiguous, no stop among them
        while (j < n and timeline[j]["start"] == timeline[j - 1]["end"]
               and timeline[j]["state"] == e["state"] and e["downtime_id"] is None
               and timeline[j]["downtime_id"] is None and not e["micro_stop"]
               and not timeline[j]["micro_stop"]):
            j += 1
        length = timeline[j - 1]["end"] - e["start"]
        if i > 0 and timeline[i - 1]["end"] != e["start"]:
            flush(i)  # a gap: no segment crosses it
        if length >= resolution:
            flush(i)
            emit((i, j))
        else:
            if chunk is None:
                chunk = i
            chunk_len += length
            if chunk_len >= resolution:  # a segment, open to a short tail until the next one
                if pending is not None:
                    emit(pending)
                pending, chunk, chunk_len = (chunk, j), None, timedelta()
        if j < n and chunk is None:
            restarts.append((j, None if pending is None else pending[0]))
        i = j
    flush(n)


def merge_timeline(timeline: list[dict[str, Any]], resolution: timedelta,
                   memo: MergeMemo | None = None) -> tuple[list[dict[str, Any]], MergeMemo]:
    """The timeline at a screen's resolution (`resolution`: the time one pixel of the strip
    shows), and a memo for the next call. Consecutive spans of the same state that are not
    stops join; a run of spans each shorter than the resolution becomes segments of at least
    that length (one, when the run is shorter than twice the resolution), each a `_segment`;
    the rest (a stop, or a span at least as long as the resolution) stays the entry it was,
    reason and who gave it included. The segments cover exactly the time the entries cover:
    contiguous where they are, no overlap, and a gap between entries stays a gap. Entries
    sorted by start, not overlapping.

    With the `memo` of the previous call, what it merged before the last restart point in the
    part of the timeline that did not change is kept (a refresh merges the last few spans)."""
    out: list[tuple[int, int, dict[str, Any]]] = []
    restarts: list[tuple[int, int | None]] = []
    first, pending = 0, None
    if memo is not None and memo.resolution == resolution:
        old, same = memo.timeline, 0
        for a, b in zip(old, timeline, strict=False):
            if a is not b and a != b:
                break
            same += 1
        # The last restart point r with entries [0, r] unchanged.
        k = bisect_left(memo.restarts, same, key=lambda x: x[0]) - 1
        if k >= 0:
            first, ps = memo.restarts[k]
            restarts = memo.restarts[:k + 1]
            kept = first if ps is None else ps
            out = memo.out[:bisect_right(memo.out, kept, key=lambda x: x[1])]
            pending = None if ps is None else (ps, first)
    _merge_from(timeline, first, pending, resolution, out, restarts)
    return [x[2] for x in out], MergeMemo(resolution, list(timeline), out, restarts)


def _merged(k: _Kept, timeline: list[dict[str, Any]], resolution: timedelta
            ) -> list[dict[str, Any]]:
    out, k.merged = merge_timeline(timeline, resolution, k.merged)
    return out


def work_center_view(rules: ProgressRules, work_center: str, name: str, now: datetime,
                     shown: tuple[dict[str, Any] | None, datetime, datetime], k: _Kept,
                     buckets: list[BucketTotals] | None, opened: list[Span],
                     downtime_out: DowntimeOut, resolution: timedelta | None = None
                     ) -> dict[str, Any]:
    """Shift, figures, timeline and Pareto of one work center, from what was read for it:
    `shown` (window()), its spans in the window, its rollup buckets (None: no figures). With a
    `resolution` the timeline is merged to it (merge_timeline); the figures, downtime minutes,
    micro-stops and Pareto come from the rollups and the spans as read, never from the merge."""
    shift, lo, hi = shown
    timeline = []
    stops = []
    for s, seq in sorted(k.spans.values(), key=lambda x: x[0].start):
        entry, stop = _draw(s, seq, k, hi, now, downtime_out)
        timeline.append(entry)
        if stop is not None:
            stops.append(stop)
    counted = [d for d in stops if not d["micro_stop"] and d["in_planned_time"]]
    downtime_min = sum((min(d["end"] or hi, hi) - max(d["start"], lo)).total_seconds()
                       for d in counted) / 60
    return {
        "work_center": work_center, "name": name, "shift": shift, "from": lo, "to": hi,
        "figures": None if buckets is None else figures_of(rules, work_center, lo, hi, now,
                                                            buckets, opened),
        "downtime_min": round(downtime_min, 2),
        "micro_stops": sum(1 for d in stops if d["micro_stop"]),
        "reason_missing": sum(1 for d in stops if d["reason_missing"]),
        "timeline": timeline if resolution is None else _merged(k, timeline, resolution),
        "pareto": pareto(stops, lo, hi),
    }


async def shift_views(store: Store, rules: ProgressRules, work_centers: list[tuple[str, str]],
                      now: datetime, downtime_out: DowntimeOut,
                      resolution: timedelta | None = None) -> list[dict[str, Any]]:
    """The running shift of each (id, name) work center (timelines merged to `resolution`, the
    time a pixel of the strip shows, if given: merge_timeline).

    Four statements whatever the number of work centers (the open spans, every timeline's
    count and its spans changed since the last refresh, every window's rollup totals summed),
    each an index range per work center. `downtime_out` must depend on the span alone (and on now
    for an open one): what it made of a closed span is kept until the span changes."""
    opened = await open_spans(store)
    shown = {wc: window(rules, wc, now) for wc, _ in work_centers}
    kept = await _read_timelines(store, {wc: (lo, hi) for wc, (_, lo, hi) in shown.items()
                                         if lo < hi})
    fig = {wc: w for wc, (_, lo, hi) in shown.items()
           if (w := figure_window(lo, hi, now)) is not None}
    summed = await window_totals(store, fig)
    return [work_center_view(rules, wc, name, now, shown[wc], kept.get(wc) or _Kept(shown[wc][1]),
                             [summed[wc]] if wc in fig else None, opened, downtime_out,
                             resolution)
            for wc, name in work_centers]
