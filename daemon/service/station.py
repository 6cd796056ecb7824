"""One configuration running: every part a station needs, built whole before anything starts.

Parts: the trigger, the camera, the model swap, the command control, the sinks and, for a model
folder, its watch. `start` starts them, `close` stops them in the reverse order; the frame loop
in `service` drives them. Nothing is filled in from outside after construction.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from pathlib import Path

from lineside.daemon import worth_logging
from lineside.daemon.capture import triggers
from lineside.daemon.capture.camera import Camera
from lineside.daemon.config import Config
from lineside.daemon.core.pipeline import inspect_frame
from lineside.daemon.core.preprocess import FrameError
from lineside.daemon.intake.bundle_store import BundleStore, Loaded
from lineside.daemon.intake.model_watch import FolderWatch
from lineside.daemon.intake.swap import Job, ModelSwap
from lineside.daemon.service import consumers, stats
from lineside.daemon.service.control import Control
from lineside.daemon.service.labels import Labels
from lineside.daemon.sinks import Result, Sink
from lineside.daemon.sinks.mqtt_topics import json_bytes, model_info
from lineside.daemon.telemetry import Telemetry, model_identity
from lineside.daemon.transport.connection import Connection

log = logging.getLogger(__name__)


class Station:
    def __init__(
        self,
        cfg: Config,
        conn: Connection,
        store: BundleStore,
        active: Loaded,
        signals,
        seen: OrderedDict,
        telemetry: Telemetry,
        replaced: Station | None = None,
    ) -> None:
        self.cfg, self.conn, self.signals = cfg, conn, signals
        self.telemetry = telemetry
        self.turn = triggers.make(cfg.trigger)
        if replaced is not None:
            self._take_triggers(replaced)
        self.camera = Camera(cfg.source)
        self.swap = ModelSwap(store, active, conn.reply)
        self.drift = consumers.drift(cfg, conn)
        self.review = consumers.review(cfg)
        self.labels = Labels(cfg, conn, self.review)
        self.control = Control(
            cfg.station,
            conn.inbox,
            self.turn,
            self.swap,
            cfg.model.trusted_keys,
            signals.remote_reload,
            conn.reply,
            seen,
            self.labels.on_command,
            self.labels.export,
        )
        self.sinks: list[Sink] = consumers.build(
            cfg, conn, telemetry, self.health, self.drift, self.review
        )
        self.page = self._page() if cfg.ui is not None else None
        self.plc = consumers.plc(cfg, self.turn, self.health, self.sinks)
        self.watch = self._folder_watch(store) if Path(cfg.model.path).is_dir() else None

    def _take_triggers(self, replaced: Station) -> None:
        """Triggers that waited through a reload are inspected by the new station, or answered."""
        if not isinstance(replaced.turn, triggers.OnCommand):
            return
        for req in replaced.turn.drain():
            if req.via == "plc":
                continue  # the old link answered it (rejected) as it closed
            if not isinstance(self.turn, triggers.OnCommand):
                self.conn.reply("trigger", req.id, ok=False, error="trigger mode is not 'mqtt'")
            elif not self.turn.push(req):
                self.conn.reply("trigger", req.id, ok=False, error="too many pending triggers")

    def _folder_watch(self, store: BundleStore) -> FolderWatch:
        return FolderWatch(
            self.cfg.model.path,
            self.cfg.model.watch_interval_s,
            lambda path, data: self.swap.submit(Job("model", path.name, None, data)),
            newer_than_ns=store.active_path.stat().st_mtime_ns,
        )

    def _page(self):
        """The operator's page (the `ui` extra, checked by preflight); it reads this station."""
        from lineside.daemon.page import Page, PageSource, accounts
        from lineside.daemon.sinks.page import PageSink

        ewma = self.drift.score_ewma if self.drift is not None else (lambda: None)
        sink = PageSink(self.telemetry, self.health, self.cfg.ui.trend_minutes, ewma)
        self.sinks.append(sink)
        source = PageSource(
            self.cfg.station,
            self.health,
            self.page_stats,
            self.review,
            self.labels.record,
            self.cfg.outbox.max_rows,
        )
        return Page(self.cfg.ui, accounts.load(self.cfg.ui), source, sink)

    @property
    def active(self) -> Loaded:
        return self.swap.active

    def start(self, stack: contextlib.ExitStack) -> None:
        """Start every part; `stack` stops them in the reverse order."""
        for part in (self.swap, self.camera, self.watch, self.control, self.page):
            if part is not None:
                part.start()
                stack.callback(part.stop)
        for sink in self.sinks:
            sink.start()
            stack.callback(sink.close)
        self.publish_model()
        m = self.active.bundle.manifest.model
        log.info(
            "station %s running: %s source, %s trigger, model %s %s on %s",
            self.cfg.station,
            self.cfg.source.kind,
            self.cfg.trigger.mode,
            m.name,
            m.version,
            self.active.model.runtime,
        )

    def alive(self) -> str | None:
        """The name of a part whose thread died, or None when all run."""
        if not self.conn.alive():
            return "mqtt link or outbox writer"
        if not self.swap.alive():
            return "install worker"
        if not self.control.alive():
            return "command control"
        return None

    def publish_model(self) -> None:
        self.conn.publish_state("model", json_bytes(model_info(self.active.bundle)), 1)

    def take_swap(self) -> None:
        if self.swap.take_pending() is not None:
            self.publish_model()

    def inspect(self, req: triggers.Request) -> str:
        """One request: 'inspected', 'refused' (a frame unlike the training set) or 'none'."""
        wait = self.cfg.trigger.frame_timeout_s if req.id or req.at else 0.5
        if req.until:  # a part that has gone by is not waited for (the PLC rejected it)
            wait = min(wait, req.until - time.time())
            if wait <= 0:
                return "none"
        self.camera.fire()  # a camera on a software trigger exposes this part (or frame) now
        frame = self.camera.next_frame(timeout=wait, newer_than=req.at)
        if frame is None:
            if req.id is not None or req.part_id is not None:
                self._reply(req, ok=False, error="no fresh frame from the camera")
            return "none"
        active = self.active
        try:
            insp = inspect_frame(
                frame.image, active.bundle.manifest, active.model.infer, self.cfg.rois
            )
        except FrameError as exc:
            self._refused(str(exc), req)
            return "refused"
        seq = self.conn.next_seq()
        result = Result(seq, frame, insp, req.part_id, active.bundle, self.cfg.station, req.id)
        # Counted before any sink sees it, so each reads counts that include this part.
        self.telemetry.inspection(insp.verdict, sum(insp.latency_ms.values()))
        for sink in self.sinks:
            sink.publish(result)
        if req.id is not None:
            self._reply(
                req,
                ok=True,
                seq=seq,
                part_id=req.part_id,
                verdict=insp.verdict,
                score=insp.score,
            )
        return "inspected"

    def _refused(self, reason: str, req: triggers.Request) -> None:
        """A camera that sends frames the model cannot take (resolution or channels changed):
        counted, reported as a camera fault in `stats`, logged when it starts and now and then."""
        new_fault = self.telemetry.frame_fault is None
        self.telemetry.refusal(reason)
        n = self.telemetry.frame_errors
        if new_fault or worth_logging(n):
            log.error("camera fault: frame refused (%d so far): %s", n, reason)
        if req.id is not None:
            self._reply(req, ok=False, error=reason)

    def _reply(self, req: triggers.Request, **fields) -> None:
        """An MQTT trigger's reply; the PLC reads its answer from its registers (a part with no
        inspection fails safe at its deadline there)."""
        if req.via == "mqtt":
            self.conn.reply("trigger", req.id, **fields)

    def health(self) -> dict:
        """The station's state now, for sinks that export it (read from their threads)."""
        cam, conn = self.camera, self.conn
        return {
            "camera": "fault" if self.telemetry.frame_fault else cam.state,
            "camera_fault": self.telemetry.frame_fault,
            "camera_online": cam.state == "ok",
            "dropped_frames": cam.dropped,
            "outbox_depth": conn.depth(),
            "mqtt_connected": conn.connected,
            "drift_alarm": self.drift is not None and self.drift.active,
            "model": model_identity(self.active.bundle),
        }

    def stats(self) -> dict:
        t, cam, conn = self.telemetry, self.camera, self.conn
        way_out = conn.counters()
        health = self.health()
        extra = {
            "dropped_frames": health["dropped_frames"],
            "outbox_depth": health["outbox_depth"],
            "outbox_dropped": way_out["outbox_dropped"],
            "outbox_lost": way_out["outbox_lost"],
            "mqtt_connected": health["mqtt_connected"],
            "camera": health["camera"],
            "camera_fault": health["camera_fault"],
            **({"camera_settings": settings} if (settings := cam.readback()) else {}),
            "verdicts": t.verdicts(),
            **self.page_stats(),
            **({"plc": self.plc.stats()} if self.plc is not None else {}),
            "commands_dropped": way_out["commands_dropped"],
            "retained_commands_ignored": way_out["retained_commands_ignored"],
            "thread_errors": way_out["sender_errors"] + self.control.errors + cam.errors,
            "runtime": self.active.model.runtime,
            "model": health["model"],
        }
        return stats.snapshot(t, cam.captured, extra)

    def page_stats(self) -> dict:
        """The drift monitor's and the review queue's state (for `stats` and the page)."""
        drift = self.drift.state() if self.drift else {"alarm": False, "monitored": False}
        return {"drift": drift, "review": self.labels.stats()}

    def publish_stats(self, notifier) -> None:
        doc = self.stats()
        line = stats.summary(doc)
        log.info("stats: %s", line)
        notifier.status(line)
        self.conn.publish_now("stats", json_bytes(doc), 0)
