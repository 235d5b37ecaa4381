"""The plant file: clear errors with key paths, environment secrets, the CLI around it."""

from __future__ import annotations

import enum
import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mes_edge.config import ConfigError, Settings, load_settings, parse_settings
from mes_edge.config.loader import _models_in

ROOT = Path(__file__).resolve().parents[1]
BASE = {"site": "s1", "work_centers": [{"id": "PRESS-01", "counting": "machine"}]}


def error_of(doc: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(doc)
    return str(info.value)


def test_minimal_plant_uses_safe_defaults() -> None:
    s = parse_settings(BASE)
    assert s.database.url.startswith("sqlite+aiosqlite:///")
    assert s.api.host == "127.0.0.1" and s.mqtt is None
    assert s.production.tolerance_pct == 0


def test_errors_name_the_key_path_and_what_was_expected() -> None:
    msg = error_of({**BASE, "work_centers": [{"id": "A", "counting": "robot"}]})
    assert "work_centers[0].counting: Input should be 'machine' or 'operator'" in msg
    assert "'robot'" in msg
    msg = error_of({**BASE, "databse": {"url": "x"}})  # a typo is an error, not ignored
    assert "databse: Extra inputs are not permitted" in msg
    msg = error_of({**BASE, "devices": [{"name": "p", "driver": "modbus", "host": "h",
                                         "tags": [{"name": "t", "address": 70000}]}]})
    assert "devices[0].tags[0].address" in msg and "65535" in msg
    msg = error_of({**BASE, "rules": [{"work_center": "NOPE"}]})
    assert "rules[0].work_center: unknown work center 'NOPE'" in msg
    msg = error_of({**BASE, "devices": [{"name": "p", "driver": "modbus", "host": "h",
                                         "tags": [{"name": "t", "address": 1}]}],
                    "rules": [{"work_center": "PRESS-01",
                               "counters": [{"device": "p", "tag": "missing"}]}]})
    assert "rules[0].counters[0].tag: device 'p' has no tag 'missing'" in msg
    msg = error_of({**BASE, "erp": {"mode": "push"}})
    assert "push_url" in msg
    assert "top level" in error_of(["not", "a", "mapping"])


def test_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "plant.yaml"
    f.write_text("site: s1\nwork_centers: [{id: A}]\n"
                 "database: {url: '${MES_DB_URL}'}\n"
                 "mqtt: {client_id: c1, password: '${MQTT_PW:-fallback}'}\n")
    with pytest.raises(ConfigError, match=r"database\.url: environment variable MES_DB_URL"):
        load_settings(f)
    monkeypatch.setenv("MES_DB_URL", "postgresql://u:p@db/mes")
    s = load_settings(f)
    assert s.database.url == "postgresql://u:p@db/mes"
    assert s.mqtt is not None and s.mqtt.password is not None
    assert s.mqtt.password.get_secret_value() == "fallback"
    monkeypatch.setenv("MES_EDGE_DATABASE__URL", "sqlite:///override.db")  # env beats the file
    assert load_settings(f).database.url == "sqlite:///override.db"


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("site: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_cli_check_config_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "mes_edge.cli", "check-config",
                         str(ROOT / "config" / "demo.yaml")], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout and "3 work centers" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: s1\nwork_centers: [{id: A, counting: robot}]\n")
    res = subprocess.run([sys.executable, "-m", "mes_edge.cli", "check-config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "work_centers[0].counting" in res.stderr


def test_cli_db_upgrade_verify_and_token(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(f"site: s1\nwork_centers: [{{id: A}}]\n"
                     f"database: {{url: 'sqlite:///{tmp_path / 'mes.db'}'}}\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mes_edge.cli", *args], capture_output=True,
                              text=True, timeout=120)

    assert cli("db", "upgrade", "--config", str(plant)).returncode == 0
    verify = cli("db", "verify", "--config", str(plant))
    assert verify.returncode == 0 and "equals the event log" in verify.stdout
    token = cli("token", "create", "--config", str(plant), "--role", "erp")
    assert token.returncode == 0 and token.stdout.startswith("mes_")
    refused = cli("token", "create", "--config", str(plant), "--role", "operator")
    assert refused.returncode == 2 and "work center" in refused.stderr
    listed = cli("token", "list", "--config", str(plant))
    assert listed.returncode == 0 and " erp " in listed.stdout and "mes_" not in listed.stdout
    env = {**os.environ, "THE_PIN": "4711"}
    added = subprocess.run([sys.executable, "-m", "mes_edge.cli", "operator", "add", "--config",
                            str(plant), "--badge", "B-9", "--name", "Ann", "--pin-env", "THE_PIN",
                            "--work-center", "A"], capture_output=True, text=True, timeout=120,
                           env=env)
    assert added.returncode == 0 and "with a PIN" in added.stdout
    bad = cli("operator", "add", "--config", str(plant), "--badge", "B-9", "--name", "Ann",
              "--work-center", "NOPE")
    assert bad.returncode == 2


def test_an_unknown_key_close_to_a_known_one_gets_a_did_you_mean() -> None:
    msg = error_of({**BASE, "databse": {"url": "x"}, "api": {"prot": 8000},
                    "work_centers": [{"id": "A", "countng": "machine"}],
                    "devices": [{"name": "p", "driver": "modbus", "host": "h", "tags": [
                        {"name": "t", "adress": 1, "address": 1}], "pol_groups": {}},
                                {"name": "o", "driver": "opcua", "endpoint": "opc.tcp://h:1",
                                 "tags": [{"name": "t", "node": "ns=2;i=1"}],
                                 "watchdog_intervall": 1}],
                    "zzz": 1})
    lines = msg.splitlines()[1:]
    assert "databse: Extra inputs are not permitted; did you mean 'database'?" in lines
    assert "api.prot: Extra inputs are not permitted; did you mean 'port'? (got: 8000)" in lines
    assert ("work_centers[0].countng: Extra inputs are not permitted; did you mean 'counting'? "
            "(got: 'machine')") in lines
    assert ("devices[0].tags[0].adress: Extra inputs are not permitted; did you mean 'address'? "
            "(got: 1)") in lines
    # The right device type's keys: Modbus's poll_groups, OPC UA's watchdog_interval.
    assert any(x.startswith("devices[0].pol_groups: Extra inputs are not permitted; did you "
                            "mean 'poll_groups'?") for x in lines), lines
    assert ("devices[1].watchdog_intervall: Extra inputs are not permitted; did you mean "
            "'watchdog_interval'? (got: 1)") in lines
    assert "zzz: Extra inputs are not permitted (got: 1)" in lines  # nothing close: no guess


# ---- docs/config.md is the complete reference and cannot go stale ------------------------------

def _has(annotation: Any, origin: Any) -> bool:
    o = typing.get_origin(annotation)
    if o is origin:
        return True
    if o in (typing.Union, types.UnionType, typing.Annotated):
        return any(_has(a, origin) for a in typing.get_args(annotation))
    return False


def _key_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of the plant file as documented: `a.b`, `list[].key`, Modbus and OPC UA devices
    under the same `devices[].` prefix."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = prefix + name
        paths.add(path)
        for sub in _models_in(field.annotation):
            inner = ("[]." if _has(field.annotation, list)
                     else ".<name>." if _has(field.annotation, dict) else ".")
            paths |= _key_paths(sub, path + inner)
    return paths


DOC = ROOT / "docs" / "config.md"


def test_docs_config_md_lists_every_key_of_the_plant_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))
    keys = _key_paths(Settings)
    assert sorted(keys - documented) == [], "keys missing from docs/config.md"
    assert sorted(documented - keys) == [], "docs/config.md documents keys that do not exist"


def test_docs_config_md_states_the_defaults_of_plain_values() -> None:
    """Each scalar default of the models appears in its row (as written in YAML)."""
    rows: dict[str, list[str]] = {}
    for key, cell in re.findall(r"^\| `([^`]+)` \| ([^|]*) \|", DOC.read_text(encoding="utf-8"),
                                re.M):
        rows.setdefault(key, []).append(cell)  # Modbus and OPC UA share `devices[].` keys

    def check(model: type[BaseModel], prefix: str = "") -> None:
        for name, field in model.model_fields.items():
            path = prefix + name
            for sub in _models_in(field.annotation):
                check(sub, path + ("[]." if _has(field.annotation, list)
                                   else ".<name>." if _has(field.annotation, dict) else "."))
            default = field.default
            if isinstance(default, enum.Enum):
                default = default.value
            if not isinstance(default, bool | int | float | str):
                continue
            documented = []
            for cell in rows[path]:
                shown = re.match(r"`([^`]*)`", cell.strip())
                if shown is not None:
                    value = yaml.safe_load(shown.group(1)) if shown.group(1) else ""
                    # `5` documents the string '5' too
                    documented.append(str(value) if isinstance(default, str) else value)
            assert default in documented, f"{path}: default {default!r}, documented {rows[path]}"

    check(Settings)


def test_the_demo_plant_and_the_code_point_at_documents_that_exist() -> None:
    demo = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    assert "docs/config.md" in demo and DOC.exists()
