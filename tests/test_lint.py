"""The codebase stays ruff- and mypy-clean (STYLE: habits we keep)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    # The interpreter's own scripts first: tests/run.sh may run a virtualenv not on PATH.
    beside = Path(sys.executable).with_name("ruff")
    exe = str(beside) if beside.exists() else shutil.which("ruff")
    assert exe, "ruff is a test dependency: run tests/run.sh"
    res = subprocess.run([exe, "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:]


@pytest.mark.timeout(600)
def test_mypy_clean(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                         cwd=ROOT, capture_output=True, text=True, timeout=580)
    assert res.returncode == 0, res.stdout[-4000:]


def test_import_layers_kept() -> None:
    """The import-linter contracts of pyproject.toml (docs/architecture.md: the layers)."""
    beside = Path(sys.executable).with_name("lint-imports")
    exe = str(beside) if beside.exists() else (shutil.which("lint-imports") or str(beside))
    assert Path(exe).exists(), "import-linter is a test dependency: run tests/run.sh"
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
