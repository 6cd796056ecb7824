"""systemd notifications on a real socket, the capture thread's states, triggers, heatmap policy."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest

from lineside.daemon.capture import triggers
from lineside.daemon.capture.camera import Camera
from lineside.daemon.config import Heatmap, Source, Trigger
from lineside.daemon.service.notify import Notifier
from lineside.daemon.sinks.mqtt_topics import HeatmapPolicy


def test_notify_ready_status_and_watchdog_rate(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    n = Notifier()
    assert n.watchdog_period == pytest.approx(0.2)
    n.ready("inspecting")
    assert sock.recv(1024) == b"READY=1\nSTATUS=inspecting"
    n.watchdog()
    n.watchdog()  # too soon: not sent
    time.sleep(0.25)
    n.watchdog()
    assert [sock.recv(1024), sock.recv(1024)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(1024)
    sock.close()


def test_notify_is_silent_outside_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = Notifier()
    n.ready("x")
    n.watchdog()
    assert n.watchdog_period is None


def _folder(tmp_path, n=5):
    for i in range(n):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((8, 8), i * 10, np.uint8))
    return tmp_path


def test_folder_source_plays_then_finishes(tmp_path):
    cam = Camera(Source(kind="folder", path=_folder(tmp_path), fps=50))
    cam.start()
    seen = []
    while (f := cam.next_frame(timeout=2)) is not None:
        seen.append(int(f.image[0, 0]))
    cam.stop()
    assert cam.state == "finished"
    assert seen == sorted(seen) and len(seen) + cam.dropped == 5


def test_file_source_keeps_its_pace_from_the_first_frame(tmp_path):
    # At 20 fps a consumer that takes each frame at once must see all five, a period apart:
    # no burst at the start that replaces a frame before it is taken.
    cam = Camera(Source(kind="folder", path=_folder(tmp_path), fps=20))
    cam.start()
    stamps, seen = [], []
    while (f := cam.next_frame(timeout=2)) is not None:
        stamps.append(time.monotonic())
        seen.append(int(f.image[0, 0]))
    cam.stop()
    assert seen == [0, 10, 20, 30, 40] and cam.dropped == 0
    assert stamps[-1] - stamps[0] >= 4 / 20 - 0.02


def test_slow_consumer_gets_newest_frame_and_drops_are_counted(tmp_path):
    cam = Camera(Source(kind="folder", path=_folder(tmp_path, 20), fps=100, loop=True))
    cam.start()
    time.sleep(0.5)
    frame = cam.next_frame(timeout=1)
    cam.stop()
    assert frame is not None and cam.dropped > 10
    assert frame.seq >= cam.captured - 2  # the newest, not the oldest waiting


def test_dead_stream_goes_reconnecting_then_failed():
    src = Source(
        kind="stream",
        url="http://127.0.0.1:9/none.mjpg",
        open_timeout_s=0.5,
        reconnect_min_s=0.05,
        reconnect_max_s=0.1,
        failed_after=3,
    )
    cam = Camera(src)
    states = set()
    cam.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and cam.state != "failed":
        states.add(cam.state)
        time.sleep(0.02)
    cam.stop()
    assert "reconnecting" in states and cam.state == "failed"
    assert cam.next_frame(timeout=0.1) is None


def test_continuous_trigger_caps_the_rate():
    stop = threading.Event()
    turn = triggers.make(Trigger(mode="continuous", max_fps=20))
    t0 = time.monotonic()
    got = sum(turn.wait(stop, timeout=1) is not None for _ in range(10))
    assert got == 10 and time.monotonic() - t0 >= 9 / 20 - 0.02


def test_mqtt_trigger_queue_is_bounded():
    turn = triggers.OnCommand(capacity=2)
    assert turn.push(triggers.Request("a")) and turn.push(triggers.Request("b"))
    assert not turn.push(triggers.Request("c"))
    stop = threading.Event()
    assert turn.wait(stop, 0.1).id == "a" and turn.wait(stop, 0.1).id == "b"
    assert turn.wait(stop, 0.1) is None


@pytest.mark.parametrize(
    "cfg,verdicts,sent",
    [
        (Heatmap(), ["pass", "review", "fail"], [False, True, True]),
        (Heatmap(every_nth_pass=2), ["pass"] * 4, [False, True, False, True]),
        (Heatmap(verdicts=("fail",)), ["review", "fail"], [False, True]),
        (Heatmap(enabled=False), ["fail"], [False]),
    ],
)
def test_heatmap_policy(cfg, verdicts, sent):
    policy = HeatmapPolicy(cfg)
    assert [policy.wants(v) for v in verdicts] == sent
