"""Rebuilding WIP from the event log, and checking it against the stored state."""

from __future__ import annotations

from dataclasses import dataclass, field

from mes_edge.domain import MemoryState, PlantRules, Rejection, apply
from mes_edge.store import Store


class ReplayError(Exception):
    """An event of the log does not apply on replay: the log and the rules disagree."""


@dataclass
class ReplayReport:
    """How a replayed state compares with the stored one."""

    events: int
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences


async def rebuild_state(store: Store, rules: PlantRules) -> tuple[MemoryState, int]:
    """Apply the whole event log, in commit order, to an empty state."""
    state = MemoryState()
    count = 0
    after = 0
    while True:
        page = await store.read_events(after, 2000)
        if not page:
            return state, count
        for seq, event in page:
            result = apply(state, rules, event)
            if isinstance(result, Rejection):
                raise ReplayError(f"event {seq} ({event.event_id}) is refused on replay: "
                                  f"{result.message}")
            state.merge(result)
            count += 1
        after = page[-1][0]


def compare_states(live: MemoryState, rebuilt: MemoryState) -> list[str]:
    """Differences between two states, one line each (empty when equal)."""
    out: list[str] = []
    for name, a, b in (("order", live.order_map, rebuilt.order_map),
                       ("work center", live.wc_map, rebuilt.wc_map),
                       ("confirmation", live.conf_map, rebuilt.conf_map)):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):  # type: ignore[attr-defined]
                out.append(f"{name} {key}: stored {a.get(key)!r} != replayed {b.get(key)!r}")  # type: ignore[attr-defined]
    if live.reversals != rebuilt.reversals:
        out.append("reversals differ")
    return out


async def verify(store: Store, rules: PlantRules) -> ReplayReport:
    """Replay the log and compare with what the store loads."""
    rebuilt, count = await rebuild_state(store, rules)
    stored = (await store.load()).state
    return ReplayReport(count, compare_states(stored, rebuilt))
