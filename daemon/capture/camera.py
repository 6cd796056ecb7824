"""Live capture in its own thread, keeping only the newest frame.

Sources: a V4L2 device, an RTSP or HTTP(S) stream (FFmpeg with open and read timeouts, so a dead
stream cannot hang the process), a video file (optionally looped), a folder of images, or a
GigE Vision / USB3 Vision camera (`genicam.py`, the camera's frame id and clock kept). When a
source fails, the reader reconnects with capped exponential backoff and reports its state:
`ok`, `reconnecting`, `failed` (still retrying, but for longer than `failed_after` attempts), or
`finished` for a file source that reached its end without looping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np

from lineside.daemon.capture.genicam import CameraGone, Grab, Session
from lineside.daemon.capture.image_files import IMAGE_SUFFIXES, read_image
from lineside.daemon.config import Source
from lineside.daemon.core.pipeline import Frame

log = logging.getLogger(__name__)


class SourceGone(Exception):
    """The source stopped giving frames (stream cut, device unplugged, file unreadable)."""


class Camera:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.state = "reconnecting"
        self.captured = 0
        self.dropped = 0  # frames replaced before anyone took them
        self.errors = 0  # unexpected errors in the capture thread (it goes on after each)
        self.decode_ms: deque[float] = deque(maxlen=1000)  # read + decode time per frame
        self._next_at = 0.0  # when a paced file source may deliver its next frame; 0: not begun
        self._latest: Frame | None = None
        self._taken_seq = -1
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._session = None  # the open GenICam camera, while there is one

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        # A read blocked in FFmpeg ends at its own timeout; the thread is a daemon thread, so a
        # stop never waits for it longer than this.
        self._thread.join(timeout=1.5)

    def next_frame(self, timeout: float, newer_than: float = 0.0) -> Frame | None:
        """The newest frame not taken yet (captured after `newer_than`), or None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                f = self._latest
                if f is not None and f.seq > self._taken_seq and f.ts > newer_than:
                    self._taken_seq = f.seq
                    return f
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set() or self.state == "finished":
                    return None
                self._cond.wait(left)

    def fire(self) -> None:
        """Ask for a frame now: a software trigger for a GenICam camera that waits for one."""
        session = self._session
        if session is not None:
            try:
                session.fire()
            except Exception as exc:
                log.warning("genicam: software trigger failed: %s", exc)

    def readback(self) -> dict | None:
        """A GenICam camera's settings as it reports them (None for other sources)."""
        session = self._session
        if session is None:
            return None
        try:
            return session.readback()
        except Exception as exc:
            return {"error": str(exc)}

    def _put(self, image, frame_id: int | None = None, ts_ns: int | None = None) -> None:
        with self._cond:
            if self._latest is not None and self._latest.seq > self._taken_seq:
                self.dropped += 1
            self.captured += 1
            self._latest = Frame(image, time.time(), self.captured, frame_id, ts_ns)
            self._cond.notify_all()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.log(logging.INFO if state == "ok" else logging.WARNING, "camera %s", state)
            self.state = state
            with self._cond:
                self._cond.notify_all()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                for image in self._frames():
                    if failures or self.state != "ok":
                        self._set_state("ok")
                    failures = 0
                    if isinstance(image, Grab):
                        self._put(image.image, image.frame_id, image.timestamp_ns)
                    else:
                        self._put(image)
                    if self._stop.is_set():
                        return
                if not self.source.loop and self.source.kind in ("video", "folder"):
                    self._set_state("finished")
                    return
            except Exception as exc:
                if not isinstance(exc, SourceGone | CameraGone):
                    self.errors += 1
                    log.exception("capture error (%d so far); reconnecting", self.errors)
                failures += 1
                fail = failures > self.source.failed_after
                self._set_state("failed" if fail else "reconnecting")
                log.debug("source: %s", exc)
                delay = min(
                    self.source.reconnect_max_s, self.source.reconnect_min_s * 2 ** (failures - 1)
                )
                self._stop.wait(delay)

    def _frames(self) -> Iterator[np.ndarray | Grab]:
        if self.source.kind == "folder":
            yield from self._folder_frames()
        elif self.source.kind == "genicam":
            yield from self._genicam_frames()
        else:
            yield from self._capture_frames()

    def _genicam_frames(self) -> Iterator[Grab]:
        self._session = Session(self.source.genicam)
        self._set_state("ok")  # acquiring: a triggered camera sends nothing until it is asked
        try:
            for grab in self._session.frames():
                if self._stop.is_set():
                    return
                if grab is not None:
                    yield grab
        finally:
            session, self._session = self._session, None
            session.close()

    def _paced(self, frames: Iterator[np.ndarray], fps: float | None) -> Iterator[np.ndarray]:
        """Files play at their own (or the configured) rate, like a camera would deliver them."""
        period = 1.0 / fps if fps else 0.0
        # The first frame of the first pass sets the schedule; later passes continue it.
        self._next_at = self._next_at or time.monotonic()
        for image in frames:
            if period:
                # The schedule carries over from one pass of a looped file to the next.
                self._stop.wait(max(0.0, self._next_at - time.monotonic()))
                self._next_at = max(self._next_at + period, time.monotonic() - period)
            yield image

    def _folder_frames(self) -> Iterator[np.ndarray]:
        folder = self.source.path
        if not folder.is_dir():
            raise SourceGone(f"{folder}: no such folder")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceGone(f"{folder}: no images")

        def images() -> Iterator[np.ndarray]:
            for path in files:
                t0 = time.perf_counter()
                try:
                    image = read_image(path)
                except (OSError, ValueError) as exc:
                    log.warning("skipping %s: %s", path, exc)
                    continue
                self.decode_ms.append((time.perf_counter() - t0) * 1000)
                yield image

        yield from self._paced(images(), self.source.fps or 10.0)

    def _open(self) -> cv2.VideoCapture:
        s = self.source
        if s.kind == "device":
            cap = cv2.VideoCapture(s.device)
        else:
            target = s.url if s.kind == "stream" else str(s.path)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(s.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(s.read_timeout_s * 1000),
            ]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceGone(f"cannot open {s.kind} source")
        return cap

    def _capture_frames(self) -> Iterator[np.ndarray]:
        cap = self._open()
        try:
            fps = self.source.fps
            if self.source.kind == "video" and fps is None:
                fps = cap.get(cv2.CAP_PROP_FPS) or 10.0

            def read() -> Iterator[np.ndarray]:
                while not self._stop.is_set():
                    t0 = time.perf_counter()
                    ok, image = cap.read()
                    if not ok:
                        return
                    self.decode_ms.append((time.perf_counter() - t0) * 1000)
                    yield image

            got = 0
            for image in self._paced(read(), fps if self.source.kind == "video" else None):
                got += 1
                yield image
            if self.source.kind != "video" and not self._stop.is_set():
                raise SourceGone("stream ended or timed out")
            if got == 0:
                raise SourceGone("video gave no frames")
        finally:
            cap.release()
