"""The Lineside topics: every inspection to `inspection` and `verdict` through the outbox, the
score and heatmaps as retained state. The payloads of these topics are built here; Sparkplug B,
OPC UA and Home Assistant build theirs in their own modules."""

from __future__ import annotations

import json
import time

import cv2

from lineside.daemon.config import Heatmap
from lineside.daemon.core import heatmap
from lineside.daemon.core.pipeline import Frame, Inspection
from lineside.daemon.sinks import Result
from lineside.daemon.telemetry import model_identity
from lineside.daemon.transport.link import Link
from lineside.daemon.transport.outbox import Writer
from lineside.deploy.bundle import Bundle
from lineside.deploy.contract import PAYLOAD_VERSION


def json_bytes(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def model_info(bundle: Bundle) -> dict:
    m = bundle.manifest
    return {
        **model_identity(bundle),
        "thresholds": m.thresholds.model_dump(),
        "created_at": m.model.created_at,
    }


def inspection_doc(
    insp: Inspection,
    seq: int,
    frame: Frame,
    part_id: str | None,
    bundle: Bundle,
    station: str | None,
) -> dict:
    """One inspection as JSON, the same for MQTT and `lineside-daemon inspect`; its JSON Schema
    is docs/schemas/inspection.schema.json."""
    return {
        "v": PAYLOAD_VERSION,
        "station": station,
        "seq": seq,
        "frame_seq": frame.seq,
        "captured_at": round(frame.ts, 3),
        "inspected_at": round(time.time(), 3),
        "part_id": part_id,
        **_camera_frame(frame),
        "model": model_identity(bundle, with_hash=False),
        "thresholds": bundle.manifest.thresholds.model_dump(),
        **insp.to_dict(),
    }


def _camera_frame(frame: Frame) -> dict:
    """A machine-vision camera's own frame id and exposure timestamp, when it gave them."""
    if frame.camera_frame_id is None:
        return {}
    return {"camera_frame": {"id": frame.camera_frame_id, "timestamp_ns": frame.camera_ts_ns}}


def inspection_payload(
    insp: Inspection,
    seq: int,
    frame: Frame,
    part_id: str | None,
    bundle: Bundle,
    station: str,
) -> bytes:
    """The `inspection` message."""
    return json_bytes(inspection_doc(insp, seq, frame, part_id, bundle, station))


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


class TopicsSink:
    """`inspection` and `verdict` go through the outbox (never lost); `score` and `heatmap` are
    retained state, sent when connected."""

    def __init__(self, link: Link, writer: Writer, heatmaps: Heatmap, qos: int) -> None:
        self.link, self.writer, self.qos = link, writer, qos
        self.heatmaps = HeatmapPolicy(heatmaps)

    def start(self) -> None:
        """The link belongs to the connection, which starts it."""

    def publish(self, result: Result) -> None:
        insp, bundle = result.inspection, result.bundle
        payload = inspection_payload(
            insp, result.seq, result.frame, result.part_id, bundle, result.station
        )
        self.writer.put(
            [
                (self.link.topic("inspection"), payload, self.qos, False),
                (self.link.topic("verdict"), insp.verdict.encode(), self.qos, True),
            ]
        )
        self.link.publish_state("score", f"{insp.score:.6g}", 0)
        if self.heatmaps.wants(insp.verdict):
            threshold = bundle.manifest.postprocess.pixel_threshold
            self.link.publish_state(
                "heatmap", self.heatmaps.encode(result.frame.image, insp, threshold), 0
            )

    def close(self) -> None:
        """The outbox writer and link belong to the connection, which closes them."""
