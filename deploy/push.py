"""Push bundles to stations over MQTT, roll them back, and list what every station runs.

Stations are found from their retained `status` and `model` topics. A push publishes the bundle
bytes on `cmd/model` and waits for each station's reply, recognised by the bundle's SHA-256; a
station whose status is not `online` is reported as such, never waited for.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from lineside.deploy import contract


class PushError(Exception):
    """The broker cannot be reached, or nothing to push to; one line for a person."""


@dataclass
class StationState:
    station: str
    status: str = "unknown"
    model: dict | None = None
    reply: dict | None = None


@dataclass(frozen=True)
class Connect:
    """How to reach the broker: the same options the daemon has."""

    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password_file: Path | None = None

    def apply(self, client: paho.Client) -> None:
        if self.password_file and not self.username:
            raise PushError("--password-file needs --username")
        if self.username:
            password = None
            if self.password_file:
                try:
                    password = self.password_file.read_text().strip()
                except OSError as exc:
                    raise PushError(f"{self.password_file}: cannot read ({exc.strerror})") from None
            client.username_pw_set(self.username, password)
        if self.tls_ca or self.tls_cert:
            try:
                client.tls_set(
                    ca_certs=str(self.tls_ca) if self.tls_ca else None,
                    certfile=str(self.tls_cert) if self.tls_cert else None,
                    keyfile=str(self.tls_key) if self.tls_key else None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError) as exc:
                raise PushError(f"TLS files: {exc}") from None


class Line:
    """A short-lived MQTT session that watches every station under a prefix."""

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = "lineside",
        settle_s: float = 1.0,
        connect: Connect | None = None,
    ):
        self.prefix = prefix
        self.stations: dict[str, StationState] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._refused: str | None = None
        self._connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"lineside-deploy-{uuid.uuid4().hex[:8]}"
        )
        (connect or Connect()).apply(self.client)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        try:
            self.client.connect(host, port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise PushError(f"cannot reach the broker at {host}:{port} ({exc})") from None
        self.client.loop_start()
        if not self._connected.wait(10) or self._refused:
            self.close()
            raise PushError(
                f"the broker at {host}:{port} refused the connection ({self._refused or 'timeout'})"
            )
        for name in ("status", "model", contract.REPLY):
            self.client.subscribe(f"{prefix}/+/{name}", qos=1)
        time.sleep(settle_s)  # retained messages arrive right after subscribing

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        self._connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        found = contract.station_of(self.prefix, msg.topic)
        if found is None:
            return
        station, kind = found
        kind = "reply" if kind == contract.REPLY else kind
        with self._cond:
            state = self.stations.setdefault(station, StationState(station))
            try:
                if kind == "status":
                    state.status = msg.payload.decode()
                elif kind == "model":
                    state.model = json.loads(msg.payload)
                elif kind == "reply":
                    doc = json.loads(msg.payload)
                    if doc.get("command") in ("model", "rollback", "export"):
                        state.reply = doc
            except (UnicodeDecodeError, json.JSONDecodeError):
                return
            self._cond.notify_all()

    def send(self, station: str, command: str, payload: bytes) -> None:
        with self._cond:
            self.stations.setdefault(station, StationState(station)).reply = None
        info = self.client.publish(
            contract.command_topic(self.prefix, station, command), payload, qos=1
        )
        info.wait_for_publish(timeout=30)

    def wait_replies(self, stations: list[str], matches, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not all(
                self.stations[s].reply and matches(self.stations[s].reply) for s in stations
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)


def _targets(line: Line, station: str | None) -> list[str]:
    if station:
        return [station]
    if not line.stations:
        raise PushError(f"no stations found under '{line.prefix}/' on this broker")
    return sorted(line.stations)


def _row(state: StationState, old: dict | None, sent: bool, accept_key: str) -> dict:
    row = {"station": state.station, "old": (old or {}).get("version", "-"), "new": "-"}
    if not sent:
        row |= {"result": "offline", "reason": f"status is '{state.status}'"}
    elif state.reply is None:
        row |= {"result": "no reply", "reason": "no answer within the timeout"}
    elif state.reply.get("ok"):
        row |= {
            "result": "ok",
            "new": state.reply.get(accept_key, {}).get("version", "-"),
            "reason": state.reply.get("message", ""),
        }
    else:
        row |= {"result": "refused", "reason": state.reply.get("error", "")}
    return row


def push(
    line: Line, bundle: bytes, sha256: str, station: str | None, timeout_s: float
) -> list[dict]:
    """Send `bundle` to one station or all; a row per station."""
    targets = _targets(line, station)
    with line._lock:
        before = {s: line.stations.setdefault(s, StationState(s)) for s in targets}
        old = {s: before[s].model for s in targets}
    online = [s for s in targets if before[s].status == "online"]
    for s in online:
        line.send(s, "model", bundle)
    line.wait_replies(online, lambda r: r.get("sha256") == sha256, timeout_s)
    return [_row(line.stations[s], old[s], s in online, "model") for s in targets]


def rollback(
    line: Line, station: str | None, timeout_s: float, key: Ed25519PrivateKey | None = None
) -> list[dict]:
    """Ask stations to go back to their previous bundle; signed when given a key."""
    targets = _targets(line, station)
    with line._lock:
        old = {s: line.stations.setdefault(s, StationState(s)).model for s in targets}
    online = [s for s in targets if line.stations[s].status == "online"]
    request = uuid.uuid4().hex[:12]
    for s in online:
        doc = {"id": request}
        if key is not None:
            doc = contract.sign_command("rollback", s, request, time.time(), key)
        line.send(s, "rollback", json.dumps(doc).encode())
    line.wait_replies(online, lambda r: r.get("id") == request, timeout_s)
    return [_row(line.stations[s], old[s], s in online, "model") for s in targets]


def status(line: Line) -> list[dict]:
    rows = []
    for s in sorted(line.stations):
        st = line.stations[s]
        m = st.model or {}
        rows.append(
            {
                "station": s,
                "status": st.status,
                "model": m.get("name", "-"),
                "version": m.get("version", "-"),
                "sha256": (m.get("sha256") or "-")[:12],
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return "(no stations)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
