"""Which sinks a station feeds, from its configuration.

The Lineside topics always; Sparkplug B, Home Assistant discovery, OPC UA and the PLC when their
sections are present. Sparkplug, OPC UA and the PLC need optional packages (their extras), so
their modules are imported only when configured; `preflight` has already refused a configuration
whose extra is missing. Sinks that do network I/O per inspection run behind a bounded queue.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from lineside.daemon.capture.triggers import OnCommand
from lineside.daemon.config import Config
from lineside.daemon.sinks import Queued, Sink
from lineside.daemon.sinks.drift import DriftSink
from lineside.daemon.sinks.exported import Health
from lineside.daemon.sinks.homeassistant import Discovery
from lineside.daemon.sinks.mqtt_topics import TopicsSink
from lineside.daemon.sinks.review import ReviewSink, ReviewStore, folder_of
from lineside.daemon.telemetry import Telemetry
from lineside.daemon.transport.connection import Connection


def _optional(module: str):
    """A sink module whose package is an optional extra (preflight.EXTRAS checked it is there)."""
    return importlib.import_module(f"lineside.daemon.sinks.{module}")


def drift(cfg: Config, conn: Connection) -> DriftSink | None:
    """The drift monitor, which the station also reads for `stats` and the exported values."""
    return DriftSink(cfg.drift, conn.link) if cfg.drift.enabled else None


def review(cfg: Config) -> ReviewStore | None:
    """The review queue, which the station also answers `cmd/label` from."""
    if not cfg.review.enabled:
        return None
    return ReviewStore(cfg.review, folder_of(cfg.review.path, cfg.outbox.path))


def plc(cfg: Config, turn: OnCommand, health: Health, sinks: list[Sink]):
    """The PLC's link, appended to `sinks` (or None): it feeds the trigger queue and takes every
    result on the frame thread, never queued, so no answer is dropped. Over Modbus TCP (the
    `plc` extra, checked by preflight) or on the OPC UA server `build` made."""
    if cfg.plc is None:
        return None
    if cfg.plc.protocol == "opcua":
        ua = next(s.sink for s in sinks if isinstance(s, Queued) and s.name == "opcua")
        link = _optional("opcua_plc").OpcUaPlc(cfg.plc, turn, ua)
    else:
        link = _optional("modbus").ModbusServer(cfg.plc, turn, health)
    sinks.append(link)
    return link


def build(
    cfg: Config,
    conn: Connection,
    telemetry: Telemetry,
    health: Health,
    monitor: DriftSink | None,
    store: ReviewStore | None,
) -> list[Sink]:
    sinks: list[Sink] = [TopicsSink(conn.link, conn.writer, cfg.heatmap, cfg.mqtt.qos)]
    if monitor is not None:
        sinks.append(Queued(monitor, "drift"))
    if store is not None:
        sinks.append(Queued(ReviewSink(store), "review"))
    sinks.append(
        Discovery(
            cfg.homeassistant,
            conn.link,
            conn.writer,
            cfg.station,
            cfg.outbox.path.parent,
            metadata.version("lineside"),
        )
    )
    if cfg.sparkplug is not None:
        node = _optional("sparkplug").EdgeNode(
            cfg.sparkplug, cfg.mqtt, cfg.station, telemetry, health
        )
        sinks.append(Queued(node, "sparkplug"))
    if cfg.opcua is not None:
        server = _optional("opcua").Server(cfg.opcua, cfg.station, telemetry, health)
        sinks.append(Queued(server, "opcua"))
    return sinks
