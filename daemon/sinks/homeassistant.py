"""Home Assistant MQTT discovery: the station appears as a device with its entities.

The configs are retained on `<discovery prefix>/<component>/lineside_<station>/<entity>/config`
and point at the Lineside topics the station already publishes (`verdict`, `score`, `stats`,
`heatmap`, availability from `status`), so nothing is sent twice. They are announced again when
Home Assistant says `online` on `<discovery prefix>/status` (it restarted). Turned off
(`enabled: false` or the section removed), the station clears what it announced: the topics are
remembered in a file in the station's state folder, and the empty retained messages that remove
them go through the outbox, so they arrive even if the broker is down at that moment.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from lineside.daemon.config import HomeAssistant
from lineside.daemon.sinks import Result
from lineside.daemon.transport.link import Link
from lineside.daemon.transport.outbox import Writer
from lineside.deploy.manifest import VERDICTS

log = logging.getLogger(__name__)

MARKER = "homeassistant-discovery.json"
ONLINE_TEMPLATE = "{{ 'online' if value == 'online' else 'offline' }}"


def object_id(station: str) -> str:
    """Home Assistant ids allow letters, digits, _ and -."""
    return "lineside_" + re.sub(r"[^A-Za-z0-9_-]", "_", station)


def _stats(field: str) -> str:
    return "{{ value_json." + field + " }}"


# (component, entity, name, what it reads, extra fields)
ENTITIES: tuple[tuple[str, str, str, str, dict], ...] = (
    ("sensor", "verdict", "Verdict", "verdict", {"icon": "mdi:check-decagram"}),
    ("sensor", "score", "Score", "score", {"state_class": "measurement"}),
    (
        "binary_sensor",
        "defect",
        "Defect",
        "verdict",
        {"device_class": "problem", "value_template": "{{ 'ON' if value == 'fail' else 'OFF' }}"},
    ),
    *(
        (
            "sensor",
            f"{verdict}_count",
            f"{verdict.capitalize()} count",
            "stats",
            {
                "state_class": "total_increasing",
                "unit_of_measurement": "parts",
                "value_template": _stats(f"verdicts.{verdict}"),
            },
        )
        for verdict in VERDICTS
    ),
    (
        "sensor",
        "fps",
        "Inspected per second",
        "stats",
        {
            "state_class": "measurement",
            "unit_of_measurement": "fps",
            "value_template": _stats("inspected_fps"),
        },
    ),
    ("sensor", "camera", "Camera", "stats", {"value_template": _stats("camera")}),
    (
        "binary_sensor",
        "drift",
        "Drift",
        "alarm",
        {
            "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.active else 'OFF' }}",
        },
    ),
    ("image", "heatmap", "Heatmap", "heatmap", {"content_type": "image/jpeg"}),
)


def configs(cfg: HomeAssistant, link: Link, station: str, version: str) -> dict[str, dict]:
    """Discovery topic -> config document, for every entity."""
    node = object_id(station)
    device = {
        "identifiers": [node],
        "name": f"Lineside {station}",
        "manufacturer": "Lineside",
        "model": "visual inspection station",
        "sw_version": version,
    }
    availability = [{"topic": link.topic("status"), "value_template": ONLINE_TEMPLATE}]
    out = {}
    for component, entity, name, source, extra in ENTITIES:
        doc = {
            "name": name,
            "unique_id": f"{node}_{entity}",
            "object_id": f"{node}_{entity}",
            "device": device,
            "availability": availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            ("image_topic" if component == "image" else "state_topic"): link.topic(source),
            **extra,
        }
        out[f"{cfg.discovery_prefix}/{component}/{node}/{entity}/config"] = doc
    return out


class Discovery:
    """Announces (or clears) the station's entities; takes no per-inspection work."""

    def __init__(
        self,
        cfg: HomeAssistant | None,
        link: Link,
        writer: Writer,
        station: str,
        state_dir: Path,
        version: str,
    ) -> None:
        self.cfg, self.link, self.writer = cfg, link, writer
        self.marker = Path(state_dir) / MARKER
        self.enabled = cfg is not None and cfg.enabled
        self._configs = configs(cfg, link, station, version) if self.enabled else {}
        self._status_topic = f"{cfg.discovery_prefix}/status" if self.enabled else None

    def start(self) -> None:
        if self.enabled:
            self._announce()
            self.link.listen(self._status_topic, self._on_status)
        else:
            self._clear_announced()

    def _announce(self) -> None:
        for full, doc in self._configs.items():
            self.link.publish_retained(full, json.dumps(doc, separators=(",", ":")), 1)
        self._write_marker(sorted(self._configs))

    def _on_status(self, payload: bytes) -> None:
        if payload.strip() == b"online":
            log.info("home assistant is online: announcing the station again")
            self._announce()

    def _clear_announced(self) -> None:
        try:
            topics = json.loads(self.marker.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("home assistant: cannot read %s (%s); nothing cleared", self.marker, exc)
            return
        self.writer.put([(t, b"", 1, True) for t in topics if isinstance(t, str)])
        self.marker.unlink(missing_ok=True)
        log.info("home assistant discovery turned off: %d entities removed", len(topics))

    def _write_marker(self, topics: list[str]) -> None:
        try:
            self.marker.write_text(json.dumps(topics))
        except OSError as exc:
            log.warning("home assistant: cannot write %s (%s)", self.marker, exc)

    def publish(self, result: Result) -> None:
        """Entities read the Lineside topics; nothing to do per inspection."""

    def close(self) -> None:
        if self._status_topic:
            self.link.unlisten(self._status_topic)
