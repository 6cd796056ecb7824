"""A fleet on one broker: what N stations cost Mosquitto, and how many messages it carries.

    .venv/bin/python benchmarks/fleet.py BUNDLE.lsb [--stations 20] [--fps 2] [--seconds 60]

Starts a Mosquitto on loopback and N real `lineside-daemon run` processes (unsigned bundles
allowed, a synthetic parts video at --fps), waits until every station delivers, then measures for
--seconds: messages per second through the broker (a subscriber on `#` counts them, by topic
kind), the broker's CPU (its /proc utime + stime over the window) and resident memory. The
stations share this machine's cores, so their CPU is printed too: on a plant network each runs on
its own box.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, parts_video
from tests.support import fleet
from tests.support.broker import Broker
from tests.support.mqtt_client import Recorder

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--stations", type=int, default=20)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = parts_video(work)
        broker = Broker(work)
        broker.start()
        rec = Recorder(broker.port, "#", "fleet-bench", clean=True)
        procs = fleet.start(
            args.stations, broker.port, work / "fleet", args.bundle, video, args.fps
        )
        try:
            names = set(procs)
            print(f"starting {len(names)} stations at {args.fps} fps each ...", flush=True)
            t0 = time.monotonic()
            rec.wait_for(
                lambda: names <= {m.topic.split("/")[1] for m in rec.on("inspection")},
                600,
                "every station delivering",
            )
            print(f"all delivering after {time.monotonic() - t0:.0f} s", flush=True)
            n0, b0 = len(rec.messages), cpu_seconds(broker.proc.pid)
            s0 = sum(cpu_seconds(pr.pid) for pr in procs.values())
            t0 = time.monotonic()
            time.sleep(args.seconds)
            span = time.monotonic() - t0
            window = rec.messages[n0:]
            broker_cpu = (cpu_seconds(broker.proc.pid) - b0) / span
            stations_cpu = (sum(cpu_seconds(pr.pid) for pr in procs.values()) - s0) / span
            kinds = Counter(m.topic.split("/", 2)[-1] for m in window)
            volume = sum(len(m.payload) for m in window)
            print(f"\n{len(names)} stations, {span:.0f} s window")
            print(
                f"messages through the broker: {len(window) / span:.1f}/s "
                f"({volume / span / 1024:.1f} KiB/s)"
            )
            for kind, count in kinds.most_common():
                print(f"  {kind:<12} {count / span:7.1f}/s")
            print(
                f"broker CPU: {100 * broker_cpu:.1f}% of one core, "
                f"{rss_mb(broker.proc.pid):.1f} MB resident"
            )
            print(
                f"stations CPU (all {len(names)} on this machine): "
                f"{100 * stations_cpu:.0f}% of one core"
            )
        finally:
            fleet.stop(procs)
            rec.close()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
