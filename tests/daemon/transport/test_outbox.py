"""The SQLite outbox: order, acknowledgement, bounds with counted drops, survival across reopen."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from lineside.daemon.transport.outbox import Outbox, Writer


def _msg(i: int, size: int = 10) -> tuple[str, bytes, int, bool]:
    return ("t/inspection", str(i).encode().ljust(size, b" "), 1, False)


def test_rows_come_back_in_order_and_ack_deletes(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=100, max_bytes=100_000)
    ids = box.add([_msg(i) for i in range(5)])
    rows = box.after(0, 10)
    assert [r.id for r in rows] == ids and rows[0].payload.strip() == b"0"
    assert [r.id for r in box.after(ids[1], 2)] == ids[2:4]
    box.delete(ids[0])
    assert box.depth() == 4


def test_survives_reopen_with_sequence(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=100, max_bytes=100_000)
    assert [box.next_seq() for _ in range(3)] == [0, 1, 2]
    box.add([_msg(1)])
    box.close()
    again = Outbox(tmp_path / "o.db", max_rows=100, max_bytes=100_000)
    assert again.depth() == 1 and again.next_seq() == 3


@pytest.mark.parametrize(
    "max_rows,max_bytes,n,size,left,dropped",
    [
        (10, 100_000, 15, 10, 10, 5),  # row bound
        (1000, 10_000, 30, 1000, 10, 20),  # byte bound
        (10, 100_000, 10, 10, 10, 0),  # exactly full keeps all
    ],
)
def test_bounds_drop_oldest_and_count(tmp_path, max_rows, max_bytes, n, size, left, dropped):
    box = Outbox(tmp_path / "o.db", max_rows=max_rows, max_bytes=max_bytes)
    for i in range(n):
        box.add([_msg(i, size)])
    assert box.depth() == left and box.dropped() == dropped
    kept = [int(r.payload) for r in box.after(0, 1000)]
    assert kept == list(range(n - left, n))  # the newest are kept


def test_writer_stores_everything_in_order_before_close_returns(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=10_000, max_bytes=10_000_000)
    woken = threading.Event()
    writer = Writer(box, on_written=woken.set)
    for i in range(500):
        writer.put([_msg(i), ("t/verdict", b"pass", 1, True)])
    writer.close()
    rows = box.after(0, 10_000)
    assert len(rows) == 1000 and writer.pending() == 0 and woken.is_set()
    assert [int(r.payload) for r in rows if r.topic == "t/inspection"] == list(range(500))


def test_sequence_numbers_taken_while_writing_persist(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=100, max_bytes=100_000)
    writer = Writer(box, on_written=lambda: None)
    seqs = [box.next_seq() for _ in range(5)]
    writer.put([_msg(seqs[-1])])
    writer.close()
    box.close()
    assert Outbox(tmp_path / "o.db", max_rows=100, max_bytes=100_000).next_seq() == 5


@pytest.mark.parametrize("damage", ["random bytes", "truncated to 60%"])
def test_a_damaged_outbox_is_moved_aside_and_a_fresh_one_started(tmp_path, damage):
    path = tmp_path / "outbox.db"
    box = Outbox(path, max_rows=1000, max_bytes=10_000_000)
    box.add([("t", bytes(200), 1, False)] * 200)
    box.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if damage == "random bytes":
        path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))
    else:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.6)])
    fresh = Outbox(path, max_rows=1000, max_bytes=10_000_000)
    assert fresh.set_aside is not None and fresh.set_aside.exists()
    assert fresh.depth() == 0
    fresh.add([("t", b"x", 1, False)])
    assert fresh.depth() == 1
    fresh.close()
