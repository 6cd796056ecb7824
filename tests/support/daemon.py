"""Run `lineside-daemon run` as a real process with a config written by the test."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "lineside.service"
# The shipped unit's TimeoutStopSec: past it systemd kills the daemon mid-flush. A clean stop
# takes about a second; the contract is only that it ends before this.
STOP_LIMIT_S = float(re.search(r"^TimeoutStopSec=(\d+)", UNIT.read_text(), re.M).group(1))


def write_config(path: Path, **settings) -> Path:
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


class DaemonProcess:
    def __init__(self, config: Path, log: Path, *extra: str, env: dict | None = None) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lineside.daemon.cli", "run", "--config", str(config), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took to exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout), time.monotonic() - t0

    def kill(self) -> None:
        self.proc.kill()
        self.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mb(self) -> float:
        """Resident memory, in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024
