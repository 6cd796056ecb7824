"""A long soak: one station as a plant runs it, sampled every minute for hours.

    .venv/bin/python benchmarks/soak.py BUNDLE.lsb [--hours 2] [--fps 5] [--out out/soak]

Runs `lineside-daemon run` on a looped synthetic parts video at the camera's pace, publishing to
a real Mosquitto on loopback, with the operator's page open (a client following its events and
fetching each live image, as the page does) and a review queue kept small so it fills to its
limits and rotates. Every --restart-min the broker is stopped for 5 s and started again; every
--push-min, halfway between two restarts, a signed bundle (the same weights, a new version) is
pushed with `lineside-deploy push`. Every --sample-s the daemon's resident memory, open file
descriptors, threads, outbox depth and review store size are written to `soak.csv`; at the end
`soak.png` plots them and the inspections received over MQTT are checked against the sequence
numbers made: lost, repeated.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, maintenance_keys, parts_video
from benchmarks.page import TOKEN, _client
from tests.support import bundles as kit
from tests.support.broker import Broker, free_port
from tests.support.daemon import DaemonProcess, write_config
from tests.support.mqtt_client import Recorder
from tests.support.station import deploy

STATION = "soak"
COLUMNS = ["minutes", "rss_mb", "fds", "threads", "outbox_rows", "review_items", "review_mb"]


def _config(
    work: Path, bundle: Path, video: Path, fps: float, broker: int, trusted: Path
) -> tuple[Path, int]:
    """The station's configuration file, and the port its page is served on."""
    (work / "token").write_text(TOKEN)
    page = free_port()
    path = write_config(
        work / "soak.yaml",
        station=STATION,
        source={"kind": "video", "path": str(video), "loop": True, "fps": fps},
        model={"path": str(bundle), "store": str(work / "store"), "trusted_keys": str(trusted)},
        mqtt={"host": "127.0.0.1", "port": broker, "keepalive_s": 5},
        outbox={"path": str(work / "outbox.db")},
        review={"path": str(work / "review"), "max_items": 200, "pass_every": 1},
        ui={"port": page, "token_file": str(work / "token")},
        stats={"interval_s": 30},
    )
    return path, page


def _outbox_rows(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    except sqlite3.Error:
        return -1


def _review(folder: Path) -> tuple[int, float]:
    """Parts kept and their size; the store rotates as it is read, so vanished files are
    skipped (os.walk passes over folders removed under it)."""
    items, size = 0, 0
    for here, _, files in os.walk(folder):
        items += Path(here) != folder and bool(files)
        for name in files:
            try:
                size += os.stat(os.path.join(here, name)).st_size
            except FileNotFoundError:
                continue
    return items, size / 1e6


def _sample(daemon: DaemonProcess, work: Path, started: float) -> dict:
    items, size = _review(work / "review")
    return {
        "minutes": round((time.monotonic() - started) / 60, 2),
        "rss_mb": round(daemon.rss_mb(), 1),
        "fds": daemon.fds(),
        "threads": daemon.threads(),
        "outbox_rows": _outbox_rows(work / "outbox.db"),
        "review_items": items,
        "review_mb": round(size, 1),
    }


def _push(work: Path, bundle: Path, key, version: str, port: int) -> str:
    pushed = work / f"{version}.lsb"
    pushed.write_bytes(kit.with_version(bundle.read_bytes(), version, key))
    run = deploy("push", str(pushed), "--broker", f"127.0.0.1:{port}", "--station", STATION)
    pushed.unlink()
    return "ok" if run.returncode == 0 else (run.stdout + run.stderr).strip()[-200:]


def _made(outbox: Path) -> int:
    """How many inspections were made: the outbox's sequence counter, saved at a clean stop."""
    with sqlite3.connect(outbox) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]


def _seqs(rec: Recorder) -> list[int]:
    with rec._lock:
        return [json.loads(m.payload)["seq"] for m in rec.messages]


