"""What `run` would refuse for a file, `check-config` refuses too: one line, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml


def _config(tmp_path, bundle_path, **changes) -> dict:
    doc = {
        "station": "cell-1",
        "source": {"kind": "video", "path": str(tmp_path / "parts.avi")},
        "model": {
            "path": str(bundle_path),
            "store": str(tmp_path / "store"),
            "allow_unsigned": True,
        },
        "mqtt": {"host": "127.0.0.1", "port": 1},
        "outbox": {"path": str(tmp_path / "outbox.db")},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = doc
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = value
    return doc


def _cli(command: str, config) -> subprocess.CompletedProcess:
    args = [str(config)] if command == "check-config" else ["--config", str(config)]
    return subprocess.run(
        [sys.executable, "-m", "lineside.daemon.cli", command, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _file(tmp_path):
    f = tmp_path / "plain-file"
    f.write_text("x")
    return f


CASES = {
    "TLS CA missing": (
        lambda t: {"mqtt__tls": {"ca": str(t / "ca.pem")}},
        "mqtt.tls.ca: ",
    ),
    "outbox under a file": (
        lambda t: {"outbox__path": str(_file(t) / "outbox.db")},
        "outbox.path: ",
    ),
    "outbox is a folder": (lambda t: {"outbox__path": str(t)}, "is a folder"),
    "store under a file": (
        lambda t: {"model__store": str(_file(t) / "bundles")},
        "model.store: ",
    ),
    "password file missing": (
        lambda t: {"mqtt__username": "cell", "mqtt__password_file": str(t / "nope")},
        "cannot read",
    ),
    "trusted keys folder missing": (
        lambda t: {"model__allow_unsigned": False, "model__trusted_keys": str(t / "keys")},
        "model.trusted_keys: ",
    ),
    "page token missing": (
        lambda t: {"ui": {"token_file": str(t / "no-token")}},
        "ui.token_file: ",
    ),
    "page token too short": (
        lambda t: {"ui": {"token_file": str(_file(t))}},
        "at least 12 characters",
    ),
    "operators' file missing": (
        lambda t: {"ui": {"accounts_file": str(t / "no-operators")}},
        "ui.accounts_file: ",
    ),
    "operators' file with a short password": (
        lambda t: {"ui": {"accounts_file": str(_file(t))}},
        "ui.accounts_file line 1: ",
    ),
    "review folder under a file": (
        lambda t: {"review": {"path": str(_file(t) / "review")}},
        "review.path: ",
    ),
    "opcua certificate missing": (
        lambda t: {
            "opcua": {
                "certificate": str(t / "server.der"),
                "private_key": str(_file(t)),
                "trusted_clients": str(t),
            }
        },
        "opcua.certificate: ",
    ),
    "opcua trusted clients not a folder": (
        lambda t: {
            "opcua": {
                "certificate": str(_file(t)),
                "private_key": str(_file(t)),
                "trusted_clients": str(_file(t)),
            }
        },
        "opcua.trusted_clients: ",
    ),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("make,message", CASES.values(), ids=CASES.keys())
def test_files_run_would_refuse_are_refused_by_both(tmp_path, bundle_path, command, make, message):
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, bundle_path, **make(tmp_path))))
    run = _cli(command, path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("lineside-daemon: error: ") and message in last, run.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_binary_garbage_as_the_config_is_one_line(tmp_path, command):
    path = tmp_path / "line.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    run = _cli(command, path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "not a text file" in run.stderr.strip().splitlines()[-1]


def test_a_genicam_source_without_aravis_is_refused_with_what_to_install(monkeypatch):
    from lineside.daemon import config
    from lineside.daemon.capture import genicam
    from lineside.daemon.service import preflight

    def missing():
        raise ValueError("Namespace Aravis not available")

    monkeypatch.setattr(genicam, "aravis", missing)
    with pytest.raises(config.ConfigError, match=r"source.genicam: needs Aravis .*gir1.2-aravis"):
        preflight._aravis()
