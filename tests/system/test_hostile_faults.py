"""A hostile plant's faults: early and impossible reloads, a damaged outbox, a camera that changes
resolution, a full disk, and a background thread that dies.

Each test reproduces a finding of the fault run against a real Mosquitto and real files.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections import OrderedDict

import cv2
import numpy as np

from lineside.daemon import config
from lineside.daemon.service import lifecycle
from lineside.daemon.service.notify import Notifier
from lineside.daemon.service.signals import Signals
from lineside.daemon.service.station import Station
from lineside.daemon.telemetry import Telemetry
from lineside.daemon.transport.connection import Connection
from lineside.daemon.transport.inbox import Inbox
from tests.support.disk import fill
from tests.support.mqtt_client import Recorder
from tests.support.station import PREFIX, still_serving

VIDEO = {"loop": True, "fps": 5}


def test_sighup_early_and_with_a_config_that_cannot_start(
    tmp_path, broker, start_daemon, parts_video
):
    """7. SIGHUP 0.3 s after start, and a reload whose password file is missing, keep it
    running."""
    rec = Recorder(broker.port, f"{PREFIX}/#", "sighup")
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    time.sleep(0.3)  # Python has started; the pipeline's imports and self-test have not ended
    daemon.proc.send_signal(signal.SIGHUP)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections after an early SIGHUP")
    config = tmp_path / "daemon.yaml"
    text = config.read_text()
    config.write_text(
        text.replace(
            "keepalive_s: 5",
            f"keepalive_s: 5\n  username: cell\n  password_file: {tmp_path / 'missing-password'}",
        )
    )
    daemon.proc.send_signal(signal.SIGHUP)
    rec.wait_for(lambda: "reload refused" in daemon.log(), 30, "reload refused")
    still_serving(rec)
    assert daemon.proc.poll() is None
    rec.close()


def test_a_damaged_outbox_is_set_aside_and_the_daemon_starts(
    tmp_path, broker, start_daemon, parts_video
):
    """5. Random bytes where the outbox was: moved aside, a fresh one, inspections published."""
    (tmp_path / "outbox.db").write_bytes(np.random.default_rng(0).bytes(50_000))
    rec = Recorder(broker.port, f"{PREFIX}/#", "damaged")
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    assert list(tmp_path.glob("outbox.db.damaged-*")), "the damaged file is kept"
    assert "is damaged" in daemon.log()
    rec.close()


def _notify_socket(tmp_path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.5)
    return sock


def test_a_camera_that_changes_resolution_is_a_fault_not_a_restart_loop(
    tmp_path, broker, start_daemon, parts_video
):
    """4. Frames of the wrong size: READY is sent, the watchdog fed, stats says camera fault."""
    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(parts_video))
    ok, good_frame = cap.read()
    cap.release()
    assert ok
    # The same camera, now sending 160x120 frames.
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.resize(good_frame, (160, 120)) + i)
    sock = _notify_socket(tmp_path)
    rec = Recorder(broker.port, f"{PREFIX}/stats", "resolution")
    start_daemon(
        broker.port,
        source={"kind": "folder", "path": str(folder), "loop": True, "fps": 5},
        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"},
    )
    got: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        any("READY=1" in g for g in got) and sum("WATCHDOG=1" in g for g in got) >= 3
    ):
        with contextlib.suppress(TimeoutError):
            got.append(sock.recv(4096).decode())
    assert any("READY=1" in g for g in got), got
    assert sum("WATCHDOG=1" in g for g in got) >= 3, got
    rec.wait_for(lambda: rec.on("stats"), 30, "stats")
    doc = json.loads(rec.on("stats")[-1].payload)
    assert doc["camera"] == "fault" and "160" in doc["camera_fault"], doc
    sock.close()
    rec.close()


def test_disk_full_with_the_broker_down_counts_losses_and_recovers(
    tmp_path, small_disk, broker, start_daemon, parts_video
):
    """2. The outbox on a file system that fills up while the broker is down: what cannot be
    stored is counted (one log line per burst), and publishing resumes when space returns."""
    rec = Recorder(broker.port, f"{PREFIX}/#", "diskfull")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        outbox={"path": str(small_disk / "outbox.db")},
        heatmap={"enabled": False},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    broker.stop(signal.SIGTERM)
    filler = fill(small_disk)
    time.sleep(8)
    broker.start()  # the broker returns while the disk is still full: deletes fail
    rec.wait_for(lambda: rec.on("stats") and rec.on("stats")[-1].at > time.time() - 2, 40, "stats")
    time.sleep(3)
    filler.unlink()
    n = len(rec.on("inspection"))
    rec.wait_for(lambda: len(rec.on("inspection")) >= n + 10, 60, "publishing resumes")
    lost = json.loads(rec.on("stats")[-1].payload)["outbox_lost"]
    assert lost > 0, "inspections made while the disk was full are counted as lost"
    status, _ = daemon.terminate()
    assert status == 0
    log = daemon.log()
    assert log.count("outbox write failed") == 1, "one line per burst"
    assert "Traceback" not in log
    seqs = {json.loads(m.payload)["seq"] for m in rec.on("inspection")}
    # Every inspection was either delivered or counted lost (two messages each).
    assert len(seqs) + lost // 2 >= max(seqs) + 1
    rec.close()


def test_a_dead_network_thread_ends_the_frame_loop_as_a_fault(
    tmp_path, broker, parts_video, signed_bundle, station_keys
):
    """Supervision: when paho's loop thread is gone, the frame loop returns 'fault' (and `run`
    exits 1 so systemd restarts the box) instead of looking healthy while publishing nothing."""
    cfg = config.Config.model_validate(
        {
            "station": "cell-1",
            "source": {"kind": "video", "path": str(parts_video), **VIDEO},
            "model": {
                "path": str(signed_bundle),
                "store": str(tmp_path / "bundles"),
                "trusted_keys": str(station_keys[1]),
            },
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "threads": 1,
        }
    )
    store, active = lifecycle.open_store(cfg)
    conn = Connection.open(cfg, Inbox())
    signals = Signals()
    station = Station(cfg, conn, store, active, signals, OrderedDict(), Telemetry())
    conn.start()
    try:
        with contextlib.ExitStack() as stack:
            station.start(stack)
            deadline = time.monotonic() + 30
            while not conn.link.connected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert station.alive() is None
            conn.link.client.loop_stop()  # paho's network thread ends
            timer = threading.Timer(30, signals.stop.set)  # a bound, should the check fail
            timer.start()
            outcome = lifecycle.serve(station, Notifier(), exit_at_end=False)
            timer.cancel()
        assert outcome == "fault"
        assert station.alive() == "mqtt link or outbox writer"
    finally:
        conn.close(None)
