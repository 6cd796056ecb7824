"""The PLC's trigger and answer over OPC UA, for controllers that speak it (`plc.protocol: opcua`).

The same handshake as over Modbus (`plc.py`), on the station's OPC UA server (`opcua.py`, its
security and certificates): an object `Plc` under the station with two writable variables,
`PartId` (UInt32) and `Trigger` (Boolean), and read-only `ResultReady`, `Busy`, `Verdict`,
`Action`, `PartIdEcho`, `Sequence`, `Score` and `LatencyMs`. Writing `Trigger` true takes the
part (it reads false again once taken; a trigger while `Busy` is counted and dropped, as the
PLC should wait for `Busy` false). Each answer is written to the variables and raised as a
`PartAnsweredEventType` event from the `Plc` object, fields PartId, Verdict, Action, Score,
Sequence and LatencyMs, so a client can subscribe to events instead of polling.
"""

from __future__ import annotations

import logging

from asyncua import Server as UaServer
from asyncua import ua

from lineside.daemon.capture.triggers import OnCommand
from lineside.daemon.config import Plc
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.opcua import Server
from lineside.daemon.sinks.plc import Answer, PlcLink

log = logging.getLogger(__name__)

# The answer's variables and the event's fields: name -> (OPC UA type, value from an Answer).
FIELDS = {
    "PartId": (ua.VariantType.UInt32, lambda a: a.part_id),
    "Verdict": (ua.VariantType.String, lambda a: a.verdict),
    "Action": (ua.VariantType.String, lambda a: a.action),
    "Score": (ua.VariantType.Double, lambda a: float(a.score)),
    "Sequence": (ua.VariantType.UInt64, lambda a: a.seq),
    "LatencyMs": (ua.VariantType.Double, lambda a: round(a.latency_ms, 2)),
}
# The answer's variables: the event's fields, the part id as PartIdEcho (PartId is the input).
ANSWER = {("PartIdEcho" if name == "PartId" else name): field for name, field in FIELDS.items()}


class OpcUaPlc:
    """A sink: the PLC's handshake served as variables and events of the OPC UA server."""

    def __init__(self, cfg: Plc, turn: OnCommand, server: Server) -> None:
        self.server = server
        self.link = PlcLink(cfg, turn, on_answer=self._answered)
        self._nodes: dict[str, ua.NodeId] = {}
        self._events = None
        self._ua: UaServer | None = None

    def start(self) -> None:
        self.server.run(self._build)
        log.info("plc: trigger and answer on the OPC UA server's Plc object")

    def publish(self, result: Result) -> None:
        self.link.publish(result)

    def close(self) -> None:
        self.link.close()

    def stats(self) -> dict:
        return self.link.stats()

    async def _build(self, server: UaServer, station, ns: int) -> None:
        self._ua = server
        plc = await station.add_object(ns, "Plc")
        for name, kind, writable in (
            ("PartId", ua.VariantType.UInt32, True),
            ("Trigger", ua.VariantType.Boolean, True),
            ("ResultReady", ua.VariantType.Boolean, False),
            ("Busy", ua.VariantType.Boolean, False),
        ):
            node = await plc.add_variable(
                ns, name, ua.Variant(_empty(kind), kind), varianttype=kind
            )
            if writable:
                await node.set_writable()
            self._nodes[name] = node.nodeid
        for name, (kind, _) in ANSWER.items():
            node = await plc.add_variable(ns, name, ua.Variant(_empty(kind), kind), kind)
            self._nodes[name] = node.nodeid
        etype = await server.create_custom_event_type(
            ns,
            "PartAnsweredEventType",
            ua.ObjectIds.BaseEventType,
            [(name, kind) for name, (kind, _) in FIELDS.items()],
        )
        self._events = await server.get_event_generator(etype, plc)
        server.iserver.aspace.add_datachange_callback(
            self._nodes["Trigger"], ua.AttributeIds.Value, self._trigger_written
        )

    async def _trigger_written(self, _handle, value: ua.DataValue) -> None:
        if not value.Value.Value:
            return
        part = self._ua.read_attribute_value(self._nodes["PartId"]).Value.Value or 0
        taken = self.link.trigger(int(part))
        await self._set("Trigger", False, ua.VariantType.Boolean)
        if taken:
            await self._set("ResultReady", False, ua.VariantType.Boolean)
            await self._set("Busy", self.link.busy, ua.VariantType.Boolean)

    def _answered(self, answer: Answer) -> None:
        """From whichever thread answered: the variables and the event, on the server's loop."""
        self.server.submit(self._publish_answer(answer))

    async def _publish_answer(self, answer: Answer) -> None:
        for name, (kind, get) in ANSWER.items():
            await self._set(name, get(answer), kind)
        await self._set("Busy", self.link.busy, ua.VariantType.Boolean)
        await self._set("ResultReady", True, ua.VariantType.Boolean)
        event = self._events.event
        for name, (_, get) in FIELDS.items():
            setattr(event, name, get(answer))
        await self._events.trigger(message=f"part {answer.part_id}: {answer.verdict}")

    async def _set(self, name: str, value, kind: ua.VariantType) -> None:
        await self._ua.write_attribute_value(
            self._nodes[name], ua.DataValue(ua.Variant(value, kind))
        )


def _empty(kind: ua.VariantType):
    return {ua.VariantType.String: "", ua.VariantType.Boolean: False}.get(kind, 0)
