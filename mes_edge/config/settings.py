"""The plant file: one YAML document, validated by pydantic, secrets from the environment.

Every model forbids unknown keys, so a typo is an error that names its path instead of a
setting silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from drivers.modbus.config import ModbusDeviceConfig
from drivers.mqtt.config import MqttConfig
from drivers.opcua.config import OpcUaDeviceConfig
from mes_edge.config.calendar import CalendarSettings, check_work_center_calendars
from mes_edge.domain import CountingSource, MachineState

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Strict):
    """Where the state lives: SQLite file by default, PostgreSQL for production."""

    url: str = "sqlite+aiosqlite:///./data/mes-edge.db"
    auto_migrate: bool = Field(True, description="upgrade the schema at start-up")


class TlsSettings(Strict):
    """HTTPS for the API (issue 12): both files or neither."""

    cert_file: str | None = Field(None, description="PEM certificate (chain) of the API")
    key_file: str | None = Field(None, description="PEM private key of that certificate")

    @model_validator(mode="after")
    def _both(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("api.tls needs both cert_file and key_file")
        return self

    @property
    def enabled(self) -> bool:
        """Whether the API serves HTTPS."""
        return self.cert_file is not None


class ApiSettings(Strict):
    """The HTTP API and tablet UI."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    public_urls: list[str] = Field(
        default_factory=list,
        description="origins the tablets use (scheme://host[:port]); default: the listen address")
    tls: TlsSettings = Field(default_factory=lambda: TlsSettings())
    sse_per_token: int = Field(
        10, ge=1, description="live-update connections one token may hold at once")

    @field_validator("public_urls")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for url in value:
            m = re.fullmatch(r"(https?)://([^/?#\s]+)/?", url.strip(), re.IGNORECASE)
            if m is None:
                raise ValueError(f"{url!r} is not an origin like https://mes.plant.example:8443")
            out.append(f"{m.group(1).lower()}://{m.group(2).lower()}")
        return out

    def origins(self) -> set[str]:
        """The origins a cookie-authenticated write may come from."""
        if self.public_urls:
            return set(self.public_urls)
        scheme = "https" if self.tls.enabled else "http"
        hosts = {self.host}
        if self.host in ("0.0.0.0", "::", "127.0.0.1"):
            hosts |= {"127.0.0.1", "localhost"}
        return {f"{scheme}://{h}:{self.port}".lower() for h in hosts}


class SecuritySettings(Strict):
    """Who may sign in and what must prove itself (issue 12)."""

    require_pin: bool = Field(
        False, description="operators need a PIN to sign in (one without a PIN cannot)")
    unverified_operator: Literal["record", "refuse"] = Field(
        "record", description="an MQTT event naming an operator not signed in at that station: "
        "record it with the claim marked unverified, or refuse it")
    protect_metrics: bool = Field(False, description="/metrics needs a token (any role)")
    protect_docs: bool = Field(
        False, description="/docs, /redoc and /openapi.json need a token (any role)")


class ErpSettings(Strict):
    """Exchange with the ERP / planning core."""

    mode: Literal["pull", "push"] = "pull"
    push_url: str | None = Field(None, description="where push mode POSTs each confirmation")
    push_token: SecretStr | None = None
    keep_confirmations_days: int = Field(90, ge=1)
    orders_url: str | None = Field(None, description="optional: poll this URL for released orders")
    orders_token: SecretStr | None = None
    orders_poll_seconds: float = Field(30.0, ge=1.0)

    @model_validator(mode="after")
    def _push_needs_url(self) -> ErpSettings:
        if self.mode == "push" and not self.push_url:
            raise ValueError("erp.mode push needs erp.push_url")
        return self


class ReasonCode(Strict):
    """A scrap or downtime reason operators can pick, with its text per language."""

    code: Name
    text: dict[str, str] = Field(default_factory=dict)


class DowntimeCategory(Strict):
    """A category of downtime reasons (the tree's first level) and where it books lost time."""

    code: Name
    text: dict[str, str] = Field(default_factory=dict)
    loss: Literal["planned", "setup", "breakdown", "material", "quality", "other"] = Field(
        "other", description="loss bucket: planned is taken out of planned busy time, setup "
        "counts as setup, the others as unplanned stops")


class DowntimeReason(ReasonCode):
    """A downtime reason; `category` places it in the reason tree (none: loss bucket other)."""

    category: Name | None = Field(None, description="code of a production.downtime_categories")


