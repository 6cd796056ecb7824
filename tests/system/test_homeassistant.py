"""Home Assistant MQTT discovery, checked on a real broker against what Home Assistant requires."""

from __future__ import annotations

import json
import time

from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"
NODE = "lineside_cell-1"
# What Home Assistant's MQTT integration needs of each platform's discovery config.
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "image": {"image_topic"},
}
ENTITIES = {
    ("sensor", "verdict"),
    ("sensor", "score"),
    ("binary_sensor", "defect"),
    ("sensor", "pass_count"),
    ("sensor", "review_count"),
    ("sensor", "fail_count"),
    ("sensor", "fps"),
    ("sensor", "camera"),
    ("binary_sensor", "drift"),
    ("image", "heatmap"),
}


def _configs(rec: Recorder) -> dict[str, dict]:
    """The latest config per discovery topic; an empty payload means removed."""
    out: dict[str, dict] = {}
    with rec._lock:
        msgs = [m for m in rec.messages if m.topic.endswith("/config")]
    for m in msgs:
        out[m.topic] = json.loads(m.payload) if m.payload else {}
    return out


def _template_path(template: str) -> list[str]:
    """'{{ value_json.verdicts.pass }}' -> ['verdicts', 'pass']."""
    inner = template.strip("{} ").removeprefix("value_json.")
    return inner.split(".")


def test_discovery_validates_points_at_live_topics_and_is_removed(
    broker, start_daemon, parts_video
):
    rec = Recorder(broker.port, "homeassistant/#", "ha")
    states = Recorder(broker.port, f"{PREFIX}/#", "ha-states")
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 10}
    daemon = start_daemon(broker.port, source=source, homeassistant={})
    rec.wait_for(lambda: len(_configs(rec)) == len(ENTITIES), 60, "discovery configs")
    states.wait_for(lambda: states.on("stats") and states.on("heatmap"), 60, "stats, heatmap")

    configs = _configs(rec)
    assert {tuple(t.split("/")[1:4:2]) for t in configs} == ENTITIES
    assert all(t.split("/")[2] == NODE for t in configs)
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    stats = json.loads(states.on("stats")[-1].payload)
    for full, doc in configs.items():
        component = full.split("/")[1]
        assert REQUIRED[component] <= set(doc), full
        assert doc["device"]["identifiers"] == [NODE] and doc["device"]["name"]
        assert doc["availability"][0]["topic"] == f"{PREFIX}/status"
        assert doc["payload_available"] == "online"
        topic = doc.get("state_topic") or doc["image_topic"]
        assert states.on(topic.rsplit("/", 1)[1]), f"{full}: nothing on {topic}"
        if topic.endswith("/stats"):
            value = stats
            for key in _template_path(doc["value_template"]):
                value = value[key]
            assert isinstance(value, int | float | str), full
    score = configs[f"homeassistant/sensor/{NODE}/score/config"]
    assert score["state_class"] == "measurement"
    defect = configs[f"homeassistant/binary_sensor/{NODE}/defect/config"]
    assert defect["device_class"] == "problem"
    heat = configs[f"homeassistant/image/{NODE}/heatmap/config"]
    assert heat["content_type"] == "image/jpeg"
    assert states.on("heatmap")[-1].payload[:2] == b"\xff\xd8"  # a JPEG
    assert states.on("status")[-1].payload == b"online"

    # Home Assistant restarts and says so: the station announces itself again.
    before = len([m for m in rec.messages if m.topic.endswith("/config")])
    rec.publish("homeassistant/status", b"online")
    rec.wait_for(
        lambda: (
            len([m for m in rec.messages if m.topic.endswith("/config")]) >= before + len(ENTITIES)
        ),
        20,
        "configs announced again",
    )
    assert daemon.terminate()[0] == 0

    # The feature is turned off (section removed): what was announced is removed.
    again = start_daemon(broker.port, name="without-ha", source=source)
    rec.wait_for(lambda: all(not c for c in _configs(rec).values()), 60, "configs removed")
    assert again.terminate()[0] == 0
    late = Recorder(broker.port, "homeassistant/#", "ha-late", clean=True)
    time.sleep(1)  # retained messages arrive right after the subscription
    assert not [m for m in late.messages if m.topic.endswith("/config")], "nothing retained"
    for r in (rec, states, late):
        r.close()
