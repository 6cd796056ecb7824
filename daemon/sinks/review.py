"""The review queue on the box: parts kept with their frame, heatmap and inspection, for a person
(or a line system, over `cmd/label`) to confirm as good or defective.

Every `review` part is kept, and every Nth `fail` and `pass` as configured. An item is a folder
named after the inspection's seq, written under a temporary name and renamed, so a power cut
leaves whole items or none. The store is bounded by count, bytes and age; the oldest go first and
each removal is counted. It is read back from disk at start, labels included.

The store never takes the last of its disk: it usually shares a file system with the outbox and
the model store, and an outbox that cannot write publishes nothing. Below `reserve_share` of the
file system free, it gives up its oldest parts until the reserve is back, and keeps no new part
while it cannot be (counted in `skipped`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from lineside.daemon import worth_logging
from lineside.daemon.config import Review
from lineside.daemon.core import heatmap
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.mqtt_topics import inspection_doc
from lineside.deploy.contract import EXPORT_FOLDERS, EXPORT_INDEX, LABELS

log = logging.getLogger(__name__)

FRAME, HEATMAP, INSPECTION, LABEL = "frame.jpg", "heatmap.jpg", "inspection.json", "label.json"
FRAME_QUALITY = 95


class DiskReserve(OSError):
    """The disk is short of the room the store must leave free for the outbox."""


def _free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class NotInStore(LookupError):
    """No kept part has that seq or part id (never kept, or removed by the limits)."""


@dataclass
class Item:
    seq: int
    part_id: str | None
    created: float
    size: int
    verdict: str
    score: float
    labelled: dict | None = None  # label, by, at (and note): what a person decided

    def row(self) -> dict:
        """The part as a line of the review queue."""
        return {
            "seq": self.seq,
            "part_id": self.part_id,
            "verdict": self.verdict,
            "score": self.score,
            "kept_at": round(self.created, 3),
            "labelled": self.labelled,
        }


def folder_of(path: Path | None, outbox: Path) -> Path:
    """The configured folder, or `review` beside the outbox."""
    return Path(path) if path is not None else Path(outbox).parent / "review"


class ReviewStore:
    def __init__(self, cfg: Review, root: Path) -> None:
        self.cfg, self.root = cfg, Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._items: OrderedDict[int, Item] = OrderedDict()
        self.removed = 0
        self.failed = 0
        self.skipped = 0  # parts not kept because the disk was short of its reserve
        self._seen = {"pass": 0, "fail": 0}
        self._scan()

    def _scan(self) -> None:
        """Items left by an earlier run, oldest first; unfinished ones are removed."""
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        found = []
        for d in self.root.iterdir():
            if not (d.is_dir() and d.name.isdigit() and (d / INSPECTION).is_file()):
                continue
            try:
                doc = self.read(int(d.name))
                size = sum(f.stat().st_size for f in d.iterdir())
                created = (d / INSPECTION).stat().st_mtime
                item = Item(
                    int(d.name),
                    doc.get("part_id"),
                    created,
                    size,
                    doc["verdict"],
                    float(doc["score"]),
                    doc.get("labelled"),
                )
            except (OSError, ValueError, KeyError) as exc:  # damaged on disk: dropped
                log.warning("review store: removing unreadable item %s (%s)", d.name, exc)
                shutil.rmtree(d, ignore_errors=True)
                self.removed += 1
                continue
            found.append(item)
        for item in sorted(found, key=lambda i: i.seq):
            self._items[item.seq] = item

    def wants(self, verdict: str) -> bool:
        if verdict == "review":
            return True
        every = {"fail": self.cfg.fail_every, "pass": self.cfg.pass_every}[verdict]
        if not every:
            return False
        self._seen[verdict] += 1
        return self._seen[verdict] % every == 0

    def add(self, result: Result) -> None:
        """Keep the part; raises OSError when it cannot be written, DiskReserve when the disk
        is short of room to keep it."""
        insp, frame = result.inspection, result.frame
        threshold = result.bundle.manifest.postprocess.pixel_threshold
        files = {
            FRAME: heatmap.encode_jpeg(frame.image, FRAME_QUALITY),
            HEATMAP: heatmap.encode_jpeg(heatmap.render(frame.image, insp, threshold), 85),
            INSPECTION: json.dumps(
                inspection_doc(
                    insp, result.seq, frame, result.part_id, result.bundle, result.station
                )
            ).encode(),
        }
        size = sum(map(len, files.values()))
        if not self._make_room(size):
            self.skipped += 1
            raise DiskReserve(f"under {self.cfg.reserve_share:.0%} of the disk free")
        final = self.root / f"{result.seq:012d}"
        tmp = self.root / f".tmp-{result.seq}"
        try:
            tmp.mkdir(exist_ok=True)
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            shutil.rmtree(final, ignore_errors=True)  # a seq seen again after a restored outbox
            tmp.rename(final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk leaves no half item behind
            raise
        created = (final / INSPECTION).stat().st_mtime  # as read back at the next start
        item = Item(result.seq, result.part_id, created, size, insp.verdict, float(insp.score))
        with self._lock:
            self._items[result.seq] = item
            self._enforce()

    def _make_room(self, size: int) -> bool:
        """Give up the oldest parts until `size` more bytes leave the reserve free."""
        with self._lock:
            while _free(self.root) - size < self._reserve():
                if not self._items:
                    return False
                seq, _ = self._items.popitem(last=False)
                shutil.rmtree(self.root / f"{seq:012d}", ignore_errors=True)
                self.removed += 1
            return True

    def _reserve(self) -> int:
        st = os.statvfs(self.root)
        return int(self.cfg.reserve_share * st.f_blocks * st.f_frsize)

    def _enforce(self) -> None:
        """Oldest first, until count, bytes and age are within the limits."""
        oldest_allowed = time.time() - self.cfg.max_age_days * 86400
        total = sum(i.size for i in self._items.values())
        while self._items:
            seq, item = next(iter(self._items.items()))
            over = (
                len(self._items) > self.cfg.max_items
                or total > self.cfg.max_bytes
                or item.created < oldest_allowed
            )
            if not over:
                return
            self._items.pop(seq)
            total -= item.size
            shutil.rmtree(self.root / f"{seq:012d}", ignore_errors=True)
            self.removed += 1

    def find(self, seq: int | None = None, part_id: str | None = None) -> int:
        with self._lock:
            if seq is not None and seq in self._items:
                return seq
            if part_id is not None:
                for s in reversed(self._items):
                    if self._items[s].part_id == part_id:
                        return s
        wanted = f"seq {seq}" if seq is not None else f"part_id {part_id!r}"
        raise NotInStore(f"no kept part with {wanted} (never kept, or removed by the limits)")

    def label(self, seq: int, label: str, by: str | None, note: str | None = None) -> dict:
        """Record a person's (or a line system's) decision; returns the inspection with it."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}")
        folder = self.root / f"{seq:012d}"
        doc = {"label": label, "by": by, "at": round(time.time(), 3)}
        if note:
            doc["note"] = note
        tmp = folder / f".{LABEL}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(folder / LABEL)
        with self._lock:
            if seq in self._items:
                self._items[seq].labelled = doc
        return {**self.read(seq), **doc}

    def listing(
        self, verdict: str | None = None, decided: bool | None = None, limit: int = 60
    ) -> list[dict]:
        """The kept parts, newest first, of a verdict and decided or not (None: any)."""
        rows = []
        with self._lock:
            for item in reversed(self._items.values()):
                if verdict is not None and item.verdict != verdict:
                    continue
                if decided is not None and (item.labelled is not None) != decided:
                    continue
                rows.append(item.row())
                if len(rows) == limit:
                    break
        return rows

    def counts(self) -> dict[str, int]:
        """How many kept parts wait for a decision, and how many were decided."""
        with self._lock:
            decided = sum(1 for i in self._items.values() if i.labelled is not None)
            return {"undecided": len(self._items) - decided, "decided": decided}

    def read(self, seq: int) -> dict:
        folder = self.root / f"{seq:012d}"
        doc = json.loads((folder / INSPECTION).read_text())
        if (folder / LABEL).is_file():
            doc["labelled"] = json.loads((folder / LABEL).read_text())
        return doc

    def export(self, station: str, max_bytes: int) -> tuple[bytes, dict]:
        """The labelled parts as a zip in the trainer's layout (good parts in train/good,
        confirmed defects in defective/), newest first up to `max_bytes`; and a summary."""
        index, total, left_out = [], 0, 0
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for seq in reversed(self.items()):
                folder = self.root / f"{seq:012d}"
                if not (folder / LABEL).is_file():
                    continue
                doc = self.read(seq)
                frame = (folder / FRAME).read_bytes()
                if total + len(frame) > max_bytes:
                    left_out += 1
                    continue
                label = doc["labelled"]["label"]
                name = f"{EXPORT_FOLDERS[label]}/{station}-{seq}.jpg"
                zf.writestr(name, frame)
                total += len(frame)
                index.append(
                    {
                        "file": name,
                        "seq": seq,
                        "part_id": doc.get("part_id"),
                        "verdict": doc["verdict"],
                        "score": doc["score"],
                        "model": doc.get("model"),
                        **doc["labelled"],
                    }
                )
            zf.writestr(EXPORT_INDEX, json.dumps({"station": station, "parts": index}, indent=1))
        data = buf.getvalue()
        counts = {label: sum(1 for i in index if i["label"] == label) for label in LABELS}
        summary = {
            **counts,
            "left_out": left_out,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        return data, summary

    def items(self) -> list[int]:
        with self._lock:
            return list(self._items)

    def size(self) -> tuple[int, int]:
        with self._lock:
            return len(self._items), sum(i.size for i in self._items.values())


class ReviewSink:
    """Keeps the parts the policy wants; behind a queue, so disk writes never stall frames."""

    def __init__(self, store: ReviewStore) -> None:
        self.store = store

    def start(self) -> None:
        """The store was read from disk when it was opened."""

    def publish(self, result: Result) -> None:
        if not self.store.wants(result.inspection.verdict):
            return
        try:
            self.store.add(result)
        except DiskReserve as exc:
            if worth_logging(self.store.skipped):
                log.warning("review store: part %d not kept (%s)", result.seq, exc)
        except OSError as exc:
            self.store.failed += 1
            if worth_logging(self.store.failed):
                log.warning("review store: cannot keep part %d (%s)", result.seq, exc)

    def close(self) -> None:
        """Items are complete on disk as soon as they are added."""