class ConfirmationSettings(Strict):
    """When confirmations are written (README, External contracts)."""

    on_report: bool = True
    on_complete: bool = True
    every_units: int | None = Field(None, ge=1)
    every_seconds: float | None = Field(None, gt=0)


class ProductionSettings(Strict):
    """Plant-wide production rules."""

    tolerance_pct: float = Field(0.0, ge=0, le=100, description="over-production tolerance")
    auto_complete: bool = False
    confirmation: ConfirmationSettings = ConfirmationSettings()
    scrap_reasons: list[ReasonCode] = Field(default_factory=list)
    downtime_reasons: list[DowntimeReason] = Field(default_factory=list)
    downtime_categories: list[DowntimeCategory] = Field(
        default_factory=list, description="first level of the downtime reason tree")
    max_quantity_per_event: int = Field(100_000, ge=1)
    over_production: Literal["confirm", "hold"] = Field(
        "confirm",
        description="machine counts beyond plan + tolerance: confirm them to the ERP like any "
        "other, or hold them until a supervisor releases them",
    )
    unassigned: UnassignedSettings = Field(default_factory=lambda: UnassignedSettings())
    oee_mode: Literal["iso", "tpm"] = Field(
        "iso", description="iso: setup and micro-stops are availability losses (ISO 22400-2); "
        "tpm: micro-stops are performance losses")
    oee_gauges_every_s: float = Field(
        30.0, gt=0, le=3600, description="seconds between refreshes of the running shift's OEE "
        "gauges on /metrics (read from the rollups by a service task)")


    @model_validator(mode="after")
    def _reason_categories(self) -> ProductionSettings:
        known = [c.code for c in self.downtime_categories]
        for i, r in enumerate(self.downtime_reasons):
            if r.category is not None and r.category not in known:
                raise ValueError(
                    f"downtime_reasons[{i}].category: {r.category!r} is not one of "
                    f"production.downtime_categories ({', '.join(known) or 'none configured'})")
        return self


class UnassignedSettings(Strict):
    """Machine counts made while no operation runs on the work center (never lost)."""

    auto_assign: bool = Field(
        False, description="assign them to the next operation started on the work center")


class AlertThresholdOverrides(Strict):
    """Alert thresholds of one work center; each key left out takes the plant's (`alerts`)."""

    stalled_cycles: float | None = Field(None, gt=0)
    stalled_minutes: float | None = Field(None, gt=0)
    scrap_rate_pct: float | None = Field(None, ge=0, le=100)
    scrap_window_minutes: float | None = Field(None, gt=0)
    scrap_min_quantity: int | None = Field(None, ge=1)
    down_minutes: float | None = Field(None, gt=0)
    down_error_minutes: float | None = Field(None, gt=0)
    reason_missing_minutes: float | None = Field(None, ge=0)
    disconnected_seconds: float | None = Field(None, gt=0)
    unassigned_minutes: float | None = Field(None, ge=0)
    late_enabled: bool | None = None


class AlertThresholds(Strict):
    """When each kind of alert is raised (plant-wide; a work center may override any key)."""

    stalled_cycles: float = Field(
        20.0, gt=0, description="operation stalled: no count for this many ideal cycles")
    stalled_minutes: float = Field(
        10.0, gt=0, description="operation stalled without an ideal cycle time: no count for this")
    scrap_rate_pct: float = Field(10.0, ge=0, le=100, description="scrap rate above this")
    scrap_window_minutes: float = Field(60.0, gt=0, description="over this rolling window")
    scrap_min_quantity: int = Field(20, ge=1, description="with at least this many parts in it")
    down_minutes: float = Field(5.0, gt=0, description="machine down longer than this")
    down_error_minutes: float | None = Field(
        None, gt=0, description="machine down: raised as a warning after `down_minutes` and "
        "escalated to an error after this; null: an error at once")
    reason_missing_minutes: float = Field(
        2.0, ge=0, description="a downtime without a reason for this long after it began")
    disconnected_seconds: float = Field(30.0, gt=0, description="device disconnected this long")
    unassigned_minutes: float = Field(
        2.0, ge=0, description="unassigned production waiting this long for a supervisor")
    late_enabled: bool = Field(True, description="raise order-late alerts (projected finish)")

    def merged(self, over: AlertThresholdOverrides | None) -> AlertThresholds:
        """These thresholds with a work center's overrides applied."""
        if over is None:
            return self
        return self.model_copy(update=over.model_dump(exclude_none=True))


