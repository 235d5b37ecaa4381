"""The running shift's OEE per work center, cached for /metrics (issue 11).

A Prometheus scrape is synchronous and must not query the database, so a task the service owns
refreshes this cache every `production.oee_gauges_every_s` from the rollups (`oee_buckets`) plus
the open state spans up to now, the same sums the OEE report makes; the collector only reads
the cache.

The running shift of a work center is the shift of its calendar that holds `now`, from its start
up to now (planned time up to now, so the figures are those of the shift so far). A work center
without a calendar is planned around the clock: its "shift" is the local production day (the
site time zone) so far. Outside every shift nothing is planned: no figures (the gauges of the
last shift are dropped, not kept stale).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mes_edge.domain.calendar import shifts_between
from mes_edge.domain.oee import OeeTotals
from mes_edge.domain.progress import ProgressRules, span_totals, totals
from mes_edge.store.progress import bucket_sums, open_spans
from mes_edge.store.repository import Store

log = logging.getLogger(__name__)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ShiftFigures:
    """The running shift of one work center so far."""

    work_center: str
    shift: str  # "<production date> <shift name>", or "<local date> day" without a calendar
    start: datetime
    totals: OeeTotals


def running_shift(rules: ProgressRules, work_center: str, now: datetime
                  ) -> tuple[str, datetime] | None:
    """(label, start) of the shift of `work_center` running at `now`, or None between shifts."""
    cal = rules.plan(work_center).calendar
    if cal is None:
        local = now.astimezone(rules.timezone)
        midnight = datetime.combine(local.date(), datetime.min.time(), rules.timezone)
        return f"{local.date().isoformat()} day", midnight.astimezone(UTC)
    found = [s for s in shifts_between(cal, rules.timezone, now, now + _US)
             if s.start <= now < s.end]
    if not found:
        return None
    s = found[0]
    return f"{s.production_date.isoformat()} {s.shift}", s.start


async def shift_figures(store: Store, rules: ProgressRules, work_centers: Sequence[str],
                        now: datetime) -> list[ShiftFigures]:
    """The running shift's totals of each work center (none for one between shifts)."""
    opened = await open_spans(store)
    out: list[ShiftFigures] = []
    for wc in work_centers:
        shift = running_shift(rules, wc, now)
        if shift is None:
            continue
        label, start = shift
        # Booked totals are of closed spans and counts, all at or before now; the bucket
        # holding now is read whole. The open span is added up to now, like the OEE report.
        parts = [r.totals for r in await bucket_sums(store, start, now + _US, work_center=wc)]
        for s in opened:
            if s.work_center == wc:
                lo = max(s.start, start)
                if lo < now:
                    parts += span_totals(rules, wc, lo, now, s.state, rules.loss_of(s.reason),
                                         length=now - s.start).values()
        planned = sum((i.duration for i in rules.planned(wc, start, now)), timedelta()) // _US
        out.append(ShiftFigures(wc, label, start, totals(rules, planned, parts)))
    return out


class OeeGauges:
    """The cache the /metrics collector reads; `run` refreshes it (a service task)."""

    def __init__(self, store: Store, rules: ProgressRules, work_centers: Sequence[str],
                 every_s: float) -> None:
        self.store = store
        self.rules = rules
        self.work_centers = list(work_centers)
        self.every_s = every_s
        self.figures: tuple[ShiftFigures, ...] = ()
        self.refreshed_at: datetime | None = None
        self.failures = 0

    async def refresh(self, now: datetime | None = None) -> None:
        """Read the figures once and swap them in (a reader sees the old or the new set)."""
        now = now or datetime.now(UTC)
        self.figures = tuple(await shift_figures(self.store, self.rules, self.work_centers, now))
        self.refreshed_at = now

    async def run(self) -> None:
        """Refresh every `every_s` until cancelled; a failed round keeps the last figures."""
        while True:
            try:
                async with asyncio.timeout(max(self.every_s, 5.0)):
                    await self.refresh()
            except Exception:  # the database may be away: try again next round
                self.failures += 1
                log.exception("refreshing the OEE gauges failed")
            await asyncio.sleep(self.every_s)
