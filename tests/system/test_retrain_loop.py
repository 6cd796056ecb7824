"""The operator's loop end to end: a new batch of good parts carries a batch code the model has
never seen, so the line sends them to review; the operator confirms them good; maintenance pulls
the labelled parts, fits on the original set plus the line's, pushes; now the batch passes."""

from __future__ import annotations

import json

import cv2

from lineside.deploy import bundle as bundles
from tests.support.mqtt_client import Recorder
from tests.support.station import deploy, reply_to

PREFIX = "lineside/cell-1"


def _batch_video(path, frames: int = 40) -> None:
    """Good flanges from a new supplier: each carries an etched batch code at the same place."""
    from lineside.trainer.synth import make_image

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for i in range(frames):
        image, _ = make_image(31, "batch", "good", i)
        cv2.putText(image, "B7", (200, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (235, 235, 235), 2)
        writer.write(image)
    writer.release()


def _inspections(rec: Recorder, version: str) -> list[dict]:
    docs = [json.loads(m.payload) for m in rec.on("inspection")]
    return [d for d in docs if d["model"]["version"] == version]


def test_review_label_pull_fit_push_and_the_batch_passes(
    tmp_path, broker, start_daemon, feature_fit, synth_dir, station_keys
):
    from lineside.trainer.fit import FitOptions, fit

    key, trusted = station_keys
    v1 = tmp_path / "v1.lsb"
    v1.write_bytes(bundles.sign(feature_fit.path.read_bytes(), key))
    video = tmp_path / "batch.avi"
    _batch_video(video)
    rec = Recorder(broker.port, f"{PREFIX}/#", "loop")
    host = f"127.0.0.1:{broker.port}"
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(video), "loop": True, "fps": 10},
        model={"path": str(v1), "store": str(tmp_path / "store"), "trusted_keys": str(trusted)},
        review={"path": str(tmp_path / "review"), "fail_every": 1},
    )
    # 1. The new batch is not what the model learnt: the line holds the parts back.
    rec.wait_for(lambda: len(_inspections(rec, "f1")) >= 40, 90, "a pass of the batch")
    before = _inspections(rec, "f1")[:40]
    held = [d for d in before if d["verdict"] != "pass"]
    assert len(held) >= 30, [d["verdict"] for d in before]

    # 2. The operator confirms them good (here over MQTT, as a line system would).
    for d in held:
        folder = tmp_path / "review" / f"{d['seq']:012d}"
        rec.wait_for(lambda f=folder: (f / "frame.jpg").is_file(), 20, "kept")
        rec.publish(
            f"{PREFIX}/cmd/label",
            json.dumps({"id": f"l{d['seq']}", "seq": d["seq"], "label": "good", "by": "anna"}),
        )
        assert reply_to(rec, f"l{d['seq']}")["ok"] is True

    # 3. Maintenance pulls them as a dataset folder.
    line_data = tmp_path / "line-data"
    pulled = deploy("pull", "--station", "cell-1", "--out", str(line_data), "--broker", host)
    assert pulled.returncode == 0, pulled.stderr
    assert f"{len(held)} good parts" in pulled.stdout
    assert len(list((line_data / "train" / "good").glob("*.jpg"))) == len(held)
    index = json.loads((line_data / "labels-cell-1.json").read_text())
    assert {p["label"] for p in index["parts"]} == {"good"}

    # 4. Fit on the original set and the line's parts; the manifest says where images came from.
    v2 = tmp_path / "v2.lsb"
    opts = FitOptions(version="v2", camera="jpeg")  # the same MJPEG line as f1
    result = fit([synth_dir, line_data], v2, opts, say=lambda _: None)
    sources = bundles.read(v2).manifest.dataset["sources"]
    assert [s["train_good"] for s in sources] == [64, len(held)]
    assert result.path == v2
    v2.write_bytes(bundles.sign(v2.read_bytes(), key))

    # 5. Push it; the box checks and swaps it in; the batch now passes.
    pushed = deploy("push", str(v2), "--station", "cell-1", "--broker", host)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    rec.wait_for(lambda: len(_inspections(rec, "v2")) >= 40, 90, "the batch under v2")
    after = _inspections(rec, "v2")[:40]
    passed = sum(d["verdict"] == "pass" for d in after)
    print(f"batch under f1: {len(held)}/40 held back; under v2: {passed}/40 pass")
    assert passed >= 36, [d["verdict"] for d in after]
    assert daemon.terminate()[0] == 0
    rec.close()
