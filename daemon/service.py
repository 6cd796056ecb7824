"""`lineside-daemon run`: the long-running line-side service.

The lifecycle is a stack (outbox, MQTT link, camera), unwound in reverse on stop or reload.
SIGTERM/SIGINT finish the current frame, flush, publish `stopped` and exit 0; SIGHUP reloads
the configuration and the bundle (a bad new configuration is logged and the old one kept).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lineside.daemon import commands, config, triggers
from lineside.daemon.bundle_store import BundleStore, Loaded
from lineside.daemon.camera import Camera
from lineside.daemon.config import Config
from lineside.daemon.core.pipeline import Frame, Inspection, inspect_frame
from lineside.daemon.core.preprocess import FrameError
from lineside.daemon.model_watch import FolderWatch
from lineside.daemon.notify import Notifier
from lineside.daemon.runtime import Model, ModelError
from lineside.daemon.sinks import mqtt_topics
from lineside.daemon.sinks.mqtt import Link
from lineside.daemon.sinks.outbox import Outbox, Writer
from lineside.deploy.bundle import Bundle, BundleError, sha256_hex

log = logging.getLogger(__name__)


def resolve_bundle(path: Path) -> Path:
    """A bundle file as given, or the newest `.lsb` in a model folder."""
    path = Path(path)
    if path.is_dir():
        bundles = sorted(path.glob("*.lsb"), key=lambda p: (p.stat().st_mtime, p.name))
        if not bundles:
            raise BundleError(f"{path}: no .lsb bundle in the model folder")
        return bundles[-1]
    return path


@dataclass
class Counters:
    started: float = field(default_factory=time.monotonic)
    inspected: int = 0
    frame_errors: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=500))
    window_start: float = field(default_factory=time.monotonic)
    window_inspected: int = 0
    window_captured: int = 0


class Signals:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())


class Station:
    """One configuration running: what the frame loop needs, and the command handler."""

    def __init__(self, cfg: Config, store: BundleStore, active: Loaded, signals: Signals) -> None:
        self.cfg, self.store, self.active, self.signals = cfg, store, active, signals
        self._pending: tuple[Loaded, str, str | None, str | None] | None = None
        self._pending_lock = threading.Lock()
        self.worker: concurrent.futures.ThreadPoolExecutor | None = None
        self.turn = triggers.make(cfg.trigger)
        self.heatmaps = mqtt_topics.HeatmapPolicy(cfg.heatmap)
        self.counters = Counters()
        self.outbox: Outbox | None = None
        self.writer: Writer | None = None
        self.link: Link | None = None
        self.camera: Camera | None = None

    # Called on paho's network thread: parse, answer, and hand real work to the frame loop.
    def on_command(self, name: str, payload: bytes) -> None:
        try:
            cmd = commands.parse(name, payload)
        except commands.CommandError as exc:
            self._reply(name, getattr(exc, "request_id", None), ok=False, error=str(exc))
            return
        if cmd.name == "trigger":
            if not isinstance(self.turn, triggers.OnCommand):
                self._reply(
                    cmd.name,
                    cmd.id,
                    ok=False,
                    error=f"trigger mode is '{self.cfg.trigger.mode}', not 'mqtt'",
                )
            elif not self.turn.push(triggers.Request(cmd.id, cmd.part_id, time.time())):
                self._reply(cmd.name, cmd.id, ok=False, error="too many pending triggers")
        elif cmd.name == "reload":
            self._reply(cmd.name, cmd.id, ok=True, message="reloading configuration and bundle")
            self.signals.reload.set()
        elif cmd.name == "model":
            self.worker.submit(self.install, cmd.body, "mqtt", None)
        else:
            self.worker.submit(self.rollback, cmd.id)

    @property
    def bundle(self) -> Bundle:
        return self.active.bundle

    @property
    def model(self) -> Model:
        return self.active.model

    # Installs run on the worker thread, so frames keep flowing while a bundle is checked.
    def install(self, data: bytes, origin: str, request_id: str | None) -> None:
        sha = sha256_hex(data)
        try:
            loaded = self.store.install(data)
        except (BundleError, ModelError) as exc:
            log.warning(
                "bundle from %s refused, %s keeps serving: %s", origin, self.active.label, exc
            )
            if origin == "mqtt":
                self._reply("model", request_id, ok=False, sha256=sha, error=str(exc))
            return
        with self._pending_lock:
            self._pending = (loaded, "model", request_id, sha if origin == "mqtt" else None)

    def rollback(self, request_id: str | None) -> None:
        try:
            loaded = self.store.rollback()
        except (BundleError, ModelError) as exc:
            log.warning("rollback refused: %s", exc)
            self._reply("rollback", request_id, ok=False, error=str(exc))
            return
        with self._pending_lock:
            self._pending = (loaded, "rollback", request_id, None)

    def _swap_if_pending(self) -> None:
        """Between two frames: the new model takes over whole, or not at all."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        loaded, command, request_id, sha = pending
        previous, self.active = self.active, loaded
        log.info("%s: now serving %s (was %s)", command, loaded.label, previous.label)
        self.publish_model()
        if command == "rollback" or sha is not None:
            extra = {"sha256": sha} if sha else {}
            self._reply(
                command,
                request_id,
                ok=True,
                message=f"now serving {loaded.label}",
                model=_name_version(loaded),
                previous=_name_version(previous),
                **extra,
            )

    def publish_model(self) -> None:
        self.link.publish_state("model", mqtt_topics.json_bytes(mqtt_topics.model_info(self.bundle)), 1)

    def _reply(self, command: str, request_id: str | None, ok: bool, **fields) -> None:
        if self.link:
            self.link.publish_now("cmd/reply", commands.reply(command, request_id, ok, **fields), 1)

    def serve(self, notifier: Notifier, exit_at_end: bool) -> str:
        """The frame loop; returns 'stop', 'reload' or 'end'."""
        ready = False
        last_stats = time.monotonic()
        while True:
            if self.signals.stop.is_set():
                return "stop"
            if self.signals.reload.is_set():
                return "reload"
            self._swap_if_pending()
            req = self.turn.wait(self.signals.stop, timeout=0.5)
            progressed = False
            if req is not None:
                progressed = self._inspect(req)
                if progressed and not ready:
                    notifier.ready(f"inspecting with {self.bundle.manifest.model.name}")
                    ready = True
            if progressed or self.camera.state != "ok" or self.cfg.trigger.mode != "continuous":
                notifier.watchdog()
            if time.monotonic() - last_stats >= self.cfg.stats.interval_s:
                self._publish_stats(notifier)
                last_stats = time.monotonic()
            if exit_at_end and self.camera.state == "finished" and not progressed:
                return "end"

    def _inspect(self, req: triggers.Request) -> bool:
        wait = self.cfg.trigger.frame_timeout_s if req.id or req.at else 0.5
        frame = self.camera.next_frame(timeout=wait, newer_than=req.at)
        if frame is None:
            if req.id is not None or req.part_id is not None:
                self._reply("trigger", req.id, ok=False, error="no fresh frame from the camera")
            return False
        try:
            insp = inspect_frame(
                frame.image, self.bundle.manifest, self.model.reconstruct, self.cfg.rois
            )
        except FrameError as exc:
            self.counters.frame_errors += 1
            if self.counters.frame_errors in (1, 10, 100) or self.counters.frame_errors % 1000 == 0:
                log.error("frame refused (%d so far): %s", self.counters.frame_errors, exc)
            if req.id is not None:
                self._reply("trigger", req.id, ok=False, error=str(exc))
            return False
        seq = self.outbox.next_seq()
        self._send(frame, insp, seq, req.part_id)
        c = self.counters
        c.inspected += 1
        c.window_inspected += 1
        c.latencies.append(sum(insp.latency_ms.values()))
        if req.id is not None:
            self._reply(
                "trigger",
                req.id,
                ok=True,
                seq=seq,
                part_id=req.part_id,
                verdict=insp.verdict,
                score=insp.score,
            )
        return True

    def _send(self, frame: Frame, insp: Inspection, seq: int, part_id: str | None) -> None:
        qos = self.cfg.mqtt.qos
        payload = mqtt_topics.inspection_payload(
            insp, seq, frame, part_id, self.bundle, self.cfg.station
        )
        self.writer.put(
            [
                (self.link.topic("inspection"), payload, qos, False),
                (self.link.topic("verdict"), insp.verdict.encode(), qos, True),
            ]
        )
        self.link.publish_state("score", f"{insp.score:.6g}", 0)
        if self.heatmaps.wants(insp.verdict):
            jpeg = self.heatmaps.encode(
                frame.image, insp, self.bundle.manifest.postprocess.pixel_threshold
            )
            self.link.publish_state("heatmap", jpeg, 0)

    def stats(self) -> dict:
        c, cam = self.counters, self.camera
        now = time.monotonic()
        span = max(now - c.window_start, 1e-6)
        lat = np.array(c.latencies) if c.latencies else np.zeros(1)
        doc = {
            "v": mqtt_topics.PAYLOAD_VERSION,
            "uptime_s": round(now - c.started, 1),
            "capture_fps": round((cam.captured - c.window_captured) / span, 2),
            "inspected_fps": round(c.window_inspected / span, 2),
            "inspected": c.inspected,
            "dropped_frames": cam.dropped,
            "frame_errors": c.frame_errors,
            "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 95, 99)},
            "outbox_depth": self.outbox.depth() + self.writer.pending(),
            "outbox_dropped": self.outbox.dropped(),
            "mqtt_connected": self.link.connected,
            "camera": cam.state,
            "model": {
                "name": self.bundle.manifest.model.name,
                "version": self.bundle.manifest.model.version,
            },
        }
        c.window_start, c.window_inspected, c.window_captured = now, 0, cam.captured
        return doc

    def _publish_stats(self, notifier: Notifier) -> None:
        doc = self.stats()
        line = (
            f"camera {doc['camera']}, {doc['inspected_fps']} fps inspected, "
            f"{doc['dropped_frames']} dropped, outbox {doc['outbox_depth']}, "
            f"mqtt {'up' if doc['mqtt_connected'] else 'down'}"
        )
        log.info("stats: %s", line)
        notifier.status(line)
        self.link.publish_now("stats", mqtt_topics.json_bytes(doc), 0)


