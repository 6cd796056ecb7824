"""A real Mosquitto broker on loopback, started and stopped by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if found is None:
        reason = "mosquitto is not installed (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Broker:
    """Mosquitto on 127.0.0.1:port; persistence on (saved every second), so sessions survive."""

    def __init__(self, workdir: Path) -> None:
        self.binary = mosquitto_binary()
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\n"
            "autosave_interval 1\nmax_queued_messages 100000\nlog_dest stderr\n"
            # Started as root, Mosquitto would switch to its own user, which cannot read the
            # test's private folder (persistence, passwords, certificates).
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.proc: subprocess.Popen | None = None

    def require_accounts(self, accounts: dict[str, str]) -> None:
        """Refuse anonymous clients; accept these user names and passwords (before `start`)."""
        passwd = self.workdir / "passwd"
        passwd.unlink(missing_ok=True)
        for user, password in accounts.items():
            flags = ["-b"] if passwd.exists() else ["-b", "-c"]
            subprocess.run(
                ["mosquitto_passwd", *flags, str(passwd), user, password],
                check=True,
                capture_output=True,
            )
        text = self.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        self.conf.write_text(text + f"password_file {passwd}\n")

    def require_tls(self, ca: Path, cert: Path, key: Path) -> None:
        """Serve TLS only, with this certificate (before `start`)."""
        text = self.conf.read_text()
        self.conf.write_text(text + f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n")

    def start(self) -> None:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=log, stdout=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
