"""A PLC as tests play it: pymodbus's own TCP client, polling the station as a controller would."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient

from lineside.daemon.sinks import modbus

VERDICTS = {1: "pass", 2: "review", 3: "fail", 4: "no_answer"}
ACTIONS = {0: "accept", 1: "reject", 2: "divert"}


@dataclass(frozen=True)
class Answer:
    part_id: int
    verdict: str
    action: str
    seq: int
    score: float
    latency_ms: int
    waited_ms: float  # trigger written to result_ready seen, on the PLC's side


def _u32(regs: list[int], at: int) -> int:
    return regs[at] << 16 | regs[at + 1]


class Plc:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.client = ModbusTcpClient(host, port=port, timeout=5)
        deadline = time.monotonic() + 30
        while not self.client.connect():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Modbus server on {host}:{port}")
            time.sleep(0.2)

    def close(self) -> None:
        self.client.close()

    def inputs(self) -> list[int]:
        return self.client.read_input_registers(0, count=17).registers

    def bits(self) -> list[bool]:
        return self.client.read_discrete_inputs(0, count=8).bits

    def trigger(self, part_id: int, timeout: float = 10) -> float:
        """Part id, then the trigger (retried while the station is busy); returns when taken."""
        self.client.write_registers(modbus.PART_ID, [part_id >> 16, part_id & 0xFFFF])
        deadline = time.monotonic() + timeout
        while True:
            t0 = time.monotonic()
            if not self.client.write_coil(modbus.TRIGGER, True).isError():
                return t0
            if time.monotonic() > deadline:
                raise TimeoutError("the station stayed busy")
            time.sleep(0.005)

    def answer(self, t0: float, timeout: float = 10) -> Answer:
        """Poll result_ready as a PLC scan would (every 2 ms), then read the answer."""
        deadline = time.monotonic() + timeout
        while not self.bits()[modbus.RESULT_READY]:
            if time.monotonic() > deadline:
                raise TimeoutError("no result_ready")
            time.sleep(0.002)
        waited = (time.monotonic() - t0) * 1000
        regs = self.inputs()
        (score,) = struct.unpack(">f", struct.pack(">HH", *regs[modbus.SCORE : modbus.SCORE + 2]))
        return Answer(
            _u32(regs, modbus.PART_ID_ECHO),
            VERDICTS.get(regs[modbus.VERDICT], "none"),
            ACTIONS[regs[modbus.ACTION]],
            _u32(regs, modbus.SEQUENCE),
            score,
            regs[modbus.LATENCY_MS],
            waited,
        )

    def part(self, part_id: int) -> Answer:
        return self.answer(self.trigger(part_id))
