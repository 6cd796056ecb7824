"""Labelling a kept part over MQTT: the decision is stored, published on `label` for SCADA and
MES, and still there after a restart."""

from __future__ import annotations

import json

from tests.support.mqtt_client import Recorder
from tests.support.station import reply_to

PREFIX = "lineside/cell-1"


def _labels(rec: Recorder) -> list[dict]:
    """The station's `label` messages (not the `cmd/label` commands)."""
    return [json.loads(m.payload) for m in rec.on("label") if m.topic == f"{PREFIX}/label"]


def test_label_a_kept_part_stored_published_and_kept_across_a_restart(
    tmp_path, broker, start_daemon, parts_video
):
    rec = Recorder(broker.port, f"{PREFIX}/#", "labels")
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 10}
    review = {"path": str(tmp_path / "review"), "fail_every": 1}
    daemon = start_daemon(broker.port, source=source, review=review)
    rec.wait_for(
        lambda: any(json.loads(m.payload)["verdict"] != "pass" for m in rec.on("inspection")),
        60,
        "a part for review",
    )
    kept = next(
        json.loads(m.payload)
        for m in rec.on("inspection")
        if json.loads(m.payload)["verdict"] != "pass"
    )
    folder = tmp_path / "review" / f"{kept['seq']:012d}"
    rec.wait_for(lambda: (folder / "inspection.json").is_file(), 20, "the part in the store")

    rec.publish(
        f"{PREFIX}/cmd/label",
        json.dumps({"id": "l1", "seq": kept["seq"], "label": "good", "by": "anna"}),
    )
    assert reply_to(rec, "l1") == {
        "id": "l1",
        "command": "label",
        "ok": True,
        "seq": kept["seq"],
        "label": "good",
    }
    rec.wait_for(lambda: _labels(rec), 20, "the label message")
    msg = _labels(rec)[0]
    assert msg["seq"] == kept["seq"] and msg["label"] == "good" and msg["by"] == "anna"
    assert msg["verdict"] == kept["verdict"] and msg["score"] == kept["score"]
    assert json.loads((folder / "label.json").read_text())["label"] == "good"

    rec.publish(f"{PREFIX}/cmd/label", json.dumps({"id": "l2", "seq": 10**9, "label": "good"}))
    refused = reply_to(rec, "l2")
    assert refused["ok"] is False and "no kept part" in refused["error"]
    rec.wait_for(
        lambda: any(json.loads(m.payload)["review"]["items"] > 0 for m in rec.on("stats")),
        20,
        "review counts in stats",
    )
    assert daemon.terminate()[0] == 0

    onlines = sum(m.payload == b"online" for m in rec.on("status"))
    again = start_daemon(broker.port, name="again", source=source, review=review)
    rec.wait_for(
        lambda: sum(m.payload == b"online" for m in rec.on("status")) > onlines, 60, "online"
    )
    rec.publish(
        f"{PREFIX}/cmd/label",
        json.dumps({"id": "l3", "seq": kept["seq"], "label": "defective"}),
    )
    assert reply_to(rec, "l3", timeout=60)["ok"] is True
    assert json.loads((folder / "label.json").read_text())["label"] == "defective"
    assert again.terminate()[0] == 0
    rec.close()
