"""The values a station exports to plant systems, defined once.

Sparkplug B metric names, OPC UA variable names and Home Assistant entities are all derived from
`VALUES`; `Tally` keeps the latest of each from the inspections and the station's health.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lineside.daemon.sinks import Result

Kind = Literal["string", "double", "uint64", "bool", "datetime"]
VERDICTS = ("pass", "review", "fail")
FPS_WINDOW_S = 10.0


@dataclass(frozen=True)
class Value:
    path: str  # "Inspection/Verdict": a Sparkplug metric name; OPC UA uses the last part
    kind: Kind
    doc: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


VALUES: tuple[Value, ...] = (
    Value("Inspection/Verdict", "string", "the latest verdict: pass, review or fail"),
    Value("Inspection/Score", "double", "the latest anomaly score"),
    Value("Inspection/Seq", "uint64", "the station's inspection number (kept across restarts)"),
    Value("Inspection/PartId", "string", "the part id given with the trigger, or empty"),
    Value("Inspection/LastInspection", "datetime", "when the latest part was inspected"),
    Value("Thresholds/ReviewAt", "double", "scores above this go to review"),
    Value("Thresholds/FailAt", "double", "scores above this fail"),
    Value("Counts/Pass", "uint64", "parts passed since the daemon started"),
    Value("Counts/Review", "uint64", "parts sent to review since the daemon started"),
    Value("Counts/Fail", "uint64", "parts failed since the daemon started"),
    Value("Rates/InspectedFps", "double", f"inspections per second, last {FPS_WINDOW_S:.0f} s"),
    Value("Camera/DroppedFrames", "uint64", "frames the camera delivered that were not inspected"),
    Value("Camera/CameraState", "string", "ok, reconnecting, failed, finished or fault"),
    Value("Outbox/OutboxDepth", "uint64", "inspections waiting for the broker"),
    Value("Model/ModelName", "string", "the model that inspects"),
    Value("Model/ModelVersion", "string", "its version"),
    Value("Model/ModelHash", "string", "the SHA-256 of its bundle"),
    Value("Drift/DriftAlarm", "bool", "the line has drifted from the bundle's reference"),
    Value("Healthy", "bool", "camera delivering frames the model takes, broker connected"),
)
BY_PATH = {v.path: v for v in VALUES}
# The per-inspection values; the rest change with the station's health, polled.
INSPECTION_PATHS = tuple(v.path for v in VALUES[:10])

Health = Callable[[], dict]


class Tally:
    """The latest exported values; `record` from a sink thread, `values` from any thread."""

    def __init__(self, health: Health) -> None:
        self._health = health
        self._lock = threading.Lock()
        self._last: Result | None = None
        self._last_at = 0.0
        self._counts = dict.fromkeys(VERDICTS, 0)
        self._times: deque[float] = deque()

    def record(self, result: Result) -> None:
        now = time.monotonic()
        with self._lock:
            self._last, self._last_at = result, time.time()
            self._counts[result.inspection.verdict] += 1
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > FPS_WINDOW_S:
            self._times.popleft()

    def values(self, health: dict | None = None) -> dict[str, object]:
        """Every path in `VALUES` -> its value; None where nothing is known yet. `health`: the
        station's, when the caller has just read it."""
        health = self._health() if health is None else health
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            last, last_at = self._last, self._last_at
            counts, recent = dict(self._counts), len(self._times)
        out: dict[str, object] = dict.fromkeys(BY_PATH)
        if last is not None:
            out.update(_inspection_values(last, last_at))
        out.update(
            {
                "Counts/Pass": counts["pass"],
                "Counts/Review": counts["review"],
                "Counts/Fail": counts["fail"],
                "Rates/InspectedFps": round(recent / FPS_WINDOW_S, 2),
                "Camera/DroppedFrames": int(health["dropped_frames"]),
                "Camera/CameraState": str(health["camera"]),
                "Outbox/OutboxDepth": int(health["outbox_depth"]),
                "Model/ModelName": health["model"]["name"],
                "Model/ModelVersion": health["model"]["version"],
                "Model/ModelHash": health["model"]["sha256"],
                "Drift/DriftAlarm": bool(health["drift_alarm"]),
                "Healthy": health["camera"] == "ok" and bool(health["mqtt_connected"]),
            }
        )
        return out


def _inspection_values(result: Result, at: float) -> dict[str, object]:
    insp, thresholds = result.inspection, result.bundle.manifest.thresholds
    return {
        "Inspection/Verdict": insp.verdict,
        "Inspection/Score": float(insp.score),
        "Inspection/Seq": int(result.seq),
        "Inspection/PartId": result.part_id or "",
        "Inspection/LastInspection": at,
        "Thresholds/ReviewAt": float(thresholds.review_at),
        "Thresholds/FailAt": float(thresholds.fail_at),
    }
