"""Faults a line sees: broker outages, crashes, a camera cable pulled, an absent broker."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import cv2

from tests.support.broker import free_port
from tests.support.daemon import STOP_LIMIT_S
from tests.support.mjpeg import MjpegCamera
from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"

# _BROKER_STOP: the broker is stopped with SIGTERM, so it saves what it has acknowledged. A broker
# killed with SIGKILL can lose messages it acknowledged but had not yet saved; the daemon has
# already deleted them from its outbox by then, rightly, and no client can get them back.


def _seqs(rec: Recorder) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in rec.on("inspection")]


def _assert_complete_and_ordered(seqs: list[int]) -> None:
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == sorted(first_seen), "inspections arrived out of order"
    assert first_seen == list(range(first_seen[0], first_seen[-1] + 1)), "inspections missing"


def test_broker_outage_loses_nothing(broker, start_daemon, parts_video):
    rec = Recorder(broker.port, f"{PREFIX}/#", "outage")
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 5}
    daemon = start_daemon(broker.port, source=source)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 5, 60, "inspections before the outage")
    broker.stop(signal.SIGTERM)  # _BROKER_STOP
    outage_started = time.time()
    time.sleep(20)
    broker.start()
    outage_ended = time.time()
    rec.wait_for(
        lambda: (
            rec.on("status")
            and rec.on("status")[-1].payload == b"online"
            and rec.on("status")[-1].at > outage_ended
        ),
        40,
        "online again",
    )
    time.sleep(3)
    status, _ = daemon.terminate()
    assert status == 0
    rec.wait_for(lambda: rec.on("status")[-1].payload == b"stopped", 10, "stopped")
    seqs = _seqs(rec)
    _assert_complete_and_ordered(seqs)
    during = [json.loads(m.payload) for m in rec.on("inspection")]
    made_in_outage = [d for d in during if outage_started < d["captured_at"] < outage_ended]
    # About 100 at 5 fps for 20 s; the point is that inspection went on, not its rate.
    assert len(made_in_outage) >= 20, "inspection goes on while the broker is down"
    assert len(seqs) - len(set(seqs)) <= 100  # QoS 1 may repeat what was in flight
    rec.close()


def test_results_survive_a_crash_while_the_broker_is_down(
    tmp_path, broker, start_daemon, parts_video
):
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 5}
    rec = Recorder(broker.port, f"{PREFIX}/#", "crash")
    first = start_daemon(broker.port, source=source)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    broker.stop(signal.SIGTERM)  # _BROKER_STOP
    time.sleep(4)
    first.kill()  # SIGKILL: no flush, no goodbye
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        rows = db.execute("SELECT topic, payload FROM outbox ORDER BY id").fetchall()
    kept = [json.loads(p)["seq"] for t, p in rows if t.endswith("/inspection")]
    assert len(kept) >= 10, "inspections made while the broker was down are in the outbox"

    broker.start()
    second = start_daemon(broker.port, name="restarted", source=source)
    rec.wait_for(lambda: set(kept) <= set(_seqs(rec)), 60, "results from before the crash")
    rec.wait_for(lambda: max(_seqs(rec)) > max(kept) + 3, 30, "new inspections after restart")
    _assert_complete_and_ordered(_seqs(rec))
    assert second.terminate()[0] == 0
    rec.close()


def test_last_will_then_online_after_a_crash(broker, start_daemon, parts_video):
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 5}
    rec = Recorder(broker.port, f"{PREFIX}/status", "will")
    first = start_daemon(broker.port, source=source)
    rec.wait_for(
        lambda: rec.on("status") and rec.on("status")[-1].payload == b"online", 60, "online"
    )
    first.kill()
    rec.wait_for(lambda: rec.on("status")[-1].payload == b"offline", 20, "last will")
    second = start_daemon(broker.port, name="again", source=source)
    rec.wait_for(lambda: rec.on("status")[-1].payload == b"online", 60, "online again")
    assert [m.payload for m in rec.on("status")][-3:] == [b"online", b"offline", b"online"]
    assert second.terminate()[0] == 0
    rec.close()


def test_camera_cut_and_restored_five_times(broker, start_daemon, synth_dir):
    frames = [cv2.imread(str(p)) for p in sorted((synth_dir / "test" / "good").glob("*.png"))]
    camera = MjpegCamera(frames, free_port(), fps=10)
    camera.start()
    rec = Recorder(broker.port, f"{PREFIX}/#", "cam")
    source = {
        "kind": "stream",
        "url": camera.url,
        "read_timeout_s": 2,
        "open_timeout_s": 2,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 2,
    }
    daemon = start_daemon(broker.port, source=source)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 5, 60, "inspections from the stream")
    baseline = None
    for cycle in range(5):
        camera.stop()
        cut_at = time.time()
        rec.wait_for(
            lambda cut_at=cut_at: any(
                json.loads(m.payload)["camera"] in ("reconnecting", "failed")
                for m in rec.on("stats")
                if m.at > cut_at
            ),
            10,
            "reconnecting",
        )
        time.sleep(max(0.0, 10 - (time.time() - cut_at)))
        camera.start()
        back_at = time.time()
        rec.wait_for(
            lambda back_at=back_at: any(
                json.loads(m.payload)["captured_at"] > back_at for m in rec.on("inspection")
            ),
            20,  # about 1.5 s with the reconnect backoff; far from that on a busy box
            "inspecting again after the camera returns",
        )
        time.sleep(1)
        if cycle == 0:
            baseline = (daemon.threads(), daemon.fds())
    threads, fds = daemon.threads(), daemon.fds()
    assert threads <= baseline[0], f"threads leak: {baseline[0]} -> {threads}"
    assert fds <= baseline[1], f"file descriptors leak: {baseline[1]} -> {fds}"
    assert "camera reconnecting" in daemon.log() and "camera ok" in daemon.log()
    assert daemon.terminate()[0] == 0
    camera.stop()
    rec.close()


def test_unreachable_broker_does_not_stop_inspection(tmp_path, start_daemon, parts_video):
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 10}
    daemon = start_daemon(free_port(), source=source)  # nothing listens there
    deadline = time.monotonic() + 60
    rows = 0
    while time.monotonic() < deadline and (rows < 20 or "mqtt down" not in daemon.log()):
        time.sleep(0.5)
        if (tmp_path / "outbox.db").exists():
            with sqlite3.connect(tmp_path / "outbox.db") as db:
                rows = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert rows >= 20, "inspections are stored while no broker is reachable"
    assert "mqtt down" in daemon.log()
    status, took = daemon.terminate()
    assert status == 0 and took < STOP_LIMIT_S
