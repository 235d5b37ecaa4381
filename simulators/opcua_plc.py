"""A simulated machine PLC behind a real asyncua OPC UA server on 127.0.0.1.

Address space (namespace index 2, URI ``urn:mes-edge:sim:opcua-plc``)::

    Objects (0:Objects)
      Machine (ns=2;s=Machine, browse name 2:Machine)
        GoodCount   ns=2;s=Machine.GoodCount    UInt32 (or UInt16: counter_type="UInt16")
        ScrapCount  ns=2;s=Machine.ScrapCount   same type as GoodCount
        State       ns=2;i=1001                 UInt16: 1 running, 2 idle, 3 down, 4 setup
        CycleTime   ns=2;s=Machine.CycleTime    Double, seconds
      Bench (ns=2;s=Bench)                      only with extra_variables > 0
        V0000 ...   ns=2;s=Bench.V0000 ...      UInt32, all rewritten every extra_interval

Browse paths follow the browse names, e.g. ``0:Objects/2:Machine/2:GoodCount``.

While running (state 1) the machine makes one part per cycle: GoodCount += 1, or ScrapCount += 1
with probability scrap_rate; counters wrap at the type's maximum. Random stops (seeded) put the
machine down for a while. A scenario (YAML or JSON) scripts faults at given times::

    steps:
      - {at: 2.0, action: down}                          # also: run, idle, setup, state(code)
      - {at: 3.0, action: reset_counter, counter: GoodCount}
      - {at: 4.0, action: set_counter, counter: GoodCount, value: 65530}
      - {at: 5.0, action: restart_server, downtime: 2.0} # also: stop_server, start_server

Tests use ``async with OpcUaPlc(port=...) as plc:``; ``main(argv)`` runs it from the command line.
Imports nothing from mes_edge or drivers: it talks OPC UA only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

NAMESPACE_URI = "urn:mes-edge:sim:opcua-plc"
RUNNING, IDLE, DOWN, SETUP = 1, 2, 3, 4
COUNTERS = ("GoodCount", "ScrapCount")
SECURITY_CHOICES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
_STATE_ACTIONS = {"run": RUNNING, "idle": IDLE, "down": DOWN, "setup": SETUP}
_REFUSED = ua.UInt32(ua.StatusCodes.BadMonitoredItemFilterUnsupported)
log = logging.getLogger("simulators.opcua_plc")


def _nid(identifier: int | str, ns: int) -> ua.NodeId:
    """A node id in our namespace (numeric or string)."""
    prefix = "i" if isinstance(identifier, int) else "s"
    return ua.NodeId.from_string(f"ns={ns};{prefix}={identifier}")


class _PasswordUsers(UserManager):
    """Accepts only the configured username/password pairs (anonymous is disabled separately)."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaPlc:
    """One simulated machine served over OPC UA; values settable, server stoppable on its port."""

    def __init__(
        self,
        *,
        port: int,
        host: str = "127.0.0.1",
        cycle_time: float = 1.0,
        simulate: bool = True,
        seed: int = 0,
        counter_type: str = "UInt32",
        scrap_rate: float = 0.0,
        stop_probability: float = 0.0,
        stop_duration: tuple[float, float] = (2.0, 5.0),
        security: Sequence[str] = ("None",),
        certificate: Path | None = None,
        private_key: Path | None = None,
        trusted_client_certs: Sequence[Path] | None = None,
        users: dict[str, str] | None = None,
        extra_variables: int = 0,
        extra_interval: float = 0.1,
        subscriptions: bool = True,
        unmonitorable: Sequence[str] = (),
    ) -> None:
        if counter_type not in ("UInt16", "UInt32"):
            raise ValueError(f"counter_type must be UInt16 or UInt32, not {counter_type!r}")
        unknown = set(security) - set(SECURITY_CHOICES)
        if unknown:
            raise ValueError(
                f"unknown security options {sorted(unknown)}; use {list(SECURITY_CHOICES)}")
        self.host, self.port = host, port
        self.cycle_time, self.simulate = cycle_time, simulate
        self.counter_type = getattr(ua.VariantType, counter_type)
        self.counter_max = 0xFFFF if counter_type == "UInt16" else 0xFFFFFFFF
        self.scrap_rate, self.stop_probability, self.stop_duration = (
            scrap_rate, stop_probability, stop_duration)
        self.security = list(security)
        self.certificate, self.private_key = certificate, private_key
        self.trusted_client_certs = list(trusted_client_certs or [])
        self.users = users
        self.extra_variables, self.extra_interval = extra_variables, extra_interval
        self.subscriptions = subscriptions
        self.unmonitorable = set(unmonitorable)
        self._rng = random.Random(seed)
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._types: dict[str, ua.VariantType] = {}
        self._trusted_der: set[bytes] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._serving = False

    # ---- public API -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The opc.tcp URL clients connect to."""
        return f"opc.tcp://{self.host}:{self.port}/"

    @property
    def node_ids(self) -> dict[str, str]:
        """String node ids of the machine variables (and Bench.Vnnnn), by short name."""
        return {name: nodeid.to_string() for name, nodeid in self._nodes.items()}

    @staticmethod
    def browse_path(name: str) -> str:
        """The browse path of a machine variable, from the Root folder."""
        folder = "Bench" if name.startswith("V") else "Machine"
        return f"0:Objects/2:{folder}/2:{name}"

    @property
    def serving(self) -> bool:
        """Whether the OPC UA server currently listens."""
        return self._serving

    async def start(self) -> None:
        """Build the address space, start serving and start the machine loops."""
        await self._build()
        await self.start_server()
        if self.simulate and self.cycle_time > 0:
            self._tasks.append(asyncio.create_task(self._machine_loop(), name="plc-machine"))
        if self.extra_variables and self.extra_interval > 0:
            self._tasks.append(asyncio.create_task(self._extra_loop(), name="plc-extra"))

    async def close(self) -> None:
        """Stop the loops and the server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.stop_server()

    async def __aenter__(self) -> OpcUaPlc:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def stop_server(self) -> None:
        """Stop listening and drop every client connection; values are kept."""
        if self._server is not None and self._serving:
            self._serving = False
            await self._server.stop()
            # A rebooted PLC forgets its sessions; asyncua would keep them for a reconnect.
            sessions = getattr(self._server.iserver, "_external_sessions", {})
            for session in list(sessions.values()):
                with contextlib.suppress(Exception):
                    await session.close_session(True)

    async def start_server(self) -> None:
        """(Re)start listening on the same port."""
        if self._server is None or self._serving:
            return
        # A stopped asyncua Server would add its endpoints a second time on start.
        self._server._policies = []
        self._server.iserver.endpoints = []
        await self._server.start()
        self._serving = True

    async def restart_server(self, downtime: float = 1.0) -> None:
        """Stop, wait `downtime` seconds, start again (a PLC reboot or a cable pulled)."""
        await self.stop_server()
        await asyncio.sleep(downtime)
        await self.start_server()

    async def set_value(self, name: str, value: Any) -> None:
        """Write a variable by short name (GoodCount, State, V0001, ...)."""
        assert self._server is not None, "start() first"
        now = datetime.now(UTC)
        dv = ua.DataValue(ua.Variant(value, self._types[name]), SourceTimestamp=now,  # type: ignore[arg-type]
                          ServerTimestamp=now)  # type: ignore[arg-type]
        await self._server.write_attribute_value(self._nodes[name], dv)

    async def get_value(self, name: str) -> Any:
        """Read a variable by short name."""
        assert self._server is not None, "start() first"
        variant = self._server.read_attribute_value(self._nodes[name]).Value
        return variant.Value if variant is not None else None

    async def set_state(self, code: int) -> None:
        """Set the state code (1 running, 2 idle, 3 down, 4 setup)."""
        await self.set_value("State", code)

    async def set_counter(self, name: str, value: int) -> None:
        """Set a counter (wrapped to its type), e.g. just below rollover."""
        await self.set_value(name, value & self.counter_max)

    async def run_scenario(self, steps: Sequence[dict[str, Any]]) -> None:
        """Play scripted steps, each at its `at` seconds after the call."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for step in sorted(steps, key=lambda s: float(s.get("at", 0))):
            await asyncio.sleep(max(0.0, t0 + float(step.get("at", 0)) - loop.time()))
            await self._apply(step)

    # ---- internals ---------------------------------------------------------------------------

    async def _apply(self, step: dict[str, Any]) -> None:
        # `do` is accepted too, so one scenario vocabulary serves both PLC simulators.
        action = step.get("action") or step["do"]
        if action == "close":
            action = "restart_server" if step.get("for") else "stop_server"
            step = {**step, "downtime": step.get("for", step.get("downtime", 1.0))}
        log.info("scenario: %s", step)
        if action in _STATE_ACTIONS:
            await self.set_state(_STATE_ACTIONS[action])
        elif action == "state":
            await self.set_state(int(step["code"]))
        elif action == "reset_counter":
            await self.set_counter(step.get("counter", "GoodCount"), 0)
        elif action == "set_counter":
            await self.set_counter(step.get("counter", "GoodCount"), int(step["value"]))
        elif action == "stop_server":
            await self.stop_server()
        elif action == "start_server":
            await self.start_server()
        elif action == "restart_server":
            await self.restart_server(float(step.get("downtime", 1.0)))
        else:
            raise ValueError(f"unknown scenario action {action!r}")

    async def _build(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("mes-edge simulated PLC")
        # asyncua's clock task makes every stop wait up to a second; CurrentTime is not simulated.
        server.disable_clock()
        server.set_security_policy([SECURITY_CHOICES[s] for s in self.security])
        if self.certificate is not None and self.private_key is not None:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
        if self.trusted_client_certs:
            for path in self.trusted_client_certs:
                cert = await uacrypto.load_certificate(path)
                self._trusted_der.add(uacrypto.der_from_x509(cert))
            server.set_certificate_validator(self._validate_client_cert)
        if self.users is not None:
            server.iserver.user_manager = _PasswordUsers(self.users)
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        if not self.subscriptions:
            # A server without the subscription service set: CreateSubscription is refused.
            server.iserver.max_subscriptions = 0
        ns = await server.register_namespace(NAMESPACE_URI)
        objects = server.nodes.objects
        machine = await objects.add_object(_nid("Machine", ns), ua.QualifiedName("Machine", ns))
        specs: list[tuple[str, ua.NodeId, Any, ua.VariantType]] = [
            ("GoodCount", _nid("Machine.GoodCount", ns), 0, self.counter_type),
            ("ScrapCount", _nid("Machine.ScrapCount", ns), 0, self.counter_type),
            ("State", _nid(1001, ns), RUNNING, ua.VariantType.UInt16),
            ("CycleTime", _nid("Machine.CycleTime", ns), float(self.cycle_time),
             ua.VariantType.Double),
        ]
        for name, nodeid, value, vtype in specs:
            await machine.add_variable(nodeid, ua.QualifiedName(name, ns), ua.Variant(value, vtype))
            self._nodes[name], self._types[name] = nodeid, vtype
        if self.extra_variables:
            bench = await objects.add_object(_nid("Bench", ns), ua.QualifiedName("Bench", ns))
            for i in range(self.extra_variables):
                name = f"V{i:04d}"
                nodeid = _nid(f"Bench.{name}", ns)
                await bench.add_variable(nodeid, ua.QualifiedName(name, ns),
                                         ua.Variant(0, ua.VariantType.UInt32))
                self._nodes[name], self._types[name] = nodeid, ua.VariantType.UInt32
        if self.unmonitorable:
            self._refuse_monitoring(server)
        self._server = server

    def _refuse_monitoring(self, server: Server) -> None:
        """Make CreateMonitoredItems answer Bad for the configured variables (a PLC quirk)."""
        refused = {self._nodes[name] for name in self.unmonitorable}
        service = server.iserver.subscription_service
        original = service.create_monitored_items

        async def create_monitored_items(params: ua.CreateMonitoredItemsParameters) -> list[Any]:
            allowed = [i for i in params.ItemsToCreate if i.ItemToMonitor.NodeId not in refused]
            sub = ua.CreateMonitoredItemsParameters(
                SubscriptionId=params.SubscriptionId, TimestampsToReturn=params.TimestampsToReturn,
                ItemsToCreate=allowed)
            done = iter(await original(sub) if allowed else [])
            results = []
            for item in params.ItemsToCreate:
                if item.ItemToMonitor.NodeId in refused:
                    results.append(ua.MonitoredItemCreateResult(
                        StatusCode=ua.StatusCode(_REFUSED)))
                else:
                    results.append(next(done))
            return results

        service.create_monitored_items = create_monitored_items  # type: ignore[method-assign]

    async def _validate_client_cert(self, cert: Any, app: ua.ApplicationDescription) -> None:
        if uacrypto.der_from_x509(cert) not in self._trusted_der:
            log.warning("rejected untrusted client certificate of %s", app.ApplicationUri)
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    async def _machine_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cycle_time)
            if not self._serving or await self.get_value("State") != RUNNING:
                continue
            counter = "ScrapCount" if self._rng.random() < self.scrap_rate else "GoodCount"
            await self.set_counter(counter, await self.get_value(counter) + 1)
            if self._rng.random() < self.stop_probability:
                await self.set_state(DOWN)
                await asyncio.sleep(self._rng.uniform(*self.stop_duration))
                if await self.get_value("State") == DOWN:
                    await self.set_state(RUNNING)

    async def _extra_loop(self) -> None:
        assert self._server is not None
        write = self._server.write_attribute_value
        node_ids = [self._nodes[f"V{i:04d}"] for i in range(self.extra_variables)]
        loop = asyncio.get_running_loop()
        tick, deadline = 0, loop.time()
        while True:
            tick += 1
            now = datetime.now(UTC)  # one timestamp per sweep keeps the writer cheap
            for node_id in node_ids:
                value = ua.Variant(tick, ua.VariantType.UInt32)
                await write(node_id, ua.DataValue(value, SourceTimestamp=now,  # type: ignore[arg-type]
                                                  ServerTimestamp=now))  # type: ignore[arg-type]
            # Fixed-rate schedule; when writing takes longer than the interval, run flat out.
            deadline = max(deadline + self.extra_interval, loop.time())
            await asyncio.sleep(deadline - loop.time())


