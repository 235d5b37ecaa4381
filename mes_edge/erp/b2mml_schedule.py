"""Inbound B2MML: an OperationsSchedule becomes OrderSpecs (the mapping is in `b2mml`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from mes_edge.domain.model import (
    ComponentSpec,
    CountingSource,
    DemandType,
    OperationSpec,
    OrderSpec,
)
from mes_edge.erp.b2mml_xml import (
    MAX_PROBLEMS,
    SCHEDULE_XSD,
    B,
    B2mmlError,
    B2mmlProblem,
    capped,
    local,
    location,
    parse_document,
    validate,
)

#: Transaction verbs whose DataArea carries OperationsSchedules to import.
SCHEDULE_VERBS = frozenset({
    "ProcessOperationsSchedule", "SyncOperationsSchedule", "ChangeOperationsSchedule",
})
PRODUCED_USES = frozenset({"Produced", "Yield Produced"})
CONSUMED_USES = frozenset({"Consumed", "Material Consumed"})
_RELEASED_STATES = frozenset({"Released", "Ready"})
_UNRELEASED_STATES = frozenset({"Forecast", "Held", "Waiting"})
_DEMAND_ALIASES = {
    "make_to_order": DemandType.MAKE_TO_ORDER, "mto": DemandType.MAKE_TO_ORDER,
    "make_to_stock": DemandType.MAKE_TO_STOCK, "mts": DemandType.MAKE_TO_STOCK,
}
_SECONDS_PER_UNIT = {"s": 1.0, "sec": 1.0, "ms": 0.001, "min": 60.0, "h": 3600.0}
DEFAULT_UNIT = "PCE"


def parse_operations_schedule(xml: bytes) -> list[OrderSpec]:
    """Orders of a ProcessOperationsSchedule (or bare OperationsSchedule) document.

    Validates against the official XSD first when it is available; raises B2mmlError with
    every problem found (location, message, line) otherwise.
    """
    root = parse_document(xml)
    validate(root, SCHEDULE_XSD)
    reader = _ScheduleReader()
    orders = reader.read(root)
    if reader.problems:
        raise B2mmlError(capped(reader.problems, reader.count))
    return orders


class _ScheduleReader:
    """Walks the document, collecting orders and every problem (not only the first)."""

    def __init__(self) -> None:
        self.problems: list[B2mmlProblem] = []
        self.count = 0  # all problems, also those past the reported first ones
        # Holding the element keeps lxml's proxy alive, so the same node stays the same key.
        self._seen: set[tuple[etree._Element, str]] = set()

    def problem(self, el: etree._Element, message: str) -> None:
        key = (el, message)
        if key in self._seen:  # the header requirement is read twice
            return
        self._seen.add(key)
        self.count += 1
        # Past the reported ones only count: locating is linear in the siblings, and a
        # 5 MB document of bad segments must not take quadratic time.
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(B2mmlProblem(location(el), message, el.sourceline))

    def read(self, root: etree._Element) -> list[OrderSpec]:
        if root.tag == B + "OperationsSchedule":
            schedules = [root]
        elif root.tag.startswith(B) and local(root) in SCHEDULE_VERBS:
            schedules = root.findall(f"{B}DataArea/{B}OperationsSchedule")
        else:
            accepted = ", ".join(sorted(SCHEDULE_VERBS | {"OperationsSchedule"}))
            self.problem(root, f"root element {root.tag} is not one of {accepted} "
                               "in the B2MML namespace")
            return []
        requests = [r for s in schedules for r in s.findall(B + "OperationsRequest")]
        if not requests:
            self.problem(root, "no OperationsSchedule/OperationsRequest (work order) found")
        orders: list[OrderSpec] = []
        seen: set[str] = set()
        for request in requests:
            order = self.order(request)
            if order is None:
                continue
            if order.order_id in seen:
                self.problem(request, f"order {order.order_id} appears twice in the document")
            seen.add(order.order_id)
            orders.append(order)
        return orders

    def order(self, req: etree._Element) -> OrderSpec | None:
        before = self.count
        id_el = req.find(B + "ID")
        order_id = self.required_text(req, "ID")
        revision = 1
        if id_el is not None and id_el.get("schemeVersionID") is not None:
            revision = self.positive_int(id_el, id_el.get("schemeVersionID", ""),
                                         "ID/@schemeVersionID (revision)")
        release = self.release(req)
        segments = req.findall(f".//{B}SegmentRequirement")
        leaves = [s for s in segments if s.find(B + "SegmentRequirement") is None]
        if not leaves:
            self.problem(req, "no SegmentRequirement (routing operation) found")
        operations = [op for op in map(self.operation, leaves) if op is not None]
        op_counts = Counter(n for s in leaves if (n := self.text(s, "ID")))
        for dup in sorted(n for n, times in op_counts.items() if times > 1):
            self.problem(req, f"operation {dup} appears more than once")
        produced = [m for s in segments for m in self.requirements(s, PRODUCED_USES)]
        if not produced:
            self.problem(req, "no MaterialRequirement with MaterialUse 'Produced' "
                              "(the order's material and quantity)")
        leaf_set = set(leaves)
        components = []
        for seg in segments:
            for m in self.requirements(seg, CONSUMED_USES):
                material, (qty, _unit) = self.material(m), self.quantity(m)
                if material is not None and qty is not None:
                    op_no = self.text(seg, "ID") if seg in leaf_set else None
                    components.append(ComponentSpec(material=material, quantity=qty, op_no=op_no))
        due = self.timestamp(req.find(B + "EndTime"))
        if due is None:
            ends = [d for s in leaves if (d := self.timestamp(s.find(B + "LatestEndTime")))]
            due = max(ends) if ends else None
        if not produced or self.count > before:
            return None
        header = produced[-1]
        material = self.material(header)
        quantity, unit = self.quantity(header)
        props = self.properties(header)
        demand = self.demand_type(header, props)
        tolerance = self.tolerance(header, props.get("TolerancePct"))
        if material is None or quantity is None or self.count > before:
            return None
        return OrderSpec(
            order_id=order_id,
            revision=revision,
            material=material,
            quantity=quantity,
            unit=unit or DEFAULT_UNIT,
            operations=tuple(operations),
            components=tuple(components),
            demand_type=demand,
            sales_order=props.get("SalesOrder"),
            customer=props.get("Customer"),
            due=due,
            release=release,
            tolerance_pct=tolerance,
        )

    def operation(self, seg: etree._Element) -> OperationSpec | None:
        op_no = self.required_text(seg, "ID")
        work_center = (self.text(seg, f"{B}EquipmentRequirement/{B}EquipmentID")
                       or self.text(seg, f"{B}HierarchyScope/{B}EquipmentID"))
        if not work_center:
            self.problem(seg, "no work center: EquipmentRequirement/EquipmentID or "
                              "HierarchyScope/EquipmentID is required")
        planned = None
        own = self.requirements(seg, PRODUCED_USES)
        if own:
            planned = self.quantity(own[-1])[0]
        params = {self.text(p, "ID"): p for p in seg.findall(B + "SegmentParameter")}
        counting = None
        if (p := params.get("CountingSource")) is not None:
            value = (self.text(p, f"{B}Value/{B}ValueString") or "").lower()
            try:
                counting = CountingSource(value)
            except ValueError:
                self.problem(p, f"CountingSource {value!r} is not 'machine' or 'operator'")
        cycle = None
        if (p := params.get("IdealCycleTime")) is not None:
            cycle = self.cycle_seconds(p)
        if not op_no or not work_center:
            return None
        return OperationSpec(op_no=op_no, work_center=work_center,
                             description=self.text(seg, "Description") or "",
                             planned_qty=planned, counting=counting, ideal_cycle_s=cycle)

    # -- element helpers ---------------------------------------------------------------------

    def text(self, el: etree._Element | None, path: str) -> str | None:
        if el is None:
            return None
        found = el.find(path if path.startswith("{") else B + path)
        value = None if found is None or found.text is None else found.text.strip()
        return value or None

    def required_text(self, el: etree._Element, name: str) -> str:
        value = self.text(el, name)
        if value is None:
            self.problem(el, f"{name} is required")
        return value or ""

    def requirements(self, seg: etree._Element, uses: frozenset[str]) -> list[etree._Element]:
        return [m for m in seg.findall(B + "MaterialRequirement")
                if self.text(m, "MaterialUse") in uses]

    def material(self, req: etree._Element) -> str | None:
        material = self.text(req, "MaterialDefinitionID")
        if material is None:
            self.problem(req, "MaterialDefinitionID is required")
        return material

    def quantity(self, req: etree._Element) -> tuple[int | None, str | None]:
        qty_el = req.find(B + "Quantity")
        if qty_el is None:
            self.problem(req, "Quantity is required")
            return None, None
        raw = self.text(qty_el, "QuantityString") or ""
        value = self.positive_int(qty_el, raw, "Quantity/QuantityString")
        return (value or None), self.text(qty_el, "UnitOfMeasure")

    def positive_int(self, el: etree._Element, raw: str, what: str) -> int:
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number != number.to_integral_value() or number <= 0:
            self.problem(el, f"{what} must be a positive whole number, got {raw!r}")
            return 0
        return int(number)

    def properties(self, req: etree._Element) -> dict[str, str]:
        props: dict[str, str] = {}
        for p in req.findall(B + "MaterialRequirementProperty"):
            key = self.text(p, "ID")
            value = self.text(p, f"{B}Value/{B}ValueString")
            if key and value:
                props[key] = value
        return props

    def demand_type(self, req: etree._Element, props: dict[str, str]) -> DemandType:
        raw = props.get("DemandType")
        if raw is None:
            return DemandType.MAKE_TO_ORDER if props.get("SalesOrder") else DemandType.MAKE_TO_STOCK
        demand = _DEMAND_ALIASES.get(raw.lower())
        if demand is None:
            self.problem(req, f"DemandType {raw!r} is not make_to_order or make_to_stock")
            return DemandType.MAKE_TO_STOCK
        return demand

    def tolerance(self, req: etree._Element, raw: str | None) -> float | None:
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1000.0:
            self.problem(req, f"TolerancePct must be a percentage from 0 to 1000, got {raw!r}")
            return None
        return value

    def release(self, req: etree._Element) -> bool:
        state = req.find(B + "RequestState")
        if state is None:
            return True
        value = (state.text or "").strip()
        if value in _RELEASED_STATES:
            return True
        if value not in _UNRELEASED_STATES:
            self.problem(state, f"RequestState {value!r} cannot be imported (Released, Ready, "
                                "Forecast or Held; cancel through the cancel endpoint)")
        return False

    def cycle_seconds(self, param: etree._Element) -> float | None:
        raw = self.text(param, f"{B}Value/{B}ValueString") or ""
        unit = (self.text(param, f"{B}Value/{B}UnitOfMeasure") or "s").lower()
        factor = _SECONDS_PER_UNIT.get(unit)
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if factor is None or not 0.0 < value < 1e9:
            self.problem(param, f"IdealCycleTime needs a positive number and a unit of "
                                f"s, ms, min or h; got {raw!r} {unit!r}")
            return None
        return value * factor

    def timestamp(self, el: etree._Element | None) -> datetime | None:
        if el is None or not (el.text or "").strip():
            return None
        raw = (el.text or "").strip()
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            self.problem(el, f"{raw!r} is not an ISO 8601 date-time")
            return None
        if value.tzinfo is None:
            # The WIP model compares times across sources: a naive time is ambiguous.
            self.problem(el, f"{raw!r} needs a time zone (Z or +hh:mm)")
            return None
        return value
