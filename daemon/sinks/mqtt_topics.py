"""What goes out on MQTT: payloads built from inspections, and which heatmaps to send."""

from __future__ import annotations

import json
import time

import cv2

from lineside.daemon.config import Heatmap
from lineside.daemon.core import heatmap
from lineside.daemon.core.pipeline import Frame, Inspection
from lineside.deploy.bundle import Bundle

PAYLOAD_VERSION = 1


def json_bytes(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def model_info(bundle: Bundle) -> dict:
    m = bundle.manifest
    return {
        "name": m.model.name,
        "version": m.model.version,
        "sha256": bundle.sha256,
        "thresholds": m.thresholds.model_dump(),
        "created_at": m.model.created_at,
    }


def inspection_payload(
    insp: Inspection,
    seq: int,
    frame: Frame,
    part_id: str | None,
    bundle: Bundle,
    station: str,
) -> bytes:
    """The `inspection` message; its JSON Schema is docs/schemas/inspection.schema.json."""
    doc = {
        "v": PAYLOAD_VERSION,
        "station": station,
        "seq": seq,
        "frame_seq": frame.seq,
        "captured_at": round(frame.ts, 3),
        "inspected_at": round(time.time(), 3),
        "part_id": part_id,
        "model": {"name": bundle.manifest.model.name, "version": bundle.manifest.model.version},
        "thresholds": bundle.manifest.thresholds.model_dump(),
        **insp.to_dict(),
    }
    return json_bytes(doc)


class HeatmapPolicy:
    """Send every review/fail (as configured) and every Nth pass; nothing else is encoded."""

    def __init__(self, cfg: Heatmap) -> None:
        self.cfg = cfg
        self._passes = 0

    def wants(self, verdict: str) -> bool:
        if not self.cfg.enabled:
            return False
        if verdict in self.cfg.verdicts:
            return True
        if verdict == "pass" and self.cfg.every_nth_pass:
            self._passes += 1
            return self._passes % self.cfg.every_nth_pass == 0
        return False

    def encode(self, frame, insp: Inspection, pixel_threshold: float) -> bytes:
        overlay = heatmap.render(frame, insp, pixel_threshold)
        h, w = overlay.shape[:2]
        if w > self.cfg.width:
            size = (self.cfg.width, round(h * self.cfg.width / w))
            overlay = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)
        return heatmap.encode_jpeg(overlay, self.cfg.quality)
