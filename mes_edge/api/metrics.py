"""Prometheus metrics, read from the live objects at scrape time (no double bookkeeping)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from mes_edge.app.oee_gauges import ShiftFigures
    from mes_edge.app.service import EdgeService


class ServiceCollector(Collector):
    """Dispatcher counters, queue depth and per-driver link state."""

    def __init__(self, service: EdgeService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        d = self.service.dispatcher
        if d is not None:
            events = CounterMetricFamily("mes_edge_events", "Events settled by the dispatcher",
                                         labels=["outcome"])
            for outcome in ("accepted", "rejected", "duplicates", "unchanged"):
                events.add_metric([outcome], getattr(d.stats, outcome))
            yield events
            yield CounterMetricFamily("mes_edge_commits", "Group commits", value=d.stats.batches)
            yield CounterMetricFamily("mes_edge_commit_retries",
                                      "Commits retried because the store was unavailable",
                                      value=d.stats.commit_retries)
            yield GaugeMetricFamily("mes_edge_queue_depth", "Events waiting for the writer",
                                    value=d.queue_depth)
            yield GaugeMetricFamily("mes_edge_last_commit_ms", "Duration of the last commit",
                                    value=d.stats.last_commit_ms)
            yield GaugeMetricFamily("mes_edge_storage_up",
                                    "1 while the database takes commits, 0 during an outage",
                                    value=0.0 if d.storage_down else 1.0)
            yield CounterMetricFamily("mes_edge_storage_outage_seconds",
                                      "Seconds the database was unavailable to the writer",
                                      value=d.outage_seconds)
        if d is not None:
            open_units = GaugeMetricFamily(
                "mes_edge_unassigned_units",
                "Machine-counted units waiting as unassigned production (good/scrap/rework)",
                labels=["work_center", "kind"])
            resolved = CounterMetricFamily(
                "mes_edge_unassigned_resolved_units",
                "Unassigned units assigned to operations or written off",
                labels=["work_center", "action"])
            over = GaugeMetricFamily(
                "mes_edge_over_produced_units",
                "Machine-counted good beyond plan + tolerance on open operations",
                labels=["work_center"])
            # Kept by the WIP index as orders change: a scrape walks no order (issue 14).
            over_by_wc = d.state.index.over_produced
            for wc_id in d.rules.work_centers:
                wc = d.state.work_center(wc_id)
                u = wc.unassigned if wc else None
                open_units.add_metric([wc_id, "good"], u.good if u else 0)
                open_units.add_metric([wc_id, "scrap"], u.scrap_total if u else 0)
                open_units.add_metric([wc_id, "rework"], u.rework if u else 0)
                resolved.add_metric([wc_id, "assigned"],
                                    wc.assigned_total.processed if wc else 0)
                resolved.add_metric([wc_id, "written_off"],
                                    wc.written_off_total.processed if wc else 0)
                over.add_metric([wc_id], over_by_wc.get(wc_id, 0))
            yield open_units
            yield resolved
            yield over
        push = getattr(self.service, "push", None)
        if push is not None:
            pushed = CounterMetricFamily("mes_edge_erp_push",
                                         "Confirmations pushed to the ERP, by outcome",
                                         labels=["outcome"])
            pushed.add_metric(["delivered"], push.delivered)
            pushed.add_metric(["retried"], push.failures)
            pushed.add_metric(["refused"], push.refused)
            yield pushed
        gauges = getattr(self.service, "oee_gauges", None)
        if gauges is not None:
            yield from _shift_gauges(gauges.figures)
        up = GaugeMetricFamily("mes_edge_driver_connected", "1 when the link is up",
                               labels=["driver"])
        for name, h in self.service.health().items():
            up.add_metric([name], 1.0 if h.get("state") == "connected" else 0.0)
        yield up


def _shift_gauges(figures: Iterable[ShiftFigures]) -> Iterator[GaugeMetricFamily]:
    """The running shift's OEE per work center, from the cache a service task refreshes (a
    scrape never queries the database). A ratio with nothing to divide by (no planned time, no
    run time, no parts) is left out, never shown as 0 or 1."""
    labels = ["work_center", "shift"]
    ratios = {
        "availability": GaugeMetricFamily(
            "mes_edge_shift_availability", "Running shift: run time / planned busy time (0..1)",
            labels=labels),
        "performance": GaugeMetricFamily(
            "mes_edge_shift_performance",
            "Running shift: ideal cycle time x parts / run time (above 1: ideal cycle wrong)",
            labels=labels),
        "quality": GaugeMetricFamily(
            "mes_edge_shift_quality", "Running shift: good / (good + scrap) (0..1)",
            labels=labels),
        "oee": GaugeMetricFamily(
            "mes_edge_shift_oee", "Running shift: availability x performance x quality",
            labels=labels),
    }
    planned = GaugeMetricFamily("mes_edge_shift_planned_minutes",
                                "Running shift: planned busy minutes so far", labels=labels)
    run = GaugeMetricFamily("mes_edge_shift_run_minutes", "Running shift: run minutes so far",
                            labels=labels)
    good = GaugeMetricFamily("mes_edge_shift_good_units", "Running shift: good parts",
                             labels=labels)
    scrap = GaugeMetricFamily("mes_edge_shift_scrap_units",
                              "Running shift: rejected parts (scrap and rework)", labels=labels)
    for f in figures:
        key = [f.work_center, f.shift]
        t = f.totals
        for name, family in ratios.items():
            value = getattr(t, name)
            if value is not None:
                family.add_metric(key, value)
        planned.add_metric(key, t.planned_busy.total_seconds() / 60)
        run.add_metric(key, t.run_time.total_seconds() / 60)
        good.add_metric(key, t.good)
        scrap.add_metric(key, t.scrap)
    yield from ratios.values()
    yield from (planned, run, good, scrap)


def build_registry(service: EdgeService) -> CollectorRegistry:
    """A registry of our own (not the process-global one), so tests can build many services."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    return registry
