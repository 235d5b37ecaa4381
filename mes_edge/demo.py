"""`mes-edge demo`: the virtual factory and the service, in one command.

Starts an MQTT broker (in-process amqtt, unless --mqtt-url names a real one), a Modbus PLC and
an OPC UA PLC simulator, the service (SQLite under --data-dir), the ERP simulator releasing work
orders and pulling confirmations, the planner who keeps the line loaded, and the virtual
operators who run the line. Each run starts from fresh data (an earlier run's folder is moved
aside) unless --keep-data continues it. With --duration it stops the machines after that many
seconds, lets everything drain and reconciles, per work center, what the machines counted and
the terminals reported in this run against what the ERP received in this run plus the
unassigned production the MES holds (counted while no operation ran) and what was written off;
the exit code is 0 only when they match exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mes_edge.demo_books import drain_and_reconcile, run_start
from mes_edge.store.tokens import Role

log = logging.getLogger("mes_edge.demo")
DEMO_PLANT = Path(__file__).with_name("config") / "demo.yaml"
ROUTE = [("0010", "PRESS-01"), ("0020", "CNC-02"), ("0030", "ASSY-03")]
DEMO_OPERATORS = [("B-100", "Li Wei", "1234"), ("B-200", "Anna Schmidt", "5678")]
#: Files that mark a folder as demo data (a folder without them is never moved or cleared).
DEMO_FILES = ("plant.yaml", "mes-edge.db")


class DemoError(Exception):
    """The demo cannot run as asked (the message says why)."""


def prepare_data_dir(data_dir: Path, keep: bool) -> str:
    """Fresh data by default: an earlier run's folder is moved aside to `<name>-previous`
    (replacing an older one); with `keep` it is continued. Returns the line to print."""
    data_dir = data_dir.absolute()
    if data_dir.exists() and not data_dir.is_dir():
        raise DemoError(f"--data-dir {data_dir} is a file, not a folder")
    if not data_dir.exists() or not any(data_dir.iterdir()):
        data_dir.mkdir(parents=True, exist_ok=True)
        return f"demo: fresh data in {data_dir}"
    if not any((data_dir / name).exists() for name in DEMO_FILES):
        raise DemoError(f"--data-dir {data_dir} is not empty and holds no demo data: "
                        "choose another folder")
    # A live service on this data must be neither moved away nor given new tokens.
    from mes_edge.app.service import InstanceLock

    if InstanceLock.held(f"sqlite:///{data_dir / 'mes-edge.db'}"):
        raise DemoError(f"another mes-edge instance is running on {data_dir}: stop it, or "
                        "give the demo another --data-dir")
    if keep:
        return f"demo: continuing the data in {data_dir} (--keep-data)"
    aside = data_dir.with_name(data_dir.name + "-previous")
    if aside.exists():
        if not aside.is_dir() or not any((aside / name).exists() for name in DEMO_FILES):
            raise DemoError(f"{aside} exists and holds no demo data: move it away, or continue "
                            "the data with --keep-data")
        shutil.rmtree(aside)
    data_dir.rename(aside)
    data_dir.mkdir()
    return (f"demo: starting from fresh data in {data_dir}; the previous run's data was moved "
            f"to {aside} (--keep-data continues it instead)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoPlan:
    """Where everything of one demo run lives."""

    data_dir: Path
    api_port: int
    mqtt_url: str | None
    speed: float
    seed: int
    plant_doc: dict[str, Any] = field(default_factory=dict)
    modbus_port: int = 0
    opcua_port: int = 0


def plant_document(plan: DemoPlan, mqtt_url: str, base: Path) -> dict[str, Any]:
    """The demo plant with this run's ports, data directory and broker filled in."""
    doc: dict[str, Any] = yaml.safe_load(base.read_text(encoding="utf-8"))
    doc["database"] = {"url": f"sqlite+aiosqlite:///{plan.data_dir.resolve() / 'mes-edge.db'}"}
    doc["api"] = {**doc.get("api", {}), "port": plan.api_port}
    mqtt = doc.setdefault("mqtt", {"client_id": "mes-edge-demo"})
    mqtt["url"] = mqtt_url
    mqtt["protocol"] = "3.1.1"  # the built-in broker speaks MQTT 3.1.1
    for dev in doc.get("devices", []):
        if dev["driver"] == "modbus":
            dev["port"] = plan.modbus_port
        else:
            dev["endpoint"] = f"opc.tcp://127.0.0.1:{plan.opcua_port}/"
    # The machines run `speed` times faster: so does their ideal cycle, or Performance would
    # read `speed` x 100 %.
    if plan.speed != 1.0:
        for wc in doc.get("work_centers", []):
            if wc.get("ideal_cycle_s"):
                wc["ideal_cycle_s"] = wc["ideal_cycle_s"] / plan.speed
    break_soon(doc, datetime.now().astimezone())
    return doc


