"""A hostile plant: malformed and retained commands, keyless clients, bad bundles, bad starts.

Each test reproduces a finding of the fault run against a real Mosquitto and a real daemon, and
checks the daemon still answers commands and publishes inspections afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict

import cv2
import numpy as np
import pytest

from lineside.daemon import config, service
from lineside.daemon.connection import Connection
from lineside.daemon.control import Inbox
from lineside.daemon.notify import Notifier
from lineside.daemon.station import Station
from lineside.deploy import bundle as bundles
from lineside.deploy import contract
from tests.support import bundles as kit
from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"
VIDEO = {"loop": True, "fps": 5}


def _replies(rec: Recorder, command: str | None = None) -> list[dict]:
    docs = [json.loads(m.payload) for m in rec.on("reply")]
    return [d for d in docs if command is None or d["command"] == command]


def _reply_to(rec: Recorder, request_id: str, timeout: float = 20) -> dict:
    rec.wait_for(
        lambda: any(d["id"] == request_id for d in _replies(rec)), timeout, f"reply {request_id}"
    )
    return next(d for d in _replies(rec) if d["id"] == request_id)


def _still_serving(rec: Recorder, timeout: float = 30) -> None:
    """The link is alive: a command is answered and new inspections keep arriving."""
    before = len(rec.on("inspection"))
    rec.publish(f"{PREFIX}/cmd/trigger", json.dumps({"id": "alive"}).encode())
    doc = _reply_to(rec, "alive", timeout)
    assert doc["ok"] is False and "not 'mqtt'" in doc["error"]
    rec.wait_for(lambda: len(rec.on("inspection")) >= before + 3, timeout, "more inspections")
    rec.client.publish(f"{PREFIX}/cmd/trigger", b"", qos=1).wait_for_publish(5)


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
    rec.wait_for(lambda: len(_replies(rec)) >= 3, 20, "three refusals")
    assert all("not valid JSON" in d["error"] for d in _replies(rec)[:3])
    # 12. Ids are strings.
    rec.publish(f"{PREFIX}/cmd/trigger", b'{"id": true}')
    rec.wait_for(lambda: any("'id' must be" in d.get("error", "") for d in _replies(rec)), 20, "id")
    _still_serving(rec)
    assert "ignoring retained command(s) on cmd/reload" in daemon.log()

    # 3. Bundles whose members cannot be read are answered, not swallowed.
    good = bundles.sign(kit.with_version(signed_bundle.read_bytes(), "t2", key), key)
    encrypted = _zip_field(good, "manifest.json", 6, 8, lambda b: bytes([b[0] | 1, b[1]]))
    method99 = _zip_field(good, "model.tflite", 8, 10, lambda b: (99).to_bytes(2, "little"))
    for data, reason in ((encrypted, "damaged zip member"), (method99, "damaged zip member")):
        rec.publish(f"{PREFIX}/cmd/model", data)
        sha = bundles.sha256_hex(data)
        rec.wait_for(
            lambda s=sha: any(d.get("sha256") == s for d in _replies(rec, "model")), 30, "reply"
        )
        doc = next(d for d in _replies(rec, "model") if d.get("sha256") == sha)
        assert doc["ok"] is False and reason in doc["error"], doc

    # 9. The default (trusted keys configured) refuses an unsigned bundle.
    unsigned = kit.repack(
        signed_bundle.read_bytes(),
        None,
        lambda m: m["thresholds"].update(fail_at=1e9, review_at=1e9),
    )
    rec.publish(f"{PREFIX}/cmd/model", unsigned)
    sha = bundles.sha256_hex(unsigned)
    rec.wait_for(lambda: any(d.get("sha256") == sha for d in _replies(rec, "model")), 30, "reply")
    doc = next(d for d in _replies(rec, "model") if d.get("sha256") == sha)
    assert doc["ok"] is False and "not signed" in doc["error"]

    # 12. A flood of pushes is bounded: some are answered busy, none piles up.
    for _ in range(8):
        rec.publish(f"{PREFIX}/cmd/model", good)
    rec.wait_for(
        lambda: (
            sum(
                d.get("sha256") == bundles.sha256_hex(good) or "busy" in d.get("error", "")
                for d in _replies(rec, "model")
            )
            >= 8
        ),
        90,
        "every push answered",
    )
    assert any("busy" in d.get("error", "") for d in _replies(rec, "model"))
    _still_serving(rec)
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
    rec.wait_for(lambda: any(d.get("sha256") == sha for d in _replies(rec, "model")), 30, "reply")
    doc = next(d for d in _replies(rec, "model") if d.get("sha256") == sha)
    assert doc["ok"] is False and "signed rollback" in doc["error"]

    rec.publish(f"{PREFIX}/cmd/rollback", b'{"id": "r0"}')
    assert "needs a signature" in _reply_to(rec, "r0")["error"]
    rec.publish(f"{PREFIX}/cmd/reload", b'{"id": "re"}')
    _reply_to(rec, "re")
    time.sleep(4)  # the reload and its self-test
    assert _model(rec)["version"] == "2099"

    signed = contract.sign_command("rollback", "cell-1", "r1", time.time(), key)
    rec.publish(f"{PREFIX}/cmd/rollback", json.dumps(signed).encode())
    assert _reply_to(rec, "r1", 60)["ok"] is True
    rec.publish(f"{PREFIX}/cmd/rollback", json.dumps(signed).encode())  # replayed
    rec.wait_for(lambda: sum(d["id"] == "r1" for d in _replies(rec)) >= 2, 20, "replay answered")
    replay = [d for d in _replies(rec) if d["id"] == "r1"][-1]
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
    rec.wait_for(lambda: want <= {d["id"] for d in _replies(rec)}, 120, "all 120 answered")
    assert daemon.log().count("reloaded configuration") == 2
    rec.close()


def test_sighup_early_and_with_a_config_that_cannot_start(
    tmp_path, broker, start_daemon, parts_video
):
    """7. SIGHUP right after start, and a reload whose password file is missing, keep it
    running."""
    rec = Recorder(broker.port, f"{PREFIX}/#", "sighup")
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    rec.wait_for(lambda: "connecting to mqtt" in daemon.log(), 60, "start")
    daemon.proc.send_signal(signal.SIGHUP)  # before the first inspection
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections after an early SIGHUP")
    config = tmp_path / "daemon.yaml"
    text = config.read_text()
    config.write_text(
        text.replace(
            "keepalive_s: 5",
            f"keepalive_s: 5\n  username: cell\n  password_file: {tmp_path / 'missing-password'}",
        )
    )
    daemon.proc.send_signal(signal.SIGHUP)
    rec.wait_for(lambda: "reload refused" in daemon.log(), 30, "reload refused")
    _still_serving(rec)
    assert daemon.proc.poll() is None
    rec.close()


def test_a_damaged_outbox_is_set_aside_and_the_daemon_starts(
    tmp_path, broker, start_daemon, parts_video
):
    """5. Random bytes where the outbox was: moved aside, a fresh one, inspections published."""
    (tmp_path / "outbox.db").write_bytes(np.random.default_rng(0).bytes(50_000))
    rec = Recorder(broker.port, f"{PREFIX}/#", "damaged")
    daemon = start_daemon(broker.port, source={"kind": "video", "path": str(parts_video), **VIDEO})
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    assert list(tmp_path.glob("outbox.db.damaged-*")), "the damaged file is kept"
    assert "is damaged" in daemon.log()
    rec.close()


def _notify_socket(tmp_path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.5)
    return sock


def test_a_camera_that_changes_resolution_is_a_fault_not_a_restart_loop(
    tmp_path, broker, start_daemon, parts_video
):
    """4. Frames of the wrong size: READY is sent, the watchdog fed, stats says camera fault."""
    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(parts_video))
    ok, good_frame = cap.read()
    cap.release()
    assert ok
    # The same camera, now sending 160x120 frames.
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.resize(good_frame, (160, 120)) + i)
    sock = _notify_socket(tmp_path)
    rec = Recorder(broker.port, f"{PREFIX}/stats", "resolution")
    start_daemon(
        broker.port,
        source={"kind": "folder", "path": str(folder), "loop": True, "fps": 5},
        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"},
    )
    got: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        any("READY=1" in g for g in got) and sum("WATCHDOG=1" in g for g in got) >= 3
    ):
        with contextlib.suppress(TimeoutError):
            got.append(sock.recv(4096).decode())
    assert any("READY=1" in g for g in got), got
    assert sum("WATCHDOG=1" in g for g in got) >= 3, got
    rec.wait_for(lambda: rec.on("stats"), 30, "stats")
    doc = json.loads(rec.on("stats")[-1].payload)
    assert doc["camera"] == "fault" and "160" in doc["camera_fault"], doc
    sock.close()
    rec.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a real file system that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    if os.system(f"mount -t tmpfs -o size=2m tmpfs {mount}") != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield mount
    os.system(f"umount {mount}")


def test_disk_full_with_the_broker_down_counts_losses_and_recovers(
    tmp_path, small_disk, broker, start_daemon, parts_video
):
    """2. The outbox on a file system that fills up while the broker is down: what cannot be
    stored is counted (one log line per burst), and publishing resumes when space returns."""
    rec = Recorder(broker.port, f"{PREFIX}/#", "diskfull")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), **VIDEO},
        outbox={"path": str(small_disk / "outbox.db")},
        heatmap={"enabled": False},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 60, "inspections")
    broker.stop(signal.SIGTERM)
    filler = small_disk / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # the disk is full now
    time.sleep(8)
    broker.start()  # the broker returns while the disk is still full: deletes fail
    rec.wait_for(lambda: rec.on("stats") and rec.on("stats")[-1].at > time.time() - 2, 40, "stats")
    time.sleep(3)
    filler.unlink()
    n = len(rec.on("inspection"))
    rec.wait_for(lambda: len(rec.on("inspection")) >= n + 10, 60, "publishing resumes")
    lost = json.loads(rec.on("stats")[-1].payload)["outbox_lost"]
    assert lost > 0, "inspections made while the disk was full are counted as lost"
    status, _ = daemon.terminate()
    assert status == 0
    log = daemon.log()
    assert log.count("outbox write failed") == 1, "one line per burst"
    assert "Traceback" not in log
    seqs = {json.loads(m.payload)["seq"] for m in rec.on("inspection")}
    # Every inspection was either delivered or counted lost (two messages each).
    assert len(seqs) + lost // 2 >= max(seqs) + 1
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
    status = _deploy("status", "--broker", broker_at, *login)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:2] == ["cell-1", "online"], status.stdout
    anonymous = _deploy("status", "--broker", broker_at)
    assert anonymous.returncode == 2 and "refused the connection" in anonymous.stderr
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("guess\n")
    refused = _deploy(
        "status", "--broker", broker_at, "--username", "maintenance", "--password-file", str(wrong)
    )
    assert refused.returncode == 2 and "refused the connection" in refused.stderr
    assert daemon.proc.poll() is None


def _deploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lineside.deploy.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_dead_network_thread_ends_the_frame_loop_as_a_fault(
    tmp_path, broker, parts_video, signed_bundle, station_keys
):
    """Supervision: when paho's loop thread is gone, the frame loop returns 'fault' (and `run`
    exits 1 so systemd restarts the box) instead of looking healthy while publishing nothing."""
    cfg = config.Config.model_validate(
        {
            "station": "cell-1",
            "source": {"kind": "video", "path": str(parts_video), **VIDEO},
            "model": {
                "path": str(signed_bundle),
                "store": str(tmp_path / "bundles"),
                "trusted_keys": str(station_keys[1]),
            },
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "threads": 1,
        }
    )
    store, active = service.open_store(cfg)
    conn = Connection.open(cfg, Inbox())
    signals = service.Signals()
    station = Station(cfg, conn, store, active, signals, OrderedDict())
    conn.start()
    try:
        with contextlib.ExitStack() as stack:
            station.start(stack)
            deadline = time.monotonic() + 30
            while not conn.link.connected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert station.alive() is None
            conn.link.client.loop_stop()  # paho's network thread ends
            timer = threading.Timer(30, signals.stop.set)  # a bound, should the check fail
            timer.start()
            outcome = service.serve(station, Notifier(), exit_at_end=False)
            timer.cancel()
        assert outcome == "fault"
        assert station.alive() == "mqtt link or outbox writer"
    finally:
        conn.close(None)
