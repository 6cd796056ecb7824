"""The review queue: bounded by count, bytes and age over a long run; kept across restarts with
its labels; commands to label are checked before anything acts on them."""

from __future__ import annotations

import json
import os
import time

import pytest

from lineside.daemon.config import Review
from lineside.daemon.core.pipeline import Frame, inspect_frame
from lineside.daemon.runtime import load_bundle
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.review import NotInStore, ReviewSink, ReviewStore
from lineside.daemon.transport import commands


@pytest.fixture(scope="module")
def results(bundle_path, synth_dir):
    """Real inspections of real frames (good and defective), to keep."""
    import cv2

    bundle, model = load_bundle(bundle_path, num_threads=2)
    paths = sorted((synth_dir / "test").rglob("*.png"))[:12]
    out = []
    for i, path in enumerate(paths):
        image = cv2.imread(str(path))
        insp = inspect_frame(image, bundle.manifest, model.infer, ())
        out.append(Result(i, Frame(image, time.time(), i), insp, f"part-{i}", bundle, "cell-1"))
    return out


def _with_seq(result: Result, seq: int) -> Result:
    return Result(seq, result.frame, result.inspection, f"part-{seq}", result.bundle, "cell-1")


def _disk(root) -> tuple[int, int]:
    folders = [d for d in root.iterdir() if d.is_dir() and d.name.isdigit()]
    size = sum(f.stat().st_size for d in folders for f in d.iterdir())
    return len(folders), size


def test_a_long_run_stays_within_count_and_bytes(tmp_path, results):
    one = ReviewStore(Review(), tmp_path / "probe")
    one.add(results[0])
    item_bytes = one.size()[1]
    cfg = Review(max_items=40, max_bytes=max(100_000, 25 * item_bytes))
    store = ReviewStore(cfg, tmp_path / "review")
    for seq in range(400):
        store.add(_with_seq(results[seq % len(results)], seq))
        count, size = _disk(store.root)
        assert count <= cfg.max_items and size <= cfg.max_bytes, (seq, count, size)
    assert store.items() == sorted(store.items()) and store.items()[-1] == 399  # newest kept
    assert store.removed == 400 - len(store.items()) and store.removed > 300


def test_items_past_their_age_go_first(tmp_path, results):
    store = ReviewStore(Review(max_age_days=1), tmp_path / "review")
    store.add(_with_seq(results[0], 1))
    old = tmp_path / "review" / f"{1:012d}" / "inspection.json"
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    reopened = ReviewStore(Review(max_age_days=1), tmp_path / "review")
    reopened.add(_with_seq(results[1], 2))
    assert reopened.items() == [2] and reopened.removed == 1


def test_a_restart_keeps_the_queue_and_its_labels(tmp_path, results):
    store = ReviewStore(Review(), tmp_path / "review")
    for seq in (5, 6, 7):
        store.add(_with_seq(results[seq], seq))
    doc = store.label(store.find(part_id="part-6"), "good", "anna")
    assert doc["seq"] == 6 and doc["label"] == "good" and doc["by"] == "anna"
    (tmp_path / "review" / ".tmp-8").mkdir()  # an item cut short by a power failure
    again = ReviewStore(Review(), tmp_path / "review")
    assert again.items() == [5, 6, 7]
    assert again.read(6)["labelled"]["label"] == "good"
    assert "labelled" not in again.read(5)
    assert not (tmp_path / "review" / ".tmp-8").exists()
    with pytest.raises(NotInStore):
        again.find(seq=99)


def test_the_queue_is_listed_by_verdict_and_decision_with_who_and_when(tmp_path, results):
    store = ReviewStore(Review(), tmp_path / "review")
    for seq, result in enumerate(results):
        store.add(_with_seq(result, seq))
    verdicts = {seq: r.inspection.verdict for seq, r in enumerate(results)}
    store.label(3, "defective", "anna", note="scratch at the rim")
    store.label(5, "good", "ben")
    newest_first = [row["seq"] for row in store.listing()]
    assert newest_first == sorted(verdicts, reverse=True)
    for wanted in ("pass", "review", "fail"):
        rows = store.listing(verdict=wanted)
        assert [r["seq"] for r in rows] == sorted(
            (s for s, v in verdicts.items() if v == wanted), reverse=True
        )
    decided = store.listing(decided=True)
    assert [(r["seq"], r["labelled"]["by"]) for r in decided] == [(5, "ben"), (3, "anna")]
    assert decided[1]["labelled"]["note"] == "scratch at the rim"
    assert "note" not in decided[0]["labelled"] and decided[0]["labelled"]["at"] > 0
    assert len(store.listing(decided=False)) == len(results) - 2
    assert len(store.listing(limit=4)) == 4
    assert store.counts() == {"undecided": len(results) - 2, "decided": 2}
    # Read back at start, decisions included.
    again = ReviewStore(Review(), tmp_path / "review")
    assert again.listing(decided=True) == decided


