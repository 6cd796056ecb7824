"""Drift: EWMA charts against the bundle's reference. On a line whose lamp dims by 20%, the alarm
comes before the first good part is failed; on 2,000 stable good parts it never comes."""

from __future__ import annotations

import cv2
import pytest

from lineside.daemon.config import Drift
from lineside.daemon.core import drift, image_health
from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.runtime import load_bundle
from lineside.daemon.sinks.drift import _charts_of

# The alarm must come within this many parts of the lamp starting to dim (docs/drift.md).
WITHIN_PARTS = 300


def _monitor(reference: dict, **cfg) -> drift.Monitor:
    d = Drift(**cfg)
    return drift.monitor(reference, d.weight, d.limit_sigma, d.clear_after)


def test_a_shift_beyond_the_limit_raises_and_a_return_clears_after_the_run():
    m = _monitor({"brightness": (100.0, 2.0)}, clear_after=10)
    assert [m.update(None, {"brightness": 100.0}) for _ in range(200)] == [None] * 200
    events = [m.update(None, {"brightness": 80.0}) for _ in range(100)]
    assert events.count(True) == 1 and m.active  # raised once, not at every part
    assert m.reasons()[0]["check"] == "brightness" and m.reasons()[0]["shift"] < 0
    back, outside = [], []
    for _ in range(200):
        back.append(m.update(None, {"brightness": 100.0}))
        outside.append(m.charts["brightness"].out)
    assert back.count(False) == 1 and not m.active
    # Cleared at the 10th part in a row with the chart inside its limit, not before.
    inside_from = outside.index(False)
    assert back.index(False) == inside_from + 9


def test_scores_alarm_only_upwards_and_only_from_passed_parts():
    m = _monitor({"score": (10.0, 1.0)})
    for _ in range(300):
        m.update(2.0, {})  # far below the reference: better parts are no drift
    assert not m.active
    for _ in range(300):
        m.update(None, {})  # reviews and fails do not move the chart
    assert m.charts["score"].count == 300 and not m.active
    for _ in range(300):
        m.update(14.0, {})
    assert m.active


@pytest.mark.parametrize("mean,std,floor", [(100.0, 0.0, 0.05), (0.5, 0.0, 0.10)])
def test_the_limit_never_falls_below_its_floor(mean, std, floor):
    chart = drift.Chart("x", mean, std, 0.05, 4.0, floor)
    assert chart.limit == pytest.approx(floor * mean)


def _line(video, bundle_path) -> tuple[list[str], int | None]:
    """Verdicts of every frame of the video, and the part at which the alarm was raised."""
    bundle, model = load_bundle(bundle_path, num_threads=2)
    ref = bundle.manifest.reference
    assert ref is not None, "the trainer records the drift reference"
    m = _monitor(_charts_of(ref))
    cap = cv2.VideoCapture(str(video))
    verdicts, raised = [], None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        insp = inspect_frame(frame, bundle.manifest, model.infer, ())
        verdicts.append(insp.verdict)
        score = insp.score if insp.verdict == "pass" else None
        if m.update(score, image_health.measure(frame)) and raised is None:
            raised = len(verdicts)
    cap.release()
    return verdicts, raised


@pytest.mark.slow
def test_a_dimming_lamp_is_an_alarm_before_the_first_false_reject(tmp_path, feature_fit):
    from lineside.trainer.synth import write_video

    video = tmp_path / "dimming.avi"
    # Two minutes of good parts at 5 per second, the lamp losing 20% of its light.
    write_video(video, seed=21, frames=600, fps=5, defect_every=0, dim_to=0.8)
    verdicts, raised = _line(video, feature_fit.path)
    assert len(verdicts) == 600
    first_fail = next((i + 1 for i, v in enumerate(verdicts) if v == "fail"), None)
    print(f"drift alarm at part {raised}; first false reject at part {first_fail}")
    assert raised is not None and raised <= WITHIN_PARTS
    assert first_fail is None or raised < first_fail


@pytest.mark.slow
def test_two_thousand_stable_good_parts_never_raise_it(tmp_path, feature_fit):
    from lineside.trainer.synth import write_video

    video = tmp_path / "stable.avi"
    write_video(video, seed=22, frames=2000, fps=10, defect_every=0)
    verdicts, raised = _line(video, feature_fit.path)
    assert len(verdicts) == 2000
    print(
        f"stable: {verdicts.count('pass')} pass, {verdicts.count('review')} review, "
        f"{verdicts.count('fail')} fail; alarm {raised}"
    )
    assert raised is None
