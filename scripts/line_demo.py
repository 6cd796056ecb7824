"""Run the daemon on a video of parts with an embedded MQTT broker and a live subscriber.

The last step of the README's main job: no camera and no external broker. Mosquitto is used when
it is installed, otherwise the pure-Python amqtt broker. The subscriber prints each verdict as it
arrives over MQTT, and a summary at the end compares them with what was really on the belt.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(kind: str, port: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    log = open(workdir / "broker.log", "wb")  # noqa: SIM115 - lives as long as the broker
    if kind in ("auto", "mosquitto") and mosquitto:
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        proc, name = (
            subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log),
            "mosquitto",
        )
    elif kind == "mosquitto":
        sys.exit("line_demo: mosquitto is not installed")
    else:
        conf = workdir / "amqtt.yaml"
        conf.write_text(
            yaml.safe_dump(
                {
                    "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                    "plugins": {
                        "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                            "allow_anonymous": True
                        }
                    },
                }
            )
        )
        amqtt = Path(sys.executable).with_name("amqtt")
        proc, name = (
            subprocess.Popen([str(amqtt), "-c", str(conf)], stdout=log, stderr=log),
            "amqtt",
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, name
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"line_demo: the {name} broker did not start; see {workdir / 'broker.log'}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--kinds", type=Path, help="JSON list: what part each video frame shows")
    p.add_argument("--out", type=Path, required=True, help="folder for config, logs and outbox")
    p.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    broker, broker_name = start_broker(args.broker, port, args.out)
    print(f"embedded {broker_name} broker on 127.0.0.1:{port}")

    received: list[dict] = []
    statuses: list[str] = []

    def on_message(client, userdata, msg) -> None:
        if msg.topic.endswith("/inspection"):
            doc = json.loads(msg.payload)
            received.append(doc)
            regions = len(doc["regions"])
            print(
                f"  seq {doc['seq']:>4}  {doc['verdict']:<6}  score {doc['score']:.5f}  "
                f"regions {regions}  {doc['latency_ms']['inference']:.1f} ms inference",
                flush=True,
            )
        elif msg.topic.endswith("/status"):
            statuses.append(msg.payload.decode())

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="line-demo-subscriber")
    sub.on_message = on_message
    sub.on_connect = lambda c, u, f, rc, pr: c.subscribe("lineside/demo/#", qos=1)
    sub.connect("127.0.0.1", port)
    sub.loop_start()

    config = args.out / "daemon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "station": "demo",
                "source": {"kind": "video", "path": str(args.video)},
                # The demo's bundle is unsigned and its broker private to this run.
                "model": {
                    "path": str(args.bundle),
                    "store": str(args.out / "bundles"),
                    "allow_unsigned": True,
                },
                "mqtt": {"host": "127.0.0.1", "port": port},
                "outbox": {"path": str(args.out / "outbox.db")},
                "stats": {"interval_s": 2},
            },
            sort_keys=False,
        )
    )
    print(f"lineside-daemon run --config {config} (live verdicts over MQTT below)")
    with open(args.out / "daemon.log", "wb") as log:
        status = subprocess.call(
            [
                sys.executable,
                "-m",
                "lineside.daemon.cli",
                "run",
                "--config",
                str(config),
                "--exit-when-source-ends",
            ],
            stdout=log,
            stderr=log,
        )
    time.sleep(0.5)
    with open(args.out / "received.jsonl", "w") as f:
        f.writelines(json.dumps(d) + "\n" for d in received)
    sub.loop_stop()
    sub.disconnect()
    broker.terminate()
    broker.wait(timeout=10)
    return summarize(received, statuses, status, args)


def summarize(received: list[dict], statuses: list[str], status: int, args) -> int:
    counts = collections.Counter(d["verdict"] for d in received)
    print(f"\ndaemon exit status {status}; status topic went: {' -> '.join(statuses)}")
    print(
        f"{len(received)} inspections over MQTT: "
        + ", ".join(f"{v} {counts[v]}" for v in ("pass", "review", "fail"))
    )
    if args.kinds and received:
        kinds = json.loads(args.kinds.read_text())
        captured = max(d["frame_seq"] for d in received)
        if captured != len(kinds):
            # frame_seq counts decoded frames; if the decoder skipped one, it no longer indexes
            # the video, and a comparison with what was on the belt would be wrong.
            print(
                f"the video decoder delivered {captured} of {len(kinds)} frames: "
                "comparison with the parts on the belt skipped"
            )
        else:
            pairs = [(kinds[d["frame_seq"] - 1], d["verdict"]) for d in received]
            bad = [v for k, v in pairs if k != "good"]
            good = [v for k, v in pairs if k == "good"]
            print(
                f"defective parts caught (review or fail): {sum(v != 'pass' for v in bad)}/"
                f"{len(bad)}; good parts failed: {sum(v == 'fail' for v in good)}/{len(good)}"
            )
    lat = sorted(sum(d["latency_ms"].values()) for d in received)
    if lat:
        print(f"median pipeline latency {lat[len(lat) // 2]:.1f} ms per frame")
    print(f"daemon log: {args.out / 'daemon.log'}")
    return 0 if status == 0 and received else 1


if __name__ == "__main__":
    sys.exit(main())
