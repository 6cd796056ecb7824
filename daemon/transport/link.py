"""The MQTT link: paho-mqtt 2.x behind a small interface.

- `status` carries a last will (`offline`); `online` is published on every successful connect.
- Subscriptions are made in `on_connect`, so they survive reconnects.
- Retained state (`score`, `verdict`, `heatmap`, `model`) is remembered and republished after
  every reconnect, so a dashboard that joins late, or a broker that restarted empty, sees it.
- `connected` is true only after the broker accepted the connection.
- Commands are handed on as they arrive and never raise into paho's network thread (an exception
  there ends paho's loop); retained commands are ignored, so a stale one cannot act at every
  reconnect. The client id is unique per process unless configured.
- Outbox rows are handed to paho a window at a time, in order, by one sender thread; paho resends
  what is in flight after a reconnect, and each acknowledgement deletes its row. paho calls
  `on_publish` while holding its own lock, so the callback only queues the acknowledgement.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import sqlite3
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lineside.daemon import worth_logging
from lineside.daemon.config import Mqtt, read_secret
from lineside.daemon.transport.outbox import Outbox
from lineside.deploy import contract

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, bytes], None]


def read_password(cfg: Mqtt) -> str | None:
    """The broker password from its file or systemd credential."""
    return read_secret("mqtt.password", cfg.password_file, cfg.password_credential)


def client_id(cfg: Mqtt, station: str, suffix: str = "") -> str:
    """The configured client id, or a new one of its own: two daemons (or two links of one)
    never share one unless told to, which would make the broker drop them in turn."""
    return (cfg.client_id or f"lineside-{station}-{secrets.token_hex(3)}") + suffix


def make_client(cfg: Mqtt, client_id: str) -> paho.Client:
    """A paho client with the station's broker settings: account, TLS, queue, reconnect delays.
    The Sparkplug edge node uses it too, for the same broker with the same credentials."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    if cfg.username:
        client.username_pw_set(cfg.username, read_password(cfg))
    if cfg.tls:
        client.tls_set(
            ca_certs=str(cfg.tls.ca) if cfg.tls.ca else None,
            certfile=str(cfg.tls.cert) if cfg.tls.cert else None,
            keyfile=str(cfg.tls.key) if cfg.tls.key else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.max_queued_messages_set(cfg.queue_max)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


MessageHandler = Callable[[bytes], None]


class Link:
    def __init__(self, cfg: Mqtt, station: str, outbox: Outbox, on_command: CommandHandler):
        self.cfg, self.station, self.outbox = cfg, station, outbox
        self._on_command = on_command
        self.connected = False
        self._lock = threading.Lock()
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._in_flight: dict[int, int] = {}  # paho mid -> outbox row id; sender thread only
        self._handed_up_to = 0  # highest outbox row id handed to paho
        self._window = max(1, min(100, cfg.queue_max // 2))
        self._acks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="outbox-sender", daemon=True)
        self._undeleted: deque[int] = deque()  # acknowledged rows not yet deleted
        self._delete_failing = False
        self.sender_errors = 0
        self.ignored_retained = 0
        self.quick_drops = 0  # disconnects soon after connecting, in a row
        self._connected_at = 0.0
        # Set once paho has re-sent what was in flight before a drop (see `_on_connect`).
        self._resent = threading.Event()
        self._resent_mid: int | None = None
        self.client_id = client_id(cfg, station)
        self._listeners: dict[str, MessageHandler] = {}  # topics outside ours, e.g. HA's status
        self.client = self._make_client()

    def topic(self, name: str) -> str:
        """The full name of one of the station's topics; only those the contract lists
        (deploy/contract.py), so a misspelt name fails where it is written, not on a dashboard."""
        if name not in contract.TOPICS:
            raise ValueError(f"{name!r} is not one of the contract's topics: {contract.TOPICS}")
        return contract.topic(self.cfg.prefix, self.station, name)

    def _make_client(self) -> paho.Client:
        client = make_client(self.cfg, self.client_id)
        client.will_set(self.topic("status"), b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background; an unreachable broker does not stop the caller."""
        log.info("connecting to mqtt://%s:%d", self.cfg.host, self.cfg.port)
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._sender.start()

    def stop(self, final_status: str | None = "stopped", timeout_s: float = 2.0) -> None:
        """Publish the final status (when connected), then disconnect cleanly."""
        self._stopping.set()
        self._acks.put(None)
        if self._sender.is_alive():
            self._sender.join(timeout=timeout_s)
        if self.connected and final_status:
            info = self.client.publish(self.topic("status"), final_status, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    def alive(self) -> bool:
        """paho's network thread and the outbox sender are running (after `start`)."""
        # paho keeps its loop thread in a private attribute; there is no public accessor.
        paho_thread = getattr(self.client, "_thread", None)
        return bool(paho_thread and paho_thread.is_alive() and self._sender.is_alive())

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.connected = True
        self._connected_at = time.monotonic()
        log.info("connected to the broker as %s", self.client_id)
        # paho re-sends the messages left unacknowledged by a drop only after this callback
        # returns; a new row handed over before that would overtake them. The broker answers
        # this subscription after those re-sends are on the wire, so its SUBACK opens the way.
        _, self._resent_mid = client.subscribe(
            contract.command_filter(self.cfg.prefix, self.station), qos=1
        )
        for full in list(self._listeners):
            client.subscribe(full, qos=1)
        client.publish(self.topic("status"), b"online", qos=1, retain=True)
        with self._lock:
            retained = list(self._retained.items())
        for name, (payload, qos) in retained:
            client.publish(name, payload, qos=qos, retain=True)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid == self._resent_mid:
            self._resent.set()
            self.wake()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._resent.clear()
        if self.connected and not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); retrying", reason_code)
            self._note_quick_drop()
        self.connected = False

    def _note_quick_drop(self) -> None:
        """A broker closes the older of two sessions with one client id: repeated drops right
        after connecting mean another client is using ours."""
        if time.monotonic() - self._connected_at < 5.0:
            self.quick_drops += 1
            if self.quick_drops in (3, 10, 100):
                log.error(
                    "the broker dropped us %d times right after connecting: is another client "
                    "using the client id %r?",
                    self.quick_drops,
                    self.client_id,
                )
        else:
            self.quick_drops = 0

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put(mid)

    def _on_message(self, client, userdata, message) -> None:
        try:
            if (listener := self._listeners.get(message.topic)) is not None:
                listener(bytes(message.payload))
                return
            name = contract.command_name(self.cfg.prefix, self.station, message.topic)
            if name is None:
                return
            if message.retain:
                self.ignored_retained += 1
                if worth_logging(self.ignored_retained):
                    log.warning("ignoring retained command(s) on cmd/%s", name[:64])
                return
            self._on_command(name, message.payload)
        except Exception:
            log.exception("command on %s not handled", message.topic[:200])

    def publish_state(self, name: str, payload: bytes | str, qos: int) -> None:
        """Publish retained state and remember it for the next reconnect."""
        self.publish_retained(self.topic(name), payload, qos)

    def publish_retained(self, full: str, payload: bytes | str, qos: int) -> None:
        """Retained state on any topic (discovery configs), republished after reconnects; an
        empty payload removes the retained message and is not repeated."""
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            if data:
                self._retained[full] = (data, qos)
            else:
                self._retained.pop(full, None)
        if self.connected:
            self.client.publish(full, data, qos=qos, retain=True)

    def listen(self, full: str, handler: MessageHandler) -> None:
        """Hand messages on `full` (an exact topic) to `handler`, from paho's thread; the
        subscription is made now when connected, and at every connect."""
        self._listeners[full] = handler
        if self.connected:
            self.client.subscribe(full, qos=1)

    def unlisten(self, full: str) -> None:
        if self._listeners.pop(full, None) is not None and self.connected:
            self.client.unsubscribe(full)

    def publish_now(self, name: str, payload: bytes | str, qos: int = 0) -> None:
        """Fire and forget (stats, replies): dropped while disconnected."""
        if self.connected:
            self.client.publish(self.topic(name), payload, qos=qos, retain=False)

    def wake(self) -> None:
        """Tell the sender that new outbox rows are waiting."""
        self._acks.put(-1)

    def flush(self, timeout_s: float) -> None:
        """While connected, give the outbox up to `timeout_s` to drain before a stop."""
        deadline = time.monotonic() + timeout_s
        while self.connected and self.outbox.depth() and time.monotonic() < deadline:
            self.wake()
            time.sleep(0.05)

    def _send_loop(self) -> None:
        """Supervised: an unexpected error is logged and counted, and the loop goes on."""
        while not self._stopping.is_set():
            try:
                if not self._send_once():
                    return
            except Exception:
                self.sender_errors += 1
                if worth_logging(self.sender_errors):
                    log.exception("outbox sender error (%d so far); going on", self.sender_errors)
                self._stopping.wait(0.5)

    def _send_once(self) -> bool:
        """Take acknowledgements, hand over new rows; False once asked to stop."""
        try:
            event = self._acks.get(timeout=0.5)
        except queue.Empty:
            event = -1
        while event is not None:
            if event >= 0 and (row_id := self._in_flight.pop(event, None)) is not None:
                self._undeleted.append(row_id)
            try:
                event = self._acks.get_nowait()
            except queue.Empty:
                break
        self._delete_acknowledged()
        if event is None:
            return False
        self._hand_over()
        return True

    def _may_send(self) -> bool:
        """Connected and past paho's re-sends; a broker that never answers the subscription
        holds new rows back for a few seconds at most."""
        if not self.connected:
            return False
        return self._resent.is_set() or time.monotonic() - self._connected_at > 5.0

    def _delete_acknowledged(self) -> None:
        """Delete acknowledged rows; on a full disk they stay listed and are retried later
        (they are never handed over again: `_handed_up_to` is past them)."""
        while self._undeleted:
            try:
                self.outbox.delete(self._undeleted[0])
            except sqlite3.Error as exc:
                if not self._delete_failing:
                    log.warning("outbox: cannot delete acknowledged rows yet (%s)", exc)
                self._delete_failing = True
                return
            self._undeleted.popleft()
            self._delete_failing = False

    def _hand_over(self) -> None:
        """Give paho the next outbox rows, in order, keeping at most a window in flight. Rows
        wait in the outbox while the broker is away, so none overtakes a re-sent one."""
        if not self._may_send():
            return
        room = self._window - len(self._in_flight)
        if room <= 0:
            return
        for row in self.outbox.after(self._handed_up_to, room):
            info = self.client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                log.warning("paho refused a message (%s); it stays in the outbox", info.rc)
                return
            self._handed_up_to = row.id
            if row.qos == 0:
                self.outbox.delete(row.id)
            else:
                self._in_flight[info.mid] = row.id
