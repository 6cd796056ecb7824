"""One owner of the station's counts: after a reload mid-run, `stats` (and the Home Assistant
entities made from it), Sparkplug B, OPC UA and the operator's page all report the same counts,
the parts inspected before the reload included."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from tests.support.broker import free_port
from tests.support.mqtt_client import Recorder
from tests.support.sparkplug_host import decode, payload_class, value_of
from tests.support.station import PREFIX, replies, reply_to
from tests.system.test_opcua import _client, _variables, certs, server_section  # noqa: F401 (a fixture)

VERDICTS = ("pass", "review", "fail")
TOKEN = "counts-agree-token-0123456789"


def _trigger(rec: Recorder, n: int, tag: str) -> list[str]:
    verdicts = []
    for i in range(n):
        rec.publish(f"{PREFIX}/cmd/trigger", json.dumps({"id": f"{tag}{i}"}).encode())
        doc = reply_to(rec, f"{tag}{i}", 30)
        assert doc["ok"], doc
        verdicts.append(doc["verdict"])
    return verdicts


def _stats(rec: Recorder) -> dict:
    return json.loads(rec.on("stats")[-1].payload)


def _sparkplug_counts(payload_cls, rec: Recorder) -> dict[str, int]:
    """The latest Counts/* of the device, aliases taken from the birth before each data."""
    with rec._lock:
        msgs = [decode(payload_cls, m.topic, m.payload) for m in rec.messages]
    names: dict[int, str] = {}
    latest: dict[str, int] = {}
    for m in msgs:
        if m.kind == "DBIRTH":
            names = {x.alias: x.name for x in m.payload.metrics}
        if m.kind in ("DBIRTH", "DDATA"):
            for x in m.payload.metrics:
                name = x.name or names.get(x.alias, "")
                if name.startswith("Counts/"):
                    latest[name.removeprefix("Counts/").lower()] = value_of(x)
    return latest


async def _opcua_counts(url: str, certs) -> dict[str, int]:  # noqa: F811
    async with await _client(url, certs["scada"], certs["server"][0]) as client:
        nodes = await _variables(client)
        return {v: await nodes[f"Counts/{v.capitalize()}"].read_value() for v in VERDICTS}


def _page_counts(port: int) -> dict[str, int]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/state", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["counts"]


def test_every_plant_system_reports_the_same_counts_across_a_reload(
    tmp_path,
    broker,
    start_daemon,
    parts_video,
    certs,  # noqa: F811
):
    payload_cls = payload_class(tmp_path)
    rec = Recorder(broker.port, f"{PREFIX}/#", "counts")
    spb = Recorder(broker.port, "spBv1.0/#", "counts-spb")
    (tmp_path / "token").write_text(TOKEN)
    page, opc = free_port(), free_port()
    url = f"opc.tcp://127.0.0.1:{opc}/lineside/"
    start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 10},
        trigger={"mode": "mqtt"},
        sparkplug={"group_id": "plant", "health_interval_s": 0.5},
        opcua=server_section(url, certs),
        ui={"port": page, "token_file": str(tmp_path / "token")},
    )
    rec.wait_for(lambda: rec.on("stats"), 90, "the first stats")
    made = _trigger(rec, 6, "before")

    rec.publish(f"{PREFIX}/cmd/reload", json.dumps({"id": "reload"}).encode())
    assert reply_to(rec, "reload")["ok"]
    rec.wait_for(lambda: _stats(rec).get("reloads") == 1, 60, "stats from the rebuilt station")
    made += _trigger(rec, 5, "after")
    expected = {v: made.count(v) for v in VERDICTS}

    rec.wait_for(lambda: _stats(rec)["verdicts"] == expected, 30, f"stats showing {expected}")
    rec.wait_for(lambda: _sparkplug_counts(payload_cls, spb) == expected, 30, "Sparkplug's counts")
    assert asyncio.run(_opcua_counts(url, certs)) == expected
    assert _page_counts(page) == expected
    assert _stats(rec)["inspected"] == len(made) == 11
    assert not [d for d in replies(rec) if not d["ok"]]
    spb.close()
    rec.close()
