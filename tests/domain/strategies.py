"""A test harness for the WIP model (a plant that applies events) and hypothesis strategies.

Events get deterministic ids and times from the harness, so a test reads as a story on the
shop floor and a replay of the accepted events is exact.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from mes_edge.domain import (
    Confirmation,
    ConfirmationPolicy,
    ConfirmationReversed,
    ConfirmationsDue,
    CountingSource,
    Decision,
    DowntimeReasonGiven,
    Event,
    MachineState,
    MachineStateChanged,
    MemoryState,
    Operation,
    OperationAction,
    OperationCommand,
    OperationSpec,
    OrderAction,
    OrderCommand,
    OrderReceived,
    OrderSpec,
    PlantRules,
    QuantityReported,
    RejectCode,
    Rejection,
    WorkOrder,
    apply,
)

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
MACHINE = CountingSource.MACHINE
OPERATOR = CountingSource.OPERATOR

#: PRESS-01 and LASER-03 count by machine, ASSY-02 by operator.
WORK_CENTERS: dict[str, CountingSource] = {
    "PRESS-01": MACHINE,
    "ASSY-02": OPERATOR,
    "LASER-03": MACHINE,
}


def plant_rules(**changes: Any) -> PlantRules:
    """Plant rules with the three test work centers; keyword arguments override fields."""
    return PlantRules(work_centers=dict(WORK_CENTERS), **changes)


def order_spec(order_id: str = "WO-1", *, revision: int = 1, quantity: int = 10,
               ops: tuple[tuple[str, str], ...] = (("0010", "PRESS-01"), ("0020", "ASSY-02")),
               **changes: Any) -> OrderSpec:
    """An order spec with operations given as (op_no, work_center) pairs."""
    return OrderSpec(
        order_id=order_id, revision=revision, material="BRACKET-7", quantity=quantity,
        operations=tuple(OperationSpec(op_no=no, work_center=wc) for no, wc in ops),
        **changes,
    )


@dataclass
class Plant:
    """Applies events to a MemoryState the way the dispatcher does: merge only what is accepted."""

    rules: PlantRules = field(default_factory=plant_rules)
    state: MemoryState = field(default_factory=MemoryState)
    now: datetime = T0
    accepted: list[Event] = field(default_factory=list)
    _seq: int = 0

    # -- applying ---------------------------------------------------------------------------
    def apply(self, event: Event) -> Decision | Rejection:
        """Apply one event; merge it when accepted."""
        result = apply(self.state, self.rules, event)
        if isinstance(result, Decision):
            self.state.merge(result)
            self.accepted.append(event)
        return result

    def ok(self, event: Event) -> Decision:
        """Apply an event that must be accepted."""
        result = self.apply(event)
        assert isinstance(result, Decision), f"{event} rejected: {result!r}"
        return result

    def refused(self, event: Event, code: RejectCode) -> Rejection:
        """Apply an event that must be rejected with `code`, and check it changed nothing."""
        before = self.snapshot()
        result = self.apply(event)
        assert isinstance(result, Rejection), f"{event} accepted: {result}"
        assert result.code == code, f"expected {code}, got {result!r}"
        assert result.message
        assert self.snapshot() == before
        return result

    def snapshot(self) -> tuple[Any, ...]:
        """A deep copy of everything the state holds."""
        s = self.state
        return copy.deepcopy((s.order_map, s.wc_map, s.conf_map, s.reversals))

    # -- reading ----------------------------------------------------------------------------
    def order(self, order_id: str = "WO-1") -> WorkOrder:
        found = self.state.order(order_id)
        assert found is not None
        return found

    def op(self, op_no: str, order_id: str = "WO-1") -> Operation:
        found = self.order(order_id).op(op_no)
        assert found is not None
        return found

    def confirmations(self, order_id: str = "WO-1", op_no: str | None = None) -> list[Confirmation]:
        return [c for c in self.state.conf_map.values()
                if c.order_id == order_id and (op_no is None or c.op_no == op_no)]

    # -- making events ----------------------------------------------------------------------
    def _envelope(self, advance_s: float) -> dict[str, Any]:
        self._seq += 1
        self.now += timedelta(seconds=advance_s)
        return {"event_id": f"ev-{self._seq}", "source_ts": self.now, "received_ts": self.now}

    def receive(self, spec: OrderSpec, *, advance_s: float = 1) -> OrderReceived:
        return OrderReceived(spec=spec, source="erp", **self._envelope(advance_s))

    def order_cmd(self, action: OrderAction, order_id: str = "WO-1", reason: str | None = None,
                  *, advance_s: float = 1) -> OrderCommand:
        return OrderCommand(order_id=order_id, action=action, reason=reason,
                            **self._envelope(advance_s))

    def op_cmd(self, action: OperationAction, work_center: str, order_id: str | None = None,
               op_no: str | None = None, *, actor: str | None = "op-anna",
               advance_s: float = 1) -> OperationCommand:
        """An operation command; naming only op_no means WO-1's, naming neither the running op."""
        if op_no is not None and order_id is None:
            order_id = "WO-1"
        return OperationCommand(work_center=work_center, action=action, order_id=order_id,
                                op_no=op_no, actor=actor, **self._envelope(advance_s))

    def report(self, work_center: str, by: CountingSource, *, good: int = 0,
               scrap: Mapping[str, int] | None = None, rework: int = 0,
               order_id: str | None = None, op_no: str | None = None,
               advance_s: float = 1) -> QuantityReported:
        return QuantityReported(work_center=work_center, by=by, good=good,
                                scrap=dict(scrap or {}), rework=rework, order_id=order_id,
                                op_no=op_no, **self._envelope(advance_s))

    def machine(self, work_center: str, state: MachineState, *,
                advance_s: float = 1) -> MachineStateChanged:
        return MachineStateChanged(work_center=work_center, state=state, source="plc",
                                   **self._envelope(advance_s))

    def downtime_reason(self, work_center: str, reason: str, downtime_id: str | None = None, *,
                        advance_s: float = 1) -> DowntimeReasonGiven:
        return DowntimeReasonGiven(work_center=work_center, reason=reason,
                                   downtime_id=downtime_id, actor="op-anna",
                                   **self._envelope(advance_s))

    def due(self, *, advance_s: float = 1) -> ConfirmationsDue:
        return ConfirmationsDue(source="timer", **self._envelope(advance_s))

    def reversal(self, confirmation_id: str, order_id: str = "WO-1", reason: str = "miscount",
                 *, advance_s: float = 1) -> ConfirmationReversed:
        return ConfirmationReversed(order_id=order_id, confirmation_id=confirmation_id,
                                    reason=reason, actor="supervisor", **self._envelope(advance_s))


