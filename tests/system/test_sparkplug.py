"""Sparkplug B: the station as an edge node, checked by an independent decoder on a real broker."""

from __future__ import annotations

import itertools
import signal
import time

import cv2
import pytest

from tests.support.broker import free_port
from tests.support.mjpeg import MjpegCamera
from tests.support.mqtt_client import Recorder
from tests.support.sparkplug_host import decode, payload_class, value_of

GROUP, NODE, DEVICE = "plant-a", "cell-1", "inspection"
# The documented metrics (docs/sparkplug.md): what an Ignition tag browser shows.
METRICS = {
    "Inspection/Verdict": "String",
    "Inspection/Score": "Double",
    "Inspection/Seq": "UInt64",
    "Inspection/PartId": "String",
    "Inspection/LastInspection": "DateTime",
    "Thresholds/ReviewAt": "Double",
    "Thresholds/FailAt": "Double",
    "Counts/Pass": "UInt64",
    "Counts/Review": "UInt64",
    "Counts/Fail": "UInt64",
    "Rates/InspectedFps": "Double",
    "Camera/DroppedFrames": "UInt64",
    "Camera/CameraState": "String",
    "Outbox/OutboxDepth": "UInt64",
    "Model/ModelName": "String",
    "Model/ModelVersion": "String",
    "Model/ModelHash": "String",
    "Drift/DriftAlarm": "Boolean",
    "Healthy": "Boolean",
}
# Tahu DataType numbers, and the value field each is carried in.
DATATYPE = {"String": 12, "Double": 10, "UInt64": 8, "DateTime": 13, "Boolean": 11, "Int64": 4}
FIELD = {
    12: "string_value",
    10: "double_value",
    8: "long_value",
    13: "long_value",
    11: "boolean_value",
    4: "long_value",
}


@pytest.fixture
def host(tmp_path, broker):
    """(Payload class, recorder of every Sparkplug message, decoded list)."""
    payload = payload_class(tmp_path)
    rec = Recorder(broker.port, "spBv1.0/#", "sparkplug-host")

    def decoded():
        with rec._lock:
            msgs = list(rec.messages)
        return [decode(payload, m.topic, m.payload) for m in msgs if "/NCMD/" not in m.topic]

    yield payload, rec, decoded
    rec.close()


def _sparkplug(**extra) -> dict:
    return {"group_id": GROUP, "health_interval_s": 0.5, **extra}


def _check_session(msgs) -> None:
    """Births before data, aliases from the birth, seq continuous 0-255 with resets at NBIRTH."""
    assert msgs[0].kind == "NBIRTH", [m.kind for m in msgs[:3]]
    aliases: dict[int, int] = {}  # alias -> datatype, from the latest DBIRTH
    device_born = False
    prev = None
    for m in msgs:
        assert m.node == NODE
        p = m.payload
        assert p.HasField("timestamp") and p.timestamp > 1.7e12
        if m.kind == "NDEATH":
            assert not p.HasField("seq")
            continue
        if m.kind == "NBIRTH":
            assert p.seq == 0
            assert m.metric("bdSeq").datatype == DATATYPE["Int64"]
            assert m.metric("Node Control/Rebirth").datatype == DATATYPE["Boolean"]
            device_born = False
        else:
            assert p.seq == (prev + 1) % 256, f"seq {prev} -> {p.seq} at {m.kind}"
        prev = p.seq
        if m.kind == "DBIRTH":
            assert m.device == DEVICE
            names = {x.name: x for x in p.metrics}
            assert set(names) == set(METRICS)
            for name, kind in METRICS.items():
                assert names[name].datatype == DATATYPE[kind], name
            aliases = {x.alias: x.datatype for x in p.metrics}
            assert len(aliases) == len(METRICS), "aliases are unique"
            device_born = True
        elif m.kind == "DDATA":
            assert device_born, "DDATA before its DBIRTH"
            for x in p.metrics:
                assert not x.name, "DDATA carries aliases only"
                assert x.alias in aliases, f"alias {x.alias} not in the birth"
                assert x.is_null or x.WhichOneof("value") == FIELD[aliases[x.alias]]
        elif m.kind == "DDEATH":
            device_born = False


def _data(msgs, name: str) -> list:
    """Every DDATA value of the metric `name`, found by the alias its DBIRTH gave it."""
    birth = next(m for m in msgs if m.kind == "DBIRTH")
    alias = next(x.alias for x in birth.payload.metrics if x.name == name)
    return [
        value_of(x)
        for m in msgs
        if m.kind == "DDATA"
        for x in m.payload.metrics
        if x.alias == alias
    ]


