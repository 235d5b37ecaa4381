"""Counter rules in the plant file: bits from the tag's data type, contradictions and duplicate
tag rules are errors that name the key path."""

from __future__ import annotations

from typing import Any

import pytest

from mes_edge.config import ConfigError, Settings, parse_settings
from mes_edge.config.settings import CounterRule
from mes_edge.rules import CounterTracker

MODBUS_TAGS = [
    {"name": "state", "address": 0},
    {"name": "good16", "address": 10, "data_type": "uint16"},
    {"name": "scrap16", "address": 11, "data_type": "int16"},
    {"name": "good32", "address": 12, "data_type": "uint32"},
    {"name": "scrap32", "address": 14, "data_type": "int32"},
    {"name": "good64", "address": 16, "data_type": "uint64"},
    {"name": "total64", "address": 20, "data_type": "int64"},
    {"name": "meter", "address": 24, "data_type": "float32"},
    {"name": "door", "address": 26, "data_type": "bool", "bit": 0},
    {"name": "label", "address": 27, "data_type": "string", "length": 4},
    {"name": "start_button", "table": "coil", "address": 0, "data_type": "bool"},
]


def plant(*rules: dict[str, Any]) -> dict[str, Any]:
    """Two work centers, a Modbus PLC with a tag of every type, an OPC UA PLC, and `rules`."""
    return {
        "site": "s1",
        "work_centers": [{"id": "PRESS-01", "counting": "machine"},
                         {"id": "CNC-02", "counting": "machine"}],
        "devices": [
            {"name": "plc", "driver": "modbus", "host": "127.0.0.1", "tags": MODBUS_TAGS},
            {"name": "ua", "driver": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
             "tags": [{"name": "good", "node": "ns=2;s=Machine.GoodCount"},
                      {"name": "state", "node": "ns=2;s=Machine.State"}]},
        ],
        "rules": list(rules),
    }


def counters(*specs: dict[str, Any], work_center: str = "PRESS-01") -> dict[str, Any]:
    return {"work_center": work_center, "counters": list(specs)}


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(doc)
    return str(info.value)


def resolved_bits(settings: Settings) -> list[int | None]:
    return [c.bits for r in settings.rules for c in r.counters]


@pytest.mark.parametrize(("tag", "bits"), [
    ("good16", 16), ("scrap16", 16), ("good32", 32), ("scrap32", 32), ("good64", 64),
    ("total64", 64),
])
def test_bits_default_to_the_width_of_the_tags_data_type(tag: str, bits: int) -> None:
    s = parse_settings(plant(counters({"device": "plc", "tag": tag})))
    assert resolved_bits(s) == [bits]


def test_a_tag_without_an_integer_type_keeps_32_bits_unless_told() -> None:
    s = parse_settings(plant(counters({"device": "plc", "tag": "meter"}),
                             counters({"device": "ua", "tag": "good"}, work_center="CNC-02")))
    assert resolved_bits(s) == [32, 32]
    s = parse_settings(plant(counters({"device": "ua", "tag": "good", "bits": 16}),
                             counters({"device": "plc", "tag": "meter", "bits": 64},
                                      work_center="CNC-02")))
    assert resolved_bits(s) == [16, 64]


def test_an_explicit_bits_that_agrees_with_the_tag_is_accepted() -> None:
    s = parse_settings(plant(counters({"device": "plc", "tag": "good16", "bits": 16},
                                      {"device": "plc", "tag": "good32", "bits": 32})))
    assert resolved_bits(s) == [16, 32]


def test_bits_contradicting_the_tag_type_is_an_error_with_the_key_path() -> None:
    msg = error_of(plant(counters({"device": "plc", "tag": "good32"},
                                  {"device": "plc", "tag": "good16", "bits": 32})))
    assert "rules[0].counters[1].bits: 32 contradicts the uint16 tag plc/good16" in msg
    assert "16-bit counter" in msg
    msg = error_of(plant(counters({"device": "plc", "tag": "good64", "bits": 32})))
    assert "rules[0].counters[0].bits: 32 contradicts the uint64 tag plc/good64" in msg


