"""A protocol-independent production machine: state, cycle time, good and scrap counters.

Protocol simulators (Modbus, OPC UA) own a `Machine`, call `tick()` from their clock and expose
its fields in their address space. The model is deterministic for a given seed, so tests and
demos can replay the same random stops.

State codes (the same in every protocol simulator):

    1 RUNNING   producing one part per cycle
    2 IDLE      no order / starved; counters do not move
    3 DOWN      stopped by a fault (random stop or scenario); counters do not move
    4 SETUP     changeover; counters do not move
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field


class MachineState(enum.IntEnum):
    """Machine state code as written to the PLC's state register."""

    RUNNING = 1
    IDLE = 2
    DOWN = 3
    SETUP = 4


#: Largest value of each supported counter type; the counter wraps to 0 after it.
COUNTER_MAX = {"uint16": 0xFFFF, "uint32": 0xFFFF_FFFF, "uint64": 0xFFFF_FFFF_FFFF_FFFF}


@dataclass
class Machine:
    """A machine producing parts at a fixed cycle time, with seeded random stops and scrap."""

    cycle_time: float = 1.0
    counter_type: str = "uint32"
    scrap_rate: float = 0.02
    #: Probability per produced part that the machine goes DOWN (a random stop).
    stop_probability: float = 0.0
    #: Mean duration of a random stop in seconds (exponentially distributed).
    mean_stop_s: float = 5.0
    seed: int = 1
    state: MachineState = MachineState.RUNNING
    good: int = 0
    scrap: int = 0
    #: Fault code shown while DOWN (0 = none).
    alarm: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _down_until: float | None = field(default=None, init=False, repr=False)
    _next_part_at: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.counter_type not in COUNTER_MAX:
            raise ValueError(f"counter_type must be one of {sorted(COUNTER_MAX)}")
        self._rng = random.Random(self.seed)

    @property
    def counter_max(self) -> int:
        """The largest counter value before rollover to 0."""
        return COUNTER_MAX[self.counter_type]

    def tick(self, now: float) -> bool:
        """Advance the model to monotonic time `now`; True when something changed."""
        changed = False
        if self._down_until is not None and now >= self._down_until:
            self._down_until = None
            self.state, self.alarm = MachineState.RUNNING, 0
            changed = True
        if self.state != MachineState.RUNNING or self.cycle_time <= 0:
            self._next_part_at = None
            return changed
        if self._next_part_at is None:
            self._next_part_at = now + self.cycle_time
            return changed
        while self._next_part_at <= now and self.state == MachineState.RUNNING:
            self._produce_one(self._next_part_at)
            self._next_part_at += self.cycle_time
            changed = True
        return changed

    def _produce_one(self, at: float) -> None:
        if self._rng.random() < self.scrap_rate:
            self.scrap = (self.scrap + 1) & self.counter_max
        else:
            self.good = (self.good + 1) & self.counter_max
        if self.stop_probability and self._rng.random() < self.stop_probability:
            self.go_down(at, self._rng.expovariate(1.0 / self.mean_stop_s), alarm=100)

    def go_down(self, now: float, duration: float | None, *, alarm: int = 1) -> None:
        """Stop with a fault; back to RUNNING after `duration` seconds (None: until set_state)."""
        self.state, self.alarm = MachineState.DOWN, alarm
        self._down_until = None if duration is None else now + duration

    def set_state(self, state: MachineState) -> None:
        """Force a state (operator action or scenario step); clears a pending auto-restart."""
        self.state = MachineState(state)
        self._down_until = None
        if state != MachineState.DOWN:
            self.alarm = 0

    def set_counter(self, which: str, value: int) -> None:
        """Preset `good` or `scrap` (e.g. near the maximum to force a rollover, or 0 = reset)."""
        if which not in ("good", "scrap"):
            raise ValueError("counter must be 'good' or 'scrap'")
        setattr(self, which, int(value) & self.counter_max)
