"""Model swapping: new bundles are vetted off the frame thread and take over between frames.

Installs and rollbacks run one at a time on the `install` thread, behind a queue of two: a flood
of pushes is answered `busy`, never piled up in memory. A bundle that passes every check waits as
`pending` until the frame loop takes it, so the new model serves whole frames or none.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lineside.daemon import memory
from lineside.daemon.intake.bundle_store import BundleStore, Loaded
from lineside.daemon.runtime import ModelError
from lineside.daemon.telemetry import model_identity
from lineside.deploy.bundle import BundleError, sha256_hex

log = logging.getLogger(__name__)

Reply = Callable[..., None]  # reply(command, request_id, ok, **fields)
QUEUE_SIZE = 2


@dataclass(frozen=True)
class Job:
    command: str  # "model" or "rollback"
    origin: str  # "mqtt" or the file name dropped in the model folder
    request_id: str | None = None
    data: bytes = b""


@dataclass(frozen=True)
class Swap:
    loaded: Loaded
    job: Job
    sha256: str | None


class ModelSwap:
    def __init__(self, store: BundleStore, active: Loaded, reply: Reply) -> None:
        self.store, self.active, self.reply = store, active, reply
        self._pending: list[Swap] = []  # in the order they passed; each is answered
        self._lock = threading.Lock()
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="install", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the job in hand; jobs still queued are dropped (their senders see no reply)."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: Job) -> bool:
        """Queue a job; False (and a `busy` reply for MQTT jobs) when two are already waiting."""
        try:
            self._jobs.put_nowait(job)
            return True
        except queue.Full:
            log.warning("%s from %s refused: busy with earlier bundles", job.command, job.origin)
            if job.origin == "mqtt":
                self.reply(job.command, job.request_id, ok=False, error="busy: try again later")
            return False

    def take_pending(self) -> Swap | None:
        """Called by the frame loop between frames: make the waiting swaps, in order, answering
        each; returns the last (now active), or None when none waited."""
        with self._lock:
            swaps, self._pending = self._pending, []
        for swap in swaps:
            previous, self.active = self.active, swap.loaded
            log.info(
                "%s: now serving %s (was %s)", swap.job.command, swap.loaded.label, previous.label
            )
            if swap.job.origin == "mqtt":
                extra = {"sha256": swap.sha256} if swap.sha256 else {}
                self.reply(
                    swap.job.command,
                    swap.job.request_id,
                    ok=True,
                    message=f"now serving {swap.loaded.label}",
                    model=model_identity(swap.loaded.bundle, with_hash=False),
                    previous=model_identity(previous.bundle, with_hash=False),
                    **extra,
                )
        if not swaps:
            return None
        del previous  # the model it replaced: its memory can go back now
        memory.give_back()
        return swaps[-1]

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._do(job)
            except Exception as exc:
                # Whatever went wrong, the sender hears of it and the thread stays up.
                log.exception("%s from %s failed", job.command, job.origin)
                self._refused(job, f"internal error: {exc}"[:300])
            del job  # the bundle's bytes, before giving memory back
            memory.give_back()

    def _do(self, job: Job) -> None:
        sha = sha256_hex(job.data) if job.command == "model" else None
        with self._lock:
            running = self._pending[-1].loaded if self._pending else self.active
        try:
            if job.command == "model":
                loaded = self.store.install(job.data, running)
            else:
                loaded = self.store.rollback()
        except (BundleError, ModelError, OSError) as exc:
            reason = f"cannot write the bundle ({exc})" if isinstance(exc, OSError) else str(exc)
            self._refused(job, reason, sha)
            return
        with self._lock:
            self._pending.append(Swap(loaded, job, sha))

    def _refused(self, job: Job, reason: str, sha: str | None = None) -> None:
        log.warning(
            "%s from %s refused, %s keeps serving: %s",
            job.command,
            job.origin,
            self.active.label,
            reason,
        )
        if job.origin == "mqtt":
            extra = {"sha256": sha} if sha else {}
            self.reply(job.command, job.request_id, ok=False, error=reason, **extra)
