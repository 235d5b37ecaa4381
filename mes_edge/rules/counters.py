"""PLC counters -> quantities: deltas against the last committed reading, rollover and reset."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from mes_edge.config.settings import CounterRule
from mes_edge.domain import (
    Checkpoint,
    CounterBaseline,
    CountingSource,
    QuantityReported,
    RawRejection,
)

log = logging.getLogger(__name__)

#: Readings above this cannot be stored (SQLite INTEGER / PostgreSQL BIGINT are signed 64-bit).
MAX_STORABLE = 2**63 - 1

#: `unassigned_reason` of a forward jump larger than the rule's `max_delta`.
COUNTER_JUMP = "counter_jump"

CounterItem = QuantityReported | CounterBaseline | RawRejection


class CounterTracker:
    """Turns successive readings of one counter tag into quantity events.

    It starts from the last COMMITTED checkpoint, so what the machine counted while the service
    or the link was down is counted on the first reading after. The event id is derived from the
    reading (`device/tag/generation/value`), so the same reading never counts twice; every drop
    moves the generation on, so ids stay unique when a value is read again after it.

    A drop is a rollover only when the counter was close below its wrap point (2**bits) and the
    new reading is close above 0: the parts across the wrap must fit in the rule's rollover
    window. Any other drop is a reset, handled by `on_reset`. A PLC count is a fact, so a forward
    jump larger than `max_delta` (e.g. after a long outage) is counted too, whole, but as
    unassigned production of the work center (`unassigned_reason="counter_jump"`) for a
    supervisor to assign or write off. Every quantity carries the readings it came from.
    """

    def __init__(self, rule: CounterRule, work_center: str, committed: Checkpoint | None) -> None:
        self.rule = rule
        self.work_center = work_center
        self.max_value = (1 << rule.width) - 1
        self.window = rule.effective_rollover_window
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
        rule = self.rule
        unassigned: str | None = None
        if value < last:
            self.generation += 1
            if self._is_rollover(last, value):
                delta = self.max_value - last + 1 + value
            else:
                log.warning("%s/%s: counter reset from %d to %d", rule.device, rule.tag, last,
                            value)
                # A value above max_delta cannot be what was made since a reset (a preset, a
                # PLC restored from an old snapshot): only re-baseline.
                if rule.on_reset == "baseline" or value > rule.max_delta or value == 0:
                    self.last = value
                    return CounterBaseline(self._cp(value))
                delta = value
        else:
            delta = value - last
            if delta > rule.max_delta:
                log.warning("%s/%s: counter jumped from %d to %d (more than max_delta %d): "
                            "counted as unassigned production", rule.device, rule.tag, last,
                            value, rule.max_delta)
                unassigned = COUNTER_JUMP
        self.last = value
        good = delta if rule.counts == "good" else 0
        rework = delta if rule.counts == "rework" else 0
        scrap = {rule.scrap_reason or "machine": delta} if rule.counts == "scrap" else {}
        return QuantityReported(
            event_id=f"{rule.device}/{rule.tag}/{self.generation}/{value}",
            source=rule.device, source_ts=source_ts, work_center=self.work_center,
            by=CountingSource.MACHINE, good=good, scrap=scrap, rework=rework,
            unassigned_reason=unassigned, readings=(last, value), checkpoint=self._cp(value))

    def _is_rollover(self, last: int, value: int) -> bool:
        """Whether `last` -> `value` (a drop) is the counter wrapping at 2**bits."""
        if last > self.max_value:  # read beyond the declared width: it cannot have wrapped
            return False
        # The parts up to the wrap point plus those after it; both ends must be near the wrap,
        # which this one sum bounds.
        return self.max_value - last + 1 + value <= self.window
