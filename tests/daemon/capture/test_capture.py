"""Frames from files: images as stored, folders recursively, video files frame by frame."""

from __future__ import annotations

import cv2
import numpy as np

from lineside.daemon.capture.image_files import read_paths


def test_folder_recursive_sorted_with_unique_names(tmp_path):
    for sub in ("b", "a"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "000.png"), np.zeros((4, 4), np.uint8))
    items = list(read_paths([tmp_path]))
    assert [i.name for i in items] == ["a_000", "b_000"]
    assert all(i.frame is not None and i.frame.ndim == 2 for i in items)  # gray stays gray


def test_unreadable_and_missing_files_are_items_with_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    items = list(read_paths([bad, tmp_path / "gone.png", empty]))
    assert [i.error for i in items] == [
        "not a readable image",
        "no such file",
        "not a readable image",
    ]


def test_video_file_gives_every_frame(tmp_path):
    path = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(7):
        writer.write(np.full((48, 64, 3), i * 30, np.uint8))
    writer.release()
    items = list(read_paths([path]))
    assert len(items) == 7
    assert items[3].source.endswith("line.avi#3") and items[3].frame.shape == (48, 64, 3)


def test_broken_video_file_is_one_error_item(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\0" * 1000)
    items = list(read_paths([path]))
    assert len(items) == 1 and items[0].error
