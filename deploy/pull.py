"""`lineside-deploy pull`: the parts a station's operators labelled, as a dataset folder.

The station answers `cmd/export` with a zip on its `export` topic and a reply naming the zip's
SHA-256 and counts. The zip is checked (hash, member names) before anything is written: good parts
go to OUT/train/good, confirmed defects to OUT/defective (for `lineside-train fit --val-defects`),
and OUT/labels-<station>.json lists every part with its label, who gave it, the verdict and score.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from lineside.deploy import contract
from lineside.deploy.push import Line, PushError

MAX_EXPORT_BYTES = 64 * 1024 * 1024


def _members_ok(zf: zipfile.ZipFile) -> None:
    """Only the export's own layout: no paths out of OUT, nothing else."""
    allowed = set(contract.EXPORT_FOLDERS.values())
    for name in zf.namelist():
        path = PurePosixPath(name)
        if name == contract.EXPORT_INDEX:
            continue
        if str(path.parent) not in allowed or path.suffix != ".jpg" or ".." in path.parts:
            raise PushError(f"the export holds an unexpected file: {name[:100]}")


def pull(line: Line, station: str, out: Path, timeout_s: float) -> dict:
    """Ask `station` for its labelled parts and write them under `out`; returns the counts."""
    got: dict[str, bytes] = {}
    arrived = threading.Event()
    export_topic = contract.topic(line.prefix, station, "export")

    def on_export(client, userdata, msg) -> None:
        got["data"] = bytes(msg.payload)
        arrived.set()

    line.client.message_callback_add(export_topic, on_export)
    line.client.subscribe(export_topic, qos=1)
    time.sleep(0.5)  # the subscription is in place before the station is asked
    request = uuid.uuid4().hex[:12]
    line.send(station, "export", json.dumps({"id": request}).encode())
    line.wait_replies([station], lambda r: r.get("id") == request, timeout_s)
    reply = line.stations[station].reply
    if reply is None or reply.get("id") != request:
        raise PushError(f"{station}: no answer to the export within {timeout_s:.0f} s")
    if not reply.get("ok"):
        raise PushError(f"{station}: export refused: {reply.get('error')}")
    if not arrived.wait(timeout_s):
        raise PushError(f"{station}: the export did not arrive within {timeout_s:.0f} s")
    data = got["data"]
    if len(data) > MAX_EXPORT_BYTES or hashlib.sha256(data).hexdigest() != reply["sha256"]:
        raise PushError(f"{station}: the export does not match the station's reply")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        _members_ok(zf)
        index = json.loads(zf.read(contract.EXPORT_INDEX))
        for name in zf.namelist():
            target = out / (f"labels-{station}.json" if name == contract.EXPORT_INDEX else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    return {
        "station": station,
        **{label: reply[label] for label in contract.LABELS},
        "left_out": reply["left_out"],
        "parts": len(index["parts"]),
    }
