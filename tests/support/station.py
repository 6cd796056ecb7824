"""Talking to a station in tests: its replies, and the proof that it still serves."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"


def replies(rec: Recorder, command: str | None = None) -> list[dict]:
    docs = [json.loads(m.payload) for m in rec.on("reply")]
    return [d for d in docs if command is None or d["command"] == command]


def reply_to(rec: Recorder, request_id: str, timeout: float = 20) -> dict:
    rec.wait_for(
        lambda: any(d["id"] == request_id for d in replies(rec)), timeout, f"reply {request_id}"
    )
    return next(d for d in replies(rec) if d["id"] == request_id)


def still_serving(rec: Recorder, timeout: float = 30) -> None:
    """The link is alive: a command is answered and new inspections keep arriving."""
    before = len(rec.on("inspection"))
    rec.publish(f"{PREFIX}/cmd/trigger", json.dumps({"id": "alive"}).encode())
    doc = reply_to(rec, "alive", timeout)
    assert doc["ok"] is False and "not 'mqtt'" in doc["error"]
    rec.wait_for(lambda: len(rec.on("inspection")) >= before + 3, timeout, "more inspections")
    rec.client.publish(f"{PREFIX}/cmd/trigger", b"", qos=1).wait_for_publish(5)


def deploy(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`lineside-deploy ARGS` as a process."""
    return subprocess.run(
        [sys.executable, "-m", "lineside.deploy.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
