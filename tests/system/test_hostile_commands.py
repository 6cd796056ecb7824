"""A hostile plant's commands: malformed and retained ones, keyless clients, bad bundles, floods,
commands during reloads, and a broker with accounts.

Each test reproduces a finding of the fault run against a real Mosquitto and a real daemon, and
checks the daemon still answers commands and publishes inspections afterwards.
"""

from __future__ import annotations

import json
import threading
import time

from lineside.deploy import bundle as bundles
from lineside.deploy import contract, signing
from tests.support import barrage, tls
from tests.support import bundles as kit
from tests.support.mqtt_client import Recorder
from tests.support.station import PREFIX, deploy, replies, reply_to, still_serving

VIDEO = {"loop": True, "fps": 5}


def _model(rec: Recorder) -> dict | None:
    """The last retained `model` message (not `cmd/model`, whose payload is a bundle)."""
    docs = [m for m in rec.on("model") if m.topic == f"{PREFIX}/model"]
    return json.loads(docs[-1].payload) if docs else None


def _zip_field(data: bytes, member: str, local_offset: int, central_offset: int, value) -> bytes:
    """Set a 2-byte field of `member`'s local and central zip headers."""
    out = bytearray(data)
    name = member.encode()
    for sig, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at = 0
        while (at := out.find(sig, at)) != -1:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if out[name_at : name_at + len(name)] == name:
                out[at + offset : at + offset + 2] = value(out[at + offset : at + offset + 2])
            at += 4
    return bytes(out)


def test_hostile_commands_and_bundles_leave_the_daemon_serving(
    broker, start_daemon, parts_video, signed_bundle, station_keys
):
    key, _ = station_keys
    rec = Recorder(broker.port, f"{PREFIX}/#", "hostile")
    # 11. A retained command, left on the broker, reaches the daemon at every (re)subscribe.
    rec.client.publish(f"{PREFIX}/cmd/reload", b"{}", qos=1, retain=True).wait_for_publish(5)
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")

    # 1. Deep nesting used to raise RecursionError on paho's thread and end its loop.
    for name in ("trigger", "reload", "rollback"):
        rec.publish(f"{PREFIX}/cmd/{name}", b"[" * 3000 + b"]" * 3000)
    rec.wait_for(lambda: len(replies(rec)) >= 3, 20, "three refusals")
    assert all("not valid JSON" in d["error"] for d in replies(rec)[:3])
    # 12. Ids are strings.
    rec.publish(f"{PREFIX}/cmd/trigger", b'{"id": true}')
    rec.wait_for(lambda: any("'id' must be" in d.get("error", "") for d in replies(rec)), 20, "id")
    still_serving(rec)
    assert "ignoring retained command(s) on cmd/reload" in daemon.log()

    # 3. Bundles whose members cannot be read are answered, not swallowed.
    good = bundles.sign(kit.with_version(signed_bundle.read_bytes(), "t2", key), key)
    encrypted = _zip_field(good, "manifest.json", 6, 8, lambda b: bytes([b[0] | 1, b[1]]))
    method99 = _zip_field(good, "model.tflite", 8, 10, lambda b: (99).to_bytes(2, "little"))
    for data, reason in ((encrypted, "damaged zip member"), (method99, "damaged zip member")):
        rec.publish(f"{PREFIX}/cmd/model", data)
        sha = bundles.sha256_hex(data)
        rec.wait_for(
            lambda s=sha: any(d.get("sha256") == s for d in replies(rec, "model")), 30, "reply"
        )
        doc = next(d for d in replies(rec, "model") if d.get("sha256") == sha)
        assert doc["ok"] is False and reason in doc["error"], doc

    # 9. The default (trusted keys configured) refuses an unsigned bundle.
    unsigned = kit.repack(
        signed_bundle.read_bytes(),
        None,
        lambda m: m["thresholds"].update(fail_at=1e9, review_at=1e9),
    )
    rec.publish(f"{PREFIX}/cmd/model", unsigned)
    sha = bundles.sha256_hex(unsigned)
    rec.wait_for(lambda: any(d.get("sha256") == sha for d in replies(rec, "model")), 30, "reply")
    doc = next(d for d in replies(rec, "model") if d.get("sha256") == sha)
    assert doc["ok"] is False and "not signed" in doc["error"]

    # 12. A flood of pushes is bounded: some are answered busy, none piles up.
    for _ in range(8):
        rec.publish(f"{PREFIX}/cmd/model", good)
    rec.wait_for(
        lambda: (
            sum(
                d.get("sha256") == bundles.sha256_hex(good) or "busy" in d.get("error", "")
                for d in replies(rec, "model")
            )
            >= 8
        ),
        90,
        "every push answered",
    )
    assert any("busy" in d.get("error", "") for d in replies(rec, "model"))
    still_serving(rec)
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.log()
    assert "reloaded configuration" not in daemon.log()  # the retained reload never acted
    # Clearing it is a live (empty) reload command for current subscribers: last, after the checks.
    rec.client.publish(f"{PREFIX}/cmd/reload", b"", qos=1, retain=True).wait_for_publish(5)
    rec.close()


