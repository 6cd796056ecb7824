"""The drift alarm on the wire: retained, with its reason and figures, raised by a dimming lamp."""

from __future__ import annotations

import json

from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"


def test_a_dimming_lamp_raises_the_retained_alarm(tmp_path, broker, start_daemon):
    from lineside.trainer.synth import write_video

    video = tmp_path / "dimming.avi"
    write_video(video, seed=21, frames=400, fps=40, defect_every=0, dim_to=0.7)
    rec = Recorder(broker.port, f"{PREFIX}/#", "drift")
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(video), "fps": 40})
    rec.wait_for(lambda: rec.on("alarm"), 60, "the alarm topic")
    assert json.loads(rec.on("alarm")[0].payload)["active"] is False  # announced clear at start
    rec.wait_for(
        lambda: any(json.loads(m.payload)["active"] for m in rec.on("alarm")), 120, "alarm"
    )
    raised = next(json.loads(m.payload) for m in rec.on("alarm") if json.loads(m.payload)["active"])
    checks = {r["check"]: r for r in raised["reasons"]}
    assert "brightness" in checks and checks["brightness"]["shift"] < -checks["brightness"]["limit"]
    assert raised["v"] == 1 and raised["since"] > 0 and raised["parts"] > 0
    rec.wait_for(
        lambda: any(json.loads(m.payload)["drift"]["alarm"] for m in rec.on("stats")),
        30,
        "the alarm in stats",
    )
    assert daemon.terminate()[0] == 0
    late = Recorder(broker.port, f"{PREFIX}/alarm", "drift-late", clean=True)
    late.wait_for(lambda: late.on("alarm"), 10, "the retained alarm")
    assert late.on("alarm")[-1].retain and json.loads(late.on("alarm")[-1].payload)["active"]
    rec.close()
    late.close()
