"""Machine-vision cameras: GigE Vision and USB3 Vision through Aravis (the `genicam` extra).

Aravis speaks both protocols itself, with no vendor's GenTL producer to install, and ships a
fake GigE Vision camera the tests run against. It is reached through GObject introspection
(PyGObject and Debian's `gir1.2-aravis-0.8`), imported only when `source.kind` is `genicam`.

The camera is chosen by serial number, device id or IP address (the first one found when none
is named); pixel format, ROI, exposure, gain and frame rate are set from the configuration and
read back for `stats`. Trigger modes: free-running, software (one frame per request, fired by
the station) and a hardware line (a frame per pulse, e.g. from the PLC's part sensor). Raw
Bayer and RGB frames are converted to BGR; Mono8 stays gray, as gray training images are read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from lineside.daemon.config import GenICam

log = logging.getLogger(__name__)

# GenICam pixel formats -> OpenCV conversions to BGR (None: kept as delivered).
CONVERSIONS = {
    "Mono8": None,
    "BayerRG8": cv2.COLOR_BayerRGGB2BGR,
    "BayerGR8": cv2.COLOR_BayerGRBG2BGR,
    "BayerGB8": cv2.COLOR_BayerGBRG2BGR,
    "BayerBG8": cv2.COLOR_BayerBGGR2BGR,
    "RGB8": cv2.COLOR_RGB2BGR,
    "BGR8": None,
}
BUFFERS = 4  # frames in flight between the camera and this reader


class CameraGone(Exception):
    """The camera stopped answering (unplugged, powered off, network down)."""


@dataclass(frozen=True)
class Grab:
    """One frame as the camera numbered and stamped it."""

    image: np.ndarray
    frame_id: int  # the camera's frame counter (a hardware trigger's part counter)
    timestamp_ns: int  # the camera's own clock, at exposure


def aravis():
    """The Aravis module; ImportError or ValueError with the reason when it is not installed."""
    import gi

    gi.require_version("Aravis", "0.8")
    from gi.repository import Aravis

    return Aravis


def to_bgr(raw: np.ndarray, pixel_format: str) -> np.ndarray:
    """A raw frame (H, W) or (H, W, 3) in `pixel_format` as the pipeline takes it."""
    code = CONVERSIONS[pixel_format]
    return raw if code is None else cv2.cvtColor(raw, code)


def _find(ar, wanted: str | None) -> str:
    """The device id of the camera named by serial number, device id or address."""
    ar.update_device_list()
    found = []
    for i in range(ar.get_n_devices()):
        ids = (ar.get_device_id(i), ar.get_device_serial_nbr(i), ar.get_device_address(i))
        found.append(ids[0])
        if wanted is None or wanted in ids:
            return ids[0]
    seen = ", ".join(found) or "none"
    raise CameraGone(f"no GenICam camera {wanted or ''} found (cameras seen: {seen})".strip())


class Session:
    """One open camera, configured and acquiring; `close` stops it."""

    def __init__(self, cfg: GenICam) -> None:
        self.cfg = cfg
        self.ar = aravis()
        self.incomplete = 0  # frames the camera sent that did not arrive whole
        try:
            self.camera = self.ar.Camera.new(_find(self.ar, cfg.camera))
            self._configure()
            self.stream = self.camera.create_stream(None, None)
            for _ in range(BUFFERS):
                self.stream.push_buffer(self.ar.Buffer.new_allocate(self.camera.get_payload()))
            self.camera.start_acquisition()
        except Exception as exc:
            if isinstance(exc, CameraGone):
                raise
            raise CameraGone(f"camera does not open: {exc}") from None
        log.info("genicam: %s acquiring (%s)", self.camera.get_device_id(), self.readback())

    def _configure(self) -> None:
        c, cfg = self.camera, self.cfg
        c.set_pixel_format_from_string(cfg.pixel_format)
        if cfg.roi is not None:
            c.set_region(*cfg.roi)
        if cfg.exposure_us is not None:
            c.set_exposure_time(cfg.exposure_us)
        if cfg.gain_db is not None:
            c.set_gain(cfg.gain_db)
        if cfg.trigger == "free_run":
            c.clear_triggers()
            if cfg.frame_rate is not None:
                c.set_frame_rate(cfg.frame_rate)
        else:
            c.set_trigger("Software" if cfg.trigger == "software" else cfg.trigger_line)

    def frames(self) -> Iterator[Grab | None]:
        """Frames as they arrive, None after `timeout_s` without one (normal while waiting for a
        trigger, once the camera has answered that it is still there); raises CameraGone."""
        while True:
            buf = self.stream.timeout_pop_buffer(int(self.cfg.timeout_s * 1e6))
            if buf is None:
                self._probe()
                yield None
                continue
            try:
                if buf.get_status() != self.ar.BufferStatus.SUCCESS:
                    self.incomplete += 1
                    continue
                yield self._grab(buf)
            finally:
                self.stream.push_buffer(buf)

    def _grab(self, buf) -> Grab:
        h, w = buf.get_image_height(), buf.get_image_width()
        data = np.frombuffer(buf.get_data(), np.uint8)
        shape = (h, w, 3) if self.cfg.pixel_format in ("RGB8", "BGR8") else (h, w)
        raw = data[: int(np.prod(shape))].reshape(shape)
        image = to_bgr(raw, self.cfg.pixel_format)
        image = image.copy() if image is raw else image  # the buffer goes back to the camera
        return Grab(image, int(buf.get_frame_id()), int(buf.get_timestamp()))

    def _probe(self) -> None:
        try:
            self.camera.get_exposure_time()
        except Exception as exc:
            raise CameraGone(f"camera stopped answering: {exc}") from None

    def fire(self) -> None:
        """One software trigger, the camera exposing a frame now (free-running or on a hardware
        line, nothing to do)."""
        if self.cfg.trigger == "software":
            self.camera.software_trigger()

    def readback(self) -> dict:
        """What the camera says it is doing, for `stats`."""
        c = self.camera
        x, y, w, h = c.get_region()
        out = {
            "device": c.get_device_id(),
            "pixel_format": c.get_pixel_format_as_string(),
            "roi": [x, y, w, h],
            "exposure_us": round(c.get_exposure_time(), 1),
            "gain_db": round(c.get_gain(), 2),
            "frame_rate": round(c.get_frame_rate(), 2),
            "trigger": self.cfg.trigger,
            "incomplete_frames": self.incomplete,
        }
        try:
            temperature = c.get_device().get_float_feature_value("DeviceTemperature")
            out["temperature_c"] = round(temperature, 1)
        except Exception:
            out["temperature_c"] = None  # not every camera has the feature
        return out

    def close(self) -> None:
        try:
            self.camera.stop_acquisition()
        except Exception:
            log.debug("genicam: stop on a camera already gone")
