"""A person's decisions on kept parts: `cmd/label`, the page's label button and `cmd/export`.

Each label is stored with the part in the review queue and published on `label` through the
outbox (SCADA and MES must not miss it); an export is the labelled parts as a dataset zip on
`export`, for `lineside-deploy pull`.
"""

from __future__ import annotations

from lineside.daemon.config import Config
from lineside.daemon.sinks.mqtt_topics import json_bytes
from lineside.daemon.sinks.review import NotInStore, ReviewStore
from lineside.daemon.transport.connection import Connection
from lineside.deploy.contract import PAYLOAD_VERSION

# An export travels as one MQTT message: keep it well under the brokers' usual size limits.
EXPORT_MAX_BYTES = 48 * 1024 * 1024


class Labels:
    def __init__(self, cfg: Config, conn: Connection, review: ReviewStore | None) -> None:
        self.cfg, self.conn, self.review = cfg, conn, review

    def on_command(self, cmd) -> None:
        """`cmd/label`: record the decision on a kept part and publish it on `label`."""
        try:
            doc = self.record(
                cmd.doc.get("seq"),
                cmd.part_id,
                cmd.doc["label"],
                cmd.doc.get("by"),
                cmd.doc.get("note"),
            )
        except (NotInStore, OSError) as exc:
            self.conn.reply("label", cmd.id, ok=False, error=str(exc))
            return
        self.conn.reply("label", cmd.id, ok=True, seq=doc["seq"], label=doc["label"])

    def record(
        self,
        seq: int | None,
        part_id: str | None,
        label: str,
        by: str | None,
        note: str | None = None,
    ) -> dict:
        """Store a person's decision on a kept part and publish it; raises NotInStore."""
        if self.review is None:
            raise NotInStore("the review queue is turned off")
        seq = self.review.find(seq, part_id)
        doc = self.review.label(seq, label, by, note)
        message = {
            "v": PAYLOAD_VERSION,
            "station": self.cfg.station,
            "seq": seq,
            "part_id": doc.get("part_id"),
            "label": doc["label"],
            "by": doc["by"],
            "labelled_at": doc["at"],
            "verdict": doc["verdict"],
            "score": doc["score"],
            **({"note": doc["note"]} if doc.get("note") else {}),
        }
        self.conn.store("label", json_bytes(message), self.cfg.mqtt.qos)
        return message

    def export(self, cmd) -> None:
        """`cmd/export`: the labelled parts as a dataset zip on `export`."""
        if self.review is None:
            self.conn.reply("export", cmd.id, ok=False, error="the review queue is turned off")
            return
        data, summary = self.review.export(self.cfg.station, EXPORT_MAX_BYTES)
        self.conn.publish_now("export", data, 1)
        self.conn.reply("export", cmd.id, ok=True, **summary)

    def stats(self) -> dict:
        """The review queue's state, for `stats` and the page."""
        if self.review is None:
            return {"enabled": False}
        items, size = self.review.size()
        return {
            "enabled": True,
            "items": items,
            "bytes": size,
            "removed": self.review.removed,
            "failed": self.review.failed,
            "skipped_disk_reserve": self.review.skipped,
        }
