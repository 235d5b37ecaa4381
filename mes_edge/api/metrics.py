"""Prometheus metrics, read from the live objects at scrape time (no double bookkeeping)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
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
        up = GaugeMetricFamily("mes_edge_driver_connected", "1 when the link is up",
                               labels=["driver"])
        for name, h in self.service.health().items():
            up.add_metric([name], 1.0 if h.get("state") == "connected" else 0.0)
        yield up


def build_registry(service: EdgeService) -> CollectorRegistry:
    """A registry of our own (not the process-global one), so tests can build many services."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    return registry
