"""/openapi.json is complete and lint-clean: Redocly CLI's `recommended` rules report no error.

Redocly CLI (pinned) is installed with npm into a cache folder outside the repository on first
use (MES_EDGE_TOOLS_DIR, default /tmp/mes-edge-tools); later runs need no network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from tests.api.conftest import plant

pytestmark = pytest.mark.timeout(600)

REDOCLY = "@redocly/cli@2.77.0"
TOOLS = Path(os.environ.get("MES_EDGE_TOOLS_DIR", Path(tempfile.gettempdir()) / "mes-edge-tools"))


def openapi_document(db_url: str) -> dict[str, Any]:
    """The document the service serves at /openapi.json (built without starting it)."""
    service = EdgeService(parse_settings(plant(db_url)), api_factory=create_api)
    document: dict[str, Any] = create_api(service).openapi()
    return document


def redocly() -> Path:
    """The pinned Redocly CLI, installed once into the tools cache (atomically: a concurrent
    run never sees half an install)."""
    home = TOOLS / ("redocly-" + REDOCLY.rsplit("@", 1)[1])
    binary = home / "node_modules" / ".bin" / "redocly"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install Redocly CLI (or pre-install it into "
                    f"{home} with: npm install --prefix {home} {REDOCLY})")
    TOOLS.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="redocly-", dir=TOOLS))
    try:
        result = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund",
             "--loglevel=error", REDOCLY],
            capture_output=True, text=True, timeout=420, check=False)
        if result.returncode != 0:
            pytest.fail(f"npm install {REDOCLY} failed (offline? pre-install it into {home}):\n"
                        f"{result.stderr[-2000:]}")
        try:
            staging.rename(home)
        except OSError:  # another run finished first: use its install
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    assert binary.exists(), f"{binary} missing after npm install"
    return binary


def test_redocly_recommended_reports_no_error(sqlite_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(openapi_document(sqlite_url), indent=1))
    config = tmp_path / "redocly.yaml"
    config.write_text("extends:\n  - recommended\n")
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
           "NO_COLOR": "1"}
    result = subprocess.run(
        [str(redocly()), "lint", str(spec), "--config", str(config), "--format=json"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"redocly gave no JSON report (exit {result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    errors = [f"{p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
              for p in report["problems"] if p["severity"] == "error"]
    assert errors == [], "\n".join(errors)
    assert report["totals"]["errors"] == 0 and result.returncode == 0


def test_document_is_complete_for_client_generators(sqlite_url: str) -> None:
    doc = openapi_document(sqlite_url)
    assert doc["servers"] and doc["info"]["license"]["name"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {"type": "http", "scheme": "bearer",
                                      "description": schemes["bearerToken"]["description"]}
    assert schemes["tabletCookie"]["in"] == "cookie"
    assert schemes["tabletCookie"]["name"] == "mes_token"
    # Every $ref resolves inside the document (the PUT body used to point at nothing).
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])
    put = doc["paths"]["/api/v1/work-orders/{order_id}"]["put"]
    assert put["operationId"] == "putWorkOrder"
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/WorkOrderIn"}
    assert "operations" in doc["components"]["schemas"]["WorkOrderIn"]["required"]
    ids = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            ids.append(op["operationId"])
            assert re.fullmatch(r"[a-z][A-Za-z]{2,30}", op["operationId"]), (path, method)
            assert op["tags"], (path, method)
            assert all(r.get("description") for r in op["responses"].values()), (path, method)
            public = path in ("/healthz", "/readyz", "/metrics")
            if public:
                assert op["security"] == [], path
            else:  # either the bearer token or the tablet cookie
                assert op["security"] == [{"bearerToken": []}, {"tabletCookie": []}], path
                assert {"401", "403"} <= set(op["responses"]), path
    assert len(ids) == len(set(ids))
    assert {"listConfirmations", "ackConfirmations", "retryDelivery", "skipDelivery",
            "holdWorkOrder", "startOperation"} <= set(ids)
    tags = {t["name"] for t in doc["tags"]}
    assert {t for op in (o for ops in doc["paths"].values() for o in ops.values())
            for t in op["tags"]} <= tags


def test_every_schema_name_is_unique(sqlite_url: str) -> None:
    """Two models of one name in different modules become `mes_edge__api__x__Name` components,
    which client generators refuse as duplicates ("Attempted to generate duplicate models")."""
    names = openapi_document(sqlite_url)["components"]["schemas"]
    assert [n for n in names if "__" in n] == []
