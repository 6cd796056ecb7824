"""The model folder watch: a file is taken once its size and time hold still, once."""

from __future__ import annotations

import os
import threading
import time

from lineside.daemon.intake.model_watch import FolderWatch


def _watch(folder, newer_than_ns=0):
    seen: list[tuple[str, bytes]] = []
    got = threading.Event()

    def on_bundle(path, data):
        seen.append((path.name, data))
        got.set()

    return FolderWatch(folder, 0.05, on_bundle, newer_than_ns), seen, got


def test_a_dropped_bundle_is_taken_once_and_hidden_files_never(tmp_path):
    watch, seen, got = _watch(tmp_path)
    watch.start()
    try:
        (tmp_path / ".copying.lsb").write_bytes(b"half")
        (tmp_path / "b.lsb").write_bytes(b"bundle")
        (tmp_path / "notes.txt").write_bytes(b"not a bundle")
        assert got.wait(5)
        time.sleep(0.3)  # several more polls
    finally:
        watch.stop()
    assert seen == [("b.lsb", b"bundle")]


def test_files_already_there_are_left_unless_newer_than_the_running_bundle(tmp_path):
    old, new = tmp_path / "old.lsb", tmp_path / "new.lsb"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    os.utime(new, ns=(3_000_000_000, 3_000_000_000))
    watch, seen, got = _watch(tmp_path, newer_than_ns=2_000_000_000)
    watch.start()
    try:
        assert got.wait(5)
        time.sleep(0.3)
    finally:
        watch.stop()
    assert seen == [("new.lsb", b"new")]
