"""systemd notifications (Type=notify): READY, STATUS and WATCHDOG over $NOTIFY_SOCKET.

Written against the documented datagram protocol, so the edge install needs no extra package.
Outside systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self._address = address or None
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        # Ping at half the watchdog interval, as systemd recommends.
        self.watchdog_period = usec / 2e6 if usec else None
        self._last_ping = 0.0

    def send(self, *fields: str) -> None:
        if not self._address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(self._address)
                sock.sendall("\n".join(fields).encode())
            except OSError:
                pass  # systemd gone or socket unusable: nothing useful to do about it here

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """Ping, at most every half interval; call it only when work is really progressing."""
        if self.watchdog_period is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_period:
            self._last_ping = now
            self.send("WATCHDOG=1")
