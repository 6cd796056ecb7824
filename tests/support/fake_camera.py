"""Aravis's own fake GigE Vision camera on loopback (Debian's `aravis-tools`) for tests."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

FAKE = "arv-fake-gv-camera-0.8"


def needed() -> None:
    """Skip, naming what to install, where the fake camera or the Aravis bindings are missing."""
    if shutil.which(FAKE) is None:
        pytest.skip(f"{FAKE} not found: the GenICam tests need aravis-tools")
    try:
        from lineside.daemon.capture.genicam import aravis

        aravis()
    except (ImportError, ValueError) as exc:
        pytest.skip(
            f"Aravis bindings missing ({exc}) beside {FAKE}: gir1.2-aravis-0.8 and pygobject"
        )


class FakeCamera:
    """`start()` runs the camera (again); `stop()` pulls its plug."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [FAKE, "-i", "127.0.0.1", "-s", self.serial],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_seen()

    def _wait_seen(self, timeout: float = 15) -> None:
        from lineside.daemon.capture.genicam import aravis

        ar = aravis()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ar.update_device_list()
            if any(ar.get_device_serial_nbr(i) == self.serial for i in range(ar.get_n_devices())):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the fake camera {self.serial} did not appear")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def running(serial: str) -> Iterator[FakeCamera]:
    """A fake camera for the length of a test; skips where it cannot run."""
    needed()
    cam = FakeCamera(serial)
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()
