"""Does an open page slow inspection? The daemon flat out, without and with a page open.

    .venv/bin/python benchmarks/page.py BUNDLE.lsb [--seconds 60] [--threads 2]

Runs `lineside-daemon run` on a synthetic parts video read as fast as the box decodes it (no
broker needed: results wait in the outbox), once with no `ui:` section and once with the page
served and one client doing what the page does: following the server-sent events, fetching
the rendered live image at every new inspection it is shown, and listing the review queue every
3 s. The inspected frames per second
are the median of the daemon's own `stats` over the run, after a warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, parts_video
from tests.support.broker import free_port

TOKEN = "benchmark-token-0123456789"
FPS = re.compile(r"stats: camera \w+, ([\d.]+) fps inspected")


def run(bundle: Path, video: Path, work: Path, seconds: float, threads: int, page: bool):
    port = free_port()
    cfg = {
        "station": "bench",
        "source": {"kind": "video", "path": str(video), "loop": True, "fps": 1000},
        "model": {"path": str(bundle), "store": str(work / "store"), "allow_unsigned": True},
        "mqtt": {"host": "127.0.0.1", "port": free_port()},
        "outbox": {"path": str(work / f"outbox-{page}.db")},
        "stats": {"interval_s": 2},
        "threads": threads,
    }
    if page:
        (work / "token").write_text(TOKEN)
        cfg["ui"] = {"port": port, "token_file": str(work / "token")}
    (work / "c.yaml").write_text(yaml.safe_dump(cfg))
    log = work / f"daemon-{page}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lineside.daemon.cli", "run", "--config", str(work / "c.yaml")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    shown = [0]
    stop = threading.Event()
    if page:
        threading.Thread(target=_client, args=(port, stop, shown), daemon=True).start()
        threading.Thread(target=_queue, args=(port, stop), daemon=True).start()
    time.sleep(seconds)
    stop.set()
    proc.terminate()
    proc.wait(30)
    rates = [float(x) for x in FPS.findall(log.read_text())][3:]  # after a warm-up
    return statistics.median(rates), len(rates), shown[0]


def _client(port: int, stop: threading.Event, shown: list[int]) -> None:
    """What the page does: follow /events, fetch /live.jpg for each new part it is shown."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{port}"
    while not stop.is_set():
        try:
            req = urllib.request.Request(f"{base}/events", headers=headers)
            with urllib.request.urlopen(req, timeout=10) as events:
                last = None
                for line in events:
                    if stop.is_set():
                        return
                    if not line.startswith(b"data: "):
                        continue
                    seq = json.loads(line[6:])["seq"]
                    if seq != last:
                        image = urllib.request.Request(
                            f"{base}/live.jpg?seq={seq}", headers=headers
                        )
                        urllib.request.urlopen(image, timeout=10).read()
                        shown[0] += 1
                        last = seq
        except OSError:
            time.sleep(0.5)  # the page is not up yet


def _queue(port: int, stop: threading.Event) -> None:
    """What the page's review queue does: list the parts to decide every 3 s."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/review?decided=no",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    while not stop.wait(3.0):
        with contextlib.suppress(OSError):  # the page is not up yet
            urllib.request.urlopen(request, timeout=10).read()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = parts_video(work)
        without, n0, _ = run(args.bundle, video, work, args.seconds, args.threads, page=False)
        with_page, n1, shown = run(args.bundle, video, work, args.seconds, args.threads, page=True)
    print(f"inspected frames/s, median of {n0} stats windows, no page:  {without:.1f}")
    print(
        f"inspected frames/s, median of {n1} stats windows, page open: {with_page:.1f} "
        f"({shown} live images rendered for the page)"
    )
    print(f"with the page open: {100 * with_page / without:.0f}% of the rate without it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
