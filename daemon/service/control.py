"""Command handling: what each command on `cmd/<name>` does, and who may give it.

paho's network thread only puts commands in the `Inbox` (bounded; it never raises there). The
station's control thread takes them out, checks them and acts: triggers go to the trigger queue,
bundles and rollbacks to the model swap, reloads to the service. The inbox outlives a reload, so
commands that arrive while the station is rebuilt wait for the new one.

Who may do what (see docs/mqtt.md, "Security"): `trigger` and `reload` need only the broker's
permission to publish on the topic; `model` carries a bundle that must be signed by a trusted key
and not older than the running one; `rollback` must itself be signed by a trusted key, bound to
the station, its request id and the time, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from lineside.daemon.capture import triggers
from lineside.daemon.intake.swap import Job, ModelSwap, Reply
from lineside.daemon.transport import commands
from lineside.daemon.transport.inbox import Inbox
from lineside.deploy import contract, signing

log = logging.getLogger(__name__)

REMEMBERED_IDS = 10_000  # signed request ids seen, so each signed command acts once


class Control:
    def __init__(
        self,
        station: str,
        inbox: Inbox,
        turn: triggers.Continuous | triggers.Interval | triggers.OnCommand,
        swap: ModelSwap,
        trusted_keys: Path | None,
        on_reload: Callable[[], None],
        reply: Reply,
        seen: OrderedDict[str, None],
        on_label: Callable[[commands.Command], None],
        on_export: Callable[[commands.Command], None],
    ) -> None:
        self.station, self.inbox, self.turn, self.swap = station, inbox, turn, swap
        self.trusted_keys, self.on_reload, self.reply = trusted_keys, on_reload, reply
        self.seen = seen  # shared across reloads, so a reload does not reopen a replay window
        self.on_label, self.on_export = on_label, on_export
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self.inbox.get(timeout=0.2)
            if item is None:
                continue
            try:
                self.handle(*item)
            except Exception:
                self.errors += 1
                log.exception("command %s not handled", item[0][:64])

    def handle(self, name: str, payload: bytes) -> None:
        try:
            cmd = commands.parse(name, payload)
        except commands.CommandError as exc:
            self.reply(name[:64], exc.request_id, ok=False, error=str(exc))
            return
        if cmd.name == "trigger":
            self._trigger(cmd)
        elif cmd.name == "reload":
            self.reply(cmd.name, cmd.id, ok=True, message="reloading configuration and bundle")
            self.on_reload()
        elif cmd.name == "model":
            self.swap.submit(Job("model", "mqtt", None, cmd.body))
        elif cmd.name == "label":
            self.on_label(cmd)
        elif cmd.name == "export":
            self.on_export(cmd)
        else:
            self._rollback(cmd)

    def _trigger(self, cmd: commands.Command) -> None:
        if not isinstance(self.turn, triggers.OnCommand):
            self.reply(cmd.name, cmd.id, ok=False, error="trigger mode is not 'mqtt'")
        elif not self.turn.push(triggers.Request(cmd.id, cmd.part_id, time.time())):
            self.reply(cmd.name, cmd.id, ok=False, error="too many pending triggers")

    def _rollback(self, cmd: commands.Command) -> None:
        if self.trusted_keys is not None:
            try:
                self._check_signed(cmd)
            except signing.SignatureError as exc:
                log.warning("rollback refused: %s", exc)
                self.reply(cmd.name, cmd.id, ok=False, error=f"rollback refused: {exc}")
                return
        self.swap.submit(Job("rollback", "mqtt", cmd.id))

    def _check_signed(self, cmd: commands.Command) -> None:
        trusted = signing.load_trusted(self.trusted_keys)
        kid = contract.check_signed_command(cmd.doc, "rollback", self.station, trusted, time.time())
        if cmd.id is None or cmd.id in self.seen:
            raise signing.SignatureError("this signed request id was used before")
        self.seen[cmd.id] = None
        while len(self.seen) > REMEMBERED_IDS:
            self.seen.popitem(last=False)
        log.info("signed rollback %s by key %s", cmd.id, kid)
