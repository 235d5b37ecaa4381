"""The plant file: clear errors with key paths, environment secrets, the CLI around it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mes_edge.config import ConfigError, load_settings, parse_settings

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
