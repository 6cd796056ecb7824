"""OPC UA: an asyncua client over the secured endpoint reads every variable and sees each part;
clients without a trusted certificate are refused."""

from __future__ import annotations

import asyncio
import json

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from tests.support.broker import free_port
from tests.support.mqtt_client import Recorder
from tests.support.opcua_certs import make

SERVER_URI = "urn:lineside:cell-1"
SCADA_URI = "urn:plant:scada"
# The documented variables (docs/opcua.md), folder/name.
VARIABLES = {
    "Inspection/Verdict": ua.VariantType.String,
    "Inspection/Score": ua.VariantType.Double,
    "Inspection/Seq": ua.VariantType.UInt64,
    "Inspection/PartId": ua.VariantType.String,
    "Inspection/LastInspection": ua.VariantType.DateTime,
    "Thresholds/ReviewAt": ua.VariantType.Double,
    "Thresholds/FailAt": ua.VariantType.Double,
    "Counts/Pass": ua.VariantType.UInt64,
    "Counts/Review": ua.VariantType.UInt64,
    "Counts/Fail": ua.VariantType.UInt64,
    "Rates/InspectedFps": ua.VariantType.Double,
    "Camera/DroppedFrames": ua.VariantType.UInt64,
    "Camera/CameraState": ua.VariantType.String,
    "Outbox/OutboxDepth": ua.VariantType.UInt64,
    "Model/ModelName": ua.VariantType.String,
    "Model/ModelVersion": ua.VariantType.String,
    "Model/ModelHash": ua.VariantType.String,
    "Drift/DriftAlarm": ua.VariantType.Boolean,
    "Healthy": ua.VariantType.Boolean,
}


@pytest.fixture
def certs(tmp_path):
    trusted = tmp_path / "opcua-trusted"
    server = make(tmp_path / "opcua-server", "server", SERVER_URI, server=True)
    scada = make(tmp_path / "opcua-scada", "scada", SCADA_URI)
    rogue = make(tmp_path / "opcua-rogue", "rogue", SCADA_URI)
    trusted.mkdir()
    (trusted / "scada.der").write_bytes(scada[0].read_bytes())  # the certificate, not its key
    return {"server": server, "scada": scada, "rogue": rogue, "trusted": trusted}


def server_section(url: str, certs) -> dict:
    """The daemon's `opcua:` section for the test's server certificate and trusted clients."""
    return {
        "endpoint": url,
        "certificate": str(certs["server"][0]),
        "private_key": str(certs["server"][1]),
        "trusted_clients": str(certs["trusted"]),
    }


async def _client(url: str, cert_key, server_cert, identity: bool = True) -> Client:
    client = Client(url, timeout=10)
    client.application_uri = SCADA_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(cert_key[0]),
        str(cert_key[1]),
        server_certificate=str(server_cert),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    if identity:
        await client.load_client_certificate(str(cert_key[0]))
        await client.load_private_key(str(cert_key[1]))
    return client


async def _variables(client: Client) -> dict[str, object]:
    """folder/name -> node, under Objects/<station>."""
    station = await client.nodes.objects.get_child("2:cell-1")
    out = {}
    for child in await station.get_children():
        name = (await child.read_browse_name()).Name
        if await child.read_node_class() == ua.NodeClass.Variable:
            out[name] = child
            continue
        for var in await child.get_children():
            out[f"{name}/{(await var.read_browse_name()).Name}"] = var
    return out


class Seen:
    def __init__(self) -> None:
        self.values: list = []

    def datachange_notification(self, node, value, data) -> None:
        self.values.append(value)


async def _session(url: str, certs, rec: Recorder) -> dict:
    client = await _client(url, certs["scada"], certs["server"][0])
    async with client:
        nodes = await _variables(client)
        assert set(nodes) == set(VARIABLES)
        values = {}
        for name, node in nodes.items():
            dv = await node.read_data_value()
            assert dv.Value.VariantType == VARIABLES[name], name
            values[name] = dv.Value.Value
        seen = Seen()
        sub = await client.create_subscription(50, seen)
        # StatusValueTimestamp: two passes in a row are two notifications.
        every_write = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        await sub._subscribe(
            nodes["Inspection/Verdict"], ua.AttributeIds.Value, mfilter=every_write, queuesize=100
        )
        await asyncio.sleep(1.0)
        seen.values.clear()
        first = len(rec.on("inspection"))
        await asyncio.sleep(6.0)
        last = len(rec.on("inspection"))
        await sub.delete()
    return {"values": values, "verdicts": list(seen.values), "published": last - first}


async def _refused(url: str, cert_key, server_cert, identity: bool) -> str:
    client = await _client(url, cert_key, server_cert, identity)
    try:
        await client.connect()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
    await client.disconnect()
    return ""


def test_secured_client_reads_every_variable_and_sees_each_part(
    certs, broker, start_daemon, parts_video
):
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/lineside/"
    rec = Recorder(broker.port, "lineside/cell-1/#", "opcua-mqtt")
    source = {"kind": "video", "path": str(parts_video), "loop": True, "fps": 5}
    opcua = server_section(url, certs)
    daemon = start_daemon(broker.port, source=source, opcua=opcua)
    rec.wait_for(lambda: len(rec.on("inspection")) >= 5, 90, "inspections")

    got = asyncio.run(_session(url, certs, rec))
    values = got["values"]
    latest = json.loads(rec.on("inspection")[-1].payload)
    assert values["Inspection/Verdict"] in ("pass", "review", "fail")
    assert values["Thresholds/ReviewAt"] == pytest.approx(latest["thresholds"]["review_at"])
    assert values["Thresholds/FailAt"] == pytest.approx(latest["thresholds"]["fail_at"])
    assert values["Model/ModelVersion"] == latest["model"]["version"]
    assert values["Camera/CameraState"] == "ok" and values["Healthy"] is True
    assert sum(values[f"Counts/{k}"] for k in ("Pass", "Review", "Fail")) >= 5
    # Every inspection published on MQTT in the window is a Verdict notification (one either
    # side of the window's edges).
    assert got["published"] >= 20
    assert abs(len(got["verdicts"]) - got["published"]) <= 2, got
    assert {"pass", "fail"} <= set(got["verdicts"]) <= {"pass", "review", "fail"}

    anonymous = asyncio.run(_refused(url, certs["scada"], certs["server"][0], identity=False))
    assert "BadIdentityTokenRejected" in anonymous, "an anonymous user identity is refused"
    rogue = asyncio.run(_refused(url, certs["rogue"], certs["server"][0], identity=True))
    assert "BadCertificateUntrusted" in rogue, "a client whose certificate is not trusted"
    assert daemon.terminate()[0] == 0
    rec.close()
