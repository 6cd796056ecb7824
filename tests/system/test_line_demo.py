"""The README's last demo step: daemon, embedded pure-Python broker, live subscriber, summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_line_demo_with_embedded_amqtt_broker(tmp_path, bundle_path):
    from lineside.trainer.synth import write_video

    video, kinds = tmp_path / "parts.avi", tmp_path / "kinds.json"
    kinds.write_text(json.dumps(write_video(video, seed=5, frames=16, fps=10, defect_every=4)))
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "line_demo.py"),
            "--bundle",
            str(bundle_path),
            "--video",
            str(video),
            "--kinds",
            str(kinds),
            "--out",
            str(tmp_path / "line"),
            "--broker",
            "amqtt",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "embedded amqtt broker" in run.stdout
    received = [json.loads(line) for line in (tmp_path / "line" / "received.jsonl").open()]
    # Paced at 10 fps and inspected in a few ms, a frame is rarely replaced before use.
    assert len(received) >= 14 and f"{len(received)} inspections over MQTT" in run.stdout
    assert "status topic went: online -> stopped" in run.stdout
    assert (
        "defective parts caught (review or fail): " in run.stdout
        or "comparison with the parts on the belt skipped" in run.stdout
    )
