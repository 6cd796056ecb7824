"""The daemon's configuration: YAML, typed, validated once at start, frozen.

A bad value stops the start with its key path, the value and what was expected (exit status 2).
Validators do no I/O; files named here are opened by the modules that use them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lineside.daemon.core.roi import RoiRule
from lineside.deploy.manifest import Verdict


class ConfigError(Exception):
    """A configuration that cannot be used; the message is one line for a person."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PixelFormat = Literal["Mono8", "BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8", "RGB8", "BGR8"]


class GenICam(_Frozen):
    """A GigE Vision or USB3 Vision camera through Aravis (the `genicam` extra; docs/cameras.md)."""

    camera: str | None = Field(
        default=None, description="serial number, device id or IP address; unset: the first found"
    )
    pixel_format: PixelFormat = "Mono8"
    roi: tuple[int, int, int, int] | None = Field(
        default=None, description="x, y, width, height on the sensor; unset: as the camera is"
    )
    exposure_us: float | None = Field(default=None, gt=0)
    gain_db: float | None = Field(default=None, ge=0)
    frame_rate: float | None = Field(default=None, gt=0, description="free_run only")
    trigger: Literal["free_run", "software", "line"] = Field(
        default="free_run",
        description="software: a frame per request (trigger.mode mqtt or plc); line: a frame "
        "per pulse on trigger_line",
    )
    trigger_line: str = Field(default="Line0", pattern=r"^[A-Za-z0-9_]+$")
    timeout_s: float = Field(
        default=2.0, gt=0, description="no frame this long: the camera is asked it is still there"
    )


class Source(_Frozen):
    """Where frames come from."""

    kind: Literal["device", "stream", "video", "folder", "genicam"]
    device: int | None = Field(default=None, ge=0, description="V4L2 index, for kind device")
    url: str | None = Field(default=None, description="rtsp:// or http(s):// URL, for kind stream")
    path: Path | None = Field(default=None, description="file or folder, for video and folder")
    loop: bool = False
    fps: float | None = Field(default=None, gt=0, description="pace for files; None = native")
    open_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=2.0, gt=0)
    failed_after: int = Field(default=5, ge=1, description="failed attempts before 'failed'")
    genicam: GenICam | None = Field(default=None, description="for kind genicam")

    @model_validator(mode="after")
    def _needs_its_field(self) -> Source:
        needed = {
            "device": "device",
            "stream": "url",
            "video": "path",
            "folder": "path",
            "genicam": "genicam",
        }[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"source kind '{self.kind}' needs '{needed}'")
        if self.kind == "stream" and self.url.split("://")[0] not in ("rtsp", "http", "https"):
            raise ValueError(f"stream url must start with rtsp://, http:// or https://: {self.url}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self


class Trigger(_Frozen):
    mode: Literal["continuous", "interval", "mqtt", "plc"] = "continuous"
    max_fps: float | None = Field(default=None, gt=0, description="continuous: cap, None = no cap")
    interval_s: float = Field(default=1.0, gt=0, description="interval: seconds between frames")
    frame_timeout_s: float = Field(default=5.0, gt=0, description="mqtt: wait for a fresh frame")


class ModelSource(_Frozen):
    path: Path = Field(
        description="a bundle file, or a folder: its newest .lsb is used and new ones dropped "
        "there are checked and swapped in"
    )
    store: Path = Field(
        default=Path("/var/lib/lineside/bundles"),
        description="where the daemon keeps its active and previous bundles",
    )
    trusted_keys: Path | None = Field(
        default=None, description="folder of *.pub keys; bundles and rollbacks must be signed"
    )
    allow_unsigned: bool = Field(
        default=False,
        description="accept unsigned bundles and rollbacks from anyone on the broker; only "
        "with this set may trusted_keys be left out",
    )
    max_bundle_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    watch_interval_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _signed_unless_told(self) -> ModelSource:
        if self.trusted_keys is None and not self.allow_unsigned:
            raise ValueError(
                "trusted_keys is required (a folder of *.pub keys from lineside-deploy keygen); "
                "set allow_unsigned: true to accept unsigned bundles from anyone on the broker"
            )
        if self.trusted_keys is not None and self.allow_unsigned:
            raise ValueError("give trusted_keys or allow_unsigned: true, not both")
        return self


class Tls(_Frozen):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


class Mqtt(_Frozen):
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: Tls | None = None
    username: str | None = None
    password_file: Path | None = None
    password_credential: str | None = Field(
        default=None, description="name of a systemd credential in $CREDENTIALS_DIRECTORY"
    )
    client_id: str | None = None
    qos: Literal[0, 1, 2] = 1
    prefix: str = "lineside"
    keepalive_s: int = Field(default=30, ge=5)
    queue_max: int = Field(default=1000, ge=10, description="messages held in memory")

    @model_validator(mode="after")
    def _one_password_source(self) -> Mqtt:
        if self.password_file and self.password_credential:
            raise ValueError("give password_file or password_credential, not both")
        if (self.password_file or self.password_credential) and not self.username:
            raise ValueError("a password needs a username")
        if "#" in self.prefix or "+" in self.prefix:
            raise ValueError(f"prefix may not contain MQTT wildcards: {self.prefix}")
        return self


class Heatmap(_Frozen):
    enabled: bool = True
    width: int = Field(default=640, ge=32, le=4096)
    quality: int = Field(default=80, ge=10, le=100)
    verdicts: tuple[Verdict, ...] = ("review", "fail")
    every_nth_pass: int = Field(default=0, ge=0, description="also every Nth pass; 0 = never")


class Stats(_Frozen):
    interval_s: float = Field(default=10.0, gt=0)


class Drift(_Frozen):
    """The drift monitor: EWMA charts against the bundle's reference (docs/drift.md)."""

    enabled: bool = True
    weight: float = Field(default=0.05, gt=0, le=1, description="EWMA weight of each new part")
    limit_sigma: float = Field(default=4.0, gt=0, description="control limit, in EWMA sigmas")
    clear_after: int = Field(default=50, ge=1, description="parts inside before it clears")


class Review(_Frozen):
    """The review queue: parts kept on the box for a person to label (docs/review.md)."""

    enabled: bool = True
    path: Path | None = Field(default=None, description="unset: `review` beside the outbox")
    max_items: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=500_000_000, ge=100_000)
    reserve_share: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="share of its file system the store always leaves free (the outbox and the "
        "model store may share it): at less, it gives up its oldest parts and keeps no new one",
    )
    max_age_days: float = Field(default=30.0, gt=0)
    fail_every: int = Field(default=10, ge=0, description="also keep every Nth fail; 0 = none")
    pass_every: int = Field(default=0, ge=0, description="also keep every Nth pass; 0 = none")


