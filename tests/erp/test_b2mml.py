"""B2MML V0700: orders in (OperationsSchedule), confirmations out (OperationsPerformance)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mes_edge.domain.model import (
    ComponentSpec,
    CountingSource,
    DemandType,
    OperationSpec,
    OrderSpec,
    Quantities,
)
from mes_edge.domain.plant import Confirmation
from mes_edge.erp import b2mml_xml
from mes_edge.erp.b2mml import (
    NEXT_CURSOR_LANGUAGE,
    NS,
    SCHEDULE_XSD,
    SCHEMA_DIR_ENV,
    B2mmlError,
    parse_document,
    parse_operations_schedule,
    schema_available,
    schema_dir,
    show_operations_performance,
    validate,
    validate_performance,
)

pytestmark = pytest.mark.timeout(30)

FIXTURES = Path(__file__).parent / "fixtures"
SCHEDULE = (FIXTURES / "process_operations_schedule.xml").read_bytes()
B = "{" + NS + "}"
CET = timezone(timedelta(hours=1))


@pytest.fixture
def xsd(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The schema folder the service uses: the one shipped in the package (never skipped)."""
    monkeypatch.delenv(SCHEMA_DIR_ENV, raising=False)
    folder = schema_dir()
    assert folder == b2mml_xml.PACKAGED_SCHEMA_DIR
    return folder


def test_schemas_ship_in_the_package_with_mesa_licence(xsd: Path) -> None:
    assert schema_available()
    assert (xsd / SCHEDULE_XSD).is_file() and (xsd / b2mml_xml.PERFORMANCE_XSD).is_file()
    acknowledgement = ("The Business To Manufacturing Markup Language (B2MML) is used "
                       "courtesy of MESA International.")
    assert acknowledgement in (xsd / "NOTICE").read_text()
    licence = " ".join((xsd / "LICENSE").read_text().split())
    assert "MESA International" in licence and "Permission to use, copy, modify" in licence
    assert " ".join(acknowledgement.split()) in licence


def test_shipped_schemas_are_self_contained(xsd: Path) -> None:
    # Every include/import of the two entry points resolves inside the shipped folder, and
    # nothing in the folder is dead weight.
    needed: set[str] = set()
    todo = [SCHEDULE_XSD, b2mml_xml.PERFORMANCE_XSD]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        assert (xsd / name).is_file(), f"{name} is referenced but not shipped"
        needed.add(name)
        tree = etree.parse(str(xsd / name))
        todo += tree.xpath("//xsd:include/@schemaLocation | //xsd:import/@schemaLocation",
                           namespaces={"xsd": "http://www.w3.org/2001/XMLSchema"})
    assert {p.name for p in xsd.glob("*.xsd")} == needed


def test_schema_folder_from_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy = tmp_path / "xsd"
    copy.mkdir()
    for f in b2mml_xml.PACKAGED_SCHEMA_DIR.glob("*.xsd"):
        (copy / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv(SCHEMA_DIR_ENV, str(copy))
    assert schema_dir() == copy
    validate(parse_document(SCHEDULE), SCHEDULE_XSD)


def test_wrong_schema_folder_in_the_environment_falls_back_to_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SCHEMA_DIR_ENV, str(tmp_path / "no-such-folder"))
    assert schema_dir() == b2mml_xml.PACKAGED_SCHEMA_DIR
    with pytest.raises(B2mmlError, match="not expected"):
        parse_operations_schedule(_edit(_with_unknown_element))


# -- orders in --------------------------------------------------------------------------------

EXPECTED = [
    OrderSpec(
        order_id="4711000123", revision=3, material="BRKT-100", quantity=500, unit="PCE",
        operations=(
            OperationSpec("0010", "PRESS-01", "Stamp and bend", None, CountingSource.MACHINE, 1.2),
            OperationSpec("0020", "WELD-02", "Weld nut", 505, CountingSource.OPERATOR, None),
            OperationSpec("0030", "PACK-01", "Inspect and pack", 500, None, None),
        ),
        components=(ComponentSpec("COIL-S235-2MM", 520, "0010"),
                    ComponentSpec("NUT-M6-WELD", 1000, "0020")),
        demand_type=DemandType.MAKE_TO_ORDER, sales_order="12345/10",
        customer="ACME Fahrzeugbau GmbH", due=datetime(2026, 11, 27, 14, 0, tzinfo=CET),
        release=True, tolerance_pct=2.5,
    ),
    OrderSpec(
        order_id="4711000124", revision=1, material="SPC-20", quantity=2000, unit="PCE",
        operations=(OperationSpec("0010", "SAW-03", "Saw"),
                    OperationSpec("0020", "DEBURR-01", "Deburr")),
        components=(ComponentSpec("TUBE-AL-20", 42, None),),
        demand_type=DemandType.MAKE_TO_STOCK, due=datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
        release=False,
    ),
]