def test_births_data_seq_wrap_rebirth_and_will_on_sigkill(host, broker, start_daemon, parts_video):
    Payload, rec, decoded = host
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 20}
    daemon = start_daemon(broker.port, source=source, sparkplug=_sparkplug())
    rec.wait_for(lambda: len(decoded()) >= 320, 180, "300 Sparkplug messages")

    cmd = Payload(timestamp=int(time.time() * 1000))
    cmd.metrics.add(name="Node Control/Rebirth", datatype=DATATYPE["Boolean"], boolean_value=True)
    rec.publish(f"spBv1.0/{GROUP}/NCMD/{NODE}", cmd.SerializeToString())
    rec.wait_for(lambda: [m.kind for m in decoded()].count("DBIRTH") >= 2, 30, "rebirth")

    daemon.proc.send_signal(signal.SIGKILL)
    daemon.wait(10)
    rec.wait_for(lambda: decoded()[-1].kind == "NDEATH", 30, "NDEATH will after SIGKILL")

    msgs = decoded()
    _check_session(msgs)
    kinds = [m.kind for m in msgs]
    assert kinds.count("NBIRTH") == 2 and kinds.count("NDEATH") == 1
    births = [m for m in msgs if m.kind == "NBIRTH"]
    bd_seq = value_of(births[0].metric("bdSeq"))
    assert value_of(births[1].metric("bdSeq")) == bd_seq, "a rebirth keeps the session's bdSeq"
    assert value_of(msgs[-1].metric("bdSeq")) == bd_seq, "the will names the session it ends"
    seqs = [m.payload.seq for m in msgs if m.kind != "NDEATH"]
    assert any(a == 255 and b == 0 for a, b in itertools.pairwise(seqs)), "seq wraps"
    # The data is the station's: verdicts and growing counts.
    verdicts = _data(msgs, "Inspection/Verdict")
    assert {"pass", "fail"} <= set(verdicts) <= {"pass", "review", "fail"}  # good and defective
    seq_values = _data(msgs, "Inspection/Seq")
    assert len(seq_values) >= 100 and seq_values == sorted(seq_values)


def test_new_bdseq_after_reconnect_device_follows_camera_clean_stop(
    host, broker, start_daemon, synth_dir
):
    _, rec, decoded = host
    frames = [cv2.imread(str(p)) for p in sorted((synth_dir / "test" / "good").glob("*.png"))]
    camera = MjpegCamera(frames, free_port(), fps=10)
    camera.start()
    source = {
        "kind": "stream",
        "url": camera.url,
        "read_timeout_s": 1,
        "open_timeout_s": 1,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 1,
    }
    daemon = start_daemon(broker.port, source=source, sparkplug=_sparkplug())
    rec.wait_for(lambda: "DDATA" in [m.kind for m in decoded()], 60, "data")

    camera.stop()
    rec.wait_for(
        lambda: decoded()[-1].kind == "DDEATH" or "DDEATH" in [m.kind for m in decoded()],
        30,
        "DDEATH when the camera is lost",
    )
    camera.start()
    rec.wait_for(
        lambda: [m.kind for m in decoded()].count("DBIRTH") >= 2, 30, "DBIRTH when it returns"
    )

    broker.stop(signal.SIGTERM)
    broker.start()
    rec.wait_for(lambda: [m.kind for m in decoded()].count("NBIRTH") >= 2, 60, "reborn")
    rec.wait_for(lambda: [m.kind for m in decoded()].count("DBIRTH") >= 3, 30, "device reborn")

    assert daemon.terminate()[0] == 0
    rec.wait_for(lambda: decoded()[-1].kind == "NDEATH", 20, "NDEATH at a clean stop")
    camera.stop()

    msgs = decoded()
    # Messages published while the broker was down are lost (QoS 0), so the seq check runs on
    # each session separately.
    starts = [i for i, m in enumerate(msgs) if m.kind == "NBIRTH"] + [len(msgs)]
    for a, b in itertools.pairwise(starts):
        _check_session(msgs[a:b])
    births = [value_of(m.metric("bdSeq")) for m in msgs if m.kind == "NBIRTH"]
    assert births[1] == (births[0] + 1) % 256, "a new session has the next bdSeq"
    assert value_of(msgs[-1].metric("bdSeq")) == births[1]
    kinds = [m.kind for m in msgs]
    assert kinds[-2:] == ["DDEATH", "NDEATH"]
