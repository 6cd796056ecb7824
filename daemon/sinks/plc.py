"""The PLC's side of each part: a trigger in, a verdict and an action out, in time or failing safe.

The handshake, protocol-free (the Modbus server in `modbus.py` carries it; docs/plc.md draws
it): the PLC triggers a part with its id; the station inspects the next fresh frame; the answer
(verdict, action, score, the part id echoed, the inspection's sequence number) is set and
`result_ready` raised. One part at a time: a trigger while one is open is refused (busy), so the
PLC retries. A part with no answer `deadline_ms` after its trigger is answered `no_answer` with
the action `reject`, counted and logged; its inspection, if it comes later, is counted late and
changes nothing (the part has gone by). Trigger-to-answer latency is kept for `stats` and bench.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from lineside.daemon import worth_logging
from lineside.daemon.capture.triggers import OnCommand, Request
from lineside.daemon.config import Plc
from lineside.daemon.sinks import Result

log = logging.getLogger(__name__)

# Codes the PLC reads; 0 means no answer yet.
VERDICT_CODES = {"pass": 1, "review": 2, "fail": 3, "no_answer": 4}
ACTION_CODES = {"accept": 0, "reject": 1, "divert": 2}
Schedule = Callable[[float, Callable[[], None]], None]  # (seconds, call) on the server's clock
# Request ids unique in the process, so a link built at a reload never takes its forerunner's.
_TOKENS = (f"plc-{n}" for n in itertools.count(1))


@dataclass(frozen=True)
class Answer:
    """What the PLC reads back for its last part."""

    verdict: str = ""  # "" until the first answer
    action: str = "accept"
    part_id: int = 0
    seq: int = 0
    score: float = 0.0
    latency_ms: float = 0.0
    ready: bool = False  # result_ready: set with the answer, cleared by the next trigger
    outputs_on: bool = False  # the reject or divert output, while its pulse lasts

    @property
    def rejecting(self) -> bool:
        return self.outputs_on and self.action == "reject"

    @property
    def diverting(self) -> bool:
        return self.outputs_on and self.action == "divert"


class PlcLink:
    """A sink that answers the PLC's triggers; the protocol server calls `trigger` and reads
    `answer`, `busy` and `counts`."""

    def __init__(
        self,
        cfg: Plc,
        turn: OnCommand,
        schedule: Schedule | None = None,
        on_answer: Callable[[Answer], None] | None = None,
    ) -> None:
        self.cfg, self.turn = cfg, turn
        self.schedule: Schedule = schedule or _timer
        self.on_answer = on_answer  # told of each answer, for protocols that push it
        self.answer = Answer()
        self.counts = {"triggers": 0, "answered": 0, "no_answer": 0, "late": 0, "busy": 0}
        self.latencies_ms: deque[float] = deque(maxlen=1000)
        self._open: tuple[str, int, float] | None = None  # token, part id, monotonic trigger
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._open is not None

    def trigger(self, part_id: int) -> bool:
        """A part in position; False when the previous one is still open (the PLC retries)."""
        with self._lock:
            if self._open is not None:
                self.counts["busy"] += 1
                return False
            token = next(_TOKENS)
            self._open = (token, part_id, time.monotonic())
            self.counts["triggers"] += 1
            self.answer = replace(self.answer, ready=False)
        now = time.time()
        until = now + self.cfg.deadline_ms / 1000
        request = Request(id=token, part_id=str(part_id), at=now, via="plc", until=until)
        if not self.turn.push(request):
            self._close(token, self._fail_safe)
            return True
        self.schedule(self.cfg.deadline_ms / 1000, lambda: self._close(token, self._fail_safe))
        return True

    def start(self) -> None:
        pass

    def publish(self, result: Result) -> None:
        """An inspection: the answer to the open part when it is the one the PLC triggered."""
        if result.request_id is None or not result.request_id.startswith("plc-"):
            return
        insp = result.inspection
        action = self.cfg.actions[insp.verdict]
        answered = self._close(
            result.request_id,
            lambda part_id, ms: Answer(
                insp.verdict, action, part_id, result.seq, insp.score, ms, True, True
            ),
        )
        if not answered:
            self.counts["late"] += 1
            if worth_logging(self.counts["late"]):
                log.warning(
                    "plc: part %s inspected after its deadline (%d late so far); it was rejected",
                    result.part_id,
                    self.counts["late"],
                )

    def close(self) -> None:
        """A part still open when the link goes (a stop, a reload) is answered: rejected."""
        open_part = self._open
        if open_part is not None:
            self._close(open_part[0], self._fail_safe)

    def _fail_safe(self, part_id: int, ms: float) -> Answer:
        self.counts["no_answer"] += 1
        if worth_logging(self.counts["no_answer"]):
            log.warning(
                "plc: no answer for part %d within %g ms: rejected (%d so far)",
                part_id,
                self.cfg.deadline_ms,
                self.counts["no_answer"],
            )
        return Answer("no_answer", "reject", part_id, 0, 0.0, ms, True, True)

    def _close(self, token: str, make: Callable[[int, float], Answer]) -> bool:
        """Answer the open part if it is `token`'s; False when it was already answered."""
        with self._lock:
            if self._open is None or self._open[0] != token:
                return False
            _, part_id, t0 = self._open
            ms = (time.monotonic() - t0) * 1000
            answer = make(part_id, ms)
            self.answer, self._open = answer, None
            if answer.verdict != "no_answer":
                self.counts["answered"] += 1
                self.latencies_ms.append(ms)
        if self.cfg.reject_pulse_ms and answer.action != "accept":
            self.schedule(self.cfg.reject_pulse_ms / 1000, lambda: self._pulse_over(answer))
        if self.on_answer is not None:
            self.on_answer(answer)
        return True

    def _pulse_over(self, answer: Answer) -> None:
        with self._lock:
            if self.answer is answer:
                self.answer = replace(answer, outputs_on=False)

    def stats(self) -> dict:
        """Counts and trigger-to-answer latency (median, 99th percentile, max) for `stats`."""
        return {
            **self.counts,
            "deadline_ms": self.cfg.deadline_ms,
            "trigger_to_answer_ms": percentiles(self.latencies_ms),
        }


def percentiles(values) -> dict[str, float | None]:
    """Median, 99th percentile and max, in the values' unit (None each while there are none)."""
    if not len(values):
        return {"p50": None, "p99": None, "max": None}
    a = np.asarray(values)
    return {
        "p50": round(float(np.median(a)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
    }


def _timer(seconds: float, call: Callable[[], None]) -> None:
    t = threading.Timer(seconds, call)
    t.daemon = True
    t.start()
