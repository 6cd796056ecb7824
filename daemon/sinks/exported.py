"""The values a station exports to plant systems, defined once.

Sparkplug B metric names, OPC UA variable names and Home Assistant entities are all derived from
`VALUES`; a `View` reads each from the station's one `Telemetry`, its health and the latest
inspection the sink handled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lineside.daemon.sinks import Result
from lineside.daemon.telemetry import FPS_WINDOW_S, Telemetry

Kind = Literal["string", "double", "uint64", "bool", "datetime"]


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


class View:
    """What one sink exports: the counts and rates of the station's one `Telemetry`, its health,
    and the values of the inspection this sink handled last (a queued sink may be a few parts
    behind the station; its counts never are). `record` from the sink's thread, `values` from
    any."""

    def __init__(self, telemetry: Telemetry, health: Health) -> None:
        self._telemetry, self._health = telemetry, health
        self._lock = threading.Lock()
        self._last: Result | None = None
        self._last_at = 0.0

    def record(self, result: Result) -> None:
        with self._lock:
            self._last, self._last_at = result, time.time()

    def values(self, health: dict | None = None) -> dict[str, object]:
        """Every path in `VALUES` -> its value; None where nothing is known yet. `health`: the
        station's, when the caller has just read it."""
        health = self._health() if health is None else health
        with self._lock:
            last, last_at = self._last, self._last_at
        counts = self._telemetry.verdicts()
        out: dict[str, object] = dict.fromkeys(BY_PATH)
        if last is not None:
            out.update(_inspection_values(last, last_at))
        out.update(
            {
                "Counts/Pass": counts["pass"],
                "Counts/Review": counts["review"],
                "Counts/Fail": counts["fail"],
                "Rates/InspectedFps": self._telemetry.inspected_fps(),
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
