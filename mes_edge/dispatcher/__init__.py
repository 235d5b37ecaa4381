"""The single writer: bounded queue in, group commit, idempotency, listeners after commit.

`RawRejection` and `CounterBaseline` are defined in the domain (mes_edge.domain.intake) and
named here too because they are what producers submit besides events.
"""

from mes_edge.dispatcher.dispatcher import Dispatcher, DispatcherClosed, DispatcherStats
from mes_edge.dispatcher.outcome import CommittedBatch, Outcome, RejectionRecord, Status
from mes_edge.domain.intake import CounterBaseline, RawRejection

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
