"""B2MML V0700 (ISA-95) for the ERP contract: work orders in, production confirmations out.

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International."

All elements are in the namespace ``http://www.mesa.org/xml/B2MML``; paths below omit it.

Schema
------
Documents are validated against the official V0700 XSD files (B2MML-OperationsSchedule.xsd
in, B2MML-OperationsPerformance.xsd out), compiled once per process. The XSD files ship in
the package (``mes_edge/erp/b2mml_xsd``, with MESA's LICENSE and NOTICE), so an installed
service always validates. ``$MES_B2MML_XSD_DIR`` may point at another copy; a folder without
the files is ignored with a warning. Only a broken installation without package data falls
back to the structural checks below (with a warning). Input is parsed safely: at most
5 MiB, no DOCTYPE/DTD, no entity expansion, no network, no huge-tree mode.

Errors: `B2mmlError.problems` is a list of `B2mmlProblem(location, message, line)`; location is
XPath-like with local names and 1-based positions among same-named siblings, e.g.
``/ProcessOperationsSchedule/DataArea/OperationsSchedule/OperationsRequest[2]/SegmentRequirement``.
XSD violations keep libxml2's line and message. The API turns them into 422.

In: work orders (``parse_operations_schedule``)
-----------------------------------------------
Root: ``ProcessOperationsSchedule`` (also ``SyncOperationsSchedule``/``ChangeOperationsSchedule``,
same shape) with ``DataArea/OperationsSchedule`` (1..n), or a bare ``OperationsSchedule``.
Each ``OperationsSchedule/OperationsRequest`` (``R``) is one work order, an `OrderSpec`::

    R/ID                                   -> order_id (required, unique in the document)
    R/ID/@schemeVersionID                  -> revision (positive integer; absent: 1) [1]
    R/RequestState                         -> release: absent, Released, Ready -> True;
                                              Forecast, Held -> False; any other state is
                                              refused (cancel through the cancel endpoint)
    R/EndTime                              -> due; absent: the latest LatestEndTime of the
                                              operations; date-times need an offset (Z, +01:00)
    P = the last MaterialRequirement with MaterialUse "Produced" (or "Yield Produced") in
        document order, at any SegmentRequirement level, is the order header [2]:
    P/MaterialDefinitionID                 -> material (required)
    P/Quantity/QuantityString              -> quantity (required, positive whole number)
    P/Quantity/UnitOfMeasure               -> unit (absent: PCE)
    P/MaterialRequirementProperty[ID=SalesOrder]/Value/ValueString   -> sales_order
    P/MaterialRequirementProperty[ID=Customer]/Value/ValueString     -> customer
    P/MaterialRequirementProperty[ID=DemandType]/Value/ValueString   -> demand_type:
        make_to_order|make_to_stock (or MTO|MTS); absent: make_to_order when SalesOrder
        is given, else make_to_stock
    P/MaterialRequirementProperty[ID=TolerancePct]/Value/ValueString -> tolerance_pct
        (over-production tolerance in percent, 0-1000; absent: the plant's default)

Every *leaf* ``R//SegmentRequirement`` (one without child SegmentRequirements), in document
order, is one routing operation, an `OperationSpec` (``S``); a parent SegmentRequirement
may group operations and carry order-level material requirements, it is no operation::

    S/ID                                   -> op_no (required, unique in the order)
    S/EquipmentRequirement[1]/EquipmentID[1], else S/HierarchyScope/EquipmentID
                                           -> work_center (required)
    S/Description[1]                       -> description
    S/MaterialRequirement[MaterialUse=Produced][last]/Quantity/QuantityString
                                           -> planned_qty (absent: the order quantity)
    S/SegmentParameter[ID=CountingSource]/Value/ValueString -> counting (machine|operator)
    S/SegmentParameter[ID=IdealCycleTime]/Value/ValueString -> ideal_cycle_s, with
        Value/UnitOfMeasure s (default), ms, min or h
    any SegmentRequirement's MaterialRequirement[MaterialUse=Consumed or Material Consumed]
                                           -> components: MaterialDefinitionID -> material,
                                              Quantity/QuantityString -> quantity (positive
                                              whole number), op_no = S/ID of a leaf, None
                                              when on a parent segment

Accepted but not used: Priority, StartTime, the request's HierarchyScope, OperationsDefinitionID,
SegmentRequirement Duration/EarliestStartTime, personnel and physical asset requirements,
MaterialUse Consumable and by-/co-products, the unit of a component.

[1] OperationsRequest has no Version element in V0700; the identifier's ``schemeVersionID`` is
the one version slot the schema gives it: ``<ID schemeVersionID="3">4711</ID>`` is order 4711,
revision 3.
[2] OperationsRequest has neither material nor properties in V0700; the produced material
requirement carries what an ERP order item carries (material, quantity, sales order, customer,
over-delivery tolerance), so the order's properties live there.

Out: confirmations (``show_operations_performance``)
----------------------------------------------------
``ShowOperationsPerformance/@releaseID`` = release_id. ``ApplicationArea``: Sender/LogicalID =
sender, CreationDateTime = now (UTC), BODID = a UUID derived from sender, next cursor and the
(cursor, confirmation_id) pairs (a page fetched twice has the same BODID). ``DataArea/Show``
carries the next cursor in ``ResponseCriteria/ResponseExpression`` with
``@expressionLanguage="mes-edge:next-cursor"`` (omitted when next_cursor is None), the place
OAGIS keeps paging information. ``DataArea/OperationsPerformance``: ID = BODID, OperationsType
Production, PublishedDate = CreationDateTime.

One ``OperationsResponse`` (``O``) per confirmation, in cursor order, with exactly one
``SegmentResponse`` (``G``): a confirmation is one ERP posting with its own idempotency key
(the ERP dedups by ``O/ID``), like an ERP's confirmation of one operation; grouping by order
would mix postings that are acknowledged and reversed one by one::

    confirmation_id        -> O/ID
    order_id               -> O/OperationsRequestID
    op_no                  -> O/SegmentRequirementID and G/ID
    actual_start           -> O/StartTime and G/ActualStartTime (omitted when unknown)
    actual_end             -> O/EndTime and G/ActualEndTime (omitted when unknown)
    final, reverses        -> O/ResponseState and G/SegmentState: Completed (final),
                              Running (partial), Other with @OtherValue="Reversal"
    posting_date           -> G/PostingDate as "YYYY-MM-DDT00:00:00" (no offset: a calendar
                              day), and G/SegmentData[ID=PostingDate] as "YYYY-MM-DD"
    cursor                 -> G/SegmentData[ID=Cursor] (integer; resume reading after it)
    kind                   -> G/SegmentData[ID=ConfirmationKind]: partial|final|reversal
    final                  -> G/SegmentData[ID=FinalConfirmation]: true|false
    reverses               -> G/SegmentData[ID=Reverses] (reversals only)
    reason                 -> G/SegmentData[ID=Reason] (only when given)
    event_id               -> G/SegmentData[ID=EventID]
    created_at             -> G/SegmentData[ID=CreatedAt]
    personnel              -> G/PersonnelActual/PersonID (omitted when unknown)
    work_center            -> G/EquipmentActual/EquipmentID
    quantities.good, unit  -> G/MaterialActual[MaterialUse=Produced]/Quantity/QuantityString
                              and .../Quantity/UnitOfMeasure (always present, may be 0)
    quantities.scrap       -> one G/MaterialActual[MaterialUse=Other, @OtherValue=Scrap] per
                              reason, sorted by reason: Quantity/QuantityString, UnitOfMeasure,
                              MaterialActualProperty[ID=ScrapReason]/Value/ValueString
    quantities.rework      -> G/MaterialActual[MaterialUse=Other, @OtherValue=Rework]/Quantity
                              (only when > 0)

SegmentData and properties carry ``Value/ValueString`` and ``Value/DataType`` (integer, string,
boolean, date, dateTime); quantities carry DataType integer. Date-times carry an offset (UTC
when the store gave a naive one). A reversal carries the quantities of the confirmation it
reverses as positive numbers: the ERP cancels the confirmation named in ``Reverses``, it does
not add negative quantities. The material is not repeated (a confirmation has none; the ERP
knows its order). Characters XML cannot carry (control characters) become U+FFFD.
"""

from __future__ import annotations

from mes_edge.erp.b2mml_performance import NEXT_CURSOR_LANGUAGE, show_operations_performance
from mes_edge.erp.b2mml_schedule import parse_operations_schedule
from mes_edge.erp.b2mml_xml import (
    MAX_DOCUMENT_BYTES,
    NS,
    PERFORMANCE_XSD,
    SCHEDULE_XSD,
    SCHEMA_DIR_ENV,
    B2mmlError,
    B2mmlProblem,
    parse_document,
    schema_available,
    schema_dir,
    validate,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "NEXT_CURSOR_LANGUAGE",
    "NS",
    "PERFORMANCE_XSD",
    "SCHEDULE_XSD",
    "SCHEMA_DIR_ENV",
    "B2mmlError",
    "B2mmlProblem",
    "parse_document",
    "parse_operations_schedule",
    "schema_available",
    "schema_dir",
    "show_operations_performance",
    "validate",
    "validate_performance",
]


def validate_performance(xml: bytes) -> None:
    """Check a ShowOperationsPerformance document against the official XSD (B2mmlError if not)."""
    validate(parse_document(xml), PERFORMANCE_XSD)
