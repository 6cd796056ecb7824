"""Bundles pushed to a running box: every bad one refused while inspection goes on; good ones
take over between frames; rollback; push to a whole line."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from lineside.deploy import signing
from tests.support import bundles as kit
from tests.support.mqtt_client import Recorder
from tests.support.station import deploy

PREFIX = "lineside/cell-1"


@pytest.fixture
def keys(tmp_path):
    private, public = signing.generate(tmp_path / "keys", "maintenance")
    rogue, _ = signing.generate(tmp_path / "keys", "rogue")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(public, trusted / "maintenance.pub")
    return signing.load_private(private), signing.load_private(rogue), trusted


@pytest.fixture
def signed_v1(bundle_path, keys):
    return kit.with_version(bundle_path.read_bytes(), "v1", keys[0])


def _bad_bundles(good: bytes, key, rogue) -> dict[str, tuple[bytes, str]]:
    def add_file(name, content):
        return lambda files: files.__setitem__(name, content)

    def tamper_after_signing() -> bytes:
        files = kit.members(good)
        manifest = json.loads(files["manifest.json"])
        manifest["thresholds"]["fail_at"] = 1.0
        files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
        return kit.zip_members(files)

    selftest = json.loads(kit.members(good)["manifest.json"])["selftest"]
    shifted = [{**img, "score": img["score"] + 0.5} for img in selftest["images"]]
    return {
        "truncated file": (good[: len(good) // 3], "not a zip"),
        "not a zip": (b"MZ\x90\x00 this is an executable, not a bundle" * 50, "not a zip"),
        "path traversal": (
            kit.repack(good, key, edit_files=add_file("../etc/cron.d/x", b"x")),
            "unsafe file name",
        ),
        "zip bomb": (
            kit.zip_members({**kit.members(good), "pad.bin": b"\0" * 40_000_000}),
            "unpacks to more than the size limit",
        ),
        "over the size limit": (good + b"\0" * 9_000_000, "over the"),
        "wrong signature": (tamper_after_signing(), "signature does not match"),
        "untrusted key": (kit.repack(good, rogue), "untrusted key"),
        "unsigned": (kit.repack(good, None), "not signed"),
        "hash mismatch": (
            kit.repack(
                good, key, edit_files=add_file("model.tflite", b"TFL3" + b"\0" * 64), rehash=False
            ),
            "SHA-256 does not match",
        ),
        "unknown schema version": (
            kit.repack(good, key, kit.setting(schema_version=99)),
            "schema_version 99 is not supported",
        ),
        "model does not load": (
            kit.repack(good, key, edit_files=add_file("model.tflite", b"not a flatbuffer" * 8)),
            "does not load",
        ),
        "wrong input shape": (
            kit.repack(good, key, kit.setting(**{"input.shape": [1, 64, 64, 1]})),
            "manifest says",
        ),
        "self-test out of tolerance": (
            kit.repack(good, key, kit.setting(**{"selftest.images": shifted})),
            "self-test",
        ),
        "missing manifest": (kit.zip_members({"model.tflite": b"x"}), "no manifest.json"),
    }


def _versions(rec: Recorder) -> list[tuple[int, str]]:
    docs = [json.loads(m.payload) for m in rec.on("inspection")]
    return [(d["seq"], d["model"]["version"]) for d in docs]


def test_bad_bundles_refused_good_one_swapped_and_rolled_back(
    tmp_path, broker, start_daemon, parts_video, keys, signed_v1, bundle_path
):
    key, rogue, trusted = keys
    models = tmp_path / "models"
    models.mkdir()
    (models / "flange-v1.lsb").write_bytes(signed_v1)
    rec = Recorder(broker.port, f"{PREFIX}/#", "bundles")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 10},
        model={
            "path": str(models),
            "store": str(tmp_path / "store"),
            "trusted_keys": str(trusted),
            "max_bundle_bytes": 8_000_000,
            "watch_interval_s": 0.5,
        },
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 5, 60, "inspecting with v1")

    bad = _bad_bundles(signed_v1, key, rogue)
    assert len(bad) >= 12
    for name, (data, reason) in bad.items():
        before = len(rec.on("cmd/reply"))
        rec.publish(f"{PREFIX}/cmd/model", data)
        rec.wait_for(lambda b=before: len(rec.on("cmd/reply")) > b, 30, f"reply for {name}")
        reply = json.loads(rec.on("cmd/reply")[-1].payload)
        assert reply["ok"] is False and reason in reply["error"], (name, reply)
    # The same bad files dropped into the model folder are refused too.
    (models / "zz-unsigned.lsb").write_bytes(bad["unsigned"][0])
    (models / "zz-bad-selftest.lsb").write_bytes(bad["self-test out of tolerance"][0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and daemon.log().count("keeps serving") < len(bad) + 2:
        time.sleep(0.2)
    assert daemon.log().count("refused, flange-test v1 keeps serving") == len(bad) + 2
    n = len(rec.on("inspection"))
    rec.wait_for(lambda: len(rec.on("inspection")) >= n + 10, 30, "inspections after the bad")
    assert {v for _, v in _versions(rec)} == {"v1"}

    # A good bundle, pushed with lineside-deploy while frames flow.
    v2 = tmp_path / "flange-v2.lsb"
    v2.write_bytes(kit.with_version(bundle_path.read_bytes(), "v2", key))
    run = deploy("push", str(v2), "--broker", f"127.0.0.1:{broker.port}", "--station", "cell-1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cell-1" in run.stdout and " ok " in run.stdout and "v1" in run.stdout
    rec.wait_for(lambda: _versions(rec)[-1][1] == "v2", 20, "inspections by v2")
    model = json.loads([m for m in rec.on("model")][-1].payload)
    assert model["version"] == "v2"

    # Rollback returns to v1.
    keyless = deploy("rollback", "--broker", f"127.0.0.1:{broker.port}", "--station", "cell-1")
    assert keyless.returncode == 1 and "needs a signature" in keyless.stdout
    run = deploy(
        "rollback",
        "--broker",
        f"127.0.0.1:{broker.port}",
        "--station",
        "cell-1",
        "--key",
        str(tmp_path / "keys" / "maintenance.key"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rec.wait_for(lambda: _versions(rec)[-1][1] == "v1", 20, "inspections by v1 again")

    # A good bundle dropped into the watched folder takes over too.
    (models / ".copying").write_bytes(kit.with_version(bundle_path.read_bytes(), "v3", key))
    (models / ".copying").rename(models / "flange-v3.lsb")
    rec.wait_for(lambda: _versions(rec)[-1][1] == "v3", 20, "inspections by v3")

    assert daemon.terminate()[0] == 0
    seqs = [s for s, _ in _versions(rec)]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == list(range(first_seen[0], first_seen[-1] + 1)), "an inspection was lost"
    stats = [json.loads(m.payload) for m in rec.on("stats")]
    assert stats[-1]["frame_errors"] == 0
    rec.close()


def test_push_to_the_whole_line(tmp_path, broker, start_daemon, parts_video, bundle_path, keys):
    key, _, trusted = keys
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 2}
    rec = Recorder(broker.port, "lineside/+/status", "line")
    t1 = tmp_path / "t1.lsb"
    t1.write_bytes(kit.with_version(bundle_path.read_bytes(), "t1", key))
    for station in ("a", "b", "c"):
        start_daemon(
            broker.port,
            name=station,
            station=station,
            source=source,
            model={
                "path": str(t1),
                "store": str(tmp_path / f"store-{station}"),
                "trusted_keys": str(trusted),
            },
            outbox={"path": str(tmp_path / f"outbox-{station}.db")},
        )
    # A station that went away: its last will is retained on the broker.
    rec.publish("lineside/d/status", b"offline", qos=1)
    rec.client.publish("lineside/d/status", b"offline", qos=1, retain=True).wait_for_publish(5)
    rec.wait_for(
        lambda: sum(m.payload == b"online" for m in rec.on("status")) >= 3,
        90,
        "three stations online",
    )
    v9 = tmp_path / "v9.lsb"
    v9.write_bytes(kit.with_version(bundle_path.read_bytes(), "v9", key))
    run = deploy(
        "push", str(v9), "--broker", f"127.0.0.1:{broker.port}", "--all", "--timeout", "60"
    )
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()[1:]}
    assert set(rows) == {"a", "b", "c", "d"}, run.stdout
    for station in "abc":
        assert rows[station][1:4] == ["t1", "v9", "ok"], run.stdout
    assert rows["d"][3] == "offline"
    assert run.returncode == 1  # not every station took it
    status = deploy("status", "--broker", f"127.0.0.1:{broker.port}")
    assert status.returncode == 0
    table = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    assert [table[s][3] for s in "abc"] == ["v9"] * 3 and table["d"][1] == "offline"
    rec.close()
