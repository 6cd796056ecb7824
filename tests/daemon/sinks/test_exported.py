"""The exported values: one list for Sparkplug, OPC UA and Home Assistant, read by each sink's
view from the station's one telemetry."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lineside.daemon import telemetry
from lineside.daemon.sinks import sparkplug
from lineside.daemon.sinks import sparkplug_b_pb2 as pb
from lineside.daemon.sinks.exported import BY_PATH, INSPECTION_PATHS, VALUES, View
from lineside.daemon.telemetry import Telemetry


def _health(camera="ok", connected=True) -> dict:
    return {
        "camera": camera,
        "camera_online": camera == "ok",
        "dropped_frames": 3,
        "outbox_depth": 0,
        "mqtt_connected": connected,
        "drift_alarm": False,
        "model": {"name": "flange", "version": "v2", "sha256": "ab" * 32},
    }


def _result(verdict: str, score: float, seq: int, part_id=None):
    thresholds = SimpleNamespace(review_at=10.0, fail_at=20.0)
    return SimpleNamespace(
        inspection=SimpleNamespace(verdict=verdict, score=score),
        seq=seq,
        part_id=part_id,
        bundle=SimpleNamespace(manifest=SimpleNamespace(thresholds=thresholds)),
    )


def test_names_are_unique_and_every_kind_has_a_sparkplug_type():
    assert len({v.path for v in VALUES}) == len(VALUES)
    assert len({v.name for v in VALUES}) == len(VALUES)  # OPC UA browse names too
    assert {v.kind for v in VALUES} <= set(sparkplug.DATATYPES)
    assert set(INSPECTION_PATHS) <= set(BY_PATH)


def test_before_any_part_only_health_is_known():
    values = View(Telemetry(), _health).values()
    assert set(values) == set(BY_PATH)
    assert values["Inspection/Verdict"] is None and values["Inspection/Score"] is None
    assert values["Counts/Pass"] == 0 and values["Camera/CameraState"] == "ok"
    assert values["Healthy"] is True and values["Model/ModelVersion"] == "v2"


def test_counts_come_from_the_owner_and_the_part_from_the_sinks_own_latest():
    owner = Telemetry()
    fast, behind = View(owner, _health), View(owner, _health)
    for i, (verdict, score) in enumerate([("pass", 1.0), ("fail", 30.0), ("pass", 2.0)]):
        owner.inspection(verdict, latency_ms=5.0)
        fast.record(_result(verdict, score, seq=100 + i, part_id=f"p{i}"))
    behind.record(_result("pass", 1.0, seq=100, part_id="p0"))  # a queued sink, two parts behind
    values = fast.values()
    assert (values["Counts/Pass"], values["Counts/Review"], values["Counts/Fail"]) == (2, 0, 1)
    assert values["Inspection/Verdict"] == "pass" and values["Inspection/Score"] == 2.0
    assert values["Inspection/Seq"] == 102 and values["Inspection/PartId"] == "p2"
    assert values["Thresholds/FailAt"] == 20.0
    assert values["Rates/InspectedFps"] == pytest.approx(3 / telemetry.FPS_WINDOW_S)
    late = behind.values()
    assert late["Inspection/Seq"] == 100
    assert [late[f"Counts/{v}"] for v in ("Pass", "Review", "Fail")] == [2, 0, 1]


@pytest.mark.parametrize(
    "camera,connected,healthy",
    [
        ("ok", True, True),
        ("fault", True, False),
        ("reconnecting", True, False),
        ("ok", False, False),
    ],
)
def test_healthy_needs_the_camera_and_the_broker(camera, connected, healthy):
    assert View(Telemetry(), lambda: _health(camera, connected)).values()["Healthy"] is healthy


@pytest.mark.parametrize(
    "path,data,field,expected",
    [
        ("Inspection/Verdict", "fail", "string_value", "fail"),
        ("Inspection/Score", 12.5, "double_value", 12.5),
        ("Counts/Pass", 7, "long_value", 7),
        ("Healthy", False, "boolean_value", False),
        ("Inspection/LastInspection", 1700000000.25, "long_value", 1700000000250),
    ],
)
def test_sparkplug_values_go_in_the_field_of_their_datatype(path, data, field, expected):
    metric = pb.Payload.Metric()
    sparkplug.set_value(metric, BY_PATH[path], data)
    assert metric.WhichOneof("value") == field and getattr(metric, field) == expected


def test_an_unknown_value_is_sent_as_null():
    metric = pb.Payload.Metric()
    sparkplug.set_value(metric, BY_PATH["Inspection/Score"], None)
    assert metric.is_null and metric.WhichOneof("value") is None
