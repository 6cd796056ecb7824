"""GenICam capture against Aravis's own fake GigE Vision camera on loopback: settings applied
and read back, free-running and software-triggered frames with the camera's frame ids, and a
camera that vanishes and returns."""

from __future__ import annotations

import logging
import os
import time
import typing

import numpy as np
import pytest

from lineside.daemon.capture import genicam
from lineside.daemon.capture.camera import Camera
from lineside.daemon.config import GenICam, PixelFormat, Source
from tests.support.fake_camera import running

# Its own serial number per run, so no other camera on the machine is taken for it.
SERIAL = f"LS-{os.getpid()}"


@pytest.fixture
def fake_camera():
    with running(SERIAL) as cam:
        yield cam


def _camera(**settings) -> Camera:
    cfg = GenICam(camera=SERIAL, timeout_s=0.5, **settings)
    source = Source(kind="genicam", genicam=cfg, reconnect_min_s=0.2, reconnect_max_s=0.5)
    cam = Camera(source)
    cam.start()
    return cam


def _frames(cam: Camera, n: int, timeout: float = 10):
    out, seen = [], 0.0
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        f = cam.next_frame(timeout=1)
        if f is not None and f.ts > seen:
            out.append(f)
            seen = f.ts
    return out


def test_every_pixel_format_has_its_conversion():
    assert set(genicam.CONVERSIONS) == set(typing.get_args(PixelFormat))


def test_free_running_frames_carry_the_camera_s_ids_and_the_settings_read_back(fake_camera):
    cam = _camera(
        pixel_format="BayerRG8",
        roi=(16, 8, 320, 240),
        exposure_us=8000,
        gain_db=3,
        frame_rate=25,
    )
    try:
        frames = _frames(cam, 5)
        assert len(frames) == 5
        assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
        ids = [f.camera_frame_id for f in frames]
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert all(f.camera_ts_ns > 0 for f in frames)
        back = cam.readback()
        assert back["pixel_format"] == "BayerRG8" and back["roi"] == [16, 8, 320, 240]
        assert (back["exposure_us"], back["gain_db"], back["frame_rate"]) == (8000, 3, 25)
        assert cam.state == "ok"
    finally:
        cam.stop()


def test_a_software_triggered_camera_gives_a_frame_per_request_and_none_without(fake_camera):
    cam = _camera(trigger="software", pixel_format="Mono8", roi=(0, 0, 128, 96))
    try:
        time.sleep(1.5)  # acquiring, untriggered
        assert cam.next_frame(timeout=0.5) is None
        for _ in range(3):
            asked = time.time()
            cam.fire()
            frame = cam.next_frame(timeout=5, newer_than=asked)
            assert frame is not None and frame.image.shape == (96, 128)
        assert cam.captured == 3
        assert cam.readback()["trigger"] == "software"
    finally:
        cam.stop()


def test_a_camera_that_vanishes_is_reconnected_when_it_returns(fake_camera):
    cam = _camera(frame_rate=20)
    try:
        assert len(_frames(cam, 3)) == 3
        fake_camera.stop()
        deadline = time.monotonic() + 15
        while cam.state == "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cam.state in ("reconnecting", "failed")
        fake_camera.start()
        deadline = time.monotonic() + 30
        while cam.state != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cam.state == "ok"
        assert len(_frames(cam, 3)) == 3
    finally:
        cam.stop()


def test_a_camera_not_on_the_network_is_reported_by_name(fake_camera, caplog):
    caplog.set_level(logging.DEBUG, logger="lineside.daemon.capture.camera")
    cam = Camera(Source(kind="genicam", genicam=GenICam(camera="NO-SUCH-CAMERA")))
    cam.start()
    try:
        deadline = time.monotonic() + 10
        while "NO-SUCH-CAMERA" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "no GenICam camera NO-SUCH-CAMERA found (cameras seen: " in caplog.text
        assert SERIAL in caplog.text  # the ones it did see, to tell a typo from a cable
        assert cam.captured == 0 and cam.errors == 0  # an expected fault, not a capture bug
        assert cam.state == "reconnecting"
    finally:
        cam.stop()
