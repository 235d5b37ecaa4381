"""From the plant file to what the timeline and OEE need (issue 11)."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from mes_edge.config import Settings
from mes_edge.config.calendar import build_calendars
from mes_edge.domain.oee import LossBucket
from mes_edge.domain.progress import ProgressRules, WorkCenterPlan


def progress_rules(settings: Settings) -> ProgressRules:
    """Calendars, micro-stop thresholds, ideal cycles and reason loss buckets of a plant."""
    calendars = build_calendars(settings.calendars)
    p = settings.production
    loss = {c.code: LossBucket(c.loss) for c in p.downtime_categories}
    return ProgressRules(
        {w.id: WorkCenterPlan(calendar=calendars[w.calendar] if w.calendar else None,
                              micro_stop_s=w.micro_stop_s, ideal_cycle_s=w.ideal_cycle_s)
         for w in settings.work_centers},
        timezone=ZoneInfo(settings.site_timezone) if settings.site_timezone else UTC,
        reason_loss={r.code: loss[r.category] if r.category else LossBucket.OTHER
                     for r in p.downtime_reasons},
        mode=p.oee_mode)
