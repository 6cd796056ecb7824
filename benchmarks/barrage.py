"""Resident memory of a station under barrages of hostile commands.

    .venv/bin/python benchmarks/barrage.py BUNDLE.lsb [--pushes 0] [--barrages 5] [--fps 5]

Starts a Mosquitto on loopback and `lineside-daemon run` on a looped synthetic parts video with
BUNDLE signed by a fresh trusted key, waits for it to settle, then sends the barrage of
`tests/support/barrage.py` (290 hostile commands, 16 of them bad bundles) --barrages times,
waiting after each until every command is answered; first, --pushes good bundles (the same
weights, new versions), each swapped in. Prints the daemon's resident memory before, after each
push (8 s later) and after each barrage (once answered, and 8 s later).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, maintenance_keys, parts_video
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from tests.support import barrage
from tests.support import bundles as kit
from tests.support.broker import Broker
from tests.support.daemon import DaemonProcess, write_config
from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--pushes", type=int, default=0)
    p.add_argument("--barrages", type=int, default=5)
    p.add_argument("--fps", type=float, default=5.0)
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key, trusted = maintenance_keys(work)
        rogue = signing.load_private(signing.generate(work / "rogue", "rogue")[0])
        good = bundles.sign(args.bundle.read_bytes(), key)
        (work / "good.lsb").write_bytes(good)
        (work / "broker").mkdir()
        broker = Broker(work / "broker")
        broker.start()
        config = write_config(
            work / "c.yaml",
            station="cell-1",
            source={"kind": "video", "path": str(parts_video(work)), "loop": True, "fps": args.fps},
            model={
                "path": str(work / "good.lsb"),
                "store": str(work / "store"),
                "trusted_keys": str(trusted),
            },
            mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
            outbox={"path": str(work / "outbox.db")},
        )
        daemon = DaemonProcess(config, work / "daemon.log")
        rec = Recorder(broker.port, f"{PREFIX}/#", "barrage")
        try:
            rec.wait_for(lambda: len(rec.on("inspection")) > 20, 120, "inspections")
            time.sleep(10)
            print(f"before: {daemon.rss_mb():.0f} MB resident")
            for i in range(args.pushes):
                answered = len(rec.on("reply"))
                data = kit.with_version(good, f"pushed-{i + 1}", key)
                rec.client.publish(f"{PREFIX}/cmd/model", data, qos=1)
                rec.wait_for(lambda n=answered: len(rec.on("reply")) > n, 120, "the push answered")
                reply = json.loads(rec.on("reply")[-1].payload)
                time.sleep(8)
                print(f"push {i + 1}: ok={reply['ok']}; {daemon.rss_mb():.0f} MB resident")
            commands = barrage.commands(good, key, rogue)
            for i in range(args.barrages):
                answered = len(rec.on("reply"))
                for name, payload in commands:
                    rec.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1)
                rec.wait_for(
                    lambda n=answered: len(rec.on("reply")) >= n + len(commands), 300, "replies"
                )
                at_once = daemon.rss_mb()
                time.sleep(8)
                print(
                    f"barrage {i + 1}: {len(commands)} answered; {at_once:.0f} MB resident, "
                    f"{daemon.rss_mb():.0f} MB 8 s later"
                )
            obeyed = sum(json.loads(m.payload)["ok"] for m in rec.on("reply")) - args.pushes
            print(f"commands obeyed: {obeyed} (every one should be refused)")
        finally:
            daemon.terminate()
            rec.close()
            broker.stop(signal.SIGTERM)
    return 0 if obeyed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
