"""The supervisor board's refresh on the OEE benchmark's database (issue 11).

Starts the real service (`mes-edge run`, a child process: benchmarks.scale.Service) on the filled
database with the benchmark's plant file, and times what the board page fetches when it
refreshes. The board page (templates/board.html) runs three scripts, each with its own refresh,
and all three fire together when the page loads:

- board.js: `GET /api/v1/board?wip_limit=0` and `GET /api/v1/board/wip?...` (in parallel,
  Promise.all), again on every SSE change and every 30 s;
- progress.js: `GET /api/v1/progress/shift` (every work center's running shift: A/P/Q/OEE,
  timeline, Pareto), every 10 s;
- alerts.js: `GET /api/v1/alerts?active=true`, every 5 s.

Per round: each request alone (one after the other), then the four at once as the page sends
them (the refresh = until the last answer arrived). Medians over the rounds, after one warm-up.
Besides the wall time, the service's own CPU time per request and per refresh (user + system,
from /proc): on a machine shared with other work the wall time includes waiting for a core,
the CPU time does not.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.scale import Service, _free_port

#: What one refresh of the board page fetches (name -> path), as board.js, progress.js and
#: alerts.js ask for it.
REQUESTS = {
    "board": "/api/v1/board?wip_limit=0",
    "board_wip": "/api/v1/board/wip?limit=50&offset=0&sort=order",
    "progress_shift": "/api/v1/progress/shift?resolution_s=236",  # 24 h over a ~366-px strip
    "alerts": "/api/v1/alerts?active=true",
}
GOAL_S = 1.0


def _cli(config: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mes_edge.cli", *args, "--config", str(config)],
                         check=True, capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


async def _get(c: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = await c.get(path)
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 when unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _shape(name: str, r: httpx.Response) -> dict[str, Any]:
    """Size of an answer, and for the shift view how much timeline it carries."""
    out: dict[str, Any] = {"bytes": len(r.content)}
    body = r.json()
    if name == "progress_shift":
        views = body["work_centers"]
        out["work_centers"] = len(views)
        out["timeline_spans"] = sum(len(v["timeline"]) for v in views)
        out["window_h"] = round(max(((_ts(v["to"]) - _ts(v["from"])) / 3600 for v in views),
                                    default=0.0), 2)
    elif name == "alerts":
        out["alerts"] = len(body.get("alerts", body) if isinstance(body, dict) else body)
    return out


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def time_refresh(url: str, token: str, rounds: int = 5, pid: int | None = None
                       ) -> dict[str, Any]:
    """Medians of `rounds` refreshes: each request alone, and the four at once (with the CPU
    time the service `pid` spent on them)."""
    alone: dict[str, list[float]] = {k: [] for k in REQUESTS}
    alone_cpu: dict[str, list[float]] = {k: [] for k in REQUESTS}
    together: list[float] = []
    together_cpu: list[float] = []
    shapes: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 headers={"Authorization": f"Bearer {token}"},
                                 limits=httpx.Limits(max_connections=8)) as c:
        for name, path in REQUESTS.items():  # warm-up (and the answers' shape)
            shapes[name] = _shape(name, (await _get(c, path))[1])
        for _ in range(rounds):
            for name, path in REQUESTS.items():
                cpu = _cpu_s(pid)
                alone[name].append((await _get(c, path))[0])
                alone_cpu[name].append(_cpu_s(pid) - cpu)
            cpu = _cpu_s(pid)
            t0 = time.perf_counter()
            await asyncio.gather(*(_get(c, p) for p in REQUESTS.values()))
            together.append(time.perf_counter() - t0)
            together_cpu.append(_cpu_s(pid) - cpu)
    out: dict[str, Any] = {
        "board_refresh_s": round(statistics.median(together), 3),
        "board_refresh_max_s": round(max(together), 3),
        "board_refresh_service_cpu_s": round(statistics.median(together_cpu), 3),
        "goal_s": GOAL_S,
        "rounds": rounds,
        "requests": {k: {"median_s": round(statistics.median(v), 3),
                         "service_cpu_s": round(statistics.median(alone_cpu[k]), 3), **shapes[k]}
                     for k, v in alone.items()},
    }
    out["sum_alone_s"] = round(sum(r["median_s"] for r in out["requests"].values()), 3)
    out["goal_met"] = out["board_refresh_s"] < GOAL_S
    return out


async def board_refresh(plant_doc: dict[str, Any], work: Path, rounds: int = 5
                        ) -> dict[str, Any]:
    """Start `mes-edge run` on the plant file `plant_doc` (its database already filled), time
    the board's refresh, stop the service."""
    port = _free_port()
    doc = {**plant_doc, "api": {**plant_doc.get("api", {}), "host": "127.0.0.1", "port": port}}
    config = work / "oee-plant.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    token = await asyncio.to_thread(_cli, config, "token", "create", "--role", "supervisor",
                                    "--name", "bench-board")
    svc = Service(config, port)
    ready_s = await svc.start()
    try:
        out = await time_refresh(svc.url, token, rounds,
                                 svc.proc.pid if svc.proc is not None else None)
        out["service_ready_s"] = round(ready_s, 2)
        out["service_rss_mb"] = round(svc.rss_mb(), 1)
    finally:
        await svc.stop()
    return out
