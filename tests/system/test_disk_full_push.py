"""A full disk and a bundle pushed meanwhile: publishing must resume once the disk has room.

The outbox, the model store and the review queue share one small real file system (a tmpfs);
the broker is a real Mosquitto. A push that cannot be written is refused and the old model keeps
serving; once the filler is deleted, every inspection made afterwards is published, without a
restart, while the review queue keeps parts on the same disk.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support import bundles as kit
from tests.support.disk import fill
from tests.support.mqtt_client import Recorder
from tests.support.station import PREFIX

VIDEO = {"loop": True, "fps": 10}


def _push(rec: Recorder, data: bytes) -> dict:
    before = len(rec.on("cmd/reply"))
    rec.publish(f"{PREFIX}/cmd/model", data)
    rec.wait_for(lambda: len(rec.on("cmd/reply")) > before, 60, "reply to the push")
    return json.loads(rec.on("cmd/reply")[-1].payload)


def _seqs(rec: Recorder) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in rec.on("inspection")]


@pytest.mark.parametrize("when", ["after_fill", "before_fill", "during_fill_twice"])
def test_publishing_resumes_after_a_full_disk_and_a_refused_push(
    when, tmp_path, small_disk, broker, start_daemon, parts_video, bundle_path, station_keys
):
    bundle = kit.with_version(bundle_path.read_bytes(), "v2", station_keys[0])
    leave = min(200_000, len(bundle) // 2)  # too little for the bundle, some for SQLite
    rec = Recorder(broker.port, f"{PREFIX}/#", f"full-{when}")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        outbox={"path": str(small_disk / "outbox.db")},
        model={
            "path": str(daemon_bundle(tmp_path, bundle_path, station_keys)),
            "store": str(small_disk / "store"),
            "trusted_keys": str(station_keys[1]),
        },
        # Every part kept for review, on the same disk: a store that took the room the
        # outbox needs would stop publishing for good.
        review={
            "enabled": True,
            "path": str(small_disk / "review"),
            "pass_every": 1,
            "fail_every": 1,
        },
        heatmap={"enabled": False},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    if when == "before_fill":
        reply = _push(rec, bundle)
        assert reply["ok"], reply
    broker.stop(signal.SIGTERM)
    filler = fill(small_disk, leave)
    deadline = time.monotonic() + 30
    while "outbox write failed" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "outbox write failed" in daemon.log()
    broker.start()
    rec.wait_for(lambda: rec.on("stats") and rec.on("stats")[-1].at > time.time() - 2, 40, "stats")
    if when != "before_fill":
        for _ in range(2 if when == "during_fill_twice" else 1):
            reply = _push(rec, bundle)
            assert not reply["ok"] and "cannot write the bundle" in reply["error"], reply
    filler.unlink()
    time.sleep(2)
    first_new = max(_seqs(rec), default=-1) + 1
    # Long enough for the review store to have filled the freed disk several times over.
    rec.wait_for(
        lambda: len([s for s in _seqs(rec) if s >= first_new]) >= 300, 90, "publishing resumes"
    )
    review = json.loads(rec.on("stats")[-1].payload)["review"]
    status, _ = daemon.terminate()
    assert status == 0
    log = daemon.log()
    assert "Traceback" not in log
    assert "could not save the sequence counter" not in log
    # Every inspection made once the disk had room again was published.
    after = sorted(s for s in set(_seqs(rec)) if s >= first_new)
    assert after == list(range(after[0], after[-1] + 1)), "no gap after the disk was freed"
    # The review queue gave way to the outbox on the shared disk.
    assert "not kept (under 25% of the disk free)" in log or review["removed"] > 0
    rec.close()


def daemon_bundle(tmp_path, bundle_path, station_keys):
    """The running model (v1), signed, outside the small file system."""
    path = tmp_path / "v1.lsb"
    path.write_bytes(kit.with_version(bundle_path.read_bytes(), "v1", station_keys[0]))
    return path
