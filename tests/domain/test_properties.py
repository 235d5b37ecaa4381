"""Property tests: random event sequences keep the WIP model's invariants after every event."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mes_edge.domain import (
    CountingSource,
    Decision,
    Event,
    MemoryState,
    Operation,
    OperationAction,
    OperationStatus,
    OrderSpec,
    OrderStatus,
    PlantRules,
    Quantities,
    QuantityReported,
    Rejection,
    WorkCenterState,
    WorkOrder,
    apply,
    event_from_json,
    event_to_json,
)
from mes_edge.domain.orders import refresh_readiness
from mes_edge.domain.sequence import with_tolerance
from tests.domain.strategies import (
    WORK_CENTERS,
    Plant,
    Step,
    order_specs,
    rules_strategy,
    steps_strategy,
)

FINISHED = (OperationStatus.COMPLETED, OperationStatus.CANCELLED)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, derandomize=False,
                             suppress_health_check=[HealthCheck.too_slow])


def to_event(plant: Plant, step: Step) -> Event:
    """Resolve an abstract step against the current state into a concrete event."""
    orders = sorted(plant.state.order_map)
    adv = step.advance_s
    if step.kind in ("op", "report", "order"):
        order = plant.order(orders[step.args[1] % len(orders)])
        if step.kind == "order":
            return plant.order_cmd(step.args[0], order.order_id, "test", advance_s=adv)
        op = order.operations[step.args[2] % len(order.operations)]
        aimed = _aimed_ops(plant, step)
        if aimed:
            order, op = aimed[(step.args[1] + step.args[2]) % len(aimed)]
        explicit = step.args[3]
        names = {"order_id": order.order_id if explicit else None,
                 "op_no": op.op_no if explicit else None}
        if step.kind == "op":
            wc = op.work_center
            if explicit and step.args[4] == 0:  # now and then the wrong work center
                wc = next(w for w in sorted(WORK_CENTERS) if w != op.work_center)
            return plant.op_cmd(step.args[0], wc, advance_s=adv, **names)
        by, good, scrap, rework = step.args[0] or op.counting, *step.args[4:]
        return plant.report(op.work_center, by, good=good, scrap=scrap, rework=rework,
                            advance_s=adv, **names)
    if step.kind == "reverse":
        confs = list(plant.state.conf_map.values())
        if not confs:
            return plant.reversal("no-such-confirmation", orders[0], advance_s=adv)
        conf = confs[step.args[0] % len(confs)]
        order_id = conf.order_id if not step.args[1] or len(orders) == 1 else "WO-X"
        return plant.reversal(conf.confirmation_id, order_id, advance_s=adv)
    if step.kind == "machine":
        return plant.machine(*step.args, advance_s=adv)
    if step.kind == "reason":
        return plant.downtime_reason(*step.args, advance_s=adv)
    return plant.due(advance_s=adv)


def _aimed_ops(plant: Plant, step: Step) -> list[tuple[WorkOrder, Operation]]:
    """Operations where the step can make sense (empty when the step is not aimed)."""
    if not step.aim or step.kind not in ("op", "report"):
        return []
    if step.kind == "report":
        wanted = {OperationStatus.RUNNING}
    elif step.args[0] == OperationAction.START:
        wanted = {OperationStatus.READY, OperationStatus.PAUSED}
    else:
        wanted = {OperationStatus.RUNNING, OperationStatus.PAUSED}
    return [(o, op) for o in plant.state.order_map.values() for op in o.operations
            if op.status in wanted]


def processed_total(order_map: dict[str, WorkOrder]) -> int:
    """Everything all operations processed."""
    return sum(op.done.processed for o in order_map.values() for op in o.operations)


def unassigned_total(wc_map: dict[str, WorkCenterState]) -> int:
    """Everything the machines counted that waits as unassigned production."""
    return sum(wc.unassigned.processed for wc in wc_map.values())


def check_quantities(plant: Plant) -> None:
    """Nothing negative; sequence and over-production limits hold for every operation."""
    for order in plant.state.order_map.values():
        tol = order.tolerance_pct
        for i, op in enumerate(order.operations):
            for q in (op.done, op.unconfirmed):
                assert q.good >= 0 and q.rework >= 0, op
                assert all(v > 0 for v in q.scrap.values()), op
            # Operator reports beyond a limit are refused; machine counts are facts, recorded
            # and flagged: whatever exceeds a limit is in the operation's flags.
            assert op.done.good <= with_tolerance(op.planned_qty, tol) + op.over_produced, op
            if i > 0:
                handed = order.operations[i - 1].done.good
                assert op.done.processed <= with_tolerance(handed, tol) + op.beyond_handover, (
                    order, i)
            if op.counting == CountingSource.OPERATOR:
                assert op.over_produced == op.beyond_handover == 0, op
    for conf in plant.state.conf_map.values():
        q = conf.quantities
        assert q.good >= 0 and q.rework >= 0 and all(v > 0 for v in q.scrap.values()), conf


def check_conservation(plant: Plant) -> None:
    """Confirmed minus reversed plus unconfirmed equals done, per operation."""
    confirmed: dict[tuple[str, str], Quantities] = defaultdict(Quantities)
    for conf in plant.state.conf_map.values():
        key = (conf.order_id, conf.op_no)
        confirmed[key] = confirmed[key].plus(conf.quantities, -1 if conf.reverses else 1)
        if conf.reverses is not None:
            original = plant.state.conf_map[conf.reverses]
            assert original.quantities == conf.quantities and original.reverses is None
            assert plant.state.reversals[conf.reverses] == conf.confirmation_id
    for order in plant.state.order_map.values():
        for op in order.operations:
            total = confirmed[(order.order_id, op.op_no)].plus(op.unconfirmed)
            assert total == op.done, (order.order_id, op.op_no, total, op.done)


def check_work_centers(plant: Plant) -> None:
    """At most one running operation per work center, and the WC agrees with the ops."""
    running_ops = {
        (o.order_id, op.op_no): op.work_center
        for o in plant.state.order_map.values() for op in o.operations
        if op.status == OperationStatus.RUNNING
    }
    per_wc: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, wc_name in running_ops.items():
        per_wc[wc_name].append(key)
    for wc_name, keys in per_wc.items():
        assert len(keys) == 1, (wc_name, keys)
    for wc_name, wc in plant.state.wc_map.items():
        assert list(wc.running) == per_wc.get(wc_name, []), (wc_name, wc.running, per_wc)
    for wc_name in per_wc:
        assert wc_name in plant.state.wc_map


def check_statuses(plant: Plant) -> None:
    """Order and operation statuses agree with each other."""
    for order in plant.state.order_map.values():
        ops = order.operations
        if order.status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.CLOSED):
            assert all(op.status in FINISHED for op in ops), order
        if any(op.status == OperationStatus.RUNNING for op in ops):
            assert order.status == OrderStatus.IN_PROGRESS, order
        assert refresh_readiness(order) == order, f"readiness is stale: {order}"


def replay_matches(replayed: MemoryState, live: MemoryState, rules: PlantRules,
                   event: Event) -> None:
    """Feed one accepted event, through its event-log JSON, to the replay state; compare."""
    again = event_from_json(event_to_json(event))
    assert again == event
    result = apply(replayed, rules, again)
    assert isinstance(result, Decision), f"replay rejected {again}: {result!r}"
    replayed.merge(result)
    assert replayed.order_map == live.order_map
    assert replayed.wc_map == live.wc_map
    assert replayed.conf_map == live.conf_map


def run(rules: PlantRules, specs: list[OrderSpec], steps: list[Step]) -> None:
    """Apply the orders, then the steps, checking every invariant after every event."""
    plant = Plant(rules=rules)
    replayed = MemoryState()
    for spec in specs:
        apply_and_check(plant, replayed, plant.receive(spec))
    if not plant.state.order_map:
        return  # e.g. an order refused as a whole; nothing to drive
    for step in steps:
        apply_and_check(plant, replayed, to_event(plant, step))
    statuses = sorted({o.status.value for o in plant.state.order_map.values()})
    event(f"final order statuses: {statuses}")
    event(f"accepted events: {min(len(plant.accepted) // 10 * 10, 40)}+")


def apply_and_check(plant: Plant, replayed: MemoryState, ev: Event, *,
                    check_limits: bool = True) -> None:
    """Apply one event and check every invariant (the quantity limits only if asked)."""
    before = plant.snapshot()
    result = plant.apply(ev)
    # Shown by --hypothesis-show-statistics: how often each kind of event gets through.
    event(f"{type(ev).__name__}: {result.code if isinstance(result, Rejection) else 'accepted'}")
    if isinstance(result, Rejection):
        assert plant.snapshot() == before, f"rejected {ev} changed the state"
    else:
        replay_matches(replayed, plant.state, plant.rules, ev)
        if isinstance(ev, QuantityReported):  # every unit reported lands, once
            reported = ev.good + ev.rework + sum(ev.scrap.values())
            landed = (processed_total(plant.state.order_map) - processed_total(before[0])
                      + unassigned_total(plant.state.wc_map) - unassigned_total(before[1]))
            assert landed == reported
    if check_limits:
        check_quantities(plant)
    check_conservation(plant)
    check_work_centers(plant)
    check_statuses(plant)


@PROPERTY_SETTINGS
@given(
    rules=rules_strategy(),
    specs=st.lists(st.sampled_from(["WO-1", "WO-2", "WO-3"]), min_size=1, max_size=3,
                   unique=True).flatmap(lambda ids: st.tuples(*(order_specs(i) for i in ids))),
    steps=st.lists(steps_strategy, min_size=25, max_size=80),
)
def test_random_event_sequences_keep_invariants(rules: PlantRules, specs: tuple[OrderSpec, ...],
                                                steps: list[Step]) -> None:
    run(rules, list(specs), steps)


@settings(max_examples=60, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=rules_strategy(),
    spec=order_specs("WO-1"),
    steps=st.lists(st.tuples(steps_strategy, st.none() | st.none() | st.none()
                             | order_specs("WO-1")), min_size=20, max_size=60),
)
def test_revisions_keep_replay_and_bookkeeping(rules: PlantRules, spec: OrderSpec,
                                               steps: list[tuple[Step, OrderSpec | None]]) -> None:
    """New revisions mixed in: replay, conservation, work centers, statuses and the quantity
    limits still hold (a revision may not plan an operation below what it made)."""
    plant = Plant(rules=rules)
    replayed = MemoryState()
    apply_and_check(plant, replayed, plant.receive(spec))
    if not plant.state.order_map:
        return
    revision = 1
    for step, new_spec in steps:
        if new_spec is None:
            ev = to_event(plant, step)
        else:
            revision += 1
            ev = plant.receive(replace(new_spec, revision=revision))
        apply_and_check(plant, replayed, ev)
