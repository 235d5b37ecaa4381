"""The composition root: builds the whole edge service from settings, starts and stops it.

Start order: store -> dispatcher -> rules -> device drivers and MQTT -> API.
Stop order is the reverse for inputs: the API and drivers stop taking data first, then the
dispatcher drains and commits everything already queued, then outputs and the store close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI

from drivers import Driver
from drivers.modbus import ModbusDriver
from drivers.mqtt import MqttInboundDriver, MqttPublisher
from drivers.opcua import OpcUaDriver
from mes_edge.app.plant import plant_rules
from mes_edge.app.pumps import MqttPump, pump_signals
from mes_edge.app.state_out import CommitPublisher, work_center_view
from mes_edge.config import Settings
from mes_edge.config.settings import ModbusDevice
from mes_edge.dispatcher import Dispatcher
from mes_edge.erp.order_pull import OrderPuller
from mes_edge.erp.push import PushWorker
from mes_edge.rules import ScanParser, SignalRules, StationOperators
from mes_edge.store import Store, feed

log = logging.getLogger(__name__)


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
        self.operators = StationOperators()
        self.parser = ScanParser(settings.scan_patterns)
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self.drivers: list[Driver] = []
        self.mqtt_in: MqttInboundDriver | None = None
        self.mqtt_out: MqttPublisher | None = None
        self.push: PushWorker | None = None
        self.order_pull: OrderPuller | None = None
        self.api: FastAPI | None = None
        self._api_factory = api_factory
        self._serve_api = serve_api
        self._server: uvicorn.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._undo: list[Callable[[], None]] = []
        #: Run first by stop(): the API ends its live streams here so uvicorn can shut down.
        self.on_stop: list[Callable[[], None]] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        """Bring everything up, in dependency order."""
        s = self.settings
        self.store = await Store.open(s.database.url, migrate=s.database.auto_migrate)
        every = s.production.confirmation.every_seconds
        self.dispatcher = Dispatcher(
            self.store, self.rules, tick_seconds=min(5.0, every / 2) if every else None
        )
        await self.dispatcher.start()
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
            self.push = PushWorker(self.store, s.erp.push_url, token=token)
            self._undo.append(self.dispatcher.subscribe(self.push.on_commit))
            await self.push.start()
        if s.erp.orders_url:
            token = s.erp.orders_token.get_secret_value() if s.erp.orders_token else None
            self.order_pull = OrderPuller(
                self.dispatcher, s.erp.orders_url, token=token, interval=s.erp.orders_poll_seconds
            )
            await self.order_pull.start()
        signal_rules = SignalRules(s.rules, self.dispatcher.checkpoints)
        for dev in s.devices:
            driver: Driver = (
                ModbusDriver(dev) if isinstance(dev, ModbusDevice) else OpcUaDriver(dev)
            )
            await driver.start()
            self.drivers.append(driver)
            self._spawn(pump_signals(driver, signal_rules, self.dispatcher), f"pump:{dev.name}")
        if s.mqtt is not None:
            self.mqtt_in = MqttInboundDriver(s.mqtt)
            await self.mqtt_in.start()
            pump = MqttPump(self.dispatcher, self.parser, self.operators)
            self._spawn(pump.run(self.mqtt_in), "pump:mqtt")
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
                )
                self._server = _QuietServer(config)
                self._spawn(self._server.serve(), "api")
                api_task = self._tasks[-1]
                while not self._server.started:
                    if api_task.done():  # e.g. the port is taken: uvicorn gave up
                        await self.stop()
                        raise RuntimeError(f"the API could not listen on {s.api.host}:{s.api.port}")
                    await asyncio.sleep(0.02)
        self._spawn(self._retention_loop(), "retention")
        # Everything built so far (modules, config, driver plans, the loaded WIP) lives as long
        # as the process: keep it out of the cyclic GC's full passes, whose pauses otherwise
        # land in the commit latency (measured: 100+ ms gen-2 pauses without, ~25 ms with).
        gc.collect()
        gc.freeze()
        self.started.set()
        log.info(
            "mes-edge %s started: %d devices, MQTT %s, API %s",
            s.site,
            len(self.drivers),
            "on" if s.mqtt else "off",
            f"http://{s.api.host}:{s.api.port}" if self._server else "off",
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
        for driver in self.drivers:
            await driver.close()
        if self.mqtt_in is not None:
            await self.mqtt_in.close()
        if self.order_pull is not None:
            await self.order_pull.stop()
        for task in self._tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
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
        log.info("mes-edge stopped")

    async def __aenter__(self) -> EdgeService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def health(self) -> dict[str, Any]:
        """Driver and MQTT health, for /readyz and the board."""
        out: dict[str, Any] = {d.name: d.health.as_dict() for d in self.drivers}
        if self.mqtt_in is not None:
            out[self.mqtt_in.name] = self.mqtt_in.health_dict()
        if self.mqtt_out is not None:
            out[self.mqtt_out.name] = self.mqtt_out.health_dict()
        return out
