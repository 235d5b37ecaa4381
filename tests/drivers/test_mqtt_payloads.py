"""MQTT payload validation, topic templates and config: pure, no broker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.mqtt import MqttConfig, TopicTemplate
from drivers.mqtt.payloads import describe_validation_error
from mes_edge.contracts.terminal import (
    MAX_REPORTED_QUANTITY,
    TerminalEventMessage,
    parse_payload,
)

BOUND = {"site": "plant1", "work_center": "PRESS-01"}


def _reason(kind: str, raw: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_payload(kind, raw, BOUND)
    return describe_validation_error(caught.value)


def test_template_subscribes_with_wildcards_and_binds_fields() -> None:
    template = TopicTemplate.parse("mes/{site}/{work_center}/scan")
    assert template.subscription() == "mes/+/+/scan"
    assert template.subscription({"site": "plant1"}) == "mes/plant1/+/scan"
    assert template.match("mes/plant1/PRESS-01/scan") == BOUND
    assert template.match("mes/plant1/PRESS-01/event") is None
    assert template.match("mes/plant1/PRESS-01/scan/extra") is None
    assert template.match("mes//PRESS-01/scan") is None
    assert template.render(**BOUND) == "mes/plant1/PRESS-01/scan"


@pytest.mark.parametrize("bad", ["", "$SYS/x", "mes/+/scan", "mes/#", "mes/x{wc}/scan",
                                 "mes/{a}/{a}/scan"])
def test_bad_templates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        TopicTemplate.parse(bad)


def test_config_defaults_and_errors() -> None:
    cfg = MqttConfig(client_id="edge-1", url="mqtts://broker.local")
    assert (cfg.host, cfg.port, cfg.use_tls) == ("broker.local", 8883, True)
    assert cfg.topics.scan == "mes/{site}/{work_center}/scan"
    with pytest.raises(ValidationError, match="mqtt://host:port"):
        MqttConfig(client_id="edge-1", url="http://broker:1883")
    with pytest.raises(ValidationError, match="work_center"):
        MqttConfig.model_validate({"client_id": "edge-1", "topics": {"scan": "mes/{site}/scan"}})
    with pytest.raises(ValidationError, match="client_id"):
        # A fixed client id is what keeps the session, so there is no default.
        MqttConfig.model_validate({"url": "mqtt://b:1883"})
    with pytest.raises(ValidationError, match="extra"):
        MqttConfig.model_validate({"client_id": "edge-1", "clean_session": True})


def test_valid_scan_and_event_take_site_and_work_center_from_the_topic() -> None:
    scan = parse_payload("scan", json.dumps({
        "id": "s1", "code": "ORD-1", "scanner": "SC-1", "ts": "2026-11-21T08:00:00+01:00",
        "work_center": "SOMEWHERE-ELSE"}).encode(), BOUND)
    assert (scan.site, scan.work_center, scan.id) == ("plant1", "PRESS-01", "s1")
    assert scan.ts is not None and scan.ts.utcoffset() is not None
    event = parse_payload("event", json.dumps({
        "id": "e1", "type": "report", "order": "1001", "operation": "0010", "good": 3,
        "scrap": 1, "reason": "burr", "operator": "OP-7"}).encode(), BOUND)
    assert isinstance(event, TerminalEventMessage)
    assert (event.good, event.scrap, event.work_center) == (3, 1, "PRESS-01")


@pytest.mark.parametrize(("kind", "body", "expected"), [
    ("scan", b"{not json", "malformed JSON"),
    ("scan", b"\xff\xfe", "malformed JSON"),
    ("scan", b"[1, 2]", "payload: Input should be an object"),
    ("scan", b'{"code": "X"}', "id: Field required"),
    ("scan", b'{"id": "", "code": "X"}', "id: String should have at least 1 character"),
    ("scan", b'{"id": 7, "code": "X"}', "id: Input should be a valid string"),
    ("scan", b'{"id": "a", "code": "X", "ts": "yesterday"}', "ts:"),
    ("scan", b'{"id": "a", "code": "X", "ts": "2026-11-21T08:00:00"}', "timezone"),
    ("event", b'{"id": "a", "type": "explode", "order": "1", "operation": "10"}', "type:"),
    ("event", b'{"id": "a", "type": "report", "order": "1", "operation": "10", "good": "3"}',
     "good: Input should be a valid integer"),
    ("event", b'{"id": "a", "type": "report", "order": "1", "operation": "10", "good": true}',
     "good: Input should be a valid integer"),
    ("event", b'{"id": "a", "type": "report", "order": "1", "operation": "10", "good": 2.5}',
     "good: Input should be a valid integer"),
    ("event", b'{"id": "a", "type": "report", "order": "1", "operation": "10", "scrap": -1}',
     "scrap: Input should be greater than or equal to 0"),
    ("event", b'{"id": "a", "type": "report", "order": "1", "operation": "10"}',
     "needs 'good' and/or 'scrap'"),
    ("event", b'{"id": "a", "type": "start"}', "needs 'order' and 'operation'"),
    ("event", b'{"id": "a", "type": "downtime_reason"}', "needs 'reason'"),
])
def test_bad_payloads_give_clear_reasons(kind: str, body: bytes, expected: str) -> None:
    assert expected in _reason(kind, body)


@given(st.integers())
def test_quantities_outside_the_sane_range_are_rejected(qty: int) -> None:
    raw = json.dumps({"id": "a", "type": "report", "order": "1", "operation": "10",
                      "good": qty}).encode()
    if 0 <= qty <= MAX_REPORTED_QUANTITY:
        event = parse_payload("event", raw, BOUND)
        assert isinstance(event, TerminalEventMessage) and event.good == qty
    else:
        with pytest.raises(ValidationError):
            parse_payload("event", raw, BOUND)


def test_terminal_times_are_normalised_to_utc() -> None:
    from datetime import UTC, datetime

    msg = parse_payload("event", b'{"id": "a", "type": "start", "order": "1", "operation": '
                                 b'"0010", "ts": "2026-03-29T03:30:00+02:00"}',
                        {"site": "s", "work_center": "W"})
    assert msg.ts == datetime(2026, 3, 29, 1, 30, tzinfo=UTC) and msg.ts.tzinfo is UTC
