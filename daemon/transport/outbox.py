"""Store-and-forward outbox: messages that must not be lost wait in SQLite until acknowledged.

Rows are written before the publish and deleted on the broker's acknowledgement; after an outage
or a restart they are replayed in the order they were written. The table is bounded by rows and
bytes: when full, the oldest rows go first and are counted as dropped. The inspection sequence
number lives here too, so it keeps counting across restarts.

The frame thread does not wait for SQLite: it hands its messages to a `Writer`, whose thread
stores them (several frames in one transaction when it falls behind) and then wakes the MQTT
sender. A stop drains the writer before the outbox closes, so only a hard crash within the few
milliseconds between inspection and commit can lose a message, as it can the frame in hand.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

Message = tuple[str, bytes, int, bool]  # topic, payload, qos, retain

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('dropped', 0), ('next_seq', 0);
"""


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Thread-safe: the frame loop adds, the MQTT network thread acknowledges."""

    def __init__(self, path: Path, max_rows: int, max_bytes: int, fsync_each: bool = False):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.set_aside: Path | None = None  # where a damaged outbox was moved at start
        self._lock = threading.Lock()
        try:
            self._db = self._open(path, fsync_each)
        except sqlite3.DatabaseError as exc:
            # A restart loop that never inspects is worse than starting over: keep the damaged
            # file for inspection and begin a fresh outbox.
            self.set_aside = _move_aside(path)
            log.error(
                "outbox %s is damaged (%s): moved to %s, starting a fresh one; messages it "
                "held were not sent",
                path,
                exc,
                self.set_aside,
            )
            self._db = self._open(path, fsync_each)
        # The counter is kept in memory (taking a number must not wait for a write) and
        # persisted with every add and at close.
        self._seq_lock = threading.Lock()
        (self._next_seq,) = self._db.execute(
            "SELECT value FROM meta WHERE key='next_seq'"
        ).fetchone()

    @staticmethod
    def _open(path: Path, fsync_each: bool) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL (with WAL) survives a crash of the process; FULL also survives a power cut,
            # at the price of an fsync per inspection (about 1 ms here, more on an SD card).
            db.execute(f"PRAGMA synchronous={'FULL' if fsync_each else 'NORMAL'}")
            db.executescript(SCHEMA)
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            try:
                self._save_seq()
            except sqlite3.Error as exc:
                log.error("outbox: could not save the sequence counter at close (%s)", exc)
            self._db.close()

    def next_seq(self) -> int:
        """The next inspection sequence number; persisted by the next add or close."""
        with self._seq_lock:
            seq = self._next_seq
            self._next_seq += 1
        return seq

    def _save_seq(self) -> None:
        with self._seq_lock:
            upto = self._next_seq
        self._db.execute("UPDATE meta SET value=max(value, ?) WHERE key='next_seq'", (upto,))

    def add(self, messages: list[Message]) -> list[int]:
        """Store (topic, payload, qos, retain) messages together; returns their row ids."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            ids = [
                self._db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                    (topic, payload, qos, int(retain)),
                ).lastrowid
                for topic, payload, qos, retain in messages
            ]
            self._enforce_bounds()
            self._save_seq()
        return ids

    def _enforce_bounds(self) -> None:
        rows, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox"
        ).fetchone()
        excess = rows - self.max_rows
        dropped = 0
        if excess > 0:
            dropped += self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (excess,),
            ).rowcount
            size = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox")
            size = size.fetchone()[0]
        while size > self.max_bytes:
            oldest = self._db.execute(
                "SELECT id, LENGTH(payload) FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
            if oldest is None:
                break
            self._db.execute("DELETE FROM outbox WHERE id=?", (oldest[0],))
            size -= oldest[1]
            dropped += 1
        if dropped:
            self._db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (dropped,))

    def after(self, last_id: int, limit: int) -> list[Row]:
        """Rows written after `last_id`, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM outbox WHERE id>? ORDER BY id LIMIT ?",
                (last_id, limit),
            )
            return [Row(i, t, bytes(p), q, bool(r)) for i, t, p, q, r in cur]

    def delete(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id=?", (row_id,))

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def dropped(self) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0]


class Writer:
    """Stores messages in the outbox on its own thread, then calls `on_written` (a wake-up).

    A write that fails (a full or broken disk) loses that batch: it is counted in `lost` and
    logged once per burst of failures, and the thread goes on, so storing resumes by itself when
    the disk has room again.
    """

    def __init__(self, outbox: Outbox, on_written: Callable[[], None]) -> None:
        self.outbox, self.on_written = outbox, on_written
        self.lost = 0  # messages that could not be stored
        self._burst = 0  # messages lost since the last successful write
        self._queue: queue.SimpleQueue[list[Message] | None] = queue.SimpleQueue()
        self._pending = 0  # messages handed in and not yet committed
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    def put(self, messages: list[Message]) -> None:
        with self._count_lock:
            self._pending += len(messages)
        self._queue.put(messages)

    def pending(self) -> int:
        with self._count_lock:
            return self._pending

    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Store everything handed in so far, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch, last = self._drain()
            if batch:
                self._store(batch)
                with self._count_lock:
                    self._pending -= len(batch)
                self.on_written()
            if last:
                return

    def _store(self, batch: list[Message]) -> None:
        try:
            self.outbox.add(batch)
        except Exception as exc:  # sqlite3.Error on a full disk; anything else is as fatal
            self.lost += len(batch)
            if self._burst == 0:
                log.error("outbox write failed (%s): messages are being lost", exc)
            self._burst += len(batch)
            return
        if self._burst:
            log.warning("outbox writable again; %d message(s) were lost", self._burst)
            self._burst = 0

    def _drain(self) -> tuple[list[Message], bool]:
        """Everything queued (waiting for the first item); True once close() was called."""
        item = self._queue.get()
        batch: list[Message] = []
        while item is not None:
            batch.extend(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL files) to `<name>.damaged-<unix time>`."""
    target = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{target}{suffix}"))
    return target