class WebhookSettings(Strict):
    """One destination of alert webhooks (Standard Webhooks signatures)."""

    name: Name
    url: str = Field(min_length=1, description="where alert events are POSTed")
    secret: SecretStr = Field(description="`whsec_` + base64 key (Standard Webhooks)")
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("a webhook secret starts with 'whsec_' followed by base64")
        try:
            key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError("the part after 'whsec_' is not valid base64") from err
        if len(key) < 16:
            raise ValueError("a webhook key needs at least 16 bytes (24 base64 characters)")
        return value


class HistorySettings(Strict):
    """Memory bounded by what is active, history that does not slow the present (issue 14)."""

    evict_closed_after_s: float | None = Field(
        3600.0, ge=0, description="closed and cancelled orders leave memory this long after "
        "they ended (read from the database when asked for); null: never")
    dedup_window_s: float = Field(
        3600.0, ge=0, description="event ids settled this recently are remembered in memory; "
        "older ones are looked up in the database")
    snapshot_every_s: float | None = Field(
        3600.0, gt=0, description="take a WIP snapshot (the state after the newest event) this "
        "often; `db verify` and retention start from the newest; null: never")
    events_days: float | None = Field(
        None, gt=0, description="delete events older than this (only those a snapshot covers); "
        "null: keep forever")
    events_days_by_kind: dict[str, float] = Field(
        default_factory=dict, description="kept days per event type (e.g. quantity_reported: 30), "
        "overriding events_days")
    rejections_days: float | None = Field(
        None, gt=0, description="delete refused events older than this; null: keep forever")
    export_dir: str | None = Field(
        None, description="folder where purged events and refusals are written first "
        "(<kind>-YYYY-MM-DD.jsonl.gz)")
    check_every_s: float = Field(3600.0, gt=0, description="how often snapshots and retention "
                                 "run")
    snapshot_timeout_s: float = Field(
        1800.0, gt=0, description="the service takes its snapshot in a child process; one that "
        "runs longer is stopped (and tried again next round)")

    @model_validator(mode="after")
    def _export_when_purging(self) -> HistorySettings:
        purging = self.events_days or self.events_days_by_kind or self.rejections_days
        if purging and not self.export_dir:
            raise ValueError("history.export_dir is required when events or rejections are "
                             "purged (what is deleted is exported first)")
        if purging and self.snapshot_every_s is None and (
                self.events_days or self.events_days_by_kind):
            raise ValueError("history.snapshot_every_s is required to purge events (only "
                             "events a snapshot covers are deleted)")
        return self


class AlertSettings(Strict):
    """Alerts: thresholds, how often time-based ones are evaluated, webhooks."""

    evaluate_every_s: float = Field(
        5.0, gt=0, le=300, description="how often the time-based alert kinds are evaluated")
    thresholds: AlertThresholds = Field(default_factory=lambda: AlertThresholds())
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    webhook_keep_days: float | None = Field(
        7.0, gt=0, description="delivered webhook messages are deleted this many days after "
        "delivery (by the history task, every `history.check_every_s`); undelivered ones are "
        "kept until delivered; null: keep forever")


class WorkCenterSettings(Strict):
    """A work center and who counts its production."""

    id: Name
    name: str = ""
    counting: CountingSource = CountingSource.OPERATOR
    ideal_cycle_s: float | None = Field(None, gt=0)
    micro_stop_s: float = Field(
        60.0, ge=0, description="stops shorter than this are micro-stops: no reason is asked")
    scrap_reasons: list[str] | None = Field(
        None, description="codes of production.scrap_reasons offered here (default: all)")
    calendar: Name | None = Field(None, description="name of a shift calendar in `calendars`")
    alerts: AlertThresholdOverrides | None = Field(
        None, description="alert thresholds of this work center (default: the plant's)")


class ModbusDevice(ModbusDeviceConfig):
    """A Modbus TCP PLC."""

    driver: Literal["modbus"]


class OpcUaDevice(OpcUaDeviceConfig):
    """An OPC UA PLC."""

    driver: Literal["opcua"]


Device = Annotated[ModbusDevice | OpcUaDevice, Field(discriminator="driver")]


class TagRef(Strict):
    """A tag of a configured device."""

    device: Name
    tag: str = Field(min_length=1)


CounterBits = Literal[16, 32, 64]
#: Width of a counter held in a tag of each integer data type (lower-cased type names).
COUNTER_BITS: dict[str, CounterBits] = {
    "int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64,
}
#: Width of a counter whose tag declares no integer type (OPC UA tags, float tags).
DEFAULT_COUNTER_BITS: CounterBits = 32


