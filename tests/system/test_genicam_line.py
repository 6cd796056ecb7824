"""The line's own hardware together: the PLC triggers each part over Modbus TCP, the station fires
the GigE Vision camera's software trigger (Aravis's fake camera on loopback), inspects the frame
with the real pipeline and answers the PLC; MQTT carries the camera's frame ids."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.broker import free_port
from tests.support.fake_camera import running
from tests.support.mqtt_client import Recorder
from tests.support.plc import Plc
from tests.support.station import PREFIX

# Its own serial number per run, so no other camera on the machine is taken for it.
SERIAL = f"LL-{os.getpid()}"


def _camera(**settings) -> dict:
    """The fake camera as a software-triggered source of the test bundle's frames."""
    genicam = {"camera": SERIAL, "pixel_format": "BayerRG8", "trigger": "software"}
    # The test bundle's frames: 256x256 colour.
    return {"kind": "genicam", "genicam": {**genicam, "roi": [0, 0, 256, 256], **settings}}


@pytest.fixture
def fake_camera():
    with running(SERIAL) as cam:
        yield cam


def test_plc_triggered_parts_are_exposed_by_software_trigger_and_answered(
    broker, start_daemon, fake_camera
):
    rec = Recorder(broker.port, f"{PREFIX}/#", "genicam")
    port = free_port()
    start_daemon(
        broker.port,
        source=_camera(exposure_us=2000),
        trigger={"mode": "plc", "frame_timeout_s": 2},
        plc={"port": port, "deadline_ms": 1000},
    )
    rec.wait_for(
        lambda: rec.on("stats") and json.loads(rec.on("stats")[-1].payload)["camera"] == "ok",
        90,
        "the station running, its camera acquiring",
    )
    plc = Plc(port)
    answers = [plc.part(700 + n) for n in range(20)]
    assert all(a.verdict in ("pass", "review", "fail") for a in answers), answers

    rec.wait_for(lambda: len(rec.on("inspection")) >= 20, 30, "20 inspections")
    docs = [json.loads(m.payload) for m in rec.on("inspection")]
    assert [d["part_id"] for d in docs] == [str(700 + n) for n in range(20)]
    ids = [d["camera_frame"]["id"] for d in docs]
    assert ids == sorted(ids) and len(set(ids)) == 20  # one exposure per part, none reused
    settings = json.loads(rec.on("stats")[-1].payload)["camera_settings"]
    assert settings["trigger"] == "software" and settings["roi"] == [0, 0, 256, 256]
    assert settings["exposure_us"] == 2000 and settings["pixel_format"] == "BayerRG8"
    plc.close()
    rec.close()


def test_a_continuous_station_fires_a_software_triggered_camera_for_each_frame(
    broker, start_daemon, fake_camera
):
    rec = Recorder(broker.port, f"{PREFIX}/#", "genicam-continuous")
    start_daemon(
        broker.port,
        source=_camera(),
        trigger={"mode": "continuous", "max_fps": 10},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 10, 90, "10 inspections")
    ids = [json.loads(m.payload)["camera_frame"]["id"] for m in rec.on("inspection")]
    assert len(set(ids)) == len(ids)  # each inspection its own exposure
    rec.close()
