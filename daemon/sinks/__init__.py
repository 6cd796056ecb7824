"""Consumers of inspections: the frame loop hands every result to a list of sinks.

A sink is anything with `start()`, `publish(result)` and `close()`. The frame loop does not know
their names; `consumers` builds the list from the configuration. A sink that may be slow is
wrapped in `Queued`: a bounded queue and its own thread, so it drops (and counts) rather than
stalls frames.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Protocol

from lineside.daemon import worth_logging
from lineside.daemon.core.pipeline import Frame, Inspection
from lineside.deploy.bundle import Bundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """One finished inspection, with everything a consumer needs to report it."""

    seq: int  # the station's inspection number, kept across restarts
    frame: Frame
    inspection: Inspection
    part_id: str | None
    bundle: Bundle  # the bundle that inspected it
    station: str
    request_id: str | None = None  # the request it answers (an MQTT command's, the PLC's)


class Sink(Protocol):
    def start(self) -> None:
        """Begin talking to the outside (connect, serve); called once the station starts."""

    def publish(self, result: Result) -> None:
        """Take one result; must not raise for a result it cannot deliver (count it instead)."""

    def close(self) -> None:
        """Deliver or store what was taken, then release what the sink holds."""


class Queued:
    """Runs a sink on its own thread behind a bounded queue that drops the newest when full."""

    def __init__(self, sink: Sink, name: str, capacity: int = 64) -> None:
        self.sink, self.name = sink, name
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[Result | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()

    def start(self) -> None:
        self.sink.start()

    def publish(self, result: Result) -> None:
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self.sink.close()

    def _run(self) -> None:
        while (result := self._queue.get()) is not None:
            try:
                self.sink.publish(result)
            except Exception:
                # A sink's bug costs that sink one result, never the frame loop or other sinks.
                self.failed += 1
                if worth_logging(self.failed):
                    log.exception("sink %s failed (%d so far)", self.name, self.failed)
