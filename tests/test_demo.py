"""`mes-edge demo`: the virtual factory keeps producing and reconciles exactly, run after run,
also across a SIGKILL of the service; the operators' and the planner's decisions."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mes_edge.demo import DemoError, prepare_data_dir
from simulators.factory import Produced, Station, next_step
from simulators.planner import Planner, dead_end
from tests.servers import MosquittoBroker, free_port

ROOT = Path(__file__).resolve().parents[1]
WORK_CENTERS = ("PRESS-01", "CNC-02", "ASSY-03")
PROGRESS = re.compile(r"^\[\s*(\d+)s\] (.*)$")


def demo(tmp_path: Path, *args: str, data: str = "data") -> subprocess.Popen[str]:
    # `python -m mes_edge.demo` takes the same options as `mes-edge demo` (add_arguments).
    return subprocess.Popen(
        [sys.executable, "-m", "mes_edge.demo", "--data-dir", str(tmp_path / data),
         "--port", str(free_port()), *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-5000:]
    return out


def reconciled(out: str) -> dict[str, tuple[int, int]]:
    """The reconciliation table: every work center made something, and it all matches."""
    assert "everything matches exactly" in out, out[-5000:]
    assert "refused by the MES during this run" not in out, out[-5000:]
    table = out.split("reconciliation of this run")[1]
    made = {}
    for wc in WORK_CENTERS:
        row = next(line for line in table.splitlines() if line.startswith(wc)).split()
        assert row[-1] == "match", row
        good, scrap = (int(n) for n in row[1].split("+"))
        assert good > 0, f"{wc} made nothing: {row}"
        made[wc] = (good, scrap)
    return made


def released(out: str) -> tuple[int, int]:
    """First and last number of the orders the planner released in a run."""
    m = re.search(r"orders released \d+ \(DEMO-(\d+)\.\.DEMO-(\d+)\)", out)
    assert m, out[-3000:]
    return int(m.group(1)), int(m.group(2))


def progress(out: str) -> list[tuple[int, dict[str, int]]]:
    """(seconds, parts made so far per work center) of each progress line."""
    rows = []
    for line in out.splitlines():
        m = PROGRESS.match(line)
        if m:
            made = {p.split()[0]: sum(int(n) for n in p.split()[2].split("+"))
                    for p in m.group(2).split(" | ")}
            rows.append((int(m.group(1)), made))
    return rows


# -- the whole demo (real servers, real time) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_every_work_center_keeps_producing_for_ten_factory_minutes(tmp_path: Path) -> None:
    # Ten minutes of factory time at speed 6 (machines, operators and planner all run 6x):
    # the stall this guards against came after ~90 s and never went away.
    out = finish(demo(tmp_path, "--duration", "100", "--speed", "6"))
    assert "token erp" in out and "open http://127.0.0.1:" in out
    assert "minutes of factory time (speed 6)" in out
    made = reconciled(out)
    rows = progress(out)
    assert rows[-1][0] >= 95, rows[-1]
    # Five windows of two factory minutes (20 s): every work center made parts in each.
    for start in range(0, 100, 20):
        inside = [r for t, r in rows if start <= t <= start + 20]
        before = [r for t, r in rows if t <= start] or [dict.fromkeys(WORK_CENTERS, 0)]
        for wc in WORK_CENTERS:
            assert inside[-1][wc] > before[-1][wc], (wc, start, rows)
    # A living line: many orders went through every station, not a couple.
    assert min(good for good, _ in made.values()) >= 150, made


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_second_run_starts_fresh_and_keep_data_continues(tmp_path: Path) -> None:
    short = ("--duration", "15", "--speed", "4")
    first = finish(demo(tmp_path, *short))
    assert f"fresh data in {tmp_path / 'data'}" in first
    reconciled(first)

    second = finish(demo(tmp_path, *short))
    assert f"moved to {tmp_path / 'data-previous'}" in second
    assert (tmp_path / "data-previous" / "mes-edge.db").exists()
    reconciled(second)  # the first run's counts are not this run's: no false mismatch
    assert released(second)[0] == 1  # fresh books: numbering starts again

    third = finish(demo(tmp_path, *short, "--keep-data"))
    assert "continuing the data" in third
    reconciled(third)
    assert released(third)[0] == released(second)[1] + 1  # new orders number on


def test_a_folder_that_is_not_demo_data_is_never_moved(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(DemoError, match="holds no demo data"):
        prepare_data_dir(tmp_path / "mine", keep=False)
    assert (tmp_path / "mine" / "thesis.tex").exists()

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "plant.yaml").write_text("site: demo")
    assert "continuing" in prepare_data_dir(tmp_path / "data", keep=True)
    assert "moved to" in prepare_data_dir(tmp_path / "data", keep=False)
    assert not any((tmp_path / "data").iterdir())
    (tmp_path / "data" / "plant.yaml").write_text("site: demo")
    prepare_data_dir(tmp_path / "data", keep=False)  # the older "-previous" is replaced
    assert (tmp_path / "data-previous" / "plant.yaml").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_survives_sigkill_of_the_service(tmp_path: Path) -> None:
    # Mosquitto keeps unacknowledged QoS 1 messages of a killed client for its next session;
    # the built-in demo broker (amqtt) does not redeliver them, so this test uses Mosquitto.
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        proc = demo(tmp_path, "--duration", "40", "--service", "subprocess",
                    "--mqtt-url", broker.url)
        pid_file = tmp_path / "data" / "service.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        time.sleep(15)  # in the middle of production
        victim = int(pid_file.read_text())
        os.kill(victim, signal.SIGKILL)
        out = finish(proc, 240)
    finally:
        broker.stop()
    assert "restarting it on the same data" in out
    reconciled(out)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mes_edge.cli", "demo", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port())],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    seen = ""
    while "is running" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen[-2000:]
        seen += proc.stdout.readline()
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, (seen + out)[-3000:]
    assert "mes-edge stopped" in out and "Traceback" not in seen + out


# -- the operators' decisions (no servers: pure functions of the MES's view) -------------------


def op(op_no: str, wc: str, status: str, *, planned: int = 20, good: int = 0, scrap: int = 0,
       available: int = 0) -> dict[str, Any]:
    return {"op_no": op_no, "work_center": wc, "status": status, "planned_qty": planned,
            "good": good, "scrap": scrap, "rework": 0, "available": available}


def order(order_id: str, *ops: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": order_id, "status": "in_progress", "tolerance_pct": 5.0,
            "operations": list(ops)}


def station(wc: str, *, machine: bool) -> Station:
    return Station(wc, terminal=None, machine=object() if machine else None)  # type: ignore[arg-type]


def test_a_paused_operation_whose_input_is_all_used_is_completed_not_restarted() -> None:
    # The reported stall: ASSY-03 paused with 18+1 processed of the 19 its predecessor handed
    # over; starting it again is refused (nothing available), so the operator completes it.
    stuck = order("DEMO-002", op("0010", "PRESS-01", "completed", good=20, scrap=2),
                  op("0020", "CNC-02", "completed", good=19, scrap=1),
                  op("0030", "ASSY-03", "paused", good=18, scrap=1))
    step = next_step(station("ASSY-03", machine=False), [stuck])
    assert step is not None and (step.order_id, step.action) == ("DEMO-002", "complete")


def test_the_operator_goes_by_its_own_count_not_by_the_mes() -> None:
    press = station("PRESS-01", machine=True)
    lagging = order("DEMO-001", op("0010", "PRESS-01", "running", good=12, available=8),
                    op("0020", "CNC-02", "ready", available=12))
    press.made[("DEMO-001", "0010")] = Produced(good=20, scrap=1)  # the MES has not counted all
    step = next_step(press, [lagging])
    assert step is not None and step.action == "complete"

    cnc = station("CNC-02", machine=True)
    cnc.made[("DEMO-001", "0020")] = Produced(good=9, scrap=1)  # processed 10, MES shows 0
    step = next_step(cnc, [order("DEMO-001", op("0010", "PRESS-01", "running", good=12),
                                 op("0020", "CNC-02", "running", available=12))])
    assert step is not None and (step.action, step.todo) == ("work", 2)


def test_a_manual_station_completes_once_the_mes_shows_its_reports() -> None:
    assy = station("ASSY-03", machine=False)
    assy.made[("DEMO-001", "0020")] = Produced(good=10)
    sent = order("DEMO-001", op("0010", "CNC-02", "completed", good=10),
                 op("0020", "ASSY-03", "running", good=5))
    step = next_step(assy, [sent])
    assert step is not None and step.action == "wait"  # 5 of its 10 are still on the way
    sent["operations"][1]["good"] = 10
    step = next_step(assy, [sent])
    assert step is not None and step.action == "complete"


def test_a_manual_station_never_reports_beyond_plan_and_tolerance() -> None:
    plenty = order("DEMO-001", op("0010", "CNC-02", "running", good=30),
                   op("0020", "ASSY-03", "running", good=18, available=12))
    step = next_step(station("ASSY-03", machine=False), [plenty])
    assert step is not None and (step.action, step.todo) == ("work", 3)  # 20 + 5 % = 21


def test_the_running_operation_comes_first_and_waiting_for_input_is_not_work() -> None:
    cnc = station("CNC-02", machine=True)
    orders = [order("DEMO-001", op("0010", "PRESS-01", "completed", good=20),
                    op("0020", "CNC-02", "ready", available=20)),
              order("DEMO-002", op("0010", "PRESS-01", "running", good=5),
                    op("0020", "CNC-02", "running", good=5))]
    step = next_step(cnc, orders)
    assert step is not None and (step.order_id, step.action) == ("DEMO-002", "wait")


# -- the planner ------------------------------------------------------------------------------


def test_the_planner_cancels_only_orders_that_can_never_finish() -> None:
    all_scrap = order("DEMO-009", op("0010", "PRESS-01", "completed", good=0, scrap=20),
                      op("0020", "CNC-02", "waiting"))
    assert "nothing left for operation 0020" in (dead_end(all_scrap) or "")
    early = order("DEMO-010", op("0010", "PRESS-01", "running", good=0, scrap=2),
                  op("0020", "CNC-02", "waiting"))
    assert dead_end(early) is None
    flowing = order("DEMO-011", op("0010", "PRESS-01", "completed", good=20),
                    op("0020", "CNC-02", "ready", available=20))
    assert dead_end(flowing) is None


def test_the_planner_numbers_on_after_the_orders_the_mes_has() -> None:
    planner = Planner(erp=None, route=[("0010", "PRESS-01")])  # type: ignore[arg-type]
    planner.continue_after(["DEMO-007", "DEMO-012", "OTHER-99", "DEMO-3x"])
    assert planner.number == 12 and planner.order_id(planner.number + 1) == "DEMO-013"
