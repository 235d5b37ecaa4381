"""One OPC UA session: the only owner of the asyncua Client, with typed errors at its boundary.

A session lives for one connection. The driver opens a new one after every loss, so nothing of a
dead connection (subscription ids, publish loop, pending requests) leaks into the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua
from asyncua.crypto import security_policies

from drivers.errors import ConnectError, ProtocolError
from drivers.opcua.config import OpcUaDeviceConfig, OpcUaTagConfig
from drivers.opcua.errors import OpcUaSecurityError, translate

log = logging.getLogger("drivers.opcua.session")

PublishCallback = Callable[[ua.PublishResult], Awaitable[None]]

_MODES = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
_DEADBANDS = {"absolute": ua.DeadbandType.Absolute, "percent": ua.DeadbandType.Percent}
_SERVER_STATE = ua.NodeId.from_string(f"i={ua.ObjectIds.Server_ServerStatus_State}")
_ROOT = ua.NodeId.from_string(f"i={ua.ObjectIds.RootFolder}")
_HIERARCHICAL = ua.NodeId.from_string(f"i={ua.ObjectIds.HierarchicalReferences}")
#: Items per CreateMonitoredItems request, to stay well inside default message size limits.
_MONITOR_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class MonitorRequest:
    """One monitored item to create: our handle, the node and its sampling/deadband."""

    handle: int
    node_id: ua.NodeId
    sampling_interval_ms: float
    deadband_type: str
    deadband_value: float
    queue_size: int


class OpcUaSession:
    """Connect, resolve nodes, read, subscribe and close one asyncua session."""

    def __init__(self, cfg: OpcUaDeviceConfig, on_lost: Callable[[Exception], None]) -> None:
        self.cfg = cfg
        self._on_lost = on_lost
        # asyncua's own health probe is left slow: our watchdog reads the server state on the
        # configured interval; asyncua still reports a closed socket at once (state change).
        self.client = Client(cfg.endpoint, timeout=cfg.timeout,
                             watchdog_intervall=max(30.0, cfg.watchdog_interval))
        self.client.application_uri = cfg.security.application_uri
        self.client.name = self.client.description = f"mes-edge {cfg.name}"
        # Sessions of dead connections should not pile up on the PLC for an hour.
        self.client.session_timeout = 60_000
        self.subscription_id: int | None = None

    async def open(self) -> None:
        """Open socket, secure channel and session; raise a typed DriverError on failure."""
        cfg, sec = self.cfg, self.cfg.security
        try:
            if sec.policy == "Basic256Sha256":
                assert sec.certificate is not None and sec.private_key is not None
                await self.client.set_security(
                    security_policies.SecurityPolicyBasic256Sha256,
                    certificate=str(sec.certificate),
                    private_key=str(sec.private_key),
                    private_key_password=sec.private_key_password,
                    server_certificate=(str(sec.server_certificate)
                                        if sec.server_certificate else None),
                    mode=_MODES[sec.effective_mode],
                )
            if cfg.username is not None:
                self.client.set_user(cfg.username)
                if cfg.password is not None:
                    self.client.set_password(cfg.password)
            if hasattr(self.client, "connection_lost_callback"):
                self.client.connection_lost_callback = self._lost_callback
            await self.client.connect()
        except FileNotFoundError as err:
            raise OpcUaSecurityError(f"{cfg.name}: cannot read certificate or key: {err}") from err
        except Exception as err:
            with contextlib.suppress(Exception):
                self.client.disconnect_socket()
            raise translate(err, f"connect to {cfg.endpoint}") from err

    async def _lost_callback(self, exc: Exception) -> None:
        self._on_lost(exc)

    async def resolve(self, tags: Sequence[OpcUaTagConfig]) -> dict[str, ua.NodeId | str]:
        """Node id per tag name; browse paths translated in one request. Failures as error text."""
        out: dict[str, ua.NodeId | str] = {}
        paths: list[tuple[str, ua.BrowsePath]] = []
        for tag in tags:
            if not tag.is_browse_path:
                out[tag.name] = ua.NodeId.from_string(tag.node)
                continue
            rpath = ua.RelativePath()
            for qname in tag.browse_path:
                el = ua.RelativePathElement()
                el.ReferenceTypeId = _HIERARCHICAL
                el.IsInverse = False  # type: ignore[assignment]  # asyncua's default is True
                el.IncludeSubtypes = True  # type: ignore[assignment]
                el.TargetName = qname
                rpath.Elements.append(el)
            paths.append((tag.name, ua.BrowsePath(StartingNode=_ROOT, RelativePath=rpath)))
        if paths:
            try:
                results = await self.client.uaclient.translate_browsepaths_to_nodeids(
                    [p for _, p in paths])
            except Exception as err:
                raise translate(err, "translate browse paths") from err
            for (name, _), result in zip(paths, results, strict=True):
                if result.StatusCode.is_good() and result.Targets:
                    out[name] = result.Targets[0].TargetId
                else:
                    out[name] = f"browse path not found: {result.StatusCode.name}"
        return out

    async def read(self, node_ids: Sequence[ua.NodeId], batch_size: int) -> list[ua.DataValue]:
        """Read the Value attribute of many nodes, `batch_size` per Read request."""
        values: list[ua.DataValue] = []
        for start in range(0, len(node_ids), batch_size):
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            params.NodesToRead = [ua.ReadValueId(NodeId=n, AttributeId=ua.AttributeIds.Value)
                                  for n in node_ids[start:start + batch_size]]
            try:
                values.extend(await self.client.uaclient.read(params))
            except Exception as err:
                raise translate(err, "read") from err
        return values

    async def ping(self, limit: float) -> float:
        """Read the server state (a liveness check); return the round trip in seconds."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                state = await self.client.get_node(_SERVER_STATE).read_value()
        except Exception as err:
            raise translate(err, "watchdog read of ServerStatus.State") from err
        if state not in (ua.ServerState.Running, int(ua.ServerState.Running)):
            raise ConnectError(f"server state is {state!r}, not Running")
        return time.perf_counter() - t0

    async def create_subscription(self, callback: PublishCallback) -> None:
        """Create the session's subscription; publish responses go straight to `callback`."""
        sub = self.cfg.subscription
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=sub.publishing_interval_ms,
            RequestedLifetimeCount=sub.lifetime_count,
            RequestedMaxKeepAliveCount=sub.keepalive_count,
            MaxNotificationsPerPublish=sub.max_notifications_per_publish,
            PublishingEnabled=True,
            Priority=0,
        )
        try:
            result = await self.client.uaclient.create_subscription(params, callback)
        except Exception as err:
            raise translate(err, "create subscription") from err
        self.subscription_id = result.SubscriptionId

    async def monitor(self, requests: Sequence[MonitorRequest]) -> dict[int, ua.StatusCode]:
        """Create monitored items; the status per handle (Bad ones were not created)."""
        if self.subscription_id is None:
            raise ProtocolError("monitor() before create_subscription()")
        statuses: dict[int, ua.StatusCode] = {}
        for start in range(0, len(requests), _MONITOR_CHUNK):
            chunk = requests[start:start + _MONITOR_CHUNK]
            params = ua.CreateMonitoredItemsParameters(
                SubscriptionId=self.subscription_id,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=[_item_request(r) for r in chunk],
            )
            try:
                results = await self.client.uaclient.create_monitored_items(params)
            except Exception as err:
                raise translate(err, "create monitored items") from err
            for req, res in zip(chunk, results, strict=True):
                statuses[req.handle] = res.StatusCode
        return statuses

    async def close(self) -> None:
        """Close the session within the request timeout, then drop the socket whatever happened."""
        try:
            async with asyncio.timeout(min(self.cfg.timeout, 2.0)):
                await self.client.disconnect()
        except Exception as err:  # a dead link cannot close politely; that is expected
            log.debug("%s: disconnect: %r", self.cfg.name, err)
        finally:
            with contextlib.suppress(Exception):
                self.client.disconnect_socket()
            await _cancel_publish_loop(self.client)


def _item_request(req: MonitorRequest) -> ua.MonitoredItemCreateRequest:
    params = ua.MonitoringParameters()
    params.ClientHandle = req.handle
    params.SamplingInterval = req.sampling_interval_ms
    params.QueueSize = req.queue_size
    params.DiscardOldest = True
    if req.deadband_type != "none":
        params.Filter = ua.DataChangeFilter(
            Trigger=ua.DataChangeTrigger.StatusValue,
            DeadbandType=_DEADBANDS[req.deadband_type],
            DeadbandValue=req.deadband_value,
        )
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=req.node_id, AttributeId=ua.AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=params,
    )


async def _cancel_publish_loop(client: Client) -> None:
    """asyncua leaves the publish task running when the socket died first; end it here."""
    session: Any = getattr(client.uaclient, "session", client.uaclient)
    task = getattr(session, "_publish_task", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
