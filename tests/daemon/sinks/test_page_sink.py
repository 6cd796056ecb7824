"""The page's trend: one point a second, its highest score with that part's seq, its worst
verdict, and the drift average as the second began; nothing older than the trend's window."""

from __future__ import annotations

from types import SimpleNamespace

from lineside.daemon.sinks import Result
from lineside.daemon.sinks import page as page_sink
from lineside.daemon.telemetry import Telemetry


def _result(seq: int, score: float, verdict: str) -> Result:
    insp = SimpleNamespace(score=score, verdict=verdict)
    return Result(seq, None, insp, None, None, "cell-1")


def test_a_second_keeps_its_spike_its_worst_verdict_and_the_drift_average(monkeypatch):
    clock = [1000.1]
    ewma = iter([5.0, 6.0, 7.0])
    monkeypatch.setattr(page_sink.time, "time", lambda: clock[0])
    sink = page_sink.PageSink(
        Telemetry(), lambda: {}, trend_minutes=1, score_ewma=lambda: next(ewma)
    )
    for seq, score, verdict, at in [
        (1, 4.0, "pass", 1000.1),
        (2, 90.0, "review", 1000.5),  # the spike of the second
        (3, 12.0, "fail", 1000.9),  # a lower score, but the worst verdict
        (4, 3.0, "pass", 1001.2),
        (5, 2.0, "pass", 1061.0),  # a minute after the first second: it is gone
    ]:
        clock[0] = at
        sink.publish(_result(seq, score, verdict))
    assert sink.latest.seq == 5
    assert sink.points() == [[1001.2, 3.0, "pass", 4, 6.0], [1061.0, 2.0, "pass", 5, 7.0]]
    monkeypatch.setattr(page_sink.time, "time", lambda: 1000.9)
    again = page_sink.PageSink(Telemetry(), lambda: {}, trend_minutes=1)
    for seq, score, verdict in [(1, 4.0, "pass"), (2, 90.0, "review"), (3, 12.0, "fail")]:
        again.publish(_result(seq, score, verdict))
    assert again.points() == [[1000.9, 90.0, "fail", 2, None]]  # no drift monitor: no average
