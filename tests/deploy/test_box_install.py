"""The box install script, run into a folder: idempotent, keeps configuration, removes cleanly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lineside.deploy import signing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "box-install.sh"


def _run(root: Path, *args: str, systemctl: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LINESIDE_ROOT": str(root),
        "SYSTEMCTL": str(systemctl),
        # Only the project itself: its dependencies are what a box downloads, not this test.
        "LINESIDE_PIP_ARGS": "--no-deps",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_install_twice_then_uninstall_then_purge(tmp_path):
    root = tmp_path / "box"
    calls = tmp_path / "systemctl.log"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)

    first = _run(root, systemctl=fake)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no trusted key yet" in first.stdout
    config = root / "etc/lineside/lineside.yaml"
    assert config.is_file() and (root / "etc/lineside/trusted").is_dir()
    assert (root / "etc/systemd/system/lineside.service").is_file()
    assert (root / "var/lib/lineside/models").is_dir()
    assert (root / "opt/lineside/venv/bin/lineside-daemon").is_file()
    config.write_text(config.read_text() + "# edited by the line engineer\n")

    _, public = signing.generate(tmp_path / "keys", "maintenance")
    second = _run(root, "--trust", str(public), systemctl=fake)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (root / "etc/lineside/trusted/maintenance.pub").read_bytes() == public.read_bytes()
    assert "no trusted key yet" not in second.stdout
    assert "keeping the existing" in second.stdout
    assert config.read_text().endswith("# edited by the line engineer\n")
    assert calls.read_text().count("enable lineside.service") == 2

    gone = _run(root, "--uninstall", systemctl=fake)
    assert gone.returncode == 0
    assert not (root / "opt/lineside").exists()
    assert not (root / "etc/systemd/system/lineside.service").exists()
    assert config.is_file()  # configuration and state survive an uninstall
    assert "disable --now lineside.service" in calls.read_text()

    purged = _run(root, "--purge", systemctl=fake)
    assert purged.returncode == 0
    assert not (root / "etc/lineside").exists() and not (root / "var/lib/lineside").exists()


def test_unknown_option_is_refused(tmp_path):
    run = _run(tmp_path, "--sideways", systemctl=tmp_path / "none")
    assert run.returncode == 2 and "usage" in run.stdout
