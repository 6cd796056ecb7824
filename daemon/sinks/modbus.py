"""The PLC's link over Modbus TCP: Lineside is the server, the PLC polls and writes.

pymodbus serves four blocks on its own event-loop thread (the `plc` extra, imported only when
`plc:` is configured). The PLC may write two things: the part id (holding registers 0-1) and the
trigger (coil 0). Every other write, and any write beyond the map, is refused with Modbus
exception 2 (illegal address), counted and logged once per address, so no register can change
the model, a threshold or the configuration. Reads are served from the handshake's state as it
is at that moment. The map (docs/plc.md prints it):
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from lineside.daemon.capture.triggers import OnCommand
from lineside.daemon.config import ConfigError, Plc
from lineside.daemon.sinks import Result
from lineside.daemon.sinks.loop_thread import LoopThread
from lineside.daemon.sinks.plc import ACTION_CODES, VERDICT_CODES, Answer, PlcLink

log = logging.getLogger(__name__)

# Coils (read/write): what the PLC sets.
TRIGGER = 0  # set to 1: the part with PART_ID is in position; reads 0 once taken
# Discrete inputs (read only).
RESULT_READY, BUSY, REJECT, DIVERT, CAMERA_OK, MODEL_OK, DRIFT_ALARM, BROKER_OK = range(8)
# Holding registers (read/write): the part id, 32 bits, high word first.
PART_ID = 0
# Input registers (read only); 32-bit values high word first, the score an IEEE 754 float.
HEARTBEAT, VERDICT, ACTION = 0, 1, 2
PART_ID_ECHO, SEQUENCE, SCORE = 3, 5, 7
LATENCY_MS, ANSWERED, NO_ANSWER, LATE, STATUS = 9, 10, 12, 14, 16
BLOCK = 64  # addresses the map serves in each block
# Addresses that reach the map's checks, so a stray write there is logged too; beyond them
# pymodbus refuses by itself (its tables take time quadratic in their size to build).
SPACE = 1024
START_TIMEOUT_S = 10.0

Health = Callable[[], dict]


def words(value: int) -> list[int]:
    """A 32-bit unsigned value as two registers, high word first."""
    value &= 0xFFFFFFFF
    return [value >> 16, value & 0xFFFF]


def float_words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def input_registers(answer: Answer, counts: dict, heartbeat: int, status: int) -> list[int]:
    regs = [0] * 17
    regs[HEARTBEAT] = heartbeat & 0xFFFF
    regs[VERDICT] = VERDICT_CODES.get(answer.verdict, 0)
    regs[ACTION] = ACTION_CODES[answer.action]
    regs[PART_ID_ECHO : PART_ID_ECHO + 2] = words(answer.part_id)
    regs[SEQUENCE : SEQUENCE + 2] = words(answer.seq)
    regs[SCORE : SCORE + 2] = float_words(answer.score)
    regs[LATENCY_MS] = min(round(answer.latency_ms), 0xFFFF)
    regs[ANSWERED : ANSWERED + 2] = words(counts["answered"])
    regs[NO_ANSWER : NO_ANSWER + 2] = words(counts["no_answer"])
    regs[LATE : LATE + 2] = words(counts["late"])
    regs[STATUS] = status
    return regs


def packed(bits: list[bool]) -> int:
    """Bits into one register, the first in bit 0 (how coils and discrete inputs travel)."""
    return sum(1 << i for i, on in enumerate(bits) if on)


def status_bits(health: dict) -> list[bool]:
    """Discrete inputs 4-7: camera delivering, model loaded, drift alarm, broker connected."""
    return [
        bool(health.get("camera_online")),
        bool(health.get("model")),
        bool(health.get("drift_alarm")),
        bool(health.get("mqtt_connected")),
    ]


class ModbusServer:
    """A sink: the PLC's handshake (`PlcLink`) served over Modbus TCP."""

    def __init__(self, cfg: Plc, turn: OnCommand, health: Health) -> None:
        self.cfg, self.health = cfg, health
        self._loop = LoopThread("modbus")
        self.link = PlcLink(cfg, turn, self._loop.later)
        self._server: ModbusTcpServer | None = None
        self._part_id = [0, 0]
        self._status = [False] * 4
        self._heartbeat = 0
        self.refused: dict[tuple[int, int], int] = {}  # (function, address) -> writes refused

    def start(self) -> None:
        """Listening when this returns."""
        try:
            self._loop.start(self._serve(), START_TIMEOUT_S)
        except Exception as exc:
            raise ConfigError(
                f"plc: cannot listen on {self.cfg.host}:{self.cfg.port} ({exc})"
            ) from None
        log.info("plc: Modbus TCP on %s:%d", self.cfg.host, self.cfg.port)

    def publish(self, result: Result) -> None:
        self.link.publish(result)

    def close(self) -> None:
        self.link.close()
        if self._server is not None:
            try:
                self._loop.run(self._server.shutdown(), 5)
            except Exception:
                log.exception("plc: server did not shut down cleanly")
        self._loop.stop(5)

    def stats(self) -> dict:
        refused = sum(self.refused.values())
        return {**self.link.stats(), "refused_writes": refused}

    async def _serve(self) -> None:
        blocks = (
            [SimData(0, count=SPACE, values=False, datatype=DataType.BITS)],
            [SimData(0, count=SPACE, values=False, datatype=DataType.BITS)],
            [SimData(0, count=SPACE, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=SPACE, values=0, datatype=DataType.REGISTERS)],
        )
        device = SimDevice(id=0, simdata=blocks, action=self._access)
        self._server = ModbusTcpServer(device, address=(self.cfg.host, self.cfg.port))
        await self._server.serve_forever(background=True)
        self._beat()

    def _beat(self) -> None:
        """Once a second: the heartbeat counts up and the status bits are read afresh."""
        self._heartbeat = (self._heartbeat + 1) & 0xFFFF
        try:
            self._status = status_bits(self.health())
        except Exception:
            log.exception("plc: reading the station's health failed")
        self._loop.loop.call_later(1.0, self._beat)

    async def _access(self, fc, start, address, count, regs, values) -> ExcCodes | None:
        if values is None:
            if address + count > BLOCK:
                return ExcCodes.ILLEGAL_ADDRESS
            self._fill(fc, regs)
            return None
        return self._write(fc, address, list(values))

    def _fill(self, fc: int, regs: list[int]) -> None:
        """The block `fc` reads, as the handshake stands now (bits packed 16 to a register)."""
        answer = self.link.answer
        if fc == 1:
            bits = [False]
        elif fc == 2:
            bits = [answer.ready, self.link.busy, answer.rejecting, answer.diverting]
            bits += self._status
        else:
            if fc == 3:
                values = self._part_id
            else:
                status = packed(self._status)
                values = input_registers(answer, self.link.counts, self._heartbeat, status)
            regs[: len(values)] = values
            return
        regs[0] = packed(bits)

    def _write(self, fc: int, address: int, values: list) -> ExcCodes | None:
        if fc in (5, 15) and address == TRIGGER and len(values) == 1:
            if values[0] and not self.link.trigger(self._part_id[0] << 16 | self._part_id[1]):
                return ExcCodes.DEVICE_BUSY
            return None
        if fc in (6, 16) and address >= PART_ID and address + len(values) <= PART_ID + 2:
            self._part_id[address - PART_ID : address - PART_ID + len(values)] = values
            return None
        self._refuse(fc, address, len(values))
        return ExcCodes.ILLEGAL_ADDRESS

    def _refuse(self, fc: int, address: int, count: int) -> None:
        key = (fc, address)
        self.refused[key] = self.refused.get(key, 0) + 1
        if self.refused[key] == 1:
            log.warning(
                "plc: refused a write (function %d) to %d value(s) at address %d: the PLC may "
                "write only the trigger (coil 0) and the part id (holding registers 0-1)",
                fc,
                count,
                address,
            )
