"""`mes-edge db snapshot`, `db retention` and `db verify` from the newest snapshot (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mes_edge.app.plant import plant_rules
from mes_edge.app.progress import progress_rules
from mes_edge.config import parse_settings
from mes_edge.dispatcher import Dispatcher
from mes_edge.store import Store
from tests import factory as f

pytestmark = pytest.mark.timeout(120)


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mes_edge.cli", *args], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


async def test_snapshot_then_verify_replays_only_the_tail(sqlite_url: str, tmp_path: Path
                                                          ) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump({
        "site": "t", "database": {"url": sqlite_url},
        "production": {"tolerance_pct": 5, "confirmation": {"every_units": 10}},
        "work_centers": [{"id": "PRESS-01", "counting": "machine"},
                         {"id": "CNC-02", "counting": "machine"},
                         {"id": "ASSY-03", "counting": "operator"}],
        "history": {"rejections_days": 1, "export_dir": str(tmp_path / "export")}}))
    settings = parse_settings(yaml.safe_load(config.read_text()))
    store = await Store.open(sqlite_url)
    d = Dispatcher(store, plant_rules(settings), progress=progress_rules(settings))
    await d.start()
    try:
        await d.process(f.order("1001", qty=50))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        for i in range(1, 4):
            await d.process(f.machine_count("PRESS-01", good=1, value=i))
    finally:
        await d.stop()
        await store.close()
    assert "snapshot: after event 5" in _cli("db", "snapshot", "--config", str(config))
    assert "snapshot: no new events" in _cli("db", "snapshot", "--config", str(config))
    store = await Store.open(sqlite_url)
    d = Dispatcher(store, plant_rules(settings), progress=progress_rules(settings))
    await d.start()
    try:
        await d.process(f.machine_count("PRESS-01", good=1, value=4))
    finally:
        await d.stop()
        await store.close()
    out = _cli("db", "verify", "--config", str(config))
    assert "replayed 1 events after the snapshot of event 5: the stored WIP equals" in out
    out = _cli("db", "retention", "--config", str(config))
    assert "snapshot: after event 6" in out and "purged 0 events and 0 refused" in out
