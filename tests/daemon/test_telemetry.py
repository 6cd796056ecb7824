"""The station's one owner of its state: counts, rates and the stats window."""

from __future__ import annotations

import threading

from lineside.daemon.telemetry import Telemetry


def test_counts_and_faults_as_the_frame_loop_records_them():
    t = Telemetry()
    t.inspection("pass", 4.0)
    t.refusal("frame is 320x240, the model takes 640x480")
    assert t.frame_fault and t.frame_errors == 1
    t.inspection("review", 6.0)
    assert t.frame_fault is None  # a frame the model takes ends the fault
    assert t.verdicts() == {"pass": 1, "review": 1, "fail": 0} and t.inspected == 2


def test_the_stats_window_survives_a_new_camera():
    t = Telemetry()
    t.take_window(captured=500)
    for _ in range(3):
        t.inspection("pass", 5.0)
    window = t.take_window(captured=4)  # a reload's new camera counts from 0 again
    assert window.capture_fps >= 0 and window.inspected_fps > 0
    assert window.latency_ms["p50"] == 5.0


def test_counts_from_many_threads_add_up():
    t = Telemetry()

    def record():
        for _ in range(2000):
            t.inspection("fail", 1.0)

    threads = [threading.Thread(target=record) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.verdicts()["fail"] == t.inspected == 8000
