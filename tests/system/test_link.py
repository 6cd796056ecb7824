"""The MQTT link on its own, against a real broker: client ids and a second client using ours."""

from __future__ import annotations

import logging
import time

from lineside.daemon.config import Mqtt
from lineside.daemon.sinks.mqtt import Link
from lineside.daemon.sinks.outbox import Outbox


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
    caplog.set_level(logging.ERROR, logger="lineside.daemon.sinks.mqtt")
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
