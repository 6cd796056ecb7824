"""Sparkplug B edge node: the station as an edge node whose one device is the inspection.

Topics are `spBv1.0/<group>/<type>/<edge node>[/<device>]`; payloads are the Eclipse Tahu
protobuf. The session's will is NDEATH carrying `bdSeq`; NBIRTH (seq 0) and DBIRTH name every
metric with its datatype and alias; DDATA carries only changed metrics, by alias. `seq` counts
0-255 and wraps. `Node Control/Rebirth` on NCMD is answered with new births. The device dies
(DDEATH) while the camera is not delivering and is born again when it returns.

MQTT allows one will per connection, and the station's own session already has one (`status`
-> `offline`), so the edge node holds a second session to the same broker, made by the same
`make_client` (account, TLS, reconnect delays). `bdSeq` goes up by one at every new session.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from lineside.daemon import worth_logging
from lineside.daemon.config import Mqtt, Sparkplug
from lineside.daemon.sinks import Result
from lineside.daemon.sinks import sparkplug_b_pb2 as pb
from lineside.daemon.sinks.exported import BY_PATH, INSPECTION_PATHS, VALUES, Health, Value, View
from lineside.daemon.telemetry import Telemetry
from lineside.daemon.transport.link import client_id, make_client

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
BD_SEQ = "bdSeq"
DATATYPES = {
    "string": pb.String,
    "double": pb.Double,
    "uint64": pb.UInt64,
    "bool": pb.Boolean,
    "datetime": pb.DateTime,
}
# Alias 0 is the node's rebirth control; the device's metrics follow in `VALUES` order.
ALIASES = {v.path: i for i, v in enumerate(VALUES, start=1)}


def topic(group: str, kind: str, node: str, device: str | None = None) -> str:
    return "/".join([NAMESPACE, group, kind, node, *([device] if device else [])])


def now_ms() -> int:
    return int(time.time() * 1000)


def set_value(metric: pb.Payload.Metric, value: Value, data: object) -> None:
    """Write `data` into the metric's field for `value.kind`; None is sent as is_null."""
    if data is None:
        metric.is_null = True
    elif value.kind == "string":
        metric.string_value = str(data)
    elif value.kind == "double":
        metric.double_value = float(data)
    elif value.kind == "bool":
        metric.boolean_value = bool(data)
    elif value.kind == "datetime":
        metric.long_value = int(float(data) * 1000)
    else:
        metric.long_value = int(data)


def death(bd_seq: int) -> bytes:
    """NDEATH: only the bdSeq of the session it ends."""
    payload = pb.Payload(timestamp=now_ms())
    payload.metrics.add(name=BD_SEQ, datatype=pb.Int64, long_value=bd_seq)
    return payload.SerializeToString()