#: The demo's own break: this long after start (rounded up to the minute), lasting this long.
BREAK_IN = timedelta(minutes=1)
BREAK_FOR = timedelta(minutes=2)


def break_soon(doc: dict[str, Any], now: datetime) -> None:
    """Give the shift of every calendar running at `now` (local wall time of the host, the
    plant's zone when site_timezone is not set) a break starting in a minute or two, in place of
    breaks it would overlap, so a newcomer sees a planned stop on the board at once."""
    start = (now + BREAK_IN).replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = start + BREAK_FOR
    hhmm = lambda t: t.strftime("%H:%M")  # noqa: E731
    minute = lambda text: int(text.split(":")[0]) * 60 + int(text.split(":")[1])  # noqa: E731
    b0, b1 = minute(hhmm(start)), minute(hhmm(end))
    if b1 <= b0:
        return  # across midnight: no demo break this time
    for cal in (doc.get("calendars") or {}).values():
        for shift in cal.get("shifts", {}).values():
            s0, s1 = minute(str(shift["start"])), minute(str(shift["end"]))
            inside = s0 <= b0 and b1 <= s1 if s0 < s1 else (b0 >= s0 or b1 <= s1)
            if not inside:
                continue
            shift["breaks"] = [
                b for b in shift.get("breaks", [])
                if minute(str(b["end"])) <= b0 or minute(str(b["start"])) >= b1] + [
                {"start": hhmm(start), "end": hhmm(end), "name": "demo break"}]


async def _start_broker(port: int) -> Any:
    from amqtt.broker import Broker

    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    return broker


async def _make_tokens(db_url: str, work_centers: list[str]) -> dict[str, str]:
    from mes_edge.store import Store
    from mes_edge.store.tokens import create_token, upsert_operator

    store = await Store.open(db_url)
    try:
        tokens = {
            "erp": await create_token(store, Role.ERP, "demo ERP"),
            "supervisor": await create_token(store, Role.SUPERVISOR, "demo supervisor"),
        }
        for wc in work_centers:
            tokens[wc] = await create_token(store, Role.OPERATOR, f"{wc} tablet", [wc])
        for badge, name, pin in DEMO_OPERATORS:
            await upsert_operator(store, badge, name, pin, [])
        return tokens
    finally:
        await store.close()


class ServiceRunner:
    """Runs the service in this process, or as a supervised child process (restarted if it
    dies, so a test may SIGKILL it)."""

    def __init__(self, plan: DemoPlan, settings_path: Path, mode: str) -> None:
        self.plan = plan
        self.settings_path = settings_path
        self.mode = mode
        self.service: Any = None
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.mode == "inline":
            from mes_edge.api.app import create_api
            from mes_edge.app.service import EdgeService
            from mes_edge.config import load_settings

            self.service = EdgeService(load_settings(self.settings_path), api_factory=create_api)
            await self.service.start()
            return
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise(), name="demo-service-watch")

    async def _spawn(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mes_edge.cli", "run", "--config", str(self.settings_path),
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        (self.plan.data_dir / "service.pid").write_text(str(self.proc.pid))

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            print(f"demo: the service exited ({code}); restarting it on the same data", flush=True)
            await asyncio.sleep(0.5)
            await self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        if self.service is not None:
            await self.service.stop()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)


async def _wait_http(url: str, within: float) -> None:
    import httpx

    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {within:.0f}s")


def _progress(line: Any, erp: Any) -> str:
    got = erp.totals_by_work_center()
    parts = []
    for s in line.stations:
        e = got.get(s.work_center, {"good": 0, "scrap": 0})
        parts.append(f"{s.work_center} made {s.produced.good}+{s.produced.scrap} "
                     f"(ERP {e['good']}+{e['scrap']}) {s.current or 'idle'}")
    return " | ".join(parts)


