"""The `stats` message, made from the station's `Telemetry` every stats interval."""

from __future__ import annotations

import time

from lineside.daemon.telemetry import Telemetry
from lineside.deploy.contract import PAYLOAD_VERSION


def snapshot(t: Telemetry, captured: int, extra: dict) -> dict:
    """The `stats` document for the window since the last snapshot; starts a new window."""
    window = t.take_window(captured)
    return {
        "v": PAYLOAD_VERSION,
        "uptime_s": round(time.monotonic() - t.started, 1),
        "reloads": t.reloads,
        "capture_fps": window.capture_fps,
        "inspected_fps": window.inspected_fps,
        "inspected": t.inspected,
        "frame_errors": t.frame_errors,
        "latency_ms": window.latency_ms,
        **extra,
    }


def summary(doc: dict) -> str:
    """One line for the log and systemd's STATUS."""
    fault = f", camera fault: {doc['camera_fault']}" if doc.get("camera_fault") else ""
    return (
        f"camera {doc['camera']}{fault}, {doc['inspected_fps']} fps inspected, "
        f"{doc['dropped_frames']} dropped, outbox {doc['outbox_depth']}, "
        f"mqtt {'up' if doc['mqtt_connected'] else 'down'}"
    )
