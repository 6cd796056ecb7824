"""The drift sink: every part into the drift monitor, the `alarm` topic when the line drifts.

It runs behind a bounded queue (image health costs a fraction of a millisecond per frame, never
on the frame thread). The charts follow the active bundle's `reference`; a new bundle starts
them again from its own. A bundle without a reference (from an older trainer) is not monitored,
and `stats` says so.
"""

from __future__ import annotations

import logging
import threading
import time

from lineside.daemon.config import Drift
from lineside.daemon.core import drift, image_health
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.mqtt_topics import json_bytes
from lineside.daemon.transport.link import Link
from lineside.deploy.contract import PAYLOAD_VERSION
from lineside.deploy.manifest import Reference

log = logging.getLogger(__name__)


def _charts_of(reference: Reference) -> dict[str, tuple[float, float]]:
    return {
        "score": (reference.scores.mean, reference.scores.std),
        **{
            m: (getattr(reference, m).mean, getattr(reference, m).std)
            for m in image_health.MEASURES
        },
    }


class DriftSink:
    def __init__(self, cfg: Drift, link: Link) -> None:
        self.cfg, self.link = cfg, link
        self._lock = threading.Lock()
        self._monitor: drift.Monitor | None = None
        self._bundle: str | None = None
        self._since: float | None = None

    def start(self) -> None:
        self._publish({"active": False})

    def publish(self, result: Result) -> None:
        insp = result.inspection
        health = image_health.measure(result.frame.image)
        with self._lock:
            if result.bundle.sha256 != self._bundle:
                self._follow(result)
            if self._monitor is None:
                return
            score = float(insp.score) if insp.verdict == "pass" else None
            change = self._monitor.update(score, health)
            if change is None:
                return
            if change:
                self._since = time.time()
                doc = {
                    "active": True,
                    "since": round(self._since, 3),
                    "reasons": self._monitor.reasons(),
                }
                log.warning("drift alarm: %s", _describe(doc["reasons"]))
            else:
                doc = {
                    "active": False,
                    "cleared_at": round(time.time(), 3),
                    "since": round(self._since or 0.0, 3),
                }
                log.info("drift alarm cleared")
            doc.update(parts=self._monitor.parts, charts=self._monitor.figures())
        self._publish(doc)

    def _follow(self, result: Result) -> None:
        """Charts for the bundle that now inspects (an alarm of the previous one is cleared)."""
        was_active = self._monitor is not None and self._monitor.active
        self._bundle = result.bundle.sha256
        reference = result.bundle.manifest.reference
        self._monitor = (
            None
            if reference is None
            else drift.monitor(
                _charts_of(reference), self.cfg.weight, self.cfg.limit_sigma, self.cfg.clear_after
            )
        )
        if reference is None:
            log.warning(
                "bundle %s has no drift reference: drift is not monitored",
                result.bundle.manifest.model.version,
            )
        if was_active:
            self._publish(
                {"active": False, "cleared_at": round(time.time(), 3), "reason": "new bundle"}
            )

    def _publish(self, doc: dict) -> None:
        self.link.publish_state("alarm", json_bytes({"v": PAYLOAD_VERSION, **doc}), 1)

    @property
    def active(self) -> bool:
        with self._lock:
            return self._monitor is not None and self._monitor.active

    def score_ewma(self) -> float | None:
        """The average of the good parts' scores as the score chart has it (None when the
        bundle is not monitored or no good part was seen yet)."""
        with self._lock:
            if self._monitor is None:
                return None
            chart = self._monitor.charts["score"]
            return chart.value if chart.count else None

    def state(self) -> dict:
        """For `stats`: the alarm and each chart's average against its limit."""
        with self._lock:
            if self._monitor is None:
                return {"alarm": False, "monitored": False}
            return {
                "alarm": self._monitor.active,
                "monitored": True,
                "parts": self._monitor.parts,
                "charts": self._monitor.figures(),
            }

    def close(self) -> None:
        """The alarm stays retained as it is; the link belongs to the connection."""


def _describe(reasons: list[dict]) -> str:
    return "; ".join(
        f"{r['check']} average {r['ewma']:.4g} vs reference {r['reference']:.4g} "
        f"(limit +-{r['limit']:.4g})"
        for r in reasons
    )
