"""Store-and-forward outbox: messages that must not be lost wait in SQLite until acknowledged.

Rows are written before the publish and deleted on the broker's acknowledgement; after an outage
or a restart they are replayed in the order they were written. The table is bounded by rows and
bytes: when full, the oldest rows go first and are counted as dropped. The inspection sequence
number lives here too, so it keeps counting across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

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
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL (with WAL) survives a crash of the process; FULL also survives a power cut,
        # at the price of an fsync per inspection (about 1 ms here, more on an SD card).
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync_each else 'NORMAL'}")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_seq(self) -> int:
        """The next inspection sequence number, persisted."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            (seq,) = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            self._db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
        return seq

    def add(self, messages: list[tuple[str, bytes, int, bool]]) -> list[int]:
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