def _plot(rows: list[dict], events: list[tuple[float, str]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [r["minutes"] / 60 for r in rows]
    panels = [
        ("resident memory (MB)", ["rss_mb"]),
        ("open fds, threads", ["fds", "threads"]),
        ("outbox rows", ["outbox_rows"]),
        ("review store (items, MB)", ["review_items", "review_mb"]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 9), sharex=True)
    for ax, (label, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(hours, [r[key] for r in rows], label=key)
        for at, kind in events:
            ax.axvline(at / 60, color="tab:green" if kind == "push" else "0.7", lw=0.8, ls=":")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        if len(keys) > 1:
            ax.legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel("hours (grey: broker restart, green: bundle pushed)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _soak(args, work: Path, daemon: DaemonProcess, broker: Broker, key):
    """Sample, restart the broker and push bundles on schedule until the time is up."""
    started = time.monotonic()
    rows: list[dict] = []
    events: list[tuple[float, str]] = []
    pushes: list[str] = []
    next_sample = 0.0
    # Pushes fall halfway between broker restarts: a push to a station that is still
    # reconnecting is refused by lineside-deploy (the station is offline), as it should be.
    next_restart = args.restart_min * 60
    next_push = args.push_min * 60 - args.restart_min * 30
    with open(work / "soak.csv", "w", newline="") as out:
        table = csv.DictWriter(out, COLUMNS)
        table.writeheader()
        while (now := time.monotonic() - started) < args.hours * 3600:
            if now >= next_sample:
                rows.append(_sample(daemon, work, started))
                table.writerow(rows[-1])
                out.flush()
                print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
                next_sample += args.sample_s
            if now >= next_restart:
                events.append((now / 60, "restart"))
                broker.stop(signal.SIGTERM)
                time.sleep(5)
                broker.start()
                next_restart += args.restart_min * 60
            if now >= next_push:
                events.append((now / 60, "push"))
                pushes.append(_push(work, args.bundle, key, f"soak-{len(pushes) + 2}", broker.port))
                print(f"push {len(pushes)}: {pushes[-1]}", flush=True)
                next_push += args.push_min * 60
            time.sleep(1)
        rows.append(_sample(daemon, work, started))
        table.writerow(rows[-1])
    return rows, events, pushes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--fps", type=float, default=5.0, help="the camera's pace")
    p.add_argument("--restart-min", type=float, default=30.0)
    p.add_argument("--push-min", type=float, default=60.0)
    p.add_argument("--sample-s", type=float, default=60.0)
    p.add_argument("--out", type=Path, default=Path("out/soak"))
    args = p.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} is not empty")
    work = args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    key, trusted = maintenance_keys(work)
    v1 = work / "v1.lsb"
    v1.write_bytes(kit.with_version(args.bundle.read_bytes(), "soak-1", key))
    (work / "broker").mkdir()
    broker = Broker(work / "broker")
    broker.start()
    rec = Recorder(broker.port, f"lineside/{STATION}/inspection", "soak")
    config, page = _config(work, v1, parts_video(work), args.fps, broker.port, trusted)
    daemon = DaemonProcess(config, work / "daemon.log")
    stop = threading.Event()
    shown = [0]
    threading.Thread(target=_client, args=(page, stop, shown), daemon=True).start()
    try:
        rows, events, pushes = _soak(args, work, daemon, broker, key)
    except BaseException:
        broker.stop(signal.SIGTERM)
        raise
    finally:
        stop.set()
        # The daemon may have ended by itself: that is its exit status, not a stop's.
        status = daemon.terminate(30)[0] if daemon.proc.poll() is None else daemon.wait(1)
    made = _made(work / "outbox.db")
    rec.wait_for(lambda: len(set(_seqs(rec))) >= made, 60, "every inspection made")
    seqs = _seqs(rec)
    lost = sorted(set(range(made)) - set(seqs))
    summary = {
        "hours": round(rows[-1]["minutes"] / 60, 2),
        "fps": args.fps,
        "inspections_made": made,
        "received": len(set(seqs)),
        "lost": len(lost),
        "repeated": len(seqs) - len(set(seqs)),
        "broker_restarts": sum(1 for _, k in events if k == "restart"),
        "pushes": pushes,
        "live_images_shown": shown[0],
        "exit_status": status,
        "first": rows[1] if len(rows) > 1 else rows[0],
        "last": rows[-1],
        "max": {k: max(r[k] for r in rows) for k in COLUMNS[1:]},
    }
    (work / "soak.json").write_text(json.dumps(summary, indent=2))
    title = (
        f"{summary['hours']} h at {args.fps} fps: {made} inspections, {len(lost)} lost, "
        f"{summary['broker_restarts']} broker restarts, {len(pushes)} pushes"
    )
    _plot(rows, events, work / "soak.png", title)
    print(json.dumps(summary, indent=2))
    rec.close()
    broker.stop(signal.SIGTERM)
    return 0 if not lost and status == 0 and all(x == "ok" for x in pushes) else 1


if __name__ == "__main__":
    sys.exit(main())
