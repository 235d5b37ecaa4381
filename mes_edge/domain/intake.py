"""What producers hand the dispatcher besides events: refused raw input and counter baselines.

They live here, below the dispatcher, so that the rules (and the ERP puller) that make them do
not depend on the dispatcher that settles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes_edge.domain.events import Checkpoint, Event


@dataclass(frozen=True, slots=True)
class RawRejection:
    """Input that never became a valid event (malformed JSON, wrong types): recorded as refused."""

    source: str
    reason_code: str
    reason: str
    payload: Any
    event_id: str | None = None
    type: str | None = None
    work_center: str | None = None
    actor: str | None = None
    received_ts: datetime | None = None
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True, slots=True)
class CounterBaseline:
    """A counter reading that counts nothing (first reading, re-baseline): only its checkpoint."""

    checkpoint: Checkpoint


#: Everything a producer may submit to the dispatcher.
Item = Event | RawRejection | CounterBaseline
