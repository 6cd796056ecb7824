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

    def close(self, final_status: str | None) -> None:
        """Store what was handed in, give the broker two seconds to take it, then disconnect."""
        self.writer.close()
        if self.started:
            self.link.flush(timeout_s=2.0)
            self.link.stop(final_status)
        self.outbox.close()
