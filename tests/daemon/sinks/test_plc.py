"""The PLC link over a real Modbus TCP connection: pymodbus's client as the PLC, on loopback.

A stand-in for the frame loop takes the requests the PLC's triggers queue and publishes a result
for each (or none, or a late one), as the station does."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lineside.daemon.capture.triggers import OnCommand
from lineside.daemon.config import ConfigError, Plc
from lineside.daemon.core.pipeline import Frame, Inspection
from lineside.daemon.sinks import Result, modbus
from tests.support.broker import free_port
from tests.support.plc import Plc as PlcClient

HEALTH = {"camera_online": True, "model": {"name": "m"}, "drift_alarm": False}


class Line:
    """The frame loop's part: answer each request after `delay_s` (None: never)."""

    def __init__(self, server: modbus.ModbusServer, turn: OnCommand, verdicts, delay_s=0.0):
        self.server, self.turn, self.verdicts, self.delay_s = server, turn, verdicts, delay_s
        self.seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            req = self.turn.wait(self._stop, 0.1)
            if req is None:
                continue
            self.seq += 1
            verdict = self.verdicts(int(req.part_id))
            if verdict is None:
                continue
            time.sleep(self.delay_s)
            insp = Inspection(float(self.seq), verdict, [], [], {}, np.zeros(1), np.zeros(1), None)
            frame = Frame(np.zeros((2, 2, 3), np.uint8), time.time(), self.seq)
            self.server.publish(Result(self.seq, frame, insp, req.part_id, None, "cell-1", req.id))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def station():
    made = []

    def make(verdicts, delay_s=0.0, **settings):
        turn = OnCommand()
        cfg = Plc(port=free_port(), **settings)
        server = modbus.ModbusServer(cfg, turn, lambda: HEALTH)
        server.start()
        line = Line(server, turn, verdicts, delay_s)
        client = PlcClient(cfg.port)
        made.append((line, server, client))
        return server, client

    yield make
    for line, server, client in made:
        client.close()
        line.stop()
        server.close()


def test_every_part_is_answered_in_order_with_its_verdict_and_action(station):
    verdicts = {0: "pass", 1: "review", 2: "fail"}
    server, plc = station(lambda part: verdicts[part % 3])
    answers = [plc.part(100_000 + n) for n in range(30)]
    assert [a.part_id for a in answers] == [100_000 + n for n in range(30)]
    assert [a.seq for a in answers] == list(range(1, 31))
    assert [a.verdict for a in answers] == [verdicts[(100_000 + n) % 3] for n in range(30)]
    assert [a.action for a in answers] == [
        {"pass": "accept", "review": "divert", "fail": "reject"}[a.verdict] for a in answers
    ]
    assert [a.score for a in answers] == [float(n) for n in range(1, 31)]
    stats = server.stats()
    assert stats["answered"] == 30 and stats["no_answer"] == 0 and stats["late"] == 0
    assert stats["trigger_to_answer_ms"]["max"] < server.cfg.deadline_ms
    assert plc.bits()[modbus.CAMERA_OK] and plc.bits()[modbus.MODEL_OK]


def test_a_part_without_an_answer_in_time_is_rejected_and_counted(station, caplog):
    server, plc = station(lambda part: "pass", delay_s=0.3, deadline_ms=100)
    answer = plc.part(7)
    assert (answer.verdict, answer.action, answer.part_id) == ("no_answer", "reject", 7)
    assert 100 <= answer.latency_ms < 300
    assert plc.bits()[modbus.REJECT]
    time.sleep(0.4)  # the inspection arrives after the deadline: late, and it changes nothing
    assert plc.answer(time.monotonic()).verdict == "no_answer"
    stats = server.stats()
    assert (stats["no_answer"], stats["late"], stats["answered"]) == (1, 1, 0)
    assert "no answer for part 7 within 100 ms: rejected" in caplog.text
    assert "inspected after its deadline" in caplog.text


def test_a_part_never_inspected_is_rejected_at_its_deadline(station):
    _server, plc = station(lambda part: None, deadline_ms=50)
    assert plc.part(9).action == "reject"
    assert plc.inputs()[modbus.NO_ANSWER + 1] == 1


def test_a_trigger_while_a_part_is_open_is_refused_as_busy(station):
    server, plc = station(lambda part: "pass", delay_s=0.3)
    plc.trigger(1)
    assert plc.bits()[modbus.BUSY]
    reply = plc.client.write_coil(modbus.TRIGGER, True)
    assert reply.isError() and reply.exception_code == 6  # server device busy
    assert plc.answer(time.monotonic()).part_id == 1
    assert server.stats()["busy"] == 1


def test_the_reject_output_is_a_pulse_when_configured(station):
    _server, plc = station(lambda part: "fail", reject_pulse_ms=150)
    plc.part(3)
    assert plc.bits()[modbus.REJECT]
    time.sleep(0.4)
    bits = plc.bits()
    assert not bits[modbus.REJECT] and bits[modbus.RESULT_READY]


def test_writes_outside_the_trigger_and_part_id_change_nothing_and_are_logged_once(station, caplog):
    server, plc = station(lambda part: "pass")
    first = plc.part(5)
    before = plc.inputs()
    c = plc.client
    for _ in range(3):
        assert c.write_register(modbus.PART_ID + 2, 9).isError()  # past the part id
        assert c.write_registers(1, [1, 2, 3]).isError()  # runs past it
        assert c.write_coil(modbus.TRIGGER + 1, True).isError()
        assert c.write_register(modbus.BLOCK + 10, 1).isError()  # past the map
    assert c.write_registers(modbus.PART_ID, [0xFFFF, 0xFFFF]).isError() is False
    after = plc.inputs()
    assert after[1:16] == before[1:16] and first.verdict == "pass"
    assert server.stats()["refused_writes"] == 12
    assert caplog.text.count("plc: refused a write") == 4  # once per function and address
    assert plc.part(6).part_id == 6  # the station still answers


def test_a_port_in_use_stops_the_start_with_a_reason():
    turn = OnCommand()
    cfg = Plc(port=free_port())
    first = modbus.ModbusServer(cfg, turn, lambda: HEALTH)
    first.start()
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{cfg.port}"):
            modbus.ModbusServer(cfg, turn, lambda: HEALTH).start()
    finally:
        first.close()


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"pass": "accept", "review": "divert", "fail": "accept"}, "must be 'reject'"),
        ({"pass": "accept", "review": "accept", "fail": "reject"}, "never accepted"),
        ({"pass": "accept", "fail": "reject"}, "each of pass, review and fail"),
    ],
)
def test_a_table_that_would_let_a_bad_part_through_is_refused(actions, message):
    with pytest.raises(ValueError, match=message):
        Plc(actions=actions)