class CounterRule(TagRef):
    """A PLC counter whose increments are good, scrap or rework units."""

    counts: Literal["good", "scrap", "rework"] = "good"
    scrap_reason: str | None = None
    bits: CounterBits | None = Field(
        None,
        description="width of the PLC counter (it rolls over to 0 after 2**bits - 1); default: "
        "the tag's data_type (16 for int16/uint16, 32 for int32/uint32, 64 for int64/uint64), "
        "32 for a tag without an integer type (OPC UA); a contradicting value is an error",
    )
    on_reset: Literal["count", "baseline"] = Field(
        "count", description="after a reset (a drop that is no rollover): count the new value "
        "as produced since the reset (at most max_delta), or only re-baseline"
    )
    max_delta: int = Field(
        10_000, ge=1,
        description="the most parts the counter plausibly advances between two readings: a "
        "larger forward jump (e.g. after a long outage) is still counted, whole, but as "
        "unassigned production of the work center for a supervisor to assign or write off",
    )
    rollover_window: int | None = Field(
        None, ge=1,
        description="a drop is a rollover only when the parts across the wrap point (from the "
        "last reading up to 2**bits, then from 0 to the new one) are at most this many; any "
        "other drop is a reset; default: max_delta, but at most 1/64 of the counter's range "
        "(1,024 for 16 bits), so that a reset from a high value is not taken for a wrap",
    )

    @model_validator(mode="after")
    def _window_within_max_delta(self) -> CounterRule:
        if self.rollover_window is not None and self.rollover_window > self.max_delta:
            raise ValueError(
                f"rollover_window {self.rollover_window} exceeds max_delta {self.max_delta}")
        return self

    @property
    def width(self) -> int:
        """The counter's bits: `bits`, which Settings resolves from the tag's data type."""
        return self.bits or DEFAULT_COUNTER_BITS

    @property
    def effective_rollover_window(self) -> int:
        """Most parts across the wrap point for a drop to count as a rollover."""
        if self.rollover_window is not None:
            return self.rollover_window
        return min(self.max_delta, (1 << self.width) // 64)


class StateRule(TagRef):
    """A PLC state code mapped to running / idle / down / setup / blocked / starved."""

    map: dict[int, MachineState] = Field(
        default_factory=lambda: {
            1: MachineState.RUNNING,
            2: MachineState.IDLE,
            3: MachineState.DOWN,
            4: MachineState.SETUP,
            5: MachineState.BLOCKED,
            6: MachineState.STARVED,
        }
    )


class TriggerRule(TagRef):
    """A bool tag whose edge becomes an operation command on the work center."""

    edge: Literal["rising", "falling"] = "rising"
    action: Literal["pause", "resume", "complete"]


class ScanPattern(Strict):
    """A barcode pattern; named groups become fields (order, operation, badge, serial, lot)."""

    kind: Literal["order_operation", "operator", "serial", "lot"]
    pattern: str

    @model_validator(mode="after")
    def _compiles(self) -> ScanPattern:
        try:
            re.compile(self.pattern)
        except re.error as err:
            raise ValueError(f"pattern does not compile: {err}") from err
        return self


DEFAULT_SCAN_PATTERNS = [
    ScanPattern(kind="order_operation", pattern=r"^WO:(?P<order>[^/]+)/(?P<operation>\d+)$"),
    ScanPattern(kind="operator", pattern=r"^OP:(?P<badge>\S+)$"),
    ScanPattern(kind="serial", pattern=r"^SN:(?P<serial>\S+)$"),
    ScanPattern(kind="lot", pattern=r"^LOT:(?P<material>[^/]+)/(?P<lot>\S+)$"),
]


class RuleSettings(Strict):
    """How the signals of one work center become events."""

    work_center: Name
    counters: list[CounterRule] = Field(default_factory=list)
    state: StateRule | None = None
    triggers: list[TriggerRule] = Field(default_factory=list)


class Settings(BaseSettings):
    """The whole plant configuration."""

    model_config = SettingsConfigDict(
        env_prefix="MES_EDGE_", env_nested_delimiter="__", extra="forbid"
    )

    site: Name
    site_timezone: str | None = Field(
        None, description="IANA time zone of the plant (posting dates, shifts); default: host's")

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from err
        return value
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttConfig | None = None
    api: ApiSettings = ApiSettings()
    security: SecuritySettings = Field(default_factory=lambda: SecuritySettings())
    erp: ErpSettings = ErpSettings()
    production: ProductionSettings = ProductionSettings()
    work_centers: list[WorkCenterSettings] = Field(min_length=1)
    devices: list[Device] = Field(default_factory=list)
    rules: list[RuleSettings] = Field(default_factory=list)
    scan_patterns: list[ScanPattern] = Field(default_factory=lambda: list(DEFAULT_SCAN_PATTERNS))
    calendars: dict[Name, CalendarSettings] = Field(
        default_factory=dict, description="shift calendars by name (see docs/config.md)")
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings())
    history: HistorySettings = Field(default_factory=lambda: HistorySettings())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (MES_EDGE_DATABASE__URL=...), e.g. for secrets.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _references(self) -> Settings:
        wcs = [w.id for w in self.work_centers]
        _unique("work_centers", wcs)
        _unique("devices", [d.name for d in self.devices])
        # Tag name -> its declared data type (None: the driver's tags declare none, e.g. OPC UA).
        tags = {d.name: {t.name: getattr(t, "data_type", None) for t in d.tags}
                for d in self.devices}
        # One rule per (device, tag) across all work centers: two trackers on one counter would
        # derive the same event ids, and the second one's events would be lost as duplicates.
        used: dict[tuple[str, str], str] = {}
        for i, rule in enumerate(self.rules):
            if rule.work_center not in wcs:
                raise ValueError(
                    f"rules[{i}].work_center: unknown work center {rule.work_center!r}"
                    f" (known: {', '.join(wcs)})"
                )
            refs: list[tuple[str, TagRef]] = [
                (f"counters[{j}]", c) for j, c in enumerate(rule.counters)
            ]
            refs += [(f"triggers[{j}]", t) for j, t in enumerate(rule.triggers)]
            if rule.state:
                refs.append(("state", rule.state))
            for where, ref in refs:
                if ref.device not in tags:
                    raise ValueError(f"rules[{i}].{where}.device: unknown device {ref.device!r}")
                if ref.tag not in tags[ref.device]:
                    raise ValueError(
                        f"rules[{i}].{where}.tag: device {ref.device!r} has no tag {ref.tag!r}"
                    )
                first = used.setdefault((ref.device, ref.tag), f"rules[{i}].{where}")
                if first != f"rules[{i}].{where}":
                    raise ValueError(
                        f"rules[{i}].{where}.tag: {ref.device}/{ref.tag} already has a rule "
                        f"({first}); a tag may feed one rule only"
                    )
                if isinstance(ref, CounterRule):
                    _resolve_counter_bits(f"rules[{i}].{where}", ref, tags[ref.device][ref.tag])
        _work_center_reasons(self)
        check_work_center_calendars(self.calendars, [w.calendar for w in self.work_centers])
        return self


