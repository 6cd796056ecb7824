"""The service with a real Mosquitto on loopback: the MQTT contract, commands, clean stops."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import cv2
import jsonschema
import numpy as np

from tests.support.daemon import STOP_LIMIT_S
from tests.support.mqtt_client import Recorder

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "inspection.schema.json").read_text())
PREFIX = "lineside/cell-1"


def looped(video: Path, fps: float | None = None) -> dict:
    source = {"kind": "video", "path": str(video), "loop": True}
    if fps:
        source["fps"] = fps
    return source


def test_every_topic_of_the_contract(broker, start_daemon, parts_video):
    live = Recorder(broker.port, f"{PREFIX}/#", "live")
    daemon = start_daemon(broker.port, source=looped(parts_video))
    live.wait_for(lambda: len(live.on("inspection")) >= 25 and live.on("stats"), 60, "inspections")

    for m in live.on("inspection"):
        assert m.qos == 1
        doc = json.loads(m.payload)
        jsonschema.validate(doc, SCHEMA)
        assert doc["model"]["name"] == "flange-test" and doc["station"] == "cell-1"
    seqs = [json.loads(m.payload)["seq"] for m in live.on("inspection")]
    assert seqs == sorted(seqs)
    verdicts = {json.loads(m.payload)["verdict"] for m in live.on("inspection")}
    assert "pass" in verdicts and verdicts & {"review", "fail"}
    assert all(
        m.payload in (b"pass", b"review", b"fail") and m.qos == 1 for m in live.on("verdict")
    )
    assert all(float(m.payload) >= 0 and m.qos == 0 for m in live.on("score"))
    stats = json.loads(live.on("stats")[-1].payload)
    assert stats["camera"] == "ok" and stats["inspected"] > 0 and stats["mqtt_connected"]
    assert {"p50", "p95", "p99"} <= set(stats["latency_ms"]) and "outbox_depth" in stats

    # What a dashboard that joins now sees: the retained state, and nothing else.
    late = Recorder(broker.port, f"{PREFIX}/#", "late", clean=True)
    late.wait_for(
        lambda: (
            {"status", "model", "score", "verdict", "heatmap"}
            <= {m.topic.rsplit("/", 1)[-1] for m in late.messages if m.retain}
        ),
        10,
        "retained state",
    )
    retained = {m.topic.rsplit("/", 1)[-1]: m for m in late.messages if m.retain}
    assert retained["status"].payload == b"online" and retained["status"].qos == 1
    model = json.loads(retained["model"].payload)
    assert model["name"] == "flange-test" and len(model["sha256"]) == 64
    assert retained["model"].qos == 1 and retained["heatmap"].qos == 0
    jpeg = cv2.imdecode(np.frombuffer(retained["heatmap"].payload, np.uint8), cv2.IMREAD_COLOR)
    assert jpeg is not None and jpeg.shape == (256, 256, 3)
    assert not [m for m in late.messages if m.retain and m.topic.endswith(("inspection", "stats"))]

    status, took = daemon.terminate()
    assert status == 0 and took < STOP_LIMIT_S
    live.wait_for(lambda: live.on("status")[-1].payload == b"stopped", 5, "status stopped")
    late.close()
    live.close()


def test_trigger_over_mqtt_with_part_id(broker, start_daemon, parts_video):
    rec = Recorder(broker.port, f"{PREFIX}/#", "trig")
    daemon = start_daemon(broker.port, source=looped(parts_video), trigger={"mode": "mqtt"})
    rec.wait_for(
        lambda: rec.on("status") and rec.on("status")[-1].payload == b"online", 30, "daemon online"
    )
    time.sleep(1.0)
    assert rec.on("inspection") == []  # nothing inspected without a trigger
    for i in range(3):
        rec.publish(f"{PREFIX}/cmd/trigger", json.dumps({"id": f"r{i}", "part_id": f"P-{i}"}))
    rec.wait_for(lambda: len(rec.on("cmd/reply")) >= 3, 20, "three replies")
    replies = [json.loads(m.payload) for m in rec.on("cmd/reply")]
    assert [r["id"] for r in replies] == ["r0", "r1", "r2"] and all(r["ok"] for r in replies)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 10, "three inspections")
    docs = [json.loads(m.payload) for m in rec.on("inspection")]
    assert [d["part_id"] for d in docs] == ["P-0", "P-1", "P-2"]
    assert [d["seq"] for d in docs] == [r["seq"] for r in replies]
    assert daemon.terminate()[0] == 0
    rec.close()


def test_malformed_commands_each_get_an_error_reply(broker, start_daemon, parts_video):
    rec = Recorder(broker.port, f"{PREFIX}/#", "fuzz")
    daemon = start_daemon(broker.port, source=looped(parts_video, fps=5))
    rec.wait_for(lambda: rec.on("inspection"), 60, "first inspection")
    bad: list[tuple[str, bytes]] = []
    for i in range(200):
        kind = i % 8
        if kind == 0:
            bad.append(("cmd/trigger", b"{not json" + bytes([i])))
        elif kind == 1:
            bad.append(("cmd/trigger", json.dumps({"id": i, "part_id": i}).encode()))
        elif kind == 2:
            bad.append(("cmd/trigger", b"x" * 100_000))
        elif kind == 3:
            bad.append((f"cmd/explode{i}", b"{}"))
        elif kind == 4:
            bad.append(("cmd/reload", json.dumps([1, 2, i]).encode()))
        elif kind == 5:
            bad.append(("cmd/trigger", json.dumps({"id": i, "surprise": True}).encode()))
        elif kind == 6:
            bad.append(("cmd/trigger", bytes(range(256)) * 3))
        else:
            bad.append(("cmd/rollback", json.dumps({"id": {"nested": i}}).encode()))
    before = len(rec.on("inspection"))
    for suffix, payload in bad:
        rec.publish(f"{PREFIX}/{suffix}", payload)
    rec.wait_for(lambda: len(rec.on("cmd/reply")) >= 200, 60, "200 replies")
    replies = [json.loads(m.payload) for m in rec.on("cmd/reply")]
    assert len(replies) == 200 and not any(r["ok"] for r in replies)
    assert all(r["error"] for r in replies)
    # Still inspecting afterwards, still the same process.
    rec.wait_for(lambda: len(rec.on("inspection")) >= before + 10, 30, "inspections after")
    assert daemon.proc.poll() is None
    assert daemon.terminate()[0] == 0
    rec.close()


def test_reload_command_keeps_inspecting(broker, start_daemon, parts_video):
    rec = Recorder(broker.port, f"{PREFIX}/#", "reload")
    daemon = start_daemon(broker.port, source=looped(parts_video, fps=5))
    rec.wait_for(lambda: rec.on("inspection"), 60, "first inspection")
    rec.publish(f"{PREFIX}/cmd/reload", json.dumps({"id": "re-1"}))
    rec.wait_for(lambda: rec.on("cmd/reply"), 10, "reply")
    assert json.loads(rec.on("cmd/reply")[0].payload) == {
        "id": "re-1",
        "command": "reload",
        "ok": True,
        "message": "reloading configuration and bundle",
    }
    n = len(rec.on("inspection"))
    rec.wait_for(lambda: len(rec.on("inspection")) >= n + 5, 30, "inspections after reload")
    assert "reloaded configuration" in daemon.log()
    assert daemon.terminate()[0] == 0
    rec.close()


def test_systemd_notify_ready_watchdog_and_stopping(tmp_path, broker, start_daemon, parts_video):
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(60)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}
    daemon = start_daemon(broker.port, source=looped(parts_video, fps=10), env=env)
    got: list[str] = []
    while not any(m.startswith("READY=1") for m in got):
        got.append(sock.recv(4096).decode())
    t0 = time.monotonic()
    pings = 0
    while time.monotonic() - t0 < 3:
        pings += sock.recv(4096) == b"WATCHDOG=1"
    # Every half second (6 in 3 s), not every frame (30); bounds far from both for a busy box.
    assert 2 <= pings <= 15
    assert daemon.terminate()[0] == 0
    sock.settimeout(2)
    rest = []
    with contextlib.suppress(TimeoutError):
        while True:
            rest.append(sock.recv(4096).decode())
    assert "STOPPING=1" in rest
    sock.close()


def test_unit_file_hardening():
    unit = (ROOT / "systemd" / "lineside.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    expected = {
        "Type": "notify",
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "StateDirectory": "lineside",
        "NoNewPrivileges": "yes",
        "SupplementaryGroups": "video",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
    }
    assert {k: settings.get(k) for k in expected} == expected
    assert int(settings["WatchdogSec"]) > 0
    assert "lineside-daemon run --config" in settings["ExecStart"]


def test_example_config_is_valid():
    from lineside.daemon import config

    cfg = config.load(ROOT / "systemd" / "lineside.example.yaml")
    assert cfg.station == "press-3" and cfg.mqtt.password_credential == "mqtt-password"


def test_sighup_reloads_and_a_bad_reload_keeps_the_running_config(
    tmp_path, broker, start_daemon, parts_video
):
    import signal

    rec = Recorder(broker.port, f"{PREFIX}/#", "hup")
    daemon = start_daemon(broker.port, source=looped(parts_video, fps=5))
    rec.wait_for(lambda: rec.on("inspection"), 60, "first inspection")
    config_path = tmp_path / "daemon.yaml"
    good = config_path.read_text()
    config_path.write_text(good.replace("station: cell-1", "station: cell-2"))
    daemon.proc.send_signal(signal.SIGHUP)
    rec2 = Recorder(broker.port, "lineside/cell-2/#", "hup2")
    rec2.wait_for(lambda: len(rec2.on("inspection")) >= 3, 30, "inspections as cell-2")
    config_path.write_text("station: [broken\n")
    daemon.proc.send_signal(signal.SIGHUP)
    n = len(rec2.on("inspection"))
    rec2.wait_for(lambda: len(rec2.on("inspection")) >= n + 5, 30, "still inspecting as cell-2")
    assert "reload refused, keeping the running configuration" in daemon.log()
    assert daemon.terminate()[0] == 0
    rec.close()
    rec2.close()