class EdgeNode:
    """A sink: every inspection's changes as DDATA; health changes polled on its own thread."""

    def __init__(
        self, cfg: Sparkplug, mqtt: Mqtt, station: str, telemetry: Telemetry, health: Health
    ) -> None:
        self.group, self.device = cfg.group_id, cfg.device_id
        self.node = cfg.edge_node_id or station
        self.interval_s = cfg.health_interval_s
        self.view = View(telemetry, health)
        self._health = health
        self._lock = threading.RLock()  # births, DDATA and seq from three threads
        self._seq = 0
        self._session_bd = -1  # the bdSeq of the connected session
        self._next_bd = secrets.randbelow(256)  # the bdSeq of the will for the next session
        self._sent: dict[str, object] = {}
        self._device_born = False
        self.connected = False
        self.errors = 0
        self._stop = threading.Event()
        self.client = make_client(mqtt, client_id(mqtt, station, "-sparkplug"))
        self.client.will_set(self._topic("NDEATH"), death(self._next_bd), qos=1, retain=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._mqtt = mqtt
        self._monitor = threading.Thread(target=self._watch, name="sparkplug-health", daemon=True)

    def _topic(self, kind: str, device: bool = False) -> str:
        return topic(self.group, kind, self.node, self.device if device else None)

    def start(self) -> None:
        self.client.connect_async(self._mqtt.host, self._mqtt.port, self._mqtt.keepalive_s)
        self.client.loop_start()
        self._monitor.start()

    def publish(self, result: Result) -> None:
        self.view.record(result)
        self._send_changes(INSPECTION_PATHS)

    def close(self) -> None:
        """A clean stop says so: DDEATH and NDEATH, then disconnect (the will is not sent)."""
        self._stop.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)
        with self._lock:
            if self.connected:
                if self._device_born:
                    self._send("DDEATH", pb.Payload(timestamp=now_ms()), device=True)
                info = self.client.publish(
                    self._topic("NDEATH"), death(self._session_bd), qos=1, retain=False
                )
                info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho callbacks (its network thread) -------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("sparkplug: broker refused the connection: %s", reason_code)
            return
        with self._lock:
            self.connected = True
            self._session_bd = self._next_bd
            # The will registered for the next session carries the next bdSeq.
            self._next_bd = (self._session_bd + 1) % 256
            client.will_set(self._topic("NDEATH"), death(self._next_bd), qos=1, retain=False)
            client.subscribe(self._topic("NCMD"), qos=0)
            self._births()
        log.info(
            "sparkplug: edge node %s/%s born (bdSeq %d)", self.group, self.node, self._session_bd
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self.connected = False
            self._device_born = False

    def _on_message(self, client, userdata, message) -> None:
        try:
            payload = pb.Payload.FromString(message.payload)
        except Exception:
            log.warning("sparkplug: NCMD that is not a Sparkplug B payload; ignored")
            return
        wants = any(
            (m.name == REBIRTH or (not m.name and m.alias == 0)) and m.boolean_value
            for m in payload.metrics
        )
        if wants:
            log.info("sparkplug: rebirth requested")
            with self._lock:
                self._births()

    # --- births, data, deaths -----------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % 256
        return seq

    def _send(self, kind: str, payload: pb.Payload, device: bool = False) -> None:
        payload.seq = self._next_seq()
        self.client.publish(self._topic(kind, device), payload.SerializeToString(), qos=0)

    def _births(self) -> None:
        """NBIRTH (seq 0) and, when the camera delivers, DBIRTH with every metric."""
        self._seq = 0
        node = pb.Payload(timestamp=now_ms())
        node.metrics.add(name=BD_SEQ, datatype=pb.Int64, long_value=self._session_bd)
        node.metrics.add(name=REBIRTH, alias=0, datatype=pb.Boolean, boolean_value=False)
        self._send("NBIRTH", node)
        self._device_born = False
        if self._health()["camera_online"]:
            self._device_birth()

    def _device_birth(self) -> None:
        values = self.view.values()
        payload = pb.Payload(timestamp=now_ms())
        for value in VALUES:
            metric = payload.metrics.add(
                name=value.path, alias=ALIASES[value.path], datatype=DATATYPES[value.kind]
            )
            set_value(metric, value, values[value.path])
        self._send("DBIRTH", payload, device=True)
        self._sent = values
        self._device_born = True

    def _send_changes(self, paths: tuple[str, ...]) -> None:
        values = self.view.values()
        with self._lock:
            if not (self.connected and self._device_born):
                return
            changed = [p for p in paths if values[p] != self._sent.get(p)]
            if not changed:
                return
            payload = pb.Payload(timestamp=now_ms())
            for path in changed:
                metric = payload.metrics.add(alias=ALIASES[path])
                set_value(metric, BY_PATH[path], values[path])
                self._sent[path] = values[path]
            self._send("DDATA", payload, device=True)

    def _watch(self) -> None:
        """Device death and birth with the camera; health changes as DDATA."""
        health_paths = tuple(v.path for v in VALUES if v.path not in INSPECTION_PATHS)
        while not self._stop.wait(self.interval_s):
            try:
                online = self._health()["camera_online"]
                with self._lock:
                    if self.connected and online and not self._device_born:
                        self._device_birth()
                    elif self.connected and not online and self._device_born:
                        self._send("DDEATH", pb.Payload(timestamp=now_ms()), device=True)
                        self._device_born = False
                self._send_changes(health_paths)
            except Exception:
                self.errors += 1
                if worth_logging(self.errors):
                    log.exception("sparkplug: health update failed (%d so far)", self.errors)