# -- hypothesis strategies ------------------------------------------------------------------

OP_NOS = ("0010", "0020", "0030", "0040")
SCRAP_REASONS = ("dent", "crack")


@st.composite
def rules_strategy(draw: st.DrawFn) -> PlantRules:
    """Plant rules with random tolerance, confirmation policy, auto-complete and reason lists."""
    policy = ConfirmationPolicy(
        on_report=draw(st.booleans()),
        every_units=draw(st.sampled_from([None, 3, 10])),
        every_seconds=draw(st.sampled_from([None, 30.0, 120.0])),
    )
    return plant_rules(
        tolerance_pct=draw(st.sampled_from([0.0, 5.0, 10.0, 50.0])),
        policy=policy,
        auto_complete=draw(st.booleans()),
        scrap_reasons=draw(st.sampled_from([frozenset(), frozenset(SCRAP_REASONS)])),
        max_quantity_per_event=1_000,
    )


@st.composite
def order_specs(draw: st.DrawFn, order_id: str) -> OrderSpec:
    """An order of 1-4 operations on the test work centers, sometimes with its own plan."""
    n_ops = draw(st.integers(1, 4))
    quantity = draw(st.integers(1, 30))
    ops = tuple(
        OperationSpec(
            op_no=OP_NOS[i],
            work_center=draw(st.sampled_from(sorted(WORK_CENTERS))),
            planned_qty=draw(st.one_of(st.none(), st.integers(1, 30))),
            counting=draw(st.sampled_from([None, None, MACHINE, OPERATOR])),
        )
        for i in range(n_ops)
    )
    return OrderSpec(
        order_id=order_id, revision=1, material="BRACKET-7", quantity=quantity, operations=ops,
        tolerance_pct=draw(st.sampled_from([None, 0.0, 10.0])),
        release=draw(st.booleans() | st.just(True)),
    )


#: Quantities in reports: mostly small, sometimes zero, negative or absurd.
report_qty = st.one_of(
    st.integers(0, 6), st.integers(0, 6), st.integers(0, 6),
    st.sampled_from([-1, -1_000, 999, 5_000, 10**12]),
)


@dataclass(frozen=True)
class Step:
    """One abstract step; `pick` values are indexes resolved against the state at run time.

    With `aim`, an operation step picks among the operations where it can make sense (a start
    among ready/paused ones, a report among running ones), so sequences get somewhere.
    """

    kind: str
    args: tuple[Any, ...]
    advance_s: int
    aim: bool


def _step(kind: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Step]:
    return st.builds(Step, st.just(kind), st.tuples(*args), st.sampled_from([0, 1, 5, 40, 200]),
                     st.integers(0, 3).map(bool))


pick = st.integers(0, 7)
#: None: the operation's own counting source (the usual case), else a given one.
reporter = st.sampled_from([None, None, None, MACHINE, OPERATOR])
START, PAUSE, RESUME, COMPLETE = (OperationAction.START, OperationAction.PAUSE,
                                  OperationAction.RESUME, OperationAction.COMPLETE)
# Branches of one_of are drawn about equally often: the common shop-floor events (start, good
# counts) appear several times so sequences get far enough to reach the interesting states.
steps_strategy = st.one_of(
    _step("op", st.just(START), pick, pick, st.just(True), pick),
    _step("op", st.just(START), pick, pick, st.just(True), pick),
    _step("op", st.sampled_from([PAUSE, RESUME, COMPLETE]), pick, pick, st.booleans(), pick),
    _step("op", st.just(COMPLETE), pick, pick, st.booleans(), pick),
    _step("report", reporter, pick, pick, st.booleans(), st.integers(1, 4), st.just({}),
          st.just(0)),
    _step("report", reporter, pick, pick, st.booleans(), st.integers(1, 4), st.just({}),
          st.just(0)),
    _step("report", reporter, pick, pick, st.booleans(), st.integers(0, 4),
          st.dictionaries(st.sampled_from(SCRAP_REASONS), st.integers(0, 2), max_size=1),
          st.integers(0, 1)),
    _step("report", reporter, pick, pick, st.booleans(), report_qty,
          st.dictionaries(st.sampled_from([*SCRAP_REASONS, "", "machine", "bogus"]), report_qty,
                          max_size=2), report_qty),
    _step("order", st.sampled_from([OrderAction.HOLD, OrderAction.RELEASE, OrderAction.RELEASE,
                                    OrderAction.CANCEL, OrderAction.CLOSE]), pick),
    _step("reverse", pick, st.integers(0, 5).map(lambda n: n == 0)),
    _step("machine", st.sampled_from(sorted(WORK_CENTERS)), st.sampled_from(list(MachineState))),
    _step("reason", st.sampled_from(sorted(WORK_CENTERS)), st.sampled_from(["jam", "tooling"])),
    _step("due"),
)
