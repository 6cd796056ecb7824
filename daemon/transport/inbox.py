"""The inbox of commands: paho's network thread puts them in, the station's control thread takes
them out. Bounded, and it never raises on paho's thread: when full it drops and counts."""

from __future__ import annotations

import logging
import queue

from lineside.daemon import worth_logging

log = logging.getLogger(__name__)

INBOX_SIZE = 1000


class Inbox:
    """Commands as they arrive, for the control thread; drops (and counts) when full."""

    def __init__(self, capacity: int = INBOX_SIZE) -> None:
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=capacity)

    def put(self, name: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((name, payload))
        except queue.Full:
            self.dropped += 1
            if worth_logging(self.dropped):
                log.warning("command inbox full: %d command(s) dropped", self.dropped)

    def get(self, timeout: float) -> tuple[str, bytes] | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
