"""The line's controller drives a real station: pymodbus's client as the PLC on loopback, the
daemon as a process inspecting a camera's frames with the real pipeline, results over MQTT too."""

from __future__ import annotations

import json

from tests.support.broker import free_port
from tests.support.mqtt_client import Recorder
from tests.support.plc import Plc
from tests.support.station import PREFIX

DEADLINE_MS = 300


def test_the_plc_triggers_200_parts_and_reads_every_verdict_in_order_in_time(
    broker, start_daemon, parts_video
):
    rec = Recorder(broker.port, f"{PREFIX}/#", "plc")
    port = free_port()
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 60},
        trigger={"mode": "plc"},
        plc={"port": port, "deadline_ms": DEADLINE_MS},
    )
    plc = Plc(port)
    rec.wait_for(lambda: rec.on("stats"), 90, "the station running")
    answers = [plc.part(5000 + n) for n in range(200)]

    assert [a.part_id for a in answers] == [5000 + n for n in range(200)]
    assert all(a.verdict in ("pass", "review", "fail") for a in answers), "a part missed"
    seqs = [a.seq for a in answers]
    assert seqs == list(range(seqs[0], seqs[0] + 200))
    assert max(a.latency_ms for a in answers) < DEADLINE_MS
    actions = {"pass": "accept", "review": "divert", "fail": "reject"}
    assert all(a.action == actions[a.verdict] for a in answers)

    # The same parts on MQTT, with the part ids the PLC gave.
    rec.wait_for(lambda: len(rec.on("inspection")) >= 200, 30, "200 inspections on MQTT")
    docs = {json.loads(m.payload)["seq"]: json.loads(m.payload) for m in rec.on("inspection")}
    assert [docs[a.seq]["part_id"] for a in answers] == [str(a.part_id) for a in answers]
    assert [docs[a.seq]["verdict"] for a in answers] == [a.verdict for a in answers]

    # Garbage from the PLC's network changes nothing and is logged once per address.
    for _ in range(5):
        assert plc.client.write_registers(10, [1, 2, 3]).isError()
        assert plc.client.write_coil(3, True).isError()
    assert plc.part(9999).part_id == 9999
    rec.wait_for(
        lambda: json.loads(rec.on("stats")[-1].payload).get("plc", {}).get("triggers") == 201,
        30,
        "stats counting the PLC's parts",
    )
    stats = json.loads(rec.on("stats")[-1].payload)["plc"]
    assert (stats["answered"], stats["no_answer"], stats["refused_writes"]) == (201, 0, 10)
    assert stats["trigger_to_answer_ms"]["max"] < DEADLINE_MS
    plc.close()
    status, _ = daemon.terminate()
    assert status == 0
    assert daemon.log().count("plc: refused a write") == 2
    rec.close()
