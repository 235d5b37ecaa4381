"""The composition root: builds the whole edge service from settings, starts and stops it.

Start order: instance lock (SQLite) and the API's listening socket first, so a second instance
or a taken port fails in one line before anything else ran -> store -> dispatcher -> rules ->
device loops and MQTT -> API.
Stop order is the reverse for inputs: the API and drivers stop taking data first, then the
dispatcher drains and commits everything already queued, then outputs and the store close.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import logging
import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from drivers import Driver
from drivers.modbus import ModbusDriver
from drivers.mqtt import MqttInboundDriver, MqttPublisher
from drivers.opcua import OpcUaDriver
from mes_edge.app.alerts import AlertEngine
from mes_edge.app.history import history_loop
from mes_edge.app.oee_gauges import OeeGauges
from mes_edge.app.plant import plant_rules
from mes_edge.app.progress import progress_rules
from mes_edge.app.pumps import DeviceLoop, LoopHealth, MqttPump, supervise
from mes_edge.app.state_out import CommitPublisher, work_center_view
from mes_edge.config import Settings
from mes_edge.config.settings import ModbusDevice
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS
from mes_edge.dispatcher import Dispatcher
from mes_edge.erp.order_pull import OrderPuller
from mes_edge.erp.push import PushWorker
from mes_edge.erp.webhooks import WebhookWorker
from mes_edge.rules import ScanParser, StationOperators
from mes_edge.rules.terminal import OperatorCard
from mes_edge.store import Store, feed
from mes_edge.store.tokens import list_operators

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start; the message is one line that says why and what to do."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL and in-memory SQLite)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database).resolve()


class InstanceLock:
    """An OS lock on `<database>.lock` held for the life of a service on a SQLite file.

    Two services writing one SQLite file would each believe their in-memory WIP is the truth.
    flock is released by the kernel when the process ends, however it ends (kill -9 too), so a
    stale lock file never blocks a restart. PostgreSQL needs none: several instances per
    database are allowed by design (each owns its work centers).
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StartupError naming the database (and the holder's pid)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise StartupError(
                f"another mes-edge instance{by} is running on {self.database}; stop it first "
                "or give this one its own database.url") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (idempotent); the file stays, empty locks are harmless."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    @staticmethod
    def held(url: str) -> bool:
        """Whether a running service holds the lock of this SQLite URL (False for others)."""
        database = sqlite_file(url)
        if database is None:
            return False
        probe = InstanceLock(database)
        try:
            probe.acquire()
        except StartupError:
            return True
        except OSError:
            return False
        probe.release()
        return False


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind the API's socket now, so a taken port is one clear error before anything starts."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise StartupError(f"api.host {host!r} cannot be resolved: {err.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        sock = socket.create_server(address, family=family, backlog=2048)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise StartupError(
                f"cannot listen on {host}:{port}: the port is already in use (another mes-edge "
                "or another program); stop it or set api.port") from None
        raise StartupError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EdgeService:
    """One running mes-edge instance."""

    def __init__(
        self,
        settings: Settings,
        *,
        api_factory: Callable[[EdgeService], FastAPI] | None = None,
        serve_api: bool = True,
    ) -> None:
        self.settings = settings
        self.rules = plant_rules(settings)
        self.progress = progress_rules(settings)  # issue 11: timeline, OEE
        self.operators = StationOperators(require_pin=settings.security.require_pin,
                                          unverified=settings.security.unverified_operator)
        self.parser = ScanParser(settings.scan_patterns)
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        #: One per configured device: its driver and pump, restarted together after a crash.
        self.device_loops: list[DeviceLoop] = []
        self.mqtt_pump = LoopHealth("MQTT pump")
        self.mqtt_in: MqttInboundDriver | None = None
        self.mqtt_out: MqttPublisher | None = None
        self.push: PushWorker | None = None
        self.order_pull: OrderPuller | None = None
        self.alerts: AlertEngine | None = None
        #: issue 11: the running shift's OEE per work center for /metrics (refreshed by a task).
        self.oee_gauges: OeeGauges | None = None
        self.webhooks: WebhookWorker | None = None
        self.api: FastAPI | None = None
        self._api_factory = api_factory
        self._serve_api = serve_api
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._lock: InstanceLock | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._undo: list[Callable[[], None]] = []
        #: Run first by stop(): the API ends its live streams here so uvicorn can shut down.
        self.on_stop: list[Callable[[], None]] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        """Bring everything up, in dependency order."""
        s = self.settings
        database = sqlite_file(s.database.url)
        if database is not None:
            self._lock = InstanceLock(database)
            self._lock.acquire()
        try:
            if self._api_factory is not None and self._serve_api:
                self._socket = listen_socket(s.api.host, s.api.port)
            self.store = await Store.open(s.database.url, migrate=s.database.auto_migrate)
        except BaseException:
            self._release()
            raise
        try:
            await self._start_on(self.store)
        except BaseException:
            # Whatever came up goes down again, and the lock and the socket are given back.
            with contextlib.suppress(Exception):
                await self.stop()
            raise

    async def _start_on(self, store: Store) -> None:
        s = self.settings
        every = s.production.confirmation.every_seconds
        self.dispatcher = Dispatcher(
            store, self.rules, tick_seconds=min(5.0, every / 2) if every else None,
            dedup_window_s=s.history.dedup_window_s,
            evict_finished_after_s=s.history.evict_closed_after_s,
            progress=self.progress,
        )
        await self.dispatcher.start()
        await self.refresh_operators()  # before any badge scan is read
        if s.mqtt is not None:
            self.mqtt_out = MqttPublisher(s.mqtt)
            await self.mqtt_out.start()
            self._undo.append(
                self.dispatcher.subscribe(CommitPublisher(s.site, self.dispatcher, self.mqtt_out))
            )
            # Retained state may be stale after a restart (or lost with our last process):
            # publish every work center's state once at start.
            for wc in s.work_centers:
                self.mqtt_out.publish_state(
                    s.site, wc.id, work_center_view(self.dispatcher.state, wc.id)
                )
        if s.erp.mode == "push" and s.erp.push_url:
            token = s.erp.push_token.get_secret_value() if s.erp.push_token else None
            self.push = PushWorker(store, s.erp.push_url, token=token)
            self._undo.append(self.dispatcher.subscribe(self.push.on_commit))
            await self.push.start()
        if s.erp.orders_url:
            token = s.erp.orders_token.get_secret_value() if s.erp.orders_token else None
            self.order_pull = OrderPuller(
                self.dispatcher, s.erp.orders_url, token=token, interval=s.erp.orders_poll_seconds
            )
            await self.order_pull.start()
        if s.alerts.webhooks:
            self.webhooks = WebhookWorker(store, s.alerts.webhooks)
            await self.webhooks.start()
        self.alerts = AlertEngine(s, store, self.dispatcher, publisher=self.mqtt_out,
                                  health=self.health, webhooks=self.webhooks,
                                  check_deliveries=self.push is not None)
        self._undo.append(self.dispatcher.subscribe(self.alerts.on_commit))
        if self.push is not None:
            self._undo.append(self.push.subscribe(self.alerts.on_delivery_error))
        await self.alerts.start()
        for dev in s.devices:
            def make(dev: Any = dev) -> Driver:
                return ModbusDriver(dev) if isinstance(dev, ModbusDevice) else OpcUaDriver(dev)

            device = DeviceLoop(dev.name, make, s.rules, self.dispatcher)
            self.device_loops.append(device)
            self._spawn(supervise(device.run, device.health), f"device:{dev.name}")
        if s.mqtt is not None:
            inbound = self.mqtt_in = MqttInboundDriver(s.mqtt, schemas=TERMINAL_SCHEMAS)
            await inbound.start()
            pump = MqttPump(self.dispatcher, self.parser, self.operators)
            self._spawn(supervise(lambda: pump.run(inbound), self.mqtt_pump), "pump:mqtt")
        if self._api_factory is not None:
            self.api = self._api_factory(self)
            if self._serve_api:
                config = uvicorn.Config(
                    self.api,
                    host=s.api.host,
                    port=s.api.port,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                    # issue 12: HTTPS when the plant gives a certificate (HSTS: api/security).
                    ssl_certfile=s.api.tls.cert_file,
                    ssl_keyfile=s.api.tls.key_file,
                )
                self._server = _QuietServer(config)
                sockets = [self._socket] if self._socket is not None else None
                self._spawn(self._server.serve(sockets=sockets), "api")
                api_task = self._tasks[-1]
                while not self._server.started:
                    if api_task.done():  # uvicorn gave up (start() stops what came up)
                        raise StartupError(f"the API could not start on {s.api.host}:"
                                           f"{s.api.port}; see the log above")
                    await asyncio.sleep(0.02)
        self._spawn(self._retention_loop(), "retention")
        self._spawn(history_loop(store, self.rules, s.history, database_url=s.database.url,
                                 webhook_keep_days=s.alerts.webhook_keep_days), "history")
        self.oee_gauges = OeeGauges(store, self.progress, [w.id for w in s.work_centers],
                                    s.production.oee_gauges_every_s)
        self._spawn(self.oee_gauges.run(), "oee-gauges")
        self._spawn(self._operators_loop(), "operators")
        # Everything built so far (modules, config, driver plans, the loaded WIP) lives as long
        # as the process: keep it out of the cyclic GC's full passes, whose pauses otherwise
        # land in the commit latency (measured: 100+ ms gen-2 pauses without, ~25 ms with).
        gc.collect()
        gc.freeze()
        self.started.set()
        log.info(
            "mes-edge %s started: %d devices, MQTT %s, API %s",
            s.site,
            len(self.device_loops),
            "on" if s.mqtt else "off",
            f"{'https' if s.api.tls.enabled else 'http'}://{s.api.host}:{s.api.port}"
            if self._server else "off",
        )

    async def _retention_loop(self, every_s: float = 3600.0) -> None:
        """Purge confirmations the ERP has received once they are older than the kept days."""
        assert self.store is not None
        keep = timedelta(days=self.settings.erp.keep_confirmations_days)
        while True:
            try:
                purged = await feed.purge(self.store, datetime.now(UTC) - keep)
                if purged:
                    log.info("retention: purged %d confirmations older than %s", purged, keep)
            except Exception:  # the database may be away; try again next round
                log.exception("retention purge failed")
            await asyncio.sleep(every_s)

    async def refresh_operators(self) -> None:
        """Reload the active operators the terminals' badge scans are checked against (a
        disabled operator is signed out of every station)."""
        assert self.store is not None
        rows = await list_operators(self.store)
        self.operators.set_roster(
            OperatorCard(str(r["badge"]), bool(r["has_pin"]),
                         frozenset(r["work_centers"]))  # type: ignore[call-overload]
            for r in rows if r["active"])

    async def _operators_loop(self, every_s: float = 30.0) -> None:
        """Pick up operators changed by the CLI (another process) within `every_s`."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh_operators()
            except Exception:  # the database may be away; the roster stays as it was
                log.exception("reloading the operators failed")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Stop inputs, drain the dispatcher, close outputs and the store."""
        for hook in self.on_stop:
            hook()
        if self._server is not None:
            self._server.should_exit = True
        devices = [t for t in self._tasks if t.get_name().startswith("device:")]
        for task in devices:
            task.cancel()  # each device loop closes its driver on the way out
        await asyncio.gather(*devices, return_exceptions=True)
        if self.mqtt_in is not None:
            await self.mqtt_in.close()
        if self.order_pull is not None:
            await self.order_pull.stop()
        for task in self._tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.alerts is not None:
            await self.alerts.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.push is not None:
            await self.push.stop()
        for undo in self._undo:
            undo()
        if self.mqtt_out is not None:
            await self.mqtt_out.close()
        if self.store is not None:
            await self.store.close()
        self._release()
        log.info("mes-edge stopped")

    def _release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def __aenter__(self) -> EdgeService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def drivers(self) -> list[Driver]:
        """The device drivers of the current runs of the device loops."""
        return [d.driver for d in self.device_loops if d.driver is not None]

    def health(self) -> dict[str, Any]:
        """Driver and MQTT health, for /readyz and the board (a device's `loop` says whether
        its driver and pump run, and why they crashed last)."""
        out: dict[str, Any] = {}
        for device in self.device_loops:
            driver = device.driver
            entry: dict[str, Any] = driver.health.as_dict() if driver is not None else {
                "name": device.name, "state": "idle"}
            entry["loop"] = device.health.as_dict()
            out[device.name] = entry
        if self.mqtt_in is not None:
            out[self.mqtt_in.name] = {**self.mqtt_in.health_dict(),
                                      "loop": self.mqtt_pump.as_dict()}
        if self.mqtt_out is not None:
            out[self.mqtt_out.name] = self.mqtt_out.health_dict()
        return out

    def problems(self) -> dict[str, str]:
        """What is down and why, per component (empty when every input and output is up)."""
        out: dict[str, str] = {}
        for name, h in self.health().items():
            loop = h.get("loop")
            if isinstance(loop, dict) and not loop["running"] and self.started.is_set():
                out[name] = f"{loop['last_error'] or 'loop not running'} (restarting)"
            elif h.get("state") != "connected":
                out[name] = f"{h.get('state')}: {h.get('last_error') or 'not connected yet'}"
        return out