def test_keyless_clients_cannot_change_the_model(
    tmp_path, broker, start_daemon, parts_video, signed_bundle, station_keys
):
    """10. Rollback needs a signed command; an older signed bundle is refused; a remote reload
    does not revert a pushed bundle when the configured model is a file."""
    key, _ = station_keys
    rec = Recorder(broker.port, f"{PREFIX}/#", "keyless")
    start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    rec.wait_for(lambda: _model(rec), 60, "model")

    def edit(created_at):
        def change(m):
            m["model"].update(version=created_at[:4], created_at=created_at)

        return change

    newer = kit.repack(signed_bundle.read_bytes(), key, edit("2099-01-01T00:00:00+00:00"))
    older = kit.repack(signed_bundle.read_bytes(), key, edit("2000-01-01T00:00:00+00:00"))
    rec.publish(f"{PREFIX}/cmd/model", newer)
    rec.wait_for(lambda: _model(rec)["version"] == "2099", 60, "2099")

    rec.publish(f"{PREFIX}/cmd/model", older)
    sha = bundles.sha256_hex(older)
    rec.wait_for(lambda: any(d.get("sha256") == sha for d in replies(rec, "model")), 30, "reply")
    doc = next(d for d in replies(rec, "model") if d.get("sha256") == sha)
    assert doc["ok"] is False and "signed rollback" in doc["error"]

    rec.publish(f"{PREFIX}/cmd/rollback", b'{"id": "r0"}')
    assert "needs a signature" in reply_to(rec, "r0")["error"]
    rec.publish(f"{PREFIX}/cmd/reload", b'{"id": "re"}')
    reply_to(rec, "re")
    time.sleep(4)  # the reload and its self-test
    assert _model(rec)["version"] == "2099"

    signed = contract.sign_command("rollback", "cell-1", "r1", time.time(), key)
    rec.publish(f"{PREFIX}/cmd/rollback", json.dumps(signed).encode())
    assert reply_to(rec, "r1", 60)["ok"] is True
    rec.publish(f"{PREFIX}/cmd/rollback", json.dumps(signed).encode())  # replayed
    rec.wait_for(lambda: sum(d["id"] == "r1" for d in replies(rec)) >= 2, 20, "replay answered")
    replay = [d for d in replies(rec) if d["id"] == "r1"][-1]
    assert replay["ok"] is False and "used before" in replay["error"]
    rec.close()


def test_commands_sent_during_reloads_are_all_answered(broker, start_daemon, parts_video):
    """8. The session survives a reload: every trigger sent meanwhile gets its reply."""
    rec = Recorder(broker.port, f"{PREFIX}/cmd/reply", "reloads")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        trigger={"mode": "mqtt", "frame_timeout_s": 2},
    )
    rec.wait_for(lambda: "inspecting" in daemon.log() or "running" in daemon.log(), 60, "up")
    time.sleep(1)
    for i in range(120):
        if i in (30, 80):
            rec.client.publish(f"{PREFIX}/cmd/reload", b"{}", qos=1)
        rec.client.publish(f"{PREFIX}/cmd/trigger", json.dumps({"id": f"t{i}"}), qos=1)
        time.sleep(0.01)
    want = {f"t{i}" for i in range(120)}
    rec.wait_for(lambda: want <= {d["id"] for d in replies(rec)}, 120, "all 120 answered")
    assert daemon.log().count("reloaded configuration") == 2
    rec.close()


