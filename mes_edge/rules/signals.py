"""The configured mapping of device signals to domain events, per work center."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from drivers import Quality, Signal
from mes_edge.config.settings import RuleSettings, StateRule, TriggerRule
from mes_edge.domain import (
    Checkpoint,
    CounterBaseline,
    Event,
    MachineState,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    RawRejection,
)
from mes_edge.domain.apply import EARLIEST, LATEST
from mes_edge.rules.counters import CounterTracker

log = logging.getLogger(__name__)

RuleItem = Event | RawRejection | CounterBaseline


class StateTracker:
    """A state-code tag -> MachineStateChanged on every change of the mapped state."""

    def __init__(self, rule: StateRule, work_center: str) -> None:
        self.rule = rule
        self.work_center = work_center
        self.last: MachineState | None = None

    def on_value(self, raw: object, ts: datetime) -> RuleItem | None:
        try:
            state = self.rule.map[int(raw)]  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError, OverflowError):  # int(inf) overflows
            state = MachineState.UNKNOWN
        if state == self.last:
            return None
        self.last = state
        return MachineStateChanged(
            event_id=f"{self.rule.device}/{self.rule.tag}/state/{ts.isoformat()}/{raw}",
            source=self.rule.device,
            source_ts=ts,
            work_center=self.work_center,
            state=state,
        )


class TriggerTracker:
    """A bool tag's edge -> an operation command on the work center's running operation."""

    def __init__(self, rule: TriggerRule, work_center: str) -> None:
        self.rule = rule
        self.work_center = work_center
        self.last: bool | None = None

    def on_value(self, raw: object, ts: datetime) -> RuleItem | None:
        value = bool(raw)
        previous, self.last = self.last, value
        if previous is None or previous == value:
            return None
        if value != (self.rule.edge == "rising"):
            return None
        return OperationCommand(
            event_id=f"{self.rule.device}/{self.rule.tag}/{self.rule.edge}/{ts.isoformat()}",
            source=self.rule.device,
            source_ts=ts,
            work_center=self.work_center,
            action=OperationAction(self.rule.action),
        )


class SignalRules:
    """Routes each signal to the trackers configured for its (device, tag)."""

    def __init__(
        self, rules: Iterable[RuleSettings], checkpoints: Mapping[tuple[str, str], Checkpoint]
    ) -> None:
        self._routes: dict[
            tuple[str, str], list[CounterTracker | StateTracker | TriggerTracker]
        ] = {}
        for r in rules:
            for c in r.counters:
                self._add(
                    c.device,
                    c.tag,
                    CounterTracker(c, r.work_center, checkpoints.get((c.device, c.tag))),
                )
            if r.state is not None:
                self._add(r.state.device, r.state.tag, StateTracker(r.state, r.work_center))
            for t in r.triggers:
                self._add(t.device, t.tag, TriggerTracker(t, r.work_center))

    def _add(
        self, device: str, tag: str, tracker: CounterTracker | StateTracker | TriggerTracker
    ) -> None:
        self._routes.setdefault((device, tag), []).append(tracker)

    def on_signals(self, batch: Iterable[Signal]) -> list[RuleItem]:
        """The items a batch of signals produces, in signal order; BAD values produce none."""
        out: list[RuleItem] = []
        for sig in batch:
            trackers = self._routes.get((sig.device, sig.tag))
            if not trackers or sig.quality == Quality.BAD or sig.value is None:
                continue
            # A PLC with an unset clock (OPC UA's minimum is 1601) must not get its counts
            # refused: outside a sane range, the time we received the value is used.
            ts = sig.source_ts
            if ts is None or ts.utcoffset() is None or not EARLIEST <= ts <= LATEST:
                ts = sig.received_ts
            for t in trackers:
                item = t.on_value(sig.value, ts)
                if item is not None:
                    out.append(item)
        return out