class Ui(_Frozen):
    """The operator's page served by the daemon (extra `lineside[ui]`, docs/station-page.md)."""

    bind: str = Field(default="127.0.0.1", description="default: this box only")
    port: int = Field(default=8080, ge=1, le=65535)
    # Log in as operators ("name: password" lines) or with one token, from a file or credential.
    accounts_file: Path | None = None
    accounts_credential: str | None = None
    token_file: Path | None = None
    token_credential: str | None = None
    trend_minutes: float = Field(default=10.0, gt=0, le=240)
    refresh_s: float = Field(default=0.5, ge=0.1, description="how often the page is updated")
    outbox_alarm_share: float = Field(default=0.1, gt=0, le=1)  # of max_rows: a banner

    @model_validator(mode="after")
    def _one_login_source(self) -> Ui:
        sources = ("accounts_file", "accounts_credential", "token_file", "token_credential")
        if sum(getattr(self, s) is not None for s in sources) != 1:
            raise ValueError(f"give one of {', '.join(sources)}")
        return self


class Outbox(_Frozen):
    path: Path = Path("/var/lib/lineside/outbox.db")
    max_rows: int = Field(default=100_000, ge=10)
    max_bytes: int = Field(default=200_000_000, ge=10_000)
    fsync_each: bool = Field(
        default=False, description="fsync every inspection: survives power cuts, costs ~1 ms"
    )


# MQTT topic levels may not hold wildcards or separators (Sparkplug ids, discovery ids).
TOPIC_LEVEL = r"^[^/#+\s]+$"


class Sparkplug(_Frozen):
    """Sparkplug B edge node: the station as an edge node with one device (the inspection)."""

    group_id: str = Field(pattern=TOPIC_LEVEL, max_length=64)
    edge_node_id: str | None = Field(
        default=None, pattern=TOPIC_LEVEL, max_length=64, description="unset: the station name"
    )
    device_id: str = Field(default="inspection", pattern=TOPIC_LEVEL, max_length=64)
    health_interval_s: float = Field(
        default=1.0, gt=0, description="how often camera, fps and outbox changes are sent"
    )


class HomeAssistant(_Frozen):
    """Home Assistant MQTT discovery; `enabled: false` removes what was announced."""

    enabled: bool = True
    discovery_prefix: str = Field(default="homeassistant", pattern=TOPIC_LEVEL)