def test_fixture_is_valid_against_the_official_xsd(xsd: Path) -> None:
    validate(parse_document(SCHEDULE), SCHEDULE_XSD)  # raises if not


def test_process_operations_schedule_gives_the_orders(xsd: Path) -> None:
    assert parse_operations_schedule(SCHEDULE) == EXPECTED


def test_bare_operations_schedule_is_accepted(xsd: Path) -> None:
    schedule = parse_document(SCHEDULE).find(f"{B}DataArea/{B}OperationsSchedule")
    assert schedule is not None
    assert parse_operations_schedule(etree.tostring(schedule)) == EXPECTED


def test_without_schema_folder_structural_parsing_still_maps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A broken installation that lost its package data still maps (with a warning).
    monkeypatch.delenv(SCHEMA_DIR_ENV, raising=False)
    monkeypatch.setattr(b2mml_xml, "PACKAGED_SCHEMA_DIR", tmp_path / "no-such-folder")
    assert not schema_available()
    assert parse_operations_schedule(SCHEDULE) == EXPECTED
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(_edit(_without_quantity))
    assert err.value.problems[0].message == "Quantity is required"


def _edit(change: object) -> bytes:
    root = parse_document(SCHEDULE)
    change(root)  # type: ignore[operator]
    return etree.tostring(root)


def _first_request(root: etree._Element) -> etree._Element:
    return root.findall(f".//{B}OperationsRequest")[0]


def _without_quantity(root: etree._Element) -> None:
    pack = _first_request(root).findall(f"{B}SegmentRequirement")[2]
    produced = pack.find(B + "MaterialRequirement")
    produced.remove(produced.find(B + "Quantity"))


def _with_unknown_element(root: etree._Element) -> None:
    _first_request(root).find(B + "RequestState").addnext(etree.Element(B + "Colour"))


def test_unknown_element_is_reported_with_location_and_line(xsd: Path) -> None:
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(_edit(_with_unknown_element))
    (problem,) = err.value.problems
    assert problem.location == ("/ProcessOperationsSchedule/DataArea/OperationsSchedule"
                                "/OperationsRequest[1]/Colour")
    assert "Colour" in problem.message and "not expected" in problem.message
    assert "{" not in problem.message  # namespaces stripped for readability
    assert problem.line is not None and problem.line > 1


def test_missing_quantity_is_reported_where_it_is_missing() -> None:
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(_edit(_without_quantity))
    (problem,) = err.value.problems
    assert problem.location.endswith("OperationsRequest[1]/SegmentRequirement[3]"
                                     "/MaterialRequirement")
    assert problem.message == "Quantity is required"
    assert problem.as_dict()["line"] == problem.line


def test_every_mapping_problem_is_listed() -> None:
    def spoil(root: etree._Element) -> None:
        request = _first_request(root)
        segments = request.findall(f"{B}SegmentRequirement")
        segments[1].find(f"{B}ID").text = "0010"  # duplicate operation
        segments[0].remove(segments[0].find(B + "EquipmentRequirement"))  # no work center
        request.find(B + "EndTime").text = "2026-11-27T14:00:00"  # no offset
        segments[2].find(f".//{B}QuantityString").text = "12.5"
        request.find(B + "ID").set("schemeVersionID", "v2")

    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(_edit(spoil))
    messages = [p.message for p in err.value.problems]
    assert any("schemeVersionID" in m for m in messages)
    assert any("no work center" in m for m in messages)
    assert any("operation 0010 appears more than once" in m for m in messages)
    assert any("needs a time zone" in m for m in messages)
    assert any("positive whole number, got '12.5'" in m for m in messages)
    assert all(p.location.startswith("/ProcessOperationsSchedule/") for p in err.value.problems)
    assert len(messages) == 5  # each once, though the header quantity is read twice


@pytest.mark.parametrize("payload", [b"", b"   ", b"not xml at all", b"<a><b></a>", b"\xff\xfe<"])
def test_not_xml_is_refused(payload: bytes) -> None:
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(payload)
    assert err.value.problems[0].location == "/"


def test_wrong_document_type_is_refused() -> None:
    page = show_operations_performance([], release_id="V0700", next_cursor=None)
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(page)
    assert err.value.problems[0].location == "/ShowOperationsPerformance"


def _billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (f'<?xml version="1.0"?><!DOCTYPE OperationsSchedule [{"".join(entities)}]>'
            f'<OperationsSchedule xmlns="{NS}"><ID>&lol9;</ID></OperationsSchedule>').encode()


