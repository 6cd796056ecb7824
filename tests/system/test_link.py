"""The MQTT link on its own, against a real broker: client ids, a second client using ours, and
the order of results across a broker restart."""

from __future__ import annotations

import json
import logging
import signal
import time

from lineside.daemon.config import Mqtt
from lineside.daemon.transport.link import Link
from lineside.daemon.transport.outbox import Outbox
from tests.support.mqtt_client import Recorder


def _links(tmp_path, cfg: Mqtt, n: int) -> list[Link]:
    return [
        Link(cfg, "press-3", Outbox(tmp_path / f"{i}.db", 100, 100_000), lambda n, p: None)
        for i in range(n)
    ]


def test_each_process_has_its_own_client_id_unless_configured(tmp_path):
    a, b = _links(tmp_path, Mqtt(), 2)
    assert a.client_id != b.client_id and a.client_id.startswith("lineside-press-3-")
    c, d = _links(tmp_path, Mqtt(client_id="press-3"), 2)
    assert c.client_id == d.client_id == "press-3"


def test_a_second_client_with_our_configured_id_is_named_in_the_log(tmp_path, broker, caplog):
    cfg = Mqtt(host="127.0.0.1", port=broker.port, client_id="press-3", keepalive_s=5)
    links = _links(tmp_path, cfg, 2)
    caplog.set_level(logging.ERROR, logger="lineside.daemon.transport.link")
    for link in links:
        link.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(x.quick_drops >= 3 for x in links):
            time.sleep(0.2)
    finally:
        for link in links:
            link.stop(None)
    assert "is another client using the client id 'press-3'?" in caplog.text


class _BusyAtConnect(Link):
    """A box whose network thread is held up right after connecting, while the frame thread
    stores one more result: the moment a new row could overtake the ones waiting."""

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        super()._on_connect(client, userdata, flags, reason_code, properties)
        if not reason_code.is_failure and self.outbox.depth() > 0:
            _add(self.outbox, self.topic("inspection"))
            self.wake()
            time.sleep(0.5)


def _add(outbox: Outbox, topic: str) -> None:
    outbox.add([(topic, json.dumps({"seq": outbox.next_seq()}).encode(), 1, False)])


def test_results_stored_during_an_outage_arrive_before_newer_ones(tmp_path, broker):
    cfg = Mqtt(host="127.0.0.1", port=broker.port, keepalive_s=5)
    link = _BusyAtConnect(cfg, "press-3", Outbox(tmp_path / "o.db", 1000, 10**6), lambda n, p: None)
    topic = link.topic("inspection")
    rec = Recorder(broker.port, topic, "order")
    link.start()
    try:
        rec.wait_for(lambda: link.connected, 20, "link connected")
        _add(link.outbox, topic)
        link.wake()
        rec.wait_for(lambda: len(rec.messages) == 1, 20, "the first result")
        for _ in range(3):
            broker.stop(signal.SIGTERM)
            rec.wait_for(lambda: not link.connected, 20, "link sees the broker gone")
            for _ in range(10):
                _add(link.outbox, topic)
                link.wake()
            broker.start()
            rec.wait_for(lambda: link.outbox.depth() == 0, 60, "outbox drained")
    finally:
        link.stop(None)
    rec.wait_for(lambda: len(rec.messages) >= 34, 20, "every result")
    seqs = [json.loads(m.payload)["seq"] for m in rec.messages]
    assert list(dict.fromkeys(seqs)) == list(range(34)), seqs
    rec.close()
