"""The single writer: bounded queue in, group commit, idempotency, listeners after commit."""

from mes_edge.dispatcher.dispatcher import Dispatcher, DispatcherClosed, DispatcherStats
from mes_edge.dispatcher.outcome import (
    CommittedBatch,
    CounterBaseline,
    Outcome,
    RawRejection,
    RejectionRecord,
    Status,
)

__all__ = [
    "CommittedBatch",
    "CounterBaseline",
    "Dispatcher",
    "DispatcherClosed",
    "DispatcherStats",
    "Outcome",
    "RawRejection",
    "RejectionRecord",
    "Status",
]