def _name_version(loaded: Loaded) -> dict:
    m = loaded.bundle.manifest.model
    return {"name": m.name, "version": m.version}


def open_store(cfg: Config) -> tuple[BundleStore, Loaded]:
    m = cfg.model
    store = BundleStore(m.store, m.trusted_keys, m.max_bundle_bytes, cfg.threads)
    # A folder means "the box manages it": what was last installed (pushed or dropped) runs.
    # A file means "run exactly this": it becomes the active bundle.
    prefer_active = Path(m.path).is_dir()
    return store, store.startup(resolve_bundle(m.path), prefer_active)


def run(config_path: Path, exit_at_end: bool = False) -> int:
    """Run until SIGTERM/SIGINT (exit 0). Config or bundle errors at start raise."""
    cfg = config.load(config_path)
    store, active = open_store(cfg)
    signals = Signals()
    signals.install()
    notifier = Notifier()
    while True:
        station = Station(cfg, store, active, signals)
        outcome = _run_station(station, notifier, exit_at_end)
        if outcome != "reload":
            return 0
        signals.reload.clear()
        cfg, store, active = _reloaded(config_path, cfg, store, station.active)


def _run_station(station: Station, notifier: Notifier, exit_at_end: bool) -> str:
    cfg = station.cfg
    outcome = "stop"
    with contextlib.ExitStack() as stack:
        o = cfg.outbox
        station.outbox = Outbox(o.path, o.max_rows, o.max_bytes, o.fsync_each)
        stack.callback(station.outbox.close)
        station.link = Link(cfg.mqtt, cfg.station, station.outbox, station.on_command)
        station.link.start()
        stack.callback(lambda: station.link.stop("stopped" if outcome != "reload" else None))
        stack.callback(lambda: station.link.flush(timeout_s=2.0))
        station.writer = Writer(station.outbox, station.link.wake)
        stack.callback(station.writer.close)  # stored before the flush that follows it
        station.publish_model()
        station.worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="install")
        stack.callback(lambda: station.worker.shutdown(wait=True, cancel_futures=True))
        if Path(cfg.model.path).is_dir():
            watch = FolderWatch(
                cfg.model.path,
                cfg.model.watch_interval_s,
                lambda path, data: station.worker.submit(station.install, data, path.name, None),
                newer_than_ns=station.store.active_path.stat().st_mtime_ns,
            )
            watch.start()
            stack.callback(watch.stop)
        station.camera = Camera(cfg.source)
        station.camera.start()
        stack.callback(station.camera.stop)
        log.info(
            "station %s running: %s source, %s trigger, model %s %s",
            cfg.station,
            cfg.source.kind,
            cfg.trigger.mode,
            station.bundle.manifest.model.name,
            station.bundle.manifest.model.version,
        )
        outcome = station.serve(notifier, exit_at_end)
        if outcome == "reload":
            notifier.status("reloading")
        else:
            notifier.stopping()
        log.info("%s: finishing", outcome)
    return outcome


def _reloaded(path: Path, cfg: Config, store: BundleStore, active: Loaded):
    try:
        new_cfg = config.load(path)
        new_store, new_active = open_store(new_cfg)
    except (config.ConfigError, BundleError, ModelError) as exc:
        log.error("reload refused, keeping the running configuration: %s", exc)
        return cfg, store, active
    log.info("reloaded configuration and bundle %s", new_active.label)
    return new_cfg, new_store, new_active
