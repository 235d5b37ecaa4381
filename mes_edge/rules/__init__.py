"""Configured mapping of signals and messages to domain events. Knows no protocol, no SQL."""

from mes_edge.rules.counters import CounterTracker
from mes_edge.rules.signals import SignalRules, StateTracker, TriggerTracker
from mes_edge.rules.terminal import (
    ParsedScan,
    ScanParser,
    StationOperators,
    scan_event,
    terminal_event,
)

__all__ = ["CounterTracker", "ParsedScan", "ScanParser", "SignalRules", "StateTracker",
           "StationOperators", "TriggerTracker", "scan_event", "terminal_event"]
