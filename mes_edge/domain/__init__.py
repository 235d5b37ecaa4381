"""The pure WIP model (DESIGN section 3): state, events, rules. No I/O in this package."""

from mes_edge.domain.apply import apply
from mes_edge.domain.events import (
    Checkpoint,
    ConfirmationReversed,
    ConfirmationsDue,
    DowntimeReasonGiven,
    Event,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    OrderAction,
    OrderCommand,
    OrderReceived,
    QuantityReported,
    event_from_json,
    event_to_json,
)
from mes_edge.domain.model import (
    ComponentSpec,
    ConfirmationPolicy,
    CountingSource,
    DemandType,
    Downtime,
    MachineState,
    Operation,
    OperationSpec,
    OperationStatus,
    OrderSpec,
    OrderStatus,
    Quantities,
    WorkCenterState,
    WorkOrder,
)
from mes_edge.domain.plant import (
    Confirmation,
    Decision,
    MemoryState,
    Notice,
    Overlay,
    PlantRules,
    StateView,
)
from mes_edge.domain.rejections import RejectCode, Rejection

__all__ = [
    "Checkpoint", "ComponentSpec", "Confirmation", "ConfirmationPolicy", "ConfirmationReversed",
    "ConfirmationsDue", "CountingSource", "Decision", "DemandType", "Downtime",
    "DowntimeReasonGiven", "Event", "MachineState", "MachineStateChanged", "MemoryState",
    "Notice", "Operation", "OperationAction", "OperationCommand", "OperationSpec",
    "OperationStatus", "OrderAction", "OrderCommand", "OrderReceived", "OrderSpec",
    "OrderStatus", "Overlay", "PlantRules", "QuantityReported", "RejectCode", "Rejection",
    "StateView", "WorkCenterState", "WorkOrder", "apply", "event_from_json", "event_to_json",
]