def test_a_broker_with_accounts_for_the_station_and_for_maintenance(
    tmp_path, broker, start_daemon, parts_video
):
    """13. The daemon and lineside-deploy log in with a password from a file."""
    broker.stop()
    broker.require_accounts({"cell-1": "station-secret", "maintenance": "deploy-secret"})
    broker.start()
    (tmp_path / "station.pw").write_text("station-secret\n")
    (tmp_path / "deploy.pw").write_text("deploy-secret\n")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        mqtt={
            "host": "127.0.0.1",
            "port": broker.port,
            "keepalive_s": 5,
            "username": "cell-1",
            "password_file": str(tmp_path / "station.pw"),
        },
    )
    broker_at = f"127.0.0.1:{broker.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "connected to the broker" not in daemon.log():
        time.sleep(0.2)
    login = ["--username", "maintenance", "--password-file", str(tmp_path / "deploy.pw")]
    status = deploy("status", "--broker", broker_at, *login)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:2] == ["cell-1", "online"], status.stdout
    anonymous = deploy("status", "--broker", broker_at)
    assert anonymous.returncode == 2 and "refused the connection" in anonymous.stderr
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("guess\n")
    refused = deploy(
        "status", "--broker", broker_at, "--username", "maintenance", "--password-file", str(wrong)
    )
    assert refused.returncode == 2 and "refused the connection" in refused.stderr
    assert daemon.proc.poll() is None


def test_model_and_rollback_bursts_while_starting_and_stopping(
    broker, start_daemon, parts_video, signed_bundle
):
    """Commands that arrive before the station is built, or while it stops, wait or are dropped
    with the connection: paho's loop survives, the process neither crashes nor hangs."""
    rec = Recorder(broker.port, f"{PREFIX}/#", "bursts")
    data = signed_bundle.read_bytes()

    def burst(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rec.client.publish(f"{PREFIX}/cmd/model", data, qos=1)
            rec.client.publish(f"{PREFIX}/cmd/rollback", b'{"id": "b"}', qos=1)
            time.sleep(0.05)

    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    burst(8)  # the daemon starts (imports, self-test, connect) meanwhile
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    still_serving(rec)
    assert any(d["command"] == "rollback" for d in replies(rec))
    stopper = threading.Thread(target=burst, args=(3,))
    stopper.start()
    time.sleep(0.5)
    status, _ = daemon.terminate()
    stopper.join()
    assert status == 0
    # The recorder subscribes to everything, so it first takes in the burst's ~60 echoed
    # bundles (about 2 MB each); on a loaded 2-core machine that alone can take over 10 s.
    rec.wait_for(lambda: rec.on("status")[-1].payload == b"stopped", 30, "stopped")
    assert "Traceback" not in daemon.log()
    rec.close()


def test_the_daemon_and_lineside_deploy_over_tls(tmp_path, broker, start_daemon, parts_video):
    """13. TLS with the broker's CA from a file, for the station and for maintenance."""
    ca, cert, key = tls.make(tmp_path)
    broker.stop()
    broker.require_tls(ca, cert, key)
    broker.start()
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5, "tls": {"ca": str(ca)}},
    )
    broker_at = f"127.0.0.1:{broker.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "connected to the broker" not in daemon.log():
        time.sleep(0.2)
    status = deploy("status", "--broker", broker_at, "--tls-ca", str(ca))
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:2] == ["cell-1", "online"], status.stdout
    plain = deploy("status", "--broker", broker_at)
    assert plain.returncode == 2 and "lineside-deploy: error:" in plain.stderr


def test_memory_stays_bounded_under_three_barrages_of_bad_bundles(
    tmp_path, broker, start_daemon, parts_video, feature_fit, station_keys
):
    """290 hostile commands, 16 of them bad bundles, three times over, on the default model."""
    key, _ = station_keys
    rogue = signing.load_private(signing.generate(tmp_path / "rogue", "rogue")[0])
    good = bundles.sign(feature_fit.path.read_bytes(), key)
    (tmp_path / "default.lsb").write_bytes(good)
    rec = Recorder(broker.port, f"{PREFIX}/#", "barrage")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        model={"path": str(tmp_path / "default.lsb")},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 20, 120, "inspections")
    barrage_commands = barrage.commands(good, key, rogue)
    after = []
    for _ in range(3):
        answered = len(replies(rec))
        for name, payload in barrage_commands:
            rec.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1)
        rec.wait_for(
            lambda n=answered: len(replies(rec)) >= n + barrage.COMMANDS, 300, "every reply"
        )
        time.sleep(5)
        after.append(daemon.rss_mb())
    obeyed = [d for d in replies(rec) if d["ok"]]
    assert not obeyed, f"hostile commands obeyed: {obeyed}"
    assert after[2] - after[0] <= 30, f"resident MB after each barrage: {after}"
    assert after[2] < 300, f"resident MB after each barrage: {after}"
    still_serving(rec)
    rec.close()