def test_the_policy_keeps_reviews_and_samples_fails_and_passes(tmp_path, results):
    store = ReviewStore(Review(fail_every=2, pass_every=0), tmp_path / "review")
    sink = ReviewSink(store)
    kept = {"pass": 0, "fail": 0, "review": 0}
    for seq in range(60):
        r = _with_seq(results[seq % len(results)], seq)
        before = len(store.items())
        sink.publish(r)
        kept[r.inspection.verdict] += len(store.items()) - before
    verdicts = [results[s % len(results)].inspection.verdict for s in range(60)]
    assert kept["pass"] == 0
    assert kept["review"] == verdicts.count("review")
    assert kept["fail"] == verdicts.count("fail") // 2
    frame = store.root / f"{store.items()[0]:012d}"
    assert {p.name for p in frame.iterdir()} == {"frame.jpg", "heatmap.jpg", "inspection.json"}
    assert json.loads((frame / "inspection.json").read_text())["verdict"] in ("review", "fail")


BAD_LABELS = {
    "no seq or part": ({"label": "good"}, "needs 'seq' or 'part_id'"),
    "bad label": ({"seq": 3, "label": "fine"}, "'label' must be one of: good, defective"),
    "negative seq": ({"seq": -1, "label": "good"}, "'seq' must be"),
    "bool seq": ({"seq": True, "label": "good"}, "'seq' must be"),
    "long by": ({"seq": 1, "label": "good", "by": "x" * 65}, "'by' must be"),
    "long note": ({"seq": 1, "label": "good", "note": "x" * 501}, "'note' must be"),
    "number note": ({"seq": 1, "label": "good", "note": 5}, "'note' must be"),
    "unknown field": ({"seq": 1, "label": "good", "why": "x"}, "unknown field(s): why"),
}


@pytest.mark.parametrize("doc,message", BAD_LABELS.values(), ids=BAD_LABELS.keys())
def test_label_commands_are_checked(doc, message):
    with pytest.raises(
        commands.CommandError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        commands.parse("label", json.dumps(doc).encode())


def test_a_good_label_command_parses():
    cmd = commands.parse("label", b'{"id": "r1", "part_id": "A-17", "label": "defective"}')
    assert cmd.id == "r1" and cmd.part_id == "A-17" and cmd.doc["label"] == "defective"
    cmd = commands.parse("label", b'{"seq": 4, "label": "good", "note": "dust, wiped"}')
    assert cmd.doc["note"] == "dust, wiped"


def test_a_damaged_item_is_dropped_at_start_not_fatal(tmp_path, results):
    store = ReviewStore(Review(), tmp_path / "review")
    store.add(_with_seq(results[0], 1))
    store.add(_with_seq(results[1], 2))
    (tmp_path / "review" / f"{1:012d}" / "inspection.json").write_text("{not json")
    again = ReviewStore(Review(), tmp_path / "review")
    assert again.items() == [2] and again.removed == 1


def test_the_store_leaves_its_reserve_of_the_disk_free(results, small_disk):
    """On a real 8 MiB file system: parts are kept while a quarter stays free, then the oldest
    make room, and with nothing left to give up a new part is skipped, never written."""
    from lineside.daemon.sinks.review import DiskReserve

    store = ReviewStore(Review(reserve_share=0.25), small_disk / "review")
    kept = 0
    for seq in range(400):  # far more than the disk holds
        store.add(_with_seq(results[seq % len(results)], seq))
        kept += 1
    st = os.statvfs(small_disk)
    assert st.f_bavail / st.f_blocks >= 0.25 - 0.02
    assert kept > 10 and store.removed > 0, "the oldest parts made room for newer ones"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * int(st.f_bavail * st.f_frsize * 0.95))
    store._items.clear()  # nothing of its own left to give up
    with pytest.raises(DiskReserve):
        store.add(_with_seq(results[0], 999))
    assert store.skipped == 1
    assert not (small_disk / "review" / f"{999:012d}").exists()
