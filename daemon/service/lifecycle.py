"""`lineside-daemon run`: the long-running line-side service, its lifecycle and frame loop.

Every part of a station is built before anything can call in; the broker connection starts
last and, at a stop, takes no more commands first. SIGTERM/SIGINT finish the current frame,
store and flush, publish `stopped` and exit 0. SIGHUP (or `cmd/reload`) reloads configuration
and bundle; one that cannot start is logged and the running one kept. A background thread that
dies ends the process with status 1, so systemd restarts it rather than leave it silent.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from pathlib import Path

from lineside.daemon import config, memory
from lineside.daemon.config import Config
from lineside.daemon.intake.bundle_store import BundleStore, Loaded
from lineside.daemon.runtime import ModelError
from lineside.daemon.service import preflight
from lineside.daemon.service.notify import Notifier
from lineside.daemon.service.signals import Signals
from lineside.daemon.service.station import Station
from lineside.daemon.telemetry import Telemetry
from lineside.daemon.transport.connection import Connection, key
from lineside.daemon.transport.inbox import Inbox
from lineside.deploy.bundle import BundleError
from lineside.deploy.manifest import Manifest

log = logging.getLogger(__name__)

EXIT_FAULT = 1


def resolve_bundle(path: Path) -> Path:
    """A bundle file as given, or the newest `.lsb` in a model folder."""
    path = Path(path)
    if path.is_dir():
        bundles = sorted(path.glob("*.lsb"), key=lambda p: (p.stat().st_mtime, p.name))
        if not bundles:
            raise BundleError(f"{path}: no .lsb bundle in the model folder")
        return bundles[-1]
    return path


def open_store(cfg: Config, keep_newer: bool = False) -> tuple[BundleStore, Loaded]:
    """The store and the bundle to serve. A folder means "the box manages it": what was last
    installed runs. A file means "run exactly this", except that with `keep_newer` (a remote
    reload) a newer bundle installed since keeps serving."""
    m = cfg.model
    store = BundleStore(m.store, m.trusted_keys, m.max_bundle_bytes, cfg.threads)
    configured = resolve_bundle(m.path)
    prefer_active = Path(m.path).is_dir() or (keep_newer and store.active_is_newer(configured))
    loaded = store.startup(configured, prefer_active)
    if (line := camera_warning(cfg.source.kind, loaded.bundle.manifest)) is not None:
        log.warning(line)
    return store, loaded


# Sources whose frames arrive compressed (MJPEG, RTSP, H.264 files), unlike PNG training images.
COMPRESSING_SOURCES = ("stream", "video")


def camera_warning(source_kind: str, manifest: Manifest) -> str | None:
    """A line for a person when a compressing source feeds a bundle fitted without saying so."""
    if source_kind not in COMPRESSING_SOURCES:
        return None
    if manifest.calibration.get("camera") != "as_trained":
        return None
    return (
        f"model {manifest.model.name} {manifest.model.version} was fitted for frames as its "
        f"training images show them (camera: as_trained), and this {source_kind} source "
        "delivers compressed frames: if good parts score high, fit again with --camera jpeg"
    )


def run(config_path: Path, exit_at_end: bool = False, signals: Signals | None = None) -> int:
    """Run until SIGTERM/SIGINT (0) or a dead background thread (1); bad files at start raise.
    `signals` are installed by the caller as early as it can (the CLI: before its imports)."""
    if signals is None:
        signals = Signals()
        signals.install()
    memory.map_large_blocks()
    cfg = config.load(config_path)
    preflight.check(cfg)
    store, active = open_store(cfg)
    notifier, inbox, seen = Notifier(), Inbox(), OrderedDict()
    telemetry = Telemetry()  # the station's history: one for the process, kept over reloads
    conn = Connection.open(cfg, inbox)
    final, station = "stopped", None
    try:
        while True:
            station = Station(cfg, conn, store, active, signals, seen, telemetry, station)
            conn.start()
            outcome = _run_station(station, notifier, exit_at_end)
            if outcome == "fault":
                final = "offline"
                return EXIT_FAULT
            if outcome != "reload":
                return 0
            remote = signals.take_reload()
            telemetry.reloaded()
            cfg, store, active, conn = _reloaded(config_path, remote, cfg, store, station, conn)
    finally:
        conn.close(final)


def _reloaded(path: Path, remote: bool, cfg: Config, store, station: Station, conn: Connection):
    """The new configuration, store, bundle and connection; the running ones when it fails."""
    active = station.swap.active
    try:
        new_cfg = config.load(path)
        preflight.check(new_cfg)
        new_store, new_active = open_store(new_cfg, keep_newer=remote)
        new_conn = conn
        if key(new_cfg) != conn.key:
            new_conn = Connection.open(new_cfg, conn.inbox)
    except (config.ConfigError, BundleError, ModelError, OSError) as exc:
        log.error("reload refused, keeping the running configuration: %s", exc)
        return cfg, store, active, conn
    if new_conn is not conn:
        conn.close(None)
    log.info("reloaded configuration and bundle %s", new_active.label)
    return new_cfg, new_store, new_active, new_conn


def _run_station(station: Station, notifier: Notifier, exit_at_end: bool) -> str:
    with contextlib.ExitStack() as stack:
        station.start(stack)
        outcome = serve(station, notifier, exit_at_end)
        if outcome == "reload":
            notifier.status("reloading")
        else:
            notifier.stopping()
        log.info("%s: finishing", outcome)
    return outcome


def serve(station: Station, notifier: Notifier, exit_at_end: bool) -> str:
    """The frame loop; returns 'stop', 'reload', 'end' or 'fault' (a background thread died)."""
    ready = False
    last_stats = time.monotonic()
    signals, camera = station.signals, station.camera
    while True:
        if signals.stop.is_set():
            return "stop"
        if signals.reload.is_set():
            return "reload"
        if (dead := station.alive()) is not None:
            log.critical("the %s thread stopped; exiting so the service is restarted", dead)
            return "fault"
        station.take_swap()
        req = station.turn.wait(signals.stop, timeout=0.5)
        done = station.inspect(req) if req is not None else "none"
        if done != "none" and not ready:
            # READY also after a refused frame: a camera fault is reported, not restarted.
            notifier.ready(f"inspecting with {station.active.label}")
            ready = True
        # The watchdog is fed while frames are handled, or while there is nothing to handle.
        if done != "none" or camera.state != "ok" or station.cfg.trigger.mode != "continuous":
            notifier.watchdog()
        if time.monotonic() - last_stats >= station.cfg.stats.interval_s:
            station.publish_stats(notifier)
            last_stats = time.monotonic()
        if exit_at_end and camera.state == "finished" and done == "none":
            return "end"
