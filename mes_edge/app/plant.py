"""From validated settings to what the domain needs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from mes_edge.config import Settings
from mes_edge.domain import ConfirmationPolicy, PlantRules


def plant_rules(settings: Settings) -> PlantRules:
    """The PlantRules of a plant file."""
    p = settings.production
    c = p.confirmation
    return PlantRules(
        work_centers={w.id: w.counting for w in settings.work_centers},
        tolerance_pct=p.tolerance_pct,
        policy=ConfirmationPolicy(on_report=c.on_report, on_complete=c.on_complete,
                                  every_units=c.every_units, every_seconds=c.every_seconds),
        auto_complete=p.auto_complete,
        scrap_reasons=frozenset(r.code for r in p.scrap_reasons),
        downtime_reasons=frozenset(r.code for r in p.downtime_reasons),
        max_quantity_per_event=p.max_quantity_per_event,
        over_production_hold=p.over_production == "hold",
        auto_assign_unassigned=p.unassigned.auto_assign,
        timezone=ZoneInfo(settings.site_timezone) if settings.site_timezone else None,
    )
