"""The PLC's trigger and answer over OPC UA: an asyncua client (over the secured endpoint, as a
PLC with an OPC UA client would) writes PartId and Trigger, reads the answer and receives a
PartAnswered event per part from a real daemon."""

from __future__ import annotations

import asyncio
import time

from asyncua import ua

from tests.support.broker import free_port
from tests.support.mqtt_client import Recorder
from tests.support.station import PREFIX
from tests.system.test_opcua import _client, certs, server_section  # noqa: F401 (a fixture)

PARTS = 20


class Events:
    def __init__(self) -> None:
        self.got: list = []

    def event_notification(self, event) -> None:
        self.got.append(event)


async def _parts(url: str, certs) -> tuple[list[dict], list]:  # noqa: F811
    client = await _client(url, certs["scada"], certs["server"][0])
    async with client:
        station = await client.nodes.objects.get_child("2:cell-1")
        plc = await station.get_child("2:Plc")
        nodes = {(await n.read_browse_name()).Name: n for n in await plc.get_children()}
        events = Events()
        sub = await client.create_subscription(50, events)
        etype = await client.nodes.base_event_type.get_child("2:PartAnsweredEventType")
        await sub.subscribe_events(plc, etype)
        answers = []
        for n in range(PARTS):
            part = 300 + n
            await nodes["PartId"].write_value(ua.Variant(part, ua.VariantType.UInt32))
            await nodes["Trigger"].write_value(ua.Variant(True, ua.VariantType.Boolean))
            deadline = time.monotonic() + 10
            while not await nodes["ResultReady"].read_value():
                assert time.monotonic() < deadline, f"no answer for part {part}"
                await asyncio.sleep(0.005)
            answers.append(
                {k: await nodes[k].read_value() for k in ("PartIdEcho", "Verdict", "Action")}
            )
        deadline = time.monotonic() + 10
        while len(events.got) < PARTS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await nodes["Trigger"].read_value() is False
        return answers, events.got


def test_an_opcua_plc_triggers_parts_and_gets_an_event_per_answer(
    tmp_path,
    broker,
    start_daemon,
    parts_video,
    certs,  # noqa: F811
):
    rec = Recorder(broker.port, f"{PREFIX}/#", "opcua-plc")
    url = f"opc.tcp://127.0.0.1:{free_port()}/lineside/"
    start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 60},
        trigger={"mode": "plc"},
        plc={"protocol": "opcua", "deadline_ms": 1000},
        opcua=server_section(url, certs),
    )
    rec.wait_for(lambda: rec.on("stats"), 90, "the station running")
    answers, events = asyncio.run(_parts(url, certs))

    assert [a["PartIdEcho"] for a in answers] == [300 + n for n in range(PARTS)]
    assert all(a["Verdict"] in ("pass", "review", "fail") for a in answers), answers
    actions = {"pass": "accept", "review": "divert", "fail": "reject"}
    assert all(a["Action"] == actions[a["Verdict"]] for a in answers)
    assert [e.PartId for e in events] == [300 + n for n in range(PARTS)]
    assert [e.Verdict for e in events] == [a["Verdict"] for a in answers]
    rec.close()