class OpcUa(_Frozen):
    """An OPC UA server with one object for the station (needs the `opcua` extra)."""

    endpoint: str = Field(
        default="opc.tcp://127.0.0.1:4840/lineside/",
        pattern=r"^opc\.tcp://",
        description="default: loopback only",
    )
    certificate: Path = Field(description="the server's certificate (DER or PEM)")
    private_key: Path = Field(description="the server's private key (PEM)")
    trusted_clients: Path = Field(description="folder of client certificates allowed to connect")
    allow_anonymous: bool = Field(
        default=False, description="also take clients without a trusted certificate identity"
    )
    namespace: str = "urn:lineside"


Action = Literal["accept", "reject", "divert"]


class Plc(_Frozen):
    """The line's controller over Modbus TCP (needs the `plc` extra): it triggers each part and
    reads the verdict and the action back (docs/plc.md). Modbus has no authentication: bind it
    to the machine network the PLC is on, never to an office or plant-wide one."""

    protocol: Literal["modbus", "opcua"] = Field(
        default="modbus",
        description="modbus: a Modbus TCP server here; opcua: Trigger and PartId on the OPC UA "
        "server of the opcua section",
    )
    host: str = Field(default="127.0.0.1", description="address to listen on; default loopback")
    port: int = Field(default=1502, ge=1, le=65535, description="502 needs root or a capability")
    deadline_ms: float = Field(
        default=200.0, gt=0, description="trigger to answer; later, the part is rejected"
    )
    actions: dict[Verdict, Action] = Field(
        default={"pass": "accept", "review": "divert", "fail": "reject"},
        description="what the line does with each verdict",
    )
    reject_pulse_ms: float | None = Field(
        default=None, gt=0, description="reject and divert outputs fall after this; None: held"
    )

    @model_validator(mode="after")
    def _fails_safe(self) -> Plc:
        if set(self.actions) != {"pass", "review", "fail"}:
            raise ValueError("actions needs one action for each of pass, review and fail")
        if self.actions["fail"] != "reject":
            raise ValueError("a failed part is rejected: actions.fail must be 'reject'")
        if self.actions["review"] == "accept":
            raise ValueError("a part for review is diverted or rejected, never accepted")
        return self


class Config(_Frozen):
    station: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=64)
    source: Source
    trigger: Trigger = Trigger()
    model: ModelSource
    rois: tuple[RoiRule, ...] = ()
    mqtt: Mqtt = Mqtt()
    heatmap: Heatmap = Heatmap()
    stats: Stats = Stats()
    drift: Drift = Drift()
    review: Review = Review()
    ui: Ui | None = None
    outbox: Outbox = Outbox()
    sparkplug: Sparkplug | None = None
    homeassistant: HomeAssistant | None = None
    opcua: OpcUa | None = None
    plc: Plc | None = None
    threads: int | None = Field(
        default=None, ge=1, le=64, description="inference threads; unset: the box's cores, up to 4"
    )

    @model_validator(mode="after")
    def _plc_triggers(self) -> Config:
        if (self.trigger.mode == "plc") != (self.plc is not None):
            raise ValueError(
                "trigger.mode 'plc' and a plc section go together: give both or neither"
            )
        return self


def parse(text: str, origin: str = "config") -> Config:
    """YAML text -> Config, or ConfigError naming the key path, the value and the expectation."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        line = f" (line {where.line + 1}: {problem})" if where else ""
        raise ConfigError(f"{origin}: not valid YAML{line}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level")
    try:
        return Config.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {describe(exc.errors()[0])}") from None


def load(path: Path) -> Config:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (expected YAML in UTF-8)") from None
    return parse(text, str(path))


def describe(err: dict) -> str:
    """One pydantic error as `key.path: 'value' is not X` / `key.path: unknown key`."""
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: missing (required)"
    if kind in ("value_error", "assertion_error"):
        return f"{where}: {msg.removeprefix('Value error, ')}"
    value = err.get("input")
    if msg.startswith("Input should be "):
        return f"{where}: {value!r} is not {msg.removeprefix('Input should be ')}"
    return f"{where}: {value!r}: {msg[0].lower()}{msg[1:]}"


def read_secret(key: str, file: Path | None, credential: str | None) -> str | None:
    """A password or token from its file, or from a systemd credential (`credential` names it in
    $CREDENTIALS_DIRECTORY); None when neither is given. Never from the command line. `key` is
    the setting, for the error."""
    if file is not None:
        path, key = Path(file), f"{key}_file"
    elif credential is not None:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(f"{key}_credential: $CREDENTIALS_DIRECTORY is not set")
        path, key = Path(directory) / credential, f"{key}_credential"
    else:
        return None
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(f"{key}: {path}: cannot read ({reason})") from None