def test_entity_attacks_are_refused_quickly() -> None:
    external = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                f'<OperationsSchedule xmlns="{NS}"><ID>&e;</ID></OperationsSchedule>').encode()
    for payload in (_billion_laughs(), external):
        started = time.monotonic()
        with pytest.raises(B2mmlError) as err:
            parse_operations_schedule(payload)
        assert time.monotonic() - started < 10.0  # no expansion: far below any real limit
        assert "root:" not in str(err.value)


def test_oversized_document_is_refused_before_parsing() -> None:
    huge = SCHEDULE + b"<!--" + b"x" * b2mml_xml.MAX_DOCUMENT_BYTES + b"-->"
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(huge)
    assert "exceeds the limit" in err.value.problems[0].message


# -- confirmations out ------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
PARTIAL = Confirmation(
    confirmation_id="0b6e6f8e-4c49-5c3e-9d1a-1f0e3c7b2a01", order_id="4711000123", op_no="0010",
    work_center="PRESS-01", quantities=Quantities(good=240, scrap={"crack": 3, "burr": 1},
                                                  rework=2),
    unit="PCE", final=False, actual_start=T0, actual_end=T0 + timedelta(hours=2),
    posting_date=date(2026, 11, 23), personnel="P-0815", event_id="plc1/good_count/1043",
    created_at=T0 + timedelta(hours=2),
)
FINAL = Confirmation(
    confirmation_id="7a1d2c3b-0000-5000-8000-000000000002", order_id="4711000123", op_no="0010",
    work_center="PRESS-01", quantities=Quantities(good=260), unit="PCE", final=True,
    actual_start=T0, actual_end=T0 + timedelta(hours=4), posting_date=date(2026, 11, 23),
    personnel=None, event_id="ev-complete-1", created_at=T0 + timedelta(hours=4),
)
REVERSAL = Confirmation(
    confirmation_id="7a1d2c3b-0000-5000-8000-000000000003", order_id="4711000123", op_no="0010",
    work_center="PRESS-01", quantities=PARTIAL.quantities, unit="PCE", final=False,
    actual_start=T0, actual_end=T0 + timedelta(hours=2), posting_date=date(2026, 11, 24),
    personnel="SUP-1", event_id="ev-reverse-1", created_at=T0 + timedelta(days=1),
    reverses=PARTIAL.confirmation_id, reason="wrong order scanned",
)
PAGE = [(41, PARTIAL), (42, FINAL), (57, REVERSAL)]


def _show(**kwargs: object) -> bytes:
    args: dict[str, object] = {"release_id": "V0700", "next_cursor": 57,
                               "creation_time": T0 + timedelta(days=2)}
    args.update(kwargs)
    return show_operations_performance(PAGE, **args)  # type: ignore[arg-type]


def _data(segment: etree._Element) -> dict[str, str]:
    return {d.findtext(B + "ID"): d.findtext(f"{B}Value/{B}ValueString")
            for d in segment.findall(B + "SegmentData")}


def test_show_operations_performance_is_valid_against_the_official_xsd(xsd: Path) -> None:
    validate_performance(_show())
    validate_performance(show_operations_performance([], release_id="V0700", next_cursor=None))


def test_show_operations_performance_carries_every_field() -> None:
    root = parse_document(_show(sender="mes-edge-line-a"))
    assert root.tag == B + "ShowOperationsPerformance" and root.get("releaseID") == "V0700"
    area = root.find(B + "ApplicationArea")
    assert area.findtext(f"{B}Sender/{B}LogicalID") == "mes-edge-line-a"
    assert area.findtext(B + "CreationDateTime") == "2026-11-25T06:00:00+00:00"
    expression = root.find(f"{B}DataArea/{B}Show/{B}ResponseCriteria/{B}ResponseExpression")
    assert expression.get("expressionLanguage") == NEXT_CURSOR_LANGUAGE
    assert expression.text == "57"
    responses = root.findall(f"{B}DataArea/{B}OperationsPerformance/{B}OperationsResponse")
    assert [r.findtext(B + "ID") for r in responses] == [c.confirmation_id for _, c in PAGE]

    partial = responses[0]
    assert partial.findtext(B + "OperationsRequestID") == "4711000123"
    assert partial.findtext(B + "SegmentRequirementID") == "0010"
    assert partial.findtext(B + "ResponseState") == "Running"
    assert datetime.fromisoformat(partial.findtext(B + "StartTime")) == T0
    segment = partial.find(B + "SegmentResponse")
    assert segment.findtext(B + "ID") == "0010"
    assert datetime.fromisoformat(segment.findtext(B + "ActualEndTime")) == PARTIAL.actual_end
    assert segment.findtext(B + "PostingDate") == "2026-11-23T00:00:00"
    assert _data(segment) == {
        "Cursor": "41", "ConfirmationKind": "partial", "FinalConfirmation": "false",
        "PostingDate": "2026-11-23", "EventID": "plc1/good_count/1043",
        "CreatedAt": "2026-11-23T08:00:00+00:00",
    }
    assert segment.findtext(f"{B}PersonnelActual/{B}PersonID") == "P-0815"
    assert segment.findtext(f"{B}EquipmentActual/{B}EquipmentID") == "PRESS-01"
    materials = [(m.findtext(B + "MaterialUse"), m.find(B + "MaterialUse").get("OtherValue"),
                  m.findtext(f"{B}Quantity/{B}QuantityString"),
                  m.findtext(f"{B}Quantity/{B}UnitOfMeasure"),
                  m.findtext(f"{B}MaterialActualProperty[{B}ID='ScrapReason']/{B}Value/"
                             f"{B}ValueString"))
                 for m in segment.findall(B + "MaterialActual")]
    assert materials == [
        ("Produced", None, "240", "PCE", None),
        ("Other", "Scrap", "1", "PCE", "burr"),
        ("Other", "Scrap", "3", "PCE", "crack"),
        ("Other", "Rework", "2", "PCE", None),
    ]

    final = responses[1]
    assert final.findtext(B + "ResponseState") == "Completed"
    assert _data(final.find(B + "SegmentResponse"))["FinalConfirmation"] == "true"
    assert final.find(f"{B}SegmentResponse/{B}PersonnelActual") is None

    reversal = responses[2]
    assert reversal.findtext(B + "ResponseState") == "Other"
    assert reversal.find(B + "ResponseState").get("OtherValue") == "Reversal"
    data = _data(reversal.find(B + "SegmentResponse"))
    assert data["Reverses"] == PARTIAL.confirmation_id
    assert data["Reason"] == "wrong order scanned"
    assert data["ConfirmationKind"] == "reversal" and data["Cursor"] == "57"