def _load_scenario(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    steps = data.get("steps", []) if isinstance(data, dict) else data
    if not isinstance(steps, list):
        raise SystemExit(f"{path}: expected a list of steps or a mapping with 'steps'")
    return steps


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the simulator."""
    p = argparse.ArgumentParser(prog="mes-edge sim opcua",
                                description="Simulated machine PLC over OPC UA.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=4840, help="OPC UA (opc.tcp) port to listen on")
    p.add_argument("--scenario", type=Path, help="YAML or JSON file of scripted steps")
    p.add_argument("--cycle-time", type=float, default=1.0, help="seconds per part; 0 = no parts")
    p.add_argument("--seed", type=int, default=0, help="random seed (scrap, stops)")
    p.add_argument("--counter-type", choices=["UInt16", "UInt32"], default="UInt32",
                   help="data type of GoodCount and ScrapCount")
    p.add_argument("--scrap-rate", type=float, default=0.0, help="fraction of parts scrapped")
    p.add_argument("--stop-probability", type=float, default=0.0, help="per cycle")
    p.add_argument("--security", action="append", choices=list(SECURITY_CHOICES),
                   help="security policy/mode to offer (repeat; default: None only)")
    p.add_argument("--certificate", type=Path, help="server certificate (DER or PEM)")
    p.add_argument("--private-key", type=Path, help="private key of the server certificate")
    p.add_argument("--trust", type=Path, action="append", help="trusted client certificate")
    p.add_argument("--user", action="append", help="USER:PASSWORD; disables anonymous access")
    p.add_argument("--extra-variables", type=int, default=0,
                   help="extra UInt32 variables under Bench (a load test)")
    p.add_argument("--extra-interval", type=float, default=0.1,
                   help="seconds between rewrites of the extra variables")
    p.add_argument("--no-subscriptions", action="store_true",
                   help="refuse subscriptions (clients must poll)")
    return p


async def _serve(args: argparse.Namespace) -> None:
    users = dict(u.split(":", 1) for u in args.user) if args.user else None
    plc = OpcUaPlc(
        port=args.port, host=args.host, cycle_time=args.cycle_time, seed=args.seed,
        counter_type=args.counter_type, scrap_rate=args.scrap_rate,
        stop_probability=args.stop_probability, security=args.security or ["None"],
        certificate=args.certificate, private_key=args.private_key, trusted_client_certs=args.trust,
        users=users, extra_variables=args.extra_variables, extra_interval=args.extra_interval,
        subscriptions=not args.no_subscriptions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with plc:
        print(f"READY {plc.endpoint}", flush=True)
        scenario = None
        if args.scenario is not None:
            scenario = asyncio.create_task(plc.run_scenario(_load_scenario(args.scenario)))
        await stop.wait()
        if scenario is not None:
            scenario.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scenario


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; prints 'READY <endpoint>' once it listens."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # asyncua warns about every endpoint it would not offer; that is a choice here, not news.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
