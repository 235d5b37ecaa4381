"""PLC counters -> quantities: deltas against the last committed reading, rollover and reset."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from mes_edge.config.settings import CounterRule
from mes_edge.dispatcher import CounterBaseline, RawRejection
from mes_edge.domain import Checkpoint, CountingSource, QuantityReported

log = logging.getLogger(__name__)

#: Readings above this cannot be stored (SQLite INTEGER / PostgreSQL BIGINT are signed 64-bit).
MAX_STORABLE = 2**63 - 1

CounterItem = QuantityReported | CounterBaseline | RawRejection


class CounterTracker:
    """Turns successive readings of one counter tag into quantity events.

    It starts from the last COMMITTED checkpoint, so what the machine counted while the service
    or the link was down is counted on the first reading after. The event id is derived from the
    reading (`device/tag/generation/value`), so the same reading never counts twice. A reading
    below the last one is a rollover when the last was near the type's maximum, else a reset
    (the generation moves on so ids stay unique); a jump over `max_delta` is refused and
    recorded instead of becoming an absurd quantity.
    """

    def __init__(self, rule: CounterRule, work_center: str, committed: Checkpoint | None) -> None:
        self.rule = rule
        self.work_center = work_center
        self.max_value = (1 << rule.bits) - 1
        self.last: int | None = committed.value if committed else None
        self.generation = committed.generation if committed else 0

    def _cp(self, value: int) -> Checkpoint:
        return Checkpoint(self.rule.device, self.rule.tag, value, self.generation)

    def on_value(self, raw: object, source_ts: datetime | None) -> CounterItem | None:
        """The item a new reading produces, or None when nothing changed."""
        # NaN/inf (a float tag gone bad) must be refused here: int() of them raises.
        if (isinstance(raw, bool) or not isinstance(raw, int | float)
                or (isinstance(raw, float) and not math.isfinite(raw)) or raw != int(raw)
                or raw < 0 or raw > MAX_STORABLE):
            return RawRejection(source=self.rule.device, reason_code="bad_counter_value",
                                reason=f"{self.rule.device}/{self.rule.tag}: {raw!r} is not a "
                                       "counter value", payload={"value": repr(raw)},
                                work_center=self.work_center)
        value = int(raw)
        last = self.last
        if last is None:
            self.last = value
            return CounterBaseline(self._cp(value))
        if value == last:
            return None
        delta = value - last
        rule = self.rule
        if delta < 0:
            wrapped = self.max_value - last + 1 + value
            if value > self.max_value or last > self.max_value:
                wrapped = rule.max_delta + 1
            self.generation += 1
            if wrapped <= rule.max_delta and last > self.max_value - rule.max_delta:
                delta = wrapped  # rollover at the type's maximum
            else:
                log.warning("%s/%s: counter reset from %d to %d", rule.device, rule.tag, last,
                            value)
                if rule.on_reset == "baseline" or value > rule.max_delta or value == 0:
                    self.last = value
                    return CounterBaseline(self._cp(value))
                delta = value
        elif delta > rule.max_delta:
            self.generation += 1
            self.last = value
            return RawRejection(
                source=rule.device, reason_code="counter_jump",
                reason=f"{rule.device}/{rule.tag} jumped from {last} to {value}, more than "
                       f"max_delta {rule.max_delta}: re-baselined, not counted",
                payload={"from": last, "to": value}, work_center=self.work_center,
                checkpoint=self._cp(value))
        self.last = value
        good = delta if rule.counts == "good" else 0
        rework = delta if rule.counts == "rework" else 0
        scrap = {rule.scrap_reason or "machine": delta} if rule.counts == "scrap" else {}
        return QuantityReported(
            event_id=f"{rule.device}/{rule.tag}/{self.generation}/{value}",
            source=rule.device, source_ts=source_ts, work_center=self.work_center,
            by=CountingSource.MACHINE, good=good, scrap=scrap, rework=rework,
            checkpoint=self._cp(value))
