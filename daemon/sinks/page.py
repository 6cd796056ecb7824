"""What the operator's page shows, kept as inspections pass: the latest result and the score
trend. Nothing is rendered here; `daemon/page.py` serves the page and renders on request."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from lineside.daemon.sinks import Result
from lineside.daemon.sinks.exported import Health, View
from lineside.daemon.telemetry import Telemetry

SEVERITY = {"pass": 0, "review": 1, "fail": 2}


class PageSink:
    """Keeps the latest result and the score trend for the page; O(1) per inspection.

    The trend holds one point per second: the highest score of that second, its worst verdict,
    the seq of that highest-scoring part, and the drift monitor's score average (EWMA) when the
    second began, so a spike is never thinned away and a 10-minute trend is at most 600
    points."""

    def __init__(
        self,
        telemetry: Telemetry,
        health: Health,
        trend_minutes: float,
        score_ewma: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.view = View(telemetry, health)
        self.latest: Result | None = None
        self.trend_s = trend_minutes * 60
        self.trend: deque[list] = deque(maxlen=int(self.trend_s) + 1)
        self._ewma = score_ewma

    def start(self) -> None:
        """Nothing to open: the page's server is started by `Page`."""

    def publish(self, result: Result) -> None:
        self.view.record(result)
        self.latest = result
        now, insp = time.time(), result.inspection
        score, verdict = float(insp.score), insp.verdict
        last = self.trend[-1] if self.trend else None
        if last is not None and int(last[0]) == int(now):
            if score > last[1]:
                last[1], last[3] = score, result.seq
            if SEVERITY[verdict] > SEVERITY[last[2]]:
                last[2] = verdict
        else:
            self.trend.append([now, score, verdict, result.seq, self._ewma()])
        while self.trend and now - self.trend[0][0] > self.trend_s:
            self.trend.popleft()

    def close(self) -> None:
        """The server is stopped by `Page`."""

    def points(self) -> list[list]:
        """The trend: [time, highest score, worst verdict, its part's seq, score EWMA or None]
        per second."""
        return [
            [round(t, 1), round(s, 5), v, seq, None if e is None else round(e, 5)]
            for t, s, v, seq, e in list(self.trend)
        ]