async def demo(args: argparse.Namespace) -> int:
    """The whole demo; returns the exit code."""
    from simulators.erp import ErpSim
    from simulators.factory import Api, Breakdown, Line, ModbusMachine, OpcUaMachine, Station
    from simulators.machine import Machine, MachineState
    from simulators.modbus_plc import ModbusPlc
    from simulators.opcua_plc import OpcUaPlc
    from simulators.planner import Planner
    from simulators.scanner import ScannerSim

    data_dir = Path(args.data_dir)
    try:
        print(await asyncio.to_thread(prepare_data_dir, data_dir,
                                      bool(getattr(args, "keep_data", False))), flush=True)
    except DemoError as err:
        print(f"demo: {err}", file=sys.stderr, flush=True)
        return 2
    data_root = await asyncio.to_thread(data_dir.absolute)
    plan = DemoPlan(data_dir=data_dir, api_port=args.port, mqtt_url=args.mqtt_url,
                    speed=max(args.speed, 0.1), seed=args.seed,
                    modbus_port=_free_port(), opcua_port=_free_port())
    broker = None
    mqtt_url = args.mqtt_url
    if mqtt_url is None:
        port = _free_port()
        broker = await _start_broker(port)
        mqtt_url = f"mqtt://127.0.0.1:{port}"
    base = Path(args.config) if args.config else DEMO_PLANT
    doc = await asyncio.to_thread(plant_document, plan, mqtt_url, base)
    settings_path = data_dir / "plant.yaml"
    await asyncio.to_thread(settings_path.write_text, yaml.safe_dump(doc, sort_keys=False),
                            encoding="utf-8")
    site = doc["site"]
    work_centers = [w["id"] for w in doc["work_centers"]]
    tokens = await _make_tokens(doc["database"]["url"], work_centers)

    cycle = 1.0 / plan.speed
    machine = Machine(cycle_time=cycle, scrap_rate=0.04, stop_probability=0.01,
                      mean_stop_s=3.0 / plan.speed, seed=plan.seed, state=MachineState.IDLE)
    modbus = ModbusPlc(port=plan.modbus_port, machine=machine)
    opcua = OpcUaPlc(port=plan.opcua_port, cycle_time=1.5 * cycle, seed=plan.seed,
                     scrap_rate=0.03)
    runner = ServiceRunner(plan, settings_path, args.service)
    erp = None
    line = None
    api = None
    terminals: list[Any] = []
    try:
        await modbus.start()
        await opcua.start()
        await opcua.set_state(2)
        await runner.start()
        base_url = f"http://127.0.0.1:{plan.api_port}"
        await _wait_http(f"{base_url}/readyz", 60)
        print(f"\nmes-edge demo is running: open {base_url}/  (API docs: {base_url}/docs)")
        print(f"  station tablets: {base_url}/station/<work center> (e.g. /station/PRESS-01), "
              f"supervisor board: {base_url}/board; log in at {base_url}/login with a token")
        for name, token in tokens.items():
            print(f"  token {name:12} {token}")
        print("  operators (badge / PIN): " + ", ".join(
            f"{badge} {name} / {pin}" for badge, name, pin in DEMO_OPERATORS))
        print(f"  data in {data_root}, MQTT at {mqtt_url}; Ctrl-C stops\n", flush=True)

        api = Api(base_url, tokens["supervisor"])
        start = await run_start(api.client)
        erp = ErpSim(base_url, tokens["erp"], mode="pull", poll_interval=0.5)
        erp.cursor = start.cursor  # an earlier run's confirmations are not this run's
        await erp.start()
        planner = Planner(erp, ROUTE, quantity=args.quantity, keep_open=max(args.orders, 1))
        planner.continue_after(await _order_ids(api.client))
        await planner.top_up(await api.open_orders())
        for wc in work_centers:
            t = ScannerSim(mqtt_url, site, wc, scanner=f"T-{wc}", client_id=f"demo-term-{wc}")
            await t.connect()
            terminals.append(t)
        by_wc = dict(zip(work_centers, terminals, strict=True))
        stations = [
            Station("PRESS-01", by_wc["PRESS-01"], ModbusMachine(modbus)),
            Station("CNC-02", by_wc["CNC-02"], OpcUaMachine(opcua)),
            Station("ASSY-03", by_wc["ASSY-03"]),
        ]
        # In its first minute the press breaks down for 15 s (the operator gives the reason
        # after 5 s) besides its random micro-stops and scrap: the board shows it all.
        line = Line(api, stations, seed=plan.seed, speed=plan.speed, breakdown=Breakdown(
            "PRESS-01", after=30 * plan.speed, lasting=15 * plan.speed, reason="jam"))
        await line.start()

        started = time.monotonic()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if args.duration is not None and elapsed >= args.duration:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await stop.wait()
            await line.refresh()
            print(f"[{time.monotonic() - started:5.0f}s] {_progress(line, erp)}", flush=True)
            if not stop.is_set():
                await _plan(planner, api)
        print("demo: stopping the machines and draining ...", flush=True)
        await line.stop()
        if args.duration is None:
            return 0
        factory_min = (time.monotonic() - started) * plan.speed / 60
        print(f"demo: {factory_min:.1f} minutes of factory time (speed {plan.speed:g}); "
              f"orders released {_ids(planner.released)}, cancelled by the planner "
              f"{_ids(planner.cancelled)}", flush=True)
        return await drain_and_reconcile(api.client, line, erp, start)
    finally:
        if api is not None:
            await api.close()
        if erp is not None:
            await erp.close()
        for t in terminals:
            await t.close()
        await runner.stop()
        await opcua.close()
        await modbus.close()
        if broker is not None:
            await broker.shutdown()


