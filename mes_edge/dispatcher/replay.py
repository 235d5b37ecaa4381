"""Rebuilding WIP from the event log, and checking it against the stored state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mes_edge.domain import MemoryState, PlantRules, Rejection, apply
from mes_edge.store import Store, feed, history


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
                       after: int) -> tuple[int, int]:
    """Apply the events after seq `after` to `state`, in commit order; (events, last seq).

    Yields to the event loop between pages, so a service can do it while it serves."""
    count = 0
    while True:
        page = await store.read_events(after, 2000)
        if not page:
            return count, after
        for seq, event in page:
            result = apply(state, rules, event)
            if isinstance(result, Rejection):
                raise ReplayError(f"event {seq} ({event.event_id}) is refused on replay: "
                                  f"{result.message}")
            state.merge(result)
            count += 1
        after = page[-1][0]
        await asyncio.sleep(0)


async def rebuild(store: Store, rules: PlantRules, *,
                  from_snapshot: bool = True) -> tuple[MemoryState, int, int, int]:
    """(state, events replayed, snapshot seq started from, last seq) from the newest WIP
    snapshot (or an empty state) plus the events after it."""
    start = await history.latest_snapshot(store) if from_snapshot else None
    snap_seq, state = start if start is not None else (0, MemoryState())
    count, last = await replay_after(store, rules, state, snap_seq)
    return state, count, snap_seq, last


async def rebuild_state(store: Store, rules: PlantRules) -> tuple[MemoryState, int]:
    """Apply the event log after the newest snapshot (the whole log if none) to its state."""
    state, count, _, _ = await rebuild(store, rules)
    return state, count


async def take_snapshot(store: Store, rules: PlantRules) -> int | None:
    """Snapshot the WIP as of the newest committed event (newest snapshot + the events after
    it); returns its seq, or None when no event came since the newest snapshot."""
    state, count, snap_seq, last = await rebuild(store, rules)
    if count == 0 and snap_seq:
        return None
    await history.save_snapshot(store, last, state)
    return last


def compare_states(live: MemoryState, rebuilt: MemoryState, *,
                   purged_confirmations: bool = False) -> list[str]:
    """Differences between two states, one line each (empty when equal).

    `purged_confirmations`: the feed's retention deleted confirmations the ERP received, so
    confirmations only the replay has are expected (those the store has must still match)."""
    out: list[str] = []
    for name, a, b in (("order", live.order_map, rebuilt.order_map),
                       ("work center", live.wc_map, rebuilt.wc_map),
                       ("confirmation", live.conf_map, rebuilt.conf_map)):
        keys = set(a) if name == "confirmation" and purged_confirmations else set(a) | set(b)
        for key in sorted(keys):
            if a.get(key) != b.get(key):  # type: ignore[attr-defined]
                out.append(f"{name} {key}: stored {a.get(key)!r} != replayed {b.get(key)!r}")  # type: ignore[attr-defined]
    if purged_confirmations:
        if any(rebuilt.reversals.get(k) != v for k, v in live.reversals.items()):
            out.append("reversals differ")
    elif live.reversals != rebuilt.reversals:
        out.append("reversals differ")
    return out


async def verify(store: Store, rules: PlantRules) -> ReplayReport:
    """Replay the log from the newest snapshot and compare with what the store loads (every
    order, also those that left the service's memory)."""
    rebuilt, count, snap_seq, _ = await rebuild(store, rules)
    stored = (await store.load()).state
    purged = await feed.retention_floor(store) > 0
    return ReplayReport(count, compare_states(stored, rebuilt, purged_confirmations=purged),
                        snapshot_seq=snap_seq)
