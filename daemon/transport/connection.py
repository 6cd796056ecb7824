"""The station's way out to the broker: outbox, its writer, the MQTT link, the command inbox.

It outlives reloads while the station name, `mqtt` and `outbox` settings stay the same, so a
reload neither drops the session (commands sent meanwhile wait in the inbox) nor flaps `status`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lineside.daemon.config import Config, ConfigError
from lineside.daemon.transport.inbox import Inbox
from lineside.daemon.transport.link import Link
from lineside.daemon.transport.outbox import Outbox, Writer
from lineside.deploy import contract

log = logging.getLogger(__name__)


def key(cfg: Config) -> tuple:
    """Settings that, when changed, need a new connection."""
    return (cfg.station, cfg.mqtt, cfg.outbox)


@dataclass
class Connection:
    key: tuple
    inbox: Inbox
    outbox: Outbox
    writer: Writer
    link: Link
    started: bool = False

    @classmethod
    def open(cls, cfg: Config, inbox: Inbox) -> Connection:
        """Build every part; nothing talks to the broker until `start`."""
        o = cfg.outbox
        try:
            outbox = Outbox(o.path, o.max_rows, o.max_bytes, o.fsync_each)
        except OSError as exc:
            raise ConfigError(f"outbox.path: {o.path}: cannot open ({exc})") from None
        try:
            link = Link(cfg.mqtt, cfg.station, outbox, inbox.put)
        except (OSError, ValueError) as exc:
            outbox.close()
            raise ConfigError(f"mqtt: cannot set up the connection ({exc})") from None
        writer = Writer(outbox, link.wake)
        return cls(key(cfg), inbox, outbox, writer, link)

    def start(self) -> None:
        if not self.started:
            self.link.start()
            self.started = True

    def alive(self) -> bool:
        return self.writer.alive() and (self.link.alive() or not self.started)

    def reply(self, command: str, request_id: str | None, ok: bool, **fields) -> None:
        self.link.publish_now(contract.REPLY, contract.reply(command, request_id, ok, **fields), 1)

    # What the service asks of the way out; it reaches none of the parts itself.

    def next_seq(self) -> int:
        """The next inspection's sequence number (kept with the outbox, across restarts)."""
        return self.outbox.next_seq()

    def store(self, name: str, payload: bytes, qos: int, retain: bool = False) -> None:
        """A message on one of the station's topics, stored first: it survives a broker outage
        and a restart, in order."""
        self.writer.put([(self.link.topic(name), payload, qos, retain)])

    def publish_now(self, name: str, payload: bytes, qos: int) -> None:
        """A message that is only worth sending now (replies, stats, exports): not stored."""
        self.link.publish_now(name, payload, qos)

    def publish_state(self, name: str, payload: bytes, qos: int) -> None:
        """A retained state topic (model, status)."""
        self.link.publish_state(name, payload, qos)

    @property
    def connected(self) -> bool:
        return self.link.connected

    def depth(self) -> int:
        """Messages not yet acknowledged by the broker: stored, and handed in but not stored."""
        return self.outbox.depth() + self.writer.pending()

    def counters(self) -> dict[str, int]:
        """What the way out has dropped, lost, ignored or failed at, for `stats`."""
        lost = self.writer.lost
        return {
            "outbox_dropped": self.outbox.dropped() + lost,
            "outbox_lost": lost,
            "commands_dropped": self.inbox.dropped,
            "retained_commands_ignored": self.link.ignored_retained,
            "sender_errors": self.link.sender_errors,
        }

    def close(self, final_status: str | None) -> None:
        """Store what was handed in, give the broker two seconds to take it, then disconnect."""
        self.writer.close()
        if self.started:
            self.link.flush(timeout_s=2.0)
            self.link.stop(final_status)
        self.outbox.close()
