"""What the station counts, and the `stats` message made from it."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from lineside.deploy.contract import PAYLOAD_VERSION


@dataclass
class Counters:
    """Kept by the frame loop; read by `snapshot` every stats interval."""

    started: float = field(default_factory=time.monotonic)
    inspected: int = 0
    frame_errors: int = 0
    frame_fault: str | None = None  # the latest frame refusal, while frames keep being refused
    latencies: deque = field(default_factory=lambda: deque(maxlen=500))
    window_start: float = field(default_factory=time.monotonic)
    window_inspected: int = 0
    window_captured: int = 0
    verdicts: dict = field(default_factory=lambda: {"pass": 0, "review": 0, "fail": 0})

    def inspection(self, latency_ms: float, verdict: str) -> None:
        self.inspected += 1
        self.verdicts[verdict] += 1
        self.window_inspected += 1
        self.latencies.append(latency_ms)
        self.frame_fault = None

    def refusal(self, reason: str) -> None:
        self.frame_errors += 1
        self.frame_fault = reason


def snapshot(c: Counters, captured: int, extra: dict) -> dict:
    """The `stats` document for the window since the last snapshot; starts a new window."""
    now = time.monotonic()
    span = max(now - c.window_start, 1e-6)
    lat = np.array(c.latencies) if c.latencies else np.zeros(1)
    doc = {
        "v": PAYLOAD_VERSION,
        "uptime_s": round(now - c.started, 1),
        "capture_fps": round((captured - c.window_captured) / span, 2),
        "inspected_fps": round(c.window_inspected / span, 2),
        "inspected": c.inspected,
        "frame_errors": c.frame_errors,
        "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 95, 99)},
        **extra,
    }
    c.window_start, c.window_inspected, c.window_captured = now, 0, captured
    return doc


def summary(doc: dict) -> str:
    """One line for the log and systemd's STATUS."""
    fault = f", camera fault: {doc['camera_fault']}" if doc.get("camera_fault") else ""
    return (
        f"camera {doc['camera']}{fault}, {doc['inspected_fps']} fps inspected, "
        f"{doc['dropped_frames']} dropped, outbox {doc['outbox_depth']}, "
        f"mqtt {'up' if doc['mqtt_connected'] else 'down'}"
    )
