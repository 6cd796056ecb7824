"""The service's signals: SIGTERM/SIGINT stop it, SIGHUP reloads it.

Light on purpose (no NumPy, OpenCV or LiteRT), so `lineside-daemon run` installs the handlers
before its heavy imports: a SIGHUP in the first half-second would otherwise end the process.
"""

from __future__ import annotations

import signal
import threading


class Signals:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.reload_from_mqtt = False  # a remote reload may not move the model backwards

    def install(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())

    def remote_reload(self) -> None:
        self.reload_from_mqtt = True
        self.reload.set()

    def take_reload(self) -> bool:
        """Clear the request; True when it came over MQTT."""
        remote, self.reload_from_mqtt = self.reload_from_mqtt, False
        self.reload.clear()
        return remote
