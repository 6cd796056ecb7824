"""Configuration: every bad value is named by key path, with the value and what was expected."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from lineside.daemon import config

BASE = {
    "station": "cell-1",
    "source": {"kind": "video", "path": "parts.avi"},
    "model": {"path": "models/", "trusted_keys": "/etc/lineside/trusted"},
}


def _with(path: str, value) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return doc


def test_minimal_config_gets_defaults_and_is_frozen():
    cfg = config.parse(yaml.safe_dump(BASE))
    assert cfg.mqtt.port == 1883 and cfg.trigger.mode == "continuous" and cfg.threads is None
    with pytest.raises(Exception, match="frozen"):
        cfg.mqtt.port = 1


BAD = {
    "port not a number": (_with("mqtt.port", "abc"), "mqtt.port: 'abc' is not a valid integer"),
    "port out of range": (_with("mqtt.port", 70000), "mqtt.port: 70000"),
    "unknown key": (_with("mqtt.hots", "x"), "mqtt.hots: unknown key"),
    "unknown top-level key": (_with("cameras", 1), "cameras: unknown key"),
    "missing station": ({k: v for k, v in BASE.items() if k != "station"}, "station: missing"),
    "bad station name": (_with("station", "cell 1"), "station: 'cell 1'"),
    "bad trigger mode": (_with("trigger.mode", "often"), "trigger.mode: 'often' is not"),
    "stream without url": (_with("source.kind", "stream"), "source: source kind 'stream' needs"),
    "stream with file url": (
        _with("source", {"kind": "stream", "url": "file:///x"}),
        "must start with rtsp",
    ),
    "negative fps": (_with("trigger.max_fps", -1), "trigger.max_fps: -1"),
    "two password sources": (
        _with("mqtt", {"password_file": "a", "password_credential": "b"}),
        "not both",
    ),
    "wildcard prefix": (_with("mqtt.prefix", "a/#"), "wildcards"),
    "unsigned by default": (_with("model", {"path": "m/"}), "model: trusted_keys is required"),
    "keys and unsigned": (_with("model.allow_unsigned", True), "not both"),
    "password without username": (_with("mqtt.password_file", "pw"), "needs a username"),
    "bad qos": (_with("mqtt.qos", 3), "mqtt.qos: 3"),
    "bad heatmap verdict": (_with("heatmap.verdicts", ["bad"]), "heatmap.verdicts.0: 'bad'"),
    "bad roi": (_with("rois", [{"name": "w", "box": [1, 2], "expect": "present"}]), "rois.0.box"),
    "sparkplug without group": (_with("sparkplug", {"device_id": "d"}), "sparkplug.group_id: miss"),
    "sparkplug group with /": (
        _with("sparkplug", {"group_id": "a/b"}),
        "sparkplug.group_id: 'a/b'",
    ),
    "sparkplug node wildcard": (
        _with("sparkplug", {"group_id": "g", "edge_node_id": "n+"}),
        "sparkplug.edge_node_id: 'n+'",
    ),
    "opcua without certificates": (_with("opcua", {}), "opcua.certificate: missing"),
    "opcua endpoint not opc.tcp": (
        _with(
            "opcua",
            {
                "endpoint": "http://x",
                "certificate": "c",
                "private_key": "k",
                "trusted_clients": "t",
            },
        ),
        "opcua.endpoint: 'http://x'",
    ),
    "ui without a login": (_with("ui", {"port": 8080}), "ui: give one of accounts_file, "),
    "ui with two tokens": (
        _with("ui", {"token_file": "t", "token_credential": "c"}),
        "ui: give one of accounts_file, accounts_credential, token_file, token_credential",
    ),
    "ui with accounts and a token": (
        _with("ui", {"accounts_file": "a", "token_file": "t"}),
        "ui: give one of accounts_file, ",
    ),
    "drift weight over 1": (_with("drift.weight", 1.5), "drift.weight: 1.5"),
    "review keeps nothing": (_with("review.max_items", 0), "review.max_items: 0"),
    "plc trigger without plc": (_with("trigger.mode", "plc"), "go together"),
    "plc without its trigger": (_with("plc", {"port": 1502}), "go together"),
    "plc passes failed parts": (
        _with("plc", {"actions": {"pass": "accept", "review": "reject", "fail": "accept"}}),
        "actions.fail must be 'reject'",
    ),
    "plc deadline not positive": (_with("plc", {"deadline_ms": 0}), "plc.deadline_ms: 0"),
    "homeassistant bad prefix": (
        _with("homeassistant", {"discovery_prefix": "home/assistant"}),
        "homeassistant.discovery_prefix",
    ),
}


@pytest.mark.parametrize("doc,message", BAD.values(), ids=BAD.keys())
def test_bad_values_name_the_key_path(doc, message):
    with pytest.raises(config.ConfigError) as info:
        config.parse(yaml.safe_dump(doc), "line.yaml")
    assert message in str(info.value) and str(info.value).startswith("line.yaml: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("station: [unclosed\n", r"not valid YAML \(line 2: "),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_unparsable_files(text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.parse(text)


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_cli_exits_2_with_one_line(tmp_path, command):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with("mqtt.port", "abc")))
    args = [path] if command == "check-config" else ["--config", path]
    run = subprocess.run(
        [sys.executable, "-m", "lineside.daemon.cli", command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"lineside-daemon: error: {path}: mqtt.port: 'abc' is not a valid integer, "
        "unable to parse string as an integer"
    )
    assert "Traceback" not in run.stderr


def test_check_config_accepts_a_good_file(tmp_path, bundle_path):
    path = tmp_path / "good.yaml"
    doc = _with("model", {"path": str(bundle_path), "allow_unsigned": True})
    doc["model"]["store"] = str(tmp_path / "store")
    doc["outbox"] = {"path": str(tmp_path / "outbox.db")}
    path.write_text(yaml.safe_dump(doc))
    run = subprocess.run(
        [sys.executable, "-m", "lineside.daemon.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "ok (station cell-1" in run.stdout
