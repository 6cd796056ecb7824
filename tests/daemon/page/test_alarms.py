"""The page's banners: raised by the state they describe, cleared when it clears, most urgent
first, each saying what it means and what to check."""

from __future__ import annotations

import pytest

from lineside.daemon.page.alarms import alarms

HEALTHY = {"camera": "ok", "camera_fault": None, "mqtt_connected": True, "outbox_depth": 0}
NO_DRIFT = {"alarm": False, "monitored": True}
DRIFT = {
    "alarm": True,
    "charts": {
        "score": {"ewma": 9.1, "reference": 5.0, "out": True},
        "brightness": {"ewma": 120.0, "reference": 121.0, "out": False},
    },
}

CASES = {
    "healthy": ({}, NO_DRIFT, []),
    "camera refused": (
        {"camera": "fault", "camera_fault": "frame 640x480, expected 1280x960"},
        NO_DRIFT,
        [("camera", "alarm", "1280x960")],
    ),
    "camera gone": ({"camera": "reconnecting"}, NO_DRIFT, [("camera", "alarm", "No part")]),
    "camera given up": ({"camera": "failed"}, NO_DRIFT, [("camera", "alarm", "stopped retrying")]),
    "broker down": (
        {"mqtt_connected": False, "outbox_depth": 7},
        NO_DRIFT,
        [("broker", "alarm", "7 results wait")],
    ),
    "outbox filling": ({"outbox_depth": 1000}, NO_DRIFT, [("outbox", "warning", "dropped")]),
    "outbox just under": ({"outbox_depth": 999}, NO_DRIFT, []),
    "drift": ({}, DRIFT, [("drift", "warning", "score average 9.1 (reference 5)")]),
    "all at once": (
        {"camera": "reconnecting", "mqtt_connected": False, "outbox_depth": 5000},
        DRIFT,
        [
            ("camera", "alarm", ""),
            ("broker", "alarm", ""),
            ("outbox", "warning", ""),
            ("drift", "warning", ""),
        ],
    ),
}


@pytest.mark.parametrize("health,drift,expected", CASES.values(), ids=CASES.keys())
def test_banners_follow_the_state(health, drift, expected):
    found = alarms({**HEALTHY, **health}, drift, outbox_rows=10_000, outbox_share=0.1)
    assert [(a["kind"], a["level"]) for a in found] == [(k, lv) for k, lv, _ in expected]
    for alarm, (_, _, words) in zip(found, expected, strict=True):
        assert words in alarm["title"] + " " + alarm["meaning"]
        assert alarm["check"]  # every banner says what to check
    assert "brightness" not in " ".join(a["meaning"] for a in found)  # only what drifted