def _work_center_reasons(settings: Settings) -> None:
    """A work center's scrap reasons must be among the plant's."""
    known = [r.code for r in settings.production.scrap_reasons]
    for i, wc in enumerate(settings.work_centers):
        for j, code in enumerate(wc.scrap_reasons or []):
            if code not in known:
                raise ValueError(
                    f"work_centers[{i}].scrap_reasons[{j}]: {code!r} is not one of "
                    f"production.scrap_reasons ({', '.join(known) or 'none configured'})")


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ValueError(f"{what}[{i}]: {n!r} is defined twice")
        seen.add(n)


def _resolve_counter_bits(path: str, rule: CounterRule, data_type: object) -> None:
    """Set a counter rule's default `bits` from its tag's data type; refuse a contradiction."""
    kind = None if data_type is None else str(getattr(data_type, "value", data_type)).lower()
    if kind in ("bool", "boolean", "string"):
        raise ValueError(
            f"{path}.tag: {rule.device}/{rule.tag} is a {kind} tag; a counter needs an integer tag")
    width = COUNTER_BITS.get(kind or "")
    if rule.bits is None:
        rule.bits = width or DEFAULT_COUNTER_BITS
    elif width is not None and rule.bits != width:
        raise ValueError(
            f"{path}.bits: {rule.bits} contradicts the {kind} tag {rule.device}/{rule.tag}, "
            f"a {width}-bit counter (leave bits out to take the tag's width)")
    if rule.effective_rollover_window > 1 << (rule.width - 1):
        raise ValueError(
            f"{path}.rollover_window: {rule.rollover_window} is more than half the range of a "
            f"{rule.width}-bit counter")
