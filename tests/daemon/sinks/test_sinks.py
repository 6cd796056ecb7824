"""Sinks: a slow one drops and counts instead of stalling the frame loop; a broken one costs
only itself."""

from __future__ import annotations

import threading

from lineside.daemon.sinks import Queued


class Gate:
    """A sink that holds every result until released, and remembers what it got."""

    def __init__(self, fail_on: object = None) -> None:
        self.release = threading.Event()
        self.got: list[object] = []
        self.closed = False
        self.fail_on = fail_on

    def publish(self, result) -> None:
        self.release.wait(10)
        if result is self.fail_on:
            raise RuntimeError("this sink cannot take that one")
        self.got.append(result)

    def close(self) -> None:
        self.closed = True


def test_a_slow_sink_drops_and_counts_without_blocking_the_caller():
    gate = Gate()
    sink = Queued(gate, "slow", capacity=8)
    results = [object() for _ in range(100)]
    for r in results:  # the sink takes nothing yet: these calls must not wait for it
        sink.publish(r)
    assert sink.dropped >= 100 - 8 - 1  # the queue's 8 and the one in the sink's hands
    gate.release.set()
    sink.close()
    assert gate.closed
    assert len(gate.got) + sink.dropped == 100
    assert gate.got == [r for r in results if r in gate.got]  # in order


def test_a_failing_result_is_counted_and_the_rest_delivered():
    bad = object()
    gate = Gate(fail_on=bad)
    gate.release.set()
    sink = Queued(gate, "picky")
    good = [object(), object()]
    for r in (good[0], bad, good[1]):
        sink.publish(r)
    sink.close()
    assert sink.failed == 1 and gate.got == good
