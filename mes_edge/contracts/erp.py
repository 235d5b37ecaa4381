"""The ERP contract (README, ERP HTTP API): work orders in, confirmations out.

One definition for every way orders and confirmations cross the edge: the HTTP endpoints
(mes_edge.api), the order puller and the push worker (mes_edge.erp) all use these models.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from mes_edge.domain import ComponentSpec, CountingSource, DemandType, OperationSpec, OrderSpec

#: An order id, operation number, work center or material: what the ERP may use as a key.
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-/]+$")]
Qty = Annotated[int, Field(ge=1, le=100_000_000)]


class In(BaseModel):
    """Base of request bodies: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class OperationIn(In):
    """A routing operation of a work order."""

    op_no: Ident = Field(description="operation number, e.g. 0010")
    work_center: Ident
    description: str = Field("", max_length=200)
    planned_qty: Qty | None = Field(None, description="defaults to the order quantity")
    counting: CountingSource | None = Field(None, description="default: the work center's")
    ideal_cycle_s: float | None = Field(None, gt=0, le=86_400)


class ComponentIn(In):
    """A material the order consumes."""

    material: Ident
    quantity: Qty
    op_no: Ident | None = None


class WorkOrderIn(In):
    """PUT /work-orders/{order_id}: one revision of a work order."""

    revision: int = Field(ge=0, le=1_000_000, description="only moves forward")
    material: Ident
    quantity: Qty
    unit: str = Field("PCE", min_length=1, max_length=16)
    operations: list[OperationIn] = Field(min_length=1, max_length=200)
    components: list[ComponentIn] = Field(default_factory=list, max_length=500)
    demand_type: DemandType = DemandType.MAKE_TO_STOCK
    sales_order: str | None = Field(None, max_length=64, description="make-to-order reference")
    customer: str | None = Field(None, max_length=200)
    due: Annotated[AwareDatetime, AfterValidator(lambda v: v.astimezone(UTC))] | None = None
    release: bool = Field(True, description="release for production at once")
    tolerance_pct: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _demand(self) -> Self:
        if self.demand_type == DemandType.MAKE_TO_ORDER and not self.sales_order:
            raise ValueError("a make_to_order work order needs its sales_order")
        return self

    def to_spec(self, order_id: str) -> OrderSpec:
        """The domain's OrderSpec."""
        return OrderSpec(
            order_id=order_id, revision=self.revision, material=self.material,
            quantity=self.quantity, unit=self.unit,
            operations=tuple(OperationSpec(op_no=o.op_no, work_center=o.work_center,
                                           description=o.description, planned_qty=o.planned_qty,
                                           counting=o.counting, ideal_cycle_s=o.ideal_cycle_s)
                             for o in self.operations),
            components=tuple(ComponentSpec(material=c.material, quantity=c.quantity, op_no=c.op_no)
                             for c in self.components),
            demand_type=self.demand_type, sales_order=self.sales_order, customer=self.customer,
            due=self.due, release=self.release, tolerance_pct=self.tolerance_pct)


class ConfirmationOut(BaseModel):
    """A production confirmation (SAP-style fields); never edited after commit."""

    confirmation_id: str
    cursor: int
    order_id: str
    operation: str
    work_center: str
    yield_qty: int = Field(alias="yield", serialization_alias="yield")
    scrap: int
    rework: int
    unit: str
    scrap_reasons: dict[str, int] = Field(description="variance reason -> quantity")
    final: bool
    actual_start: datetime | None
    actual_end: datetime | None
    posting_date: date
    personnel: str | None
    reverses: str | None = Field(description="confirmation_id this one reverses")
    reason: str | None
    external_key: str = Field(description="the event that caused it (idempotency key upstream)")
    delivery: str | None = Field(
        None, description="retrying | delivered | posted | error | skipped; null: pending")

    model_config = ConfigDict(populate_by_name=True)


def confirmation_out(row: Any) -> ConfirmationOut:
    """The public view of a confirmations row (the pull feed and the push worker send it)."""
    return ConfirmationOut(
        confirmation_id=row.confirmation_id, cursor=row.cursor, order_id=row.order_id,
        operation=row.op_no, work_center=row.work_center, yield_qty=row.yield_qty,
        scrap=row.scrap_qty, rework=row.rework_qty, unit=row.unit,
        scrap_reasons=dict(row.scrap_reasons), final=row.final, actual_start=row.actual_start,
        actual_end=row.actual_end, posting_date=row.posting_date, personnel=row.personnel,
        reverses=row.reverses, reason=row.reason, external_key=row.event_id,
        delivery=getattr(row, "delivery", None))
