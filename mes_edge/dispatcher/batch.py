"""Building one group commit: apply each event in order on top of the batch so far.

The builder decides; what it hands the store is decisions (store.BatchWrite: events,
refusals, changed orders and work centers, confirmations), and the store makes the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from mes_edge.dispatcher.outcome import (
    CommittedBatch,
    Outcome,
    RejectionRecord,
    Status,
)
from mes_edge.domain import (
    Checkpoint,
    ConfirmationsDue,
    CounterBaseline,
    Decision,
    Downtime,
    Event,
    MemoryState,
    Overlay,
    PlantRules,
    RawRejection,
    Rejection,
    apply,
    event_to_json,
)
from mes_edge.domain.progress import ProgressRules, record
from mes_edge.store import BatchWrite, Refusal, Verdict
from mes_edge.store.progress import add_rows

_NEW = object()  # marks an id not settled before


class BatchBuilder:
    """Accumulates the decisions of a batch; nothing here touches the committed state."""

    def __init__(self, state: MemoryState, rules: PlantRules, *, seq: int, cursor: int,
                 rejection: int, known: Mapping[str, Verdict],
                 recent: Mapping[str, Verdict], progress: ProgressRules | None = None) -> None:
        self.rules = rules
        self.progress = progress  # issue 11: timeline + OEE rollups, same transaction
        self.decision = Decision()
        self.view = Overlay(state, self.decision)
        self.seq, self.cursor, self.rejection = seq, cursor, rejection
        self._start = (seq, cursor, rejection)
        self._known = known
        self._recent = recent
        self.new_ids: list[tuple[str, Verdict]] = []
        self._batch_ids: dict[str, Verdict] = {}
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self._now = datetime.now(UTC)
        self._rows = BatchWrite(committed_at=self._now)
        self._order_seq: dict[str, int] = {}
        self._wc_seq: dict[str, int] = {}
        self._downtimes: dict[str, tuple[Downtime, int]] = {}
        self.committed = CommittedBatch()

    def add(self, item: Event | RawRejection | CounterBaseline) -> Outcome:
        """Decide one item; its effects join the batch (still uncommitted)."""
        if isinstance(item, CounterBaseline):
            cp = item.checkpoint
            self.checkpoints[(cp.device, cp.tag)] = cp
            return Outcome(Status.UNCHANGED, None)
        if isinstance(item, RawRejection):
            if item.event_id is not None and (seen := self._seen(item.event_id)) is not _NEW:
                return self._again(item.event_id, seen)
            if item.event_id is not None:
                self._settle(item.event_id, (item.reason_code, item.reason))
            if item.checkpoint is not None:
                cp = item.checkpoint
                self.checkpoints[(cp.device, cp.tag)] = cp
            return self._reject_raw(item)
        event = item
        if (seen := self._seen(event.event_id)) is not _NEW:
            return self._again(event.event_id, seen)
        if event.checkpoint is not None:
            cp = event.checkpoint
            # Counts derived from a reading are settled (accepted or refused) once: advance.
            self.checkpoints[(cp.device, cp.tag)] = cp
        result = apply(self.view, self.rules, event)
        if isinstance(result, Rejection):
            self._settle(event.event_id, (result.code.value, result.message))
            return self._reject(event, result)
        self._settle(event.event_id, None)
        changed = result.changed
        if not changed and isinstance(event, ConfirmationsDue):
            return Outcome(Status.UNCHANGED, event.event_id)  # an idle timer tick: not logged
        # Events that change nothing are logged too: a redelivery must meet the same verdict
        # whatever happened in between, so every settled id is remembered.
        self.seq += 1
        self._rows.event_log.append((self.seq, event))
        self.committed.events.append((self.seq, event))
        if self.progress is not None and changed:
            # Before the merge below: the view still shows the state before this event.
            add_rows(self._rows, record(self.view, self.progress, event, result), self.seq)
        d = self.decision
        for oid, order in result.orders.items():
            d.orders[oid] = order
            self._order_seq[oid] = self.seq
        for wc_id, wc in result.work_centers.items():
            d.work_centers[wc_id] = wc
            self._wc_seq[wc_id] = self.seq
        for c in result.confirmations:
            d.confirmations.append(c)
            self.cursor += 1
            self._rows.confirmations.append((self.cursor, c))
            self.committed.confirmations.append((self.cursor, c))
        for dt in result.downtimes:
            self._downtimes[dt.downtime_id] = (dt, self.seq)
            self.committed.downtimes.append(dt)
        self.committed.notices.extend(result.notices)
        status = Status.ACCEPTED if changed else Status.UNCHANGED
        return Outcome(status, event.event_id, seq=self.seq)

    def _seen(self, event_id: str) -> Verdict | object:
        """How the id was settled before, or _NEW."""
        for where in (self._batch_ids, self._recent, self._known):
            if event_id in where:
                return where[event_id]
        return _NEW

    def _settle(self, event_id: str, verdict: Verdict) -> None:
        self._batch_ids[event_id] = verdict
        self.new_ids.append((event_id, verdict))

    @staticmethod
    def _again(event_id: str, verdict: Verdict | object) -> Outcome:
        """A resend: a refused id is refused again with the same reason (nothing recorded
        twice); an accepted one is a duplicate that changes nothing."""
        if isinstance(verdict, tuple):
            return Outcome(Status.REJECTED, event_id, code=verdict[0], reason=verdict[1],
                           repeated=True)
        return Outcome(Status.DUPLICATE, event_id)

    def _reject(self, event: Event, rejection: Rejection) -> Outcome:
        self.rejection += 1
        self._rows.refusals.append(Refusal(
            id=self.rejection, event_id=event.event_id, type=event.kind,
            work_center=event.work_center_ref, order_id=event.order_ref, source=event.source,
            actor=event.actor, reason_code=rejection.code.value, reason=rejection.message,
            payload=event_to_json(event), received_ts=event.received_ts))
        self.committed.rejections.append(RejectionRecord(
            self.rejection, event.event_id, event.kind, event.work_center_ref, event.source,
            rejection.code.value, rejection.message))
        return Outcome(Status.REJECTED, event.event_id, code=rejection.code.value,
                       reason=rejection.message)

    def _reject_raw(self, raw: RawRejection) -> Outcome:
        self.rejection += 1
        payload = raw.payload if isinstance(raw.payload, dict | list) else {"raw": str(raw.payload)}
        self._rows.refusals.append(Refusal(
            id=self.rejection, event_id=raw.event_id, type=raw.type,
            work_center=raw.work_center, source=raw.source, actor=raw.actor,
            reason_code=raw.reason_code, reason=raw.reason, payload=payload,
            received_ts=raw.received_ts or self._now))
        self.committed.rejections.append(RejectionRecord(
            self.rejection, raw.event_id, raw.type, raw.work_center, raw.source,
            raw.reason_code, raw.reason))
        return Outcome(Status.REJECTED, raw.event_id, code=raw.reason_code, reason=raw.reason)

    def finish(self) -> tuple[BatchWrite, CommittedBatch]:
        """What to write in one transaction, and what to tell listeners after it."""
        rows, d = self._rows, self.decision
        rows.orders.extend((order, self._order_seq[oid]) for oid, order in d.orders.items())
        rows.work_centers.extend((wc, self._wc_seq[wc_id]) for wc_id, wc in d.work_centers.items())
        rows.downtimes.extend(self._downtimes.values())
        rows.checkpoints.extend(self.checkpoints.values())
        rows.checkpoint_seq = self.seq
        for name, before, now in zip(("event_seq", "confirmation_cursor", "rejection_id"),
                                     self._start, (self.seq, self.cursor, self.rejection),
                                     strict=True):
            if now != before:
                rows.high_water[name] = now
        self.committed.orders = dict(d.orders)
        self.committed.work_centers = dict(d.work_centers)
        return rows, self.committed