def test_bodid_is_the_same_for_the_same_page() -> None:
    def bod(xml: bytes) -> str:
        return parse_document(xml).findtext(f"{B}ApplicationArea/{B}BODID")

    first = bod(_show())
    assert first == bod(_show(creation_time=T0))
    assert first != bod(_show(next_cursor=58))
    page = parse_document(_show())
    assert page.findtext(f"{B}DataArea/{B}OperationsPerformance/{B}ID") == first
    assert page.find(f"{B}DataArea/{B}Show/{B}ResponseCriteria") is not None
    empty = parse_document(_show(next_cursor=None))
    assert empty.find(f"{B}DataArea/{B}Show/{B}ResponseCriteria") is None


_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reasons=st.dictionaries(_text, st.integers(1, 10**6), max_size=3), person=_text,
       good=st.integers(0, 10**9), cursor=st.integers(1, 2**62))
def test_any_confirmation_gives_a_valid_document(
    xsd: Path, reasons: dict[str, int], person: str, good: int, cursor: int
) -> None:
    c = Confirmation(
        confirmation_id="c-1", order_id="o-1", op_no="0010", work_center="WC",
        quantities=Quantities(good=good, scrap=reasons), unit="PCE", final=False,
        actual_start=None, actual_end=None, posting_date=date(2026, 1, 1), personnel=person,
        event_id="e-1", created_at=T0,
    )
    xml = show_operations_performance([(cursor, c)], release_id="V0700", next_cursor=cursor)
    validate_performance(xml)
    segment = parse_document(xml).find(f".//{B}SegmentResponse")
    assert _data(segment)["Cursor"] == str(cursor)
    produced = segment.find(f"{B}MaterialActual/{B}Quantity/{B}QuantityString")
    assert produced.text == str(good)


def test_problem_list_is_capped_for_readability() -> None:
    orders = "".join(
        f"<OperationsRequest><ID>{n}</ID><SegmentRequirement><ID>0010</ID>"
        "</SegmentRequirement></OperationsRequest>" for n in range(80)
    )
    xml = f'<OperationsSchedule xmlns="{NS}">{orders}</OperationsSchedule>'.encode()
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(xml)
    problems = err.value.problems
    assert len(problems) == 51
    assert problems[-1].message == "... and 110 more"  # 80 x (no work center, no material)


def test_a_large_bad_document_is_answered_quickly() -> None:
    # 30,000 operations on one line, all without work center and all with the same number:
    # the report must stay short and the time linear.
    segments = "<SegmentRequirement><ID>0010</ID></SegmentRequirement>" * 30_000
    xml = (f'<OperationsSchedule xmlns="{NS}"><OperationsRequest><ID>1</ID>{segments}'
           "</OperationsRequest></OperationsSchedule>").encode()
    started = time.monotonic()
    with pytest.raises(B2mmlError) as err:
        parse_operations_schedule(xml)
    assert time.monotonic() - started < 30.0  # linear, not quadratic (which takes minutes)
    assert len(err.value.problems) == 51
    assert err.value.problems[-1].message == "... and 29952 more"  # 30,002 in all, 50 shown
