"""Each scenario records its numbers (events, lost, doubled per work center) before it asserts;
the session ends with them as a table (the README's Reliability table is made from it), and
MES_FAULTS_RESULTS=<file> also writes them there as JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.rig import Row

_RESULTS: list[dict[str, Any]] = []


def _record(scenario: str, faults: str, rows: list[Row], messages: int = 0,
            **notes: Any) -> None:
    entry = {
        "scenario": scenario, "faults": faults,
        "events": sum(r.made.good + r.made.scrap for r in rows if r.work_center) + messages,
        "lost": sum(r.lost for r in rows), "doubled": sum(r.doubled for r in rows),
        "rows": [str(r) for r in rows], **notes,
    }
    _RESULTS.append(entry)
    path = os.environ.get("MES_FAULTS_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")


@pytest.fixture
def record() -> Callable[..., None]:
    """record(scenario, faults, rows, messages=terminal messages, **notes)."""
    return _record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.write_sep("=", "fault injection: reconciliation per scenario")
    tr.write_line("| scenario | faults injected | events | lost | doubled |")
    tr.write_line("|---|---|---|---|---|")
    for e in _RESULTS:
        tr.write_line(f"| {e['scenario']} | {e['faults']} | {e['events']} | {e['lost']} | "
                      f"{e['doubled']} |")
    for e in _RESULTS:
        notes = {k: v for k, v in e.items()
                 if k not in ("scenario", "faults", "events", "lost", "doubled", "rows")}
        tr.write_line(f"{e['scenario']}: " + "; ".join(e["rows"])
                      + (f" {notes}" if notes else ""))
