"""A fleet on one broker: 20 real stations, every result arrives, a push reaches all of them, a
bad bundle is refused by all of them, and a broker restart loses nothing."""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict

from lineside.deploy import signing
from tests.support import bundles as kit
from tests.support import fleet
from tests.support.mqtt_client import Recorder
from tests.support.station import deploy

N = 20


def _seqs(rec: Recorder) -> dict[str, list[int]]:
    out = defaultdict(list)
    with rec._lock:
        msgs = [m for m in rec.messages if m.topic.endswith("/inspection")]
    for m in msgs:
        out[m.topic.split("/")[1]].append(json.loads(m.payload)["seq"])
    return out


def _table(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines()[1:] if line.strip()}


def test_twenty_stations_on_one_broker(tmp_path, broker, bundle_path, station_keys, parts_video):
    key, trusted = station_keys
    v1 = tmp_path / "v1.lsb"
    v1.write_bytes(kit.with_version(bundle_path.read_bytes(), "v1", key))
    rec = Recorder(broker.port, "lineside/#", "fleet")
    procs = fleet.start(N, broker.port, tmp_path / "fleet", v1, parts_video, fps=1, trusted=trusted)
    names = set(procs)
    host = f"127.0.0.1:{broker.port}"
    try:
        rec.wait_for(lambda: names <= set(_seqs(rec)), 240, "results from all 20 stations")

        status = deploy("status", "--broker", host)
        table = _table(status.stdout)
        assert names <= set(table) and all(table[n][1] == "online" for n in names), status.stdout

        v2 = tmp_path / "v2.lsb"
        v2.write_bytes(kit.with_version(bundle_path.read_bytes(), "v2", key))
        run = deploy("push", str(v2), "--broker", host, "--all", "--timeout", "180", timeout=240)
        rows = _table(run.stdout)
        assert run.returncode == 0, run.stdout + run.stderr
        assert all(rows[n][1:4] == ["v1", "v2", "ok"] for n in names), run.stdout

        # Signed by nobody the stations trust: every one refuses it and keeps v2.
        rogue = tmp_path / "rogue.lsb"
        rogue_key = signing.load_private(signing.generate(tmp_path / "rogue", "rogue")[0])
        rogue.write_bytes(kit.with_version(bundle_path.read_bytes(), "v3", rogue_key))
        run = deploy("push", str(rogue), "--broker", host, "--all", "--timeout", "120")
        rows = _table(run.stdout)
        assert run.returncode == 1
        assert all(rows[n][3] != "ok" for n in names), run.stdout
        status = _table(deploy("status", "--broker", host).stdout)
        assert all(status[n][3] == "v2" for n in names), status

        before = {n: max(s) for n, s in _seqs(rec).items()}
        broker.stop(signal.SIGTERM)
        time.sleep(5)
        broker.start()
        rec.wait_for(
            lambda: all(max(_seqs(rec)[n]) >= before[n] + 5 for n in names),
            180,
            "every station delivering again after the broker restart",
        )
    finally:
        codes = fleet.stop(procs)
    assert set(codes.values()) == {0}, codes
    time.sleep(2)
    for name, seqs in _seqs(rec).items():
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == list(range(first_seen[0], first_seen[-1] + 1)), f"{name} lost some"
    rec.close()
