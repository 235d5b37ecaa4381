"""Outbound B2MML: confirmations become a ShowOperationsPerformance (the mapping is in `b2mml`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from lxml import etree

from mes_edge.domain.plant import Confirmation
from mes_edge.erp.b2mml_xml import NS, B

#: Namespace of the BODIDs: the same page of confirmations always gets the same BODID.
_BOD_NAMESPACE = uuid.UUID("0d6c3f0e-8a51-4a4f-b7f4-2b0f3e1c9a7d")
#: ResponseExpression/@expressionLanguage of the next cursor in the Show verb.
NEXT_CURSOR_LANGUAGE = "mes-edge:next-cursor"
#: Characters XML 1.0 cannot carry at all (control characters, lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def show_operations_performance(
    confirmations: Sequence[tuple[int, Confirmation]],
    *,
    release_id: str,
    sender: str = "mes-edge",
    next_cursor: int | None,
    creation_time: datetime | None = None,
) -> bytes:
    """A ShowOperationsPerformance document: one OperationsResponse per (cursor, confirmation).

    `creation_time` defaults to now (UTC); the result is UTF-8 bytes with an XML declaration.
    """
    created = creation_time or datetime.now(UTC)
    bod_id = _bod_id(sender, confirmations, next_cursor)
    root = etree.Element(B + "ShowOperationsPerformance", nsmap={None: NS})
    root.set("releaseID", release_id)
    area = _sub(root, "ApplicationArea")
    _sub(_sub(area, "Sender"), "LogicalID", sender)
    _sub(area, "CreationDateTime", _timestamp(created))
    _sub(area, "BODID", bod_id)
    data = _sub(root, "DataArea")
    show = _sub(data, "Show")
    if next_cursor is not None:
        expression = _sub(_sub(show, "ResponseCriteria"), "ResponseExpression", str(next_cursor))
        expression.set("actionCode", "Accepted")
        expression.set("expressionLanguage", NEXT_CURSOR_LANGUAGE)
    performance = _sub(data, "OperationsPerformance")
    _sub(performance, "ID", bod_id)
    _sub(performance, "OperationsType", "Production")
    _sub(performance, "PublishedDate", _timestamp(created))
    for cursor, confirmation in confirmations:
        _response(performance, cursor, confirmation)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _response(parent: etree._Element, cursor: int, c: Confirmation) -> None:
    state, other = _state(c)
    response = _sub(parent, "OperationsResponse")
    _sub(response, "ID", c.confirmation_id)
    _sub(response, "OperationsType", "Production")
    _sub(response, "OperationsRequestID", c.order_id)
    _sub(response, "SegmentRequirementID", c.op_no)
    if c.actual_start is not None:
        _sub(response, "StartTime", _timestamp(c.actual_start))
    if c.actual_end is not None:
        _sub(response, "EndTime", _timestamp(c.actual_end))
    _code(response, "ResponseState", state, other)

    segment = _sub(response, "SegmentResponse")
    _sub(segment, "ID", c.op_no)
    _sub(segment, "OperationsType", "Production")
    if c.actual_start is not None:
        _sub(segment, "ActualStartTime", _timestamp(c.actual_start))
    if c.actual_end is not None:
        _sub(segment, "ActualEndTime", _timestamp(c.actual_end))
    _sub(segment, "PostingDate", _posting_date(c.posting_date))
    _code(segment, "SegmentState", state, other)
    _data(segment, "Cursor", str(cursor), "integer")
    _data(segment, "ConfirmationKind", _kind(c), "string")
    _data(segment, "FinalConfirmation", "true" if c.final else "false", "boolean")
    _data(segment, "PostingDate", c.posting_date.isoformat(), "date")
    if c.reverses is not None:
        _data(segment, "Reverses", c.reverses, "string")
    if c.reason:
        _data(segment, "Reason", c.reason, "string")
    _data(segment, "EventID", c.event_id, "string")
    _data(segment, "CreatedAt", _timestamp(c.created_at), "dateTime")
    if c.personnel:
        _sub(_sub(segment, "PersonnelActual"), "PersonID", c.personnel)
    _sub(_sub(segment, "EquipmentActual"), "EquipmentID", c.work_center)

    _material(segment, "Produced", None, c.quantities.good, c.unit)
    for reason in sorted(c.quantities.scrap):
        scrap = _material(segment, "Other", "Scrap", c.quantities.scrap[reason], c.unit)
        prop = _sub(scrap, "MaterialActualProperty")
        _sub(prop, "ID", "ScrapReason")
        _value(prop, reason, "string")
    if c.quantities.rework:
        _material(segment, "Other", "Rework", c.quantities.rework, c.unit)


def _material(parent: etree._Element, use: str, other: str | None, qty: int,
              unit: str) -> etree._Element:
    actual = _sub(parent, "MaterialActual")
    _code(actual, "MaterialUse", use, other)
    quantity = _sub(actual, "Quantity")
    _sub(quantity, "QuantityString", str(qty))
    _sub(quantity, "DataType", "integer")
    _sub(quantity, "UnitOfMeasure", unit)
    return actual


def _data(parent: etree._Element, key: str, value: str, data_type: str) -> None:
    data = _sub(parent, "SegmentData")
    _sub(data, "ID", key)
    _value(data, value, data_type)


def _value(parent: etree._Element, value: str, data_type: str) -> None:
    element = _sub(parent, "Value")
    _sub(element, "ValueString", value)
    _sub(element, "DataType", data_type)


def _code(parent: etree._Element, name: str, value: str, other: str | None) -> None:
    element = _sub(parent, name, value)
    if other is not None:
        element.set("OtherValue", other)


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, B + name)
    if text is not None:
        # A stray control character in a free-text field (a reason typed on a tablet) must
        # not make a whole page of the feed unexportable: it becomes U+FFFD.
        element.text = _NOT_XML.sub("\ufffd", text)
    return element


def _kind(c: Confirmation) -> str:
    if c.reverses is not None:
        return "reversal"
    return "final" if c.final else "partial"


def _state(c: Confirmation) -> tuple[str, str | None]:
    # ResponseState has no value for a reversal: "Other" with OtherValue is B2MML's own way.
    if c.reverses is not None:
        return "Other", "Reversal"
    return ("Completed", None) if c.final else ("Running", None)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        # The store keeps times in UTC; xsd:dateTime without an offset would make the ERP
        # guess, so say UTC explicitly.
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _posting_date(value: date) -> str:
    # PostingDate is an xsd:dateTime in B2MML, but a posting date is a calendar date: midnight
    # without an offset says "this day" without shifting it into another time zone.
    return f"{value.isoformat()}T00:00:00"


def _bod_id(sender: str, confirmations: Sequence[tuple[int, Confirmation]],
            next_cursor: int | None) -> str:
    pairs = (f"{cur}:{c.confirmation_id}" for cur, c in confirmations)
    key = "\x1f".join([sender, str(next_cursor), *pairs])
    return str(uuid.uuid5(_BOD_NAMESPACE, key))
