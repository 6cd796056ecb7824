"""When to inspect: every frame (optionally capped), on an interval, or on request (an MQTT
command or the PLC)."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from lineside.daemon.config import Trigger


@dataclass(frozen=True)
class Request:
    """One reason to inspect: who asked (`id`) and for which part, when known."""

    id: str | None = None
    part_id: str | None = None
    at: float = 0.0  # wall clock; frames captured before this are too old for the request
    via: str = "mqtt"  # who waits for the answer: "mqtt" (a reply) or "plc" (its registers)
    until: float = (
        0.0  # wall clock after which an answer is of no use (the PLC's deadline); 0: none
    )


class Continuous:
    def __init__(self, max_fps: float | None) -> None:
        self.period = 1.0 / max_fps if max_fps else 0.0
        self._next = time.monotonic()

    def wait(self, stop: threading.Event, timeout: float) -> Request | None:
        delay = self._next - time.monotonic()
        if delay > timeout:
            stop.wait(timeout)
            return None
        if delay > 0 and stop.wait(delay):
            return None
        self._next = max(self._next + self.period, time.monotonic())
        return Request()


class Interval(Continuous):
    def __init__(self, interval_s: float) -> None:
        super().__init__(1.0 / interval_s)
        self._next = time.monotonic() + interval_s

    def wait(self, stop: threading.Event, timeout: float) -> Request | None:
        req = super().wait(stop, timeout)
        return Request(at=time.time()) if req else None


class OnCommand:
    """Requests queued by `cmd/trigger`; bounded, so a flood of commands cannot pile up."""

    def __init__(self, capacity: int = 64) -> None:
        self.requests: queue.Queue[Request] = queue.Queue(maxsize=capacity)

    def push(self, request: Request) -> bool:
        try:
            self.requests.put_nowait(request)
            return True
        except queue.Full:
            return False

    def wait(self, stop: threading.Event, timeout: float) -> Request | None:
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[Request]:
        """Take every waiting request (a reload hands them to the next station)."""
        taken = []
        while True:
            try:
                taken.append(self.requests.get_nowait())
            except queue.Empty:
                return taken


def make(cfg: Trigger) -> Continuous | Interval | OnCommand:
    if cfg.mode == "continuous":
        return Continuous(cfg.max_fps)
    if cfg.mode == "interval":
        return Interval(cfg.interval_s)
    return OnCommand()  # mqtt and plc: requests queued by whoever asks