def _ids(order_ids: list[str]) -> str:
    """`3 (DEMO-004..DEMO-006)`: how many, first and last."""
    return f"{len(order_ids)} ({order_ids[0]}..{order_ids[-1]})" if order_ids else "0"


async def _order_ids(client: Any) -> list[str]:
    """The ids of the orders the MES has (any status), to number new ones after them."""
    r = await client.get("/api/v1/work-orders", params={"limit": 1000})
    r.raise_for_status()
    return [o["order_id"] for o in r.json()["work_orders"]]


async def _plan(planner: Any, api: Any) -> None:
    """One planning round; a failure is logged and the next round tries again."""
    import httpx

    try:
        await planner.top_up(await api.open_orders())
    except (httpx.HTTPError, RuntimeError) as err:
        log.warning("planner: %s (trying again in the next round)", err)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mes-edge demo` (the CLI and `python -m mes_edge.demo` share them)."""
    p.add_argument("--config", default=None,
                   help="plant file (default: the embedded demo plant)")
    p.add_argument("--data-dir", default="mes-edge-data",
                   help="folder of the demo's database and plant file; an earlier run's folder "
                   "is moved aside to <folder>-previous (default: %(default)s)")
    p.add_argument("--keep-data", action="store_true",
                   help="continue the data of an earlier run instead of starting fresh")
    p.add_argument("--port", type=int, default=8000,
                   help="HTTP port of the API and tablets (default: %(default)s)")
    p.add_argument("--mqtt-url", default=None,
                   help="use this broker instead of the built-in one (default: built-in)")
    p.add_argument("--duration", type=float, default=None,
                   help="run this many seconds, then drain and reconcile (default: until Ctrl-C)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="factory time factor: 4 runs 4 factory seconds per second (machines, "
                   "operators, planner) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7,
                   help="random seed of machines and operators (default: %(default)s)")
    p.add_argument("--orders", type=int, default=4,
                   help="work orders the planner keeps open (default: %(default)s)")
    p.add_argument("--quantity", type=int, default=20,
                   help="quantity of each work order (default: %(default)s)")
    p.add_argument("--service", choices=["inline", "subprocess"], default="inline",
                   help="run the service in this process, or as a supervised child process "
                   "(default: %(default)s)")


def main(argv: list[str] | None = None) -> int:
    """`python -m mes_edge.demo`: the same as `mes-edge demo`."""
    p = argparse.ArgumentParser(prog="mes-edge demo", description="Run the virtual factory.")
    add_arguments(p)
    args = p.parse_args(argv)
    from mes_edge.cli import _setup_logging

    _setup_logging(verbose=False)
    return run_demo(args)


def run_demo(args: argparse.Namespace) -> int:
    """Entry from the CLI."""
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    try:
        return asyncio.run(demo(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
