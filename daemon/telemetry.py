"""The station's state, with one owner: what it has inspected, how fast, and with which model.

Recorded once per inspection on the frame thread; read by `stats`, the page and every plant
protocol from their own threads. One `Telemetry` lives as long as the process: a reload builds a
new station around the same one, so the counts run since the daemon started (`started_at`) and
`reloads` says how often it was rebuilt meanwhile. What belongs to a part a reload replaces (the
camera's captured and dropped frames) starts again with that part.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from lineside.deploy.bundle import Bundle
from lineside.deploy.manifest import VERDICTS

FPS_WINDOW_S = 10.0


def model_identity(bundle: Bundle, with_hash: bool = True) -> dict:
    """The model's identity as every message and protocol states it (each inspection without
    the hash, which `model` carries)."""
    m = bundle.manifest.model
    identity = {"name": m.name, "version": m.version}
    return {**identity, "sha256": bundle.sha256} if with_hash else identity


@dataclass(frozen=True)
class Window:
    """The rates of one `stats` interval."""

    capture_fps: float
    inspected_fps: float
    latency_ms: dict[str, float]


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.started_at = time.time()
        self.reloads = 0
        self.inspected = 0
        self.frame_errors = 0
        self.frame_fault: str | None = None  # the latest refusal, while frames keep being refused
        self._verdicts = dict.fromkeys(VERDICTS, 0)
        self._latencies: deque[float] = deque(maxlen=500)
        self._recent: deque[float] = deque()  # inspection times in the last FPS_WINDOW_S
        self._window = (time.monotonic(), 0, 0)  # start, inspected, captured at its start

    def inspection(self, verdict: str, latency_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.inspected += 1
            self._verdicts[verdict] += 1
            self._latencies.append(latency_ms)
            self._recent.append(now)
            self._trim(now)
            self.frame_fault = None

    def refusal(self, reason: str) -> None:
        with self._lock:
            self.frame_errors += 1
            self.frame_fault = reason

    def reloaded(self) -> None:
        with self._lock:
            self.reloads += 1

    def verdicts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._verdicts)

    def inspected_fps(self) -> float:
        """Inspections per second over the last FPS_WINDOW_S."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            return round(len(self._recent) / FPS_WINDOW_S, 2)

    def take_window(self, captured: int) -> Window:
        """The rates since the last call, which starts a new window. `captured` is the camera's
        count, which a reload starts again."""
        now = time.monotonic()
        with self._lock:
            start, inspected_then, captured_then = self._window
            if captured < captured_then:  # a new camera since the window began
                captured_then = 0
            span = max(now - start, 1e-6)
            lat = np.array(self._latencies) if self._latencies else np.zeros(1)
            self._window = (now, self.inspected, captured)
            return Window(
                capture_fps=round((captured - captured_then) / span, 2),
                inspected_fps=round((self.inspected - inspected_then) / span, 2),
                latency_ms={f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 95, 99)},
            )

    def _trim(self, now: float) -> None:
        while self._recent and now - self._recent[0] > FPS_WINDOW_S:
            self._recent.popleft()
