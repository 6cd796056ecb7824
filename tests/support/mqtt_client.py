"""A test subscriber that records every message, and a helper to publish commands."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float


class Recorder:
    """Subscribes to `pattern` and keeps every message. Persistent session, quick reconnects."""

    def __init__(self, port: int, pattern: str, client_id: str, clean: bool = False) -> None:
        self.messages: list[Message] = []
        self.connects = 0
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
            protocol=paho.MQTTv311,
        )
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.on_connect = lambda c, u, f, rc, p: self._connected(pattern)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.wait_for(lambda: self.connects > 0, 10, "subscriber connected")

    def _connected(self, pattern: str) -> None:
        self.connects += 1
        self.client.subscribe(pattern, qos=2)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(
                Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), time.time())
            )

    def on(self, suffix: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith("/" + suffix)]

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for: {what}")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(timeout=5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