@pytest.mark.parametrize("tag", ["door", "label", "start_button"])
def test_a_counter_on_a_bool_or_string_tag_is_an_error(tag: str) -> None:
    msg = error_of(plant(counters({"device": "plc", "tag": tag})))
    assert f"rules[0].counters[0].tag: plc/{tag} is a " in msg
    assert "a counter needs an integer tag" in msg


def test_the_resolved_width_reaches_the_tracker() -> None:
    s = parse_settings(plant(counters({"device": "plc", "tag": "good16"})))
    t = CounterTracker(s.rules[0].counters[0], "PRESS-01", None)
    assert t.max_value == 0xFFFF and t.window == 1024
    t.on_value(65_530, None)
    item = t.on_value(7, None)
    assert getattr(item, "good", None) == 13


@pytest.mark.parametrize(("second", "path", "first"), [
    # the same counter twice in one work center
    ({"work_center": "PRESS-01", "counters": [{"device": "plc", "tag": "good16"},
                                              {"device": "plc", "tag": "good16"}]},
     "rules[1].counters[1].tag", "rules[1].counters[0]"),
    # a counter of another work center
    ({"work_center": "CNC-02", "counters": [{"device": "plc", "tag": "good32"}]},
     "rules[1].counters[0].tag", "rules[0].counters[0]"),
    # a state rule on a tag that feeds a counter
    ({"work_center": "CNC-02", "state": {"device": "plc", "tag": "good32"}},
     "rules[1].state.tag", "rules[0].counters[0]"),
    # a trigger on the other work center's state tag
    ({"work_center": "CNC-02",
      "triggers": [{"device": "plc", "tag": "state", "action": "pause"}]},
     "rules[1].triggers[0].tag", "rules[0].state"),
])
def test_two_rules_on_the_same_device_and_tag_are_an_error(second: dict[str, Any], path: str,
                                                           first: str) -> None:
    rule0 = {"work_center": "PRESS-01", "counters": [{"device": "plc", "tag": "good32"}],
             "state": {"device": "plc", "tag": "state"}}
    msg = error_of(plant(rule0, second))
    assert f"{path}: plc/" in msg and f"already has a rule ({first})" in msg


def test_the_same_tag_name_on_two_devices_is_two_tags() -> None:
    s = parse_settings(plant(counters({"device": "plc", "tag": "good32"}),
                             {"work_center": "CNC-02",
                              "counters": [{"device": "ua", "tag": "good"}],
                              "state": {"device": "ua", "tag": "state"},
                              "triggers": [{"device": "plc", "tag": "start_button",
                                            "action": "resume"}]},
                             {"work_center": "PRESS-01",
                              "state": {"device": "plc", "tag": "state"}}))
    assert len(s.rules) == 3


def test_rollover_window_is_checked_against_max_delta_and_the_counter_range() -> None:
    msg = error_of(plant(counters({"device": "plc", "tag": "good16", "max_delta": 100,
                                   "rollover_window": 500})))
    assert "rules[0].counters[0]" in msg and "rollover_window 500 exceeds max_delta 100" in msg
    msg = error_of(plant(counters({"device": "plc", "tag": "good16", "max_delta": 50_000,
                                   "rollover_window": 40_000})))
    assert "rules[0].counters[0].rollover_window: 40000 is more than half the range" in msg
    s = parse_settings(plant(counters({"device": "plc", "tag": "good16",
                                       "rollover_window": 5_000})))
    assert s.rules[0].counters[0].effective_rollover_window == 5_000


def test_field_descriptions_no_longer_say_a_jump_is_refused() -> None:
    described = CounterRule.model_fields["max_delta"].description or ""
    assert "refused" not in described and "unassigned" in described
