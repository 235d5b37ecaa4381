"""Rebuilding WIP from the event log, and checking it against the stored state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mes_edge.domain import MemoryState, OrderStatus, PlantRules, Rejection, apply
from mes_edge.domain.progress import (
    COLUMNS,
    BucketTotals,
    ProgressDelta,
    ProgressRules,
    StateSpan,
    record,
)
from mes_edge.store import Store, feed, history
from mes_edge.store.progress import stored_progress

#: Events read per round trip while replaying.
PAGE = 2000


class ReplayError(Exception):
    """An event of the log does not apply on replay: the log and the rules disagree."""


@dataclass
class ReplayReport:
    """How a replayed state compares with the stored one."""

    events: int
    differences: list[str] = field(default_factory=list)
    snapshot_seq: int = 0  # the replay started from the snapshot taken after this event

    @property
    def equal(self) -> bool:
        return not self.differences


async def replay_after(store: Store, rules: PlantRules, state: MemoryState,
                       after: int, *, closed_upto: int | None = None,
                       forget_closed: bool = False) -> tuple[int, int]:
    """Apply the events after seq `after` to `state`, in commit order; (events, last seq).

    `closed_upto`: the state is a snapshot taken after that event, which left the orders
    closed by then out; an event naming one reads it back from the database (closed is final:
    the stored row is the order as it stood from its close on). `forget_closed`: orders closed
    during the replay leave the state after each page and are read back the same way, so a
    replay holds what is active, not every order of the log.
    Yields to the event loop between pages, so a service can do it while it serves."""
    count = 0
    while True:
        page = await store.read_events(after, PAGE)
        if not page:
            return count, after
        if closed_upto is not None or forget_closed:
            upto = after if forget_closed else closed_upto or 0
            missing = sorted({ref for _, e in page if (ref := e.order_ref) is not None
                              and state.order(ref) is None})
            if upto and missing:
                orders, confs = await store.closed_orders(missing, upto)
                for order in orders:
                    state.put_order(order)
                for c in confs:
                    state.add_confirmation(c)
        for seq, event in page:
            result = apply(state, rules, event)
            if isinstance(result, Rejection):
                raise ReplayError(f"event {seq} ({event.event_id}) is refused on replay: "
                                  f"{result.message}")
            state.merge(result)
            count += 1
        if forget_closed:
            for ref in {e.order_ref for _, e in page}:
                done = state.order(ref) if ref is not None else None
                if done is not None and done.status == OrderStatus.CLOSED:
                    state.evict(done.order_id)
        after = page[-1][0]
        await asyncio.sleep(0)


async def rebuild(store: Store, rules: PlantRules, *, from_snapshot: bool = True,
                  forget_closed: bool = False) -> tuple[MemoryState, int, int, int]:
    """(state, events replayed, snapshot seq started from, last seq) from the newest WIP
    snapshot (or an empty state) plus the events after it; with `forget_closed`, without the
    orders closed by then (what a snapshot keeps)."""
    start = await history.latest_snapshot(store) if from_snapshot else None
    snap_seq, state = start if start is not None else (0, MemoryState())
    if forget_closed:
        for order in [o for o in state.order_map.values() if o.status == OrderStatus.CLOSED]:
            state.evict(order.order_id)  # a snapshot taken before they were left out
    count, last = await replay_after(store, rules, state, snap_seq, closed_upto=snap_seq,
                                     forget_closed=forget_closed)
    return state, count, snap_seq, last


async def rebuild_state(store: Store, rules: PlantRules) -> tuple[MemoryState, int]:
    """Apply the event log after the newest snapshot (the whole log if none) to its state."""
    state, count, _, _ = await rebuild(store, rules)
    return state, count


async def take_snapshot(store: Store, rules: PlantRules) -> int | None:
    """Snapshot the WIP as of the newest committed event (newest snapshot + the events after
    it); returns its seq, or None when no event came since the newest snapshot. The service
    does this every hour: orders closed on the way leave the state at once (memory follows
    what is active, not the length of the log)."""
    state, count, snap_seq, last = await rebuild(store, rules, forget_closed=True)
    if count == 0 and snap_seq:
        return None
    await history.save_snapshot(store, last, state)
    return last


def compare_states(live: MemoryState, rebuilt: MemoryState, *,
                   purged_confirmations: bool = False) -> list[str]:
    """Differences between two states, one line each (empty when equal).

    `purged_confirmations`: the feed's retention deleted confirmations the ERP received, so
    confirmations only the replay has are expected (those the store has must still match).
    A `live` state that keeps no confirmations (the service's) is compared on orders and work
    centers only: `verify` compares the stored confirmations."""
    pairs: list[tuple[str, Mapping[str, object], Mapping[str, object]]] = [
        ("order", live.order_map, rebuilt.order_map),
             ("work center", live.wc_map, rebuilt.wc_map)]
    if not live.keep_confirmations:
        return _differences(pairs, purged_confirmations)
    pairs.append(("confirmation", live.conf_map, rebuilt.conf_map))
    out = _differences(pairs, purged_confirmations)
    if purged_confirmations:
        if any(rebuilt.reversals.get(k) != v for k, v in live.reversals.items()):
            out.append("reversals differ")
    elif live.reversals != rebuilt.reversals:
        out.append("reversals differ")
    return out


def _differences(pairs: list[tuple[str, Mapping[str, object], Mapping[str, object]]],
                 purged_confirmations: bool) -> list[str]:
    out: list[str] = []
    for name, a, b in pairs:
        keys = set(a) if name == "confirmation" and purged_confirmations else set(a) | set(b)
        for key in sorted(keys):
            if a.get(key) != b.get(key):
                out.append(f"{name} {key}: stored {a.get(key)!r} != replayed {b.get(key)!r}")
    return out


async def verify(store: Store, rules: PlantRules) -> ReplayReport:
    """Replay the log from the newest snapshot and compare with what the store loads (every
    order, also those that left the service's memory)."""
    rebuilt, count, snap_seq, _ = await rebuild(store, rules)
    stored = (await store.load()).state
    if snap_seq:
        # Orders closed before the snapshot are final and not in it (unless an event after it
        # read one back): what the replay proves starts at the snapshot.
        for order_id in await store.closed_order_ids(snap_seq):
            if order_id not in rebuilt.order_map:
                stored.evict(order_id)
    purged = await feed.retention_floor(store) > 0
    return ReplayReport(count, compare_states(stored, rebuilt, purged_confirmations=purged),
                        snapshot_seq=snap_seq)


# --- issue 11: the machine-state timeline and the OEE rollups -------------------------------
#
# They are rebuilt from the WHOLE event log (not from a WIP snapshot): a span or a bucket sums
# what many events added, some of them older than any snapshot, and keeping a snapshot of the
# rollups would only copy the rows being checked. When retention has purged events (a gap in
# the seq numbers), the rebuild is impossible and verify says so instead of guessing.


@dataclass
class ProgressReport:
    """How a rebuilt timeline and rollups compare with the stored ones."""

    events: int
    spans: int = 0
    buckets: int = 0
    differences: list[str] = field(default_factory=list)
    #: Why nothing was compared (the log is incomplete), or None.
    skipped: str | None = None

    @property
    def equal(self) -> bool:
        return not self.differences and self.skipped is None


async def rebuild_progress(store: Store, rules: PlantRules, progress: ProgressRules
                           ) -> tuple[dict[tuple[str, datetime], StateSpan],
                                      dict[tuple[str, datetime], BucketTotals], int] | str:
    """(spans by (work center, start), bucket totals, events) replayed from the whole log
    through the same rules the dispatcher uses, or why the log cannot rebuild them."""
    state = MemoryState()
    total = ProgressDelta()
    spans: dict[tuple[str, datetime], StateSpan] = {}
    after = count = 0
    while True:
        page = await store.read_events(after, 2000)
        if not page:
            return spans, total.buckets, count
        for seq, event in page:
            if seq != after + 1:
                return (f"events {after + 1}..{seq - 1} are not in the log (purged by "
                        "retention): the timeline and the OEE rollups need the whole log")
            after = seq
            result = apply(state, rules, event)
            if isinstance(result, Rejection):
                raise ReplayError(f"event {seq} ({event.event_id}) is refused on replay: "
                                  f"{result.message}")
            if result.changed:
                delta = record(state, progress, event, result)  # state before the event
                for span in delta.spans:
                    spans[(span.work_center, span.start)] = span
                total.merge(ProgressDelta(buckets=delta.buckets))
            state.merge(result)
            count += 1
        await asyncio.sleep(0)


def compare_progress(stored_spans: Iterable[StateSpan],
                     stored_buckets: Mapping[tuple[str, datetime], BucketTotals],
                     spans: Mapping[tuple[str, datetime], StateSpan],
                     buckets: Mapping[tuple[str, datetime], BucketTotals]) -> list[str]:
    """Differences between stored and rebuilt spans and buckets, one line each (buckets whose
    totals are all zero count as absent)."""
    out: list[str] = []
    have = {(s.work_center, s.start): s for s in stored_spans}
    for key in sorted(set(have) | set(spans)):
        a, b = have.get(key), spans.get(key)
        if a != b:
            out.append(f"state span {key[0]} {key[1].isoformat()}: stored {a!r} != "
                       f"replayed {b!r}")
    zero = BucketTotals()
    for key in sorted(set(stored_buckets) | set(buckets)):
        was, now = stored_buckets.get(key, zero), buckets.get(key, zero)
        if was != now:
            diff = {n: (x, y) for n, x, y in zip(COLUMNS, was.as_row().values(),
                                                 now.as_row().values(), strict=True) if x != y}
            out.append(f"OEE bucket {key[0]} {key[1].isoformat()}: stored != replayed in "
                       + ", ".join(f"{n} {x} != {y}" for n, (x, y) in diff.items()))
    return out


async def verify_progress(store: Store, rules: PlantRules, progress: ProgressRules
                          ) -> ProgressReport:
    """Rebuild the timeline and the rollups from the whole log and compare with the store."""
    rebuilt = await rebuild_progress(store, rules, progress)
    if isinstance(rebuilt, str):
        return ProgressReport(0, skipped=rebuilt)
    spans, buckets, count = rebuilt
    stored_spans, stored_buckets = await stored_progress(store)
    return ProgressReport(count, len(spans), len(buckets),
                          compare_progress(stored_spans, stored_buckets, spans, buckets))
