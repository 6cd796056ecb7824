"""Model swapping and command handling with a real bundle store and a real model."""

from __future__ import annotations

import json
import time
from collections import OrderedDict

import pytest

from lineside.daemon.capture import triggers
from lineside.daemon.intake.bundle_store import BundleStore
from lineside.daemon.intake.swap import Job, ModelSwap
from lineside.daemon.service.control import Control
from lineside.daemon.transport.inbox import Inbox
from lineside.deploy import contract, signing
from tests.support import bundles as kit
from tests.support.disk import fill


def _created(created_at: str):
    def edit(m: dict) -> None:
        m["model"].update(version=created_at[:4], created_at=created_at)

    return edit


@pytest.fixture
def keys(tmp_path):
    private, public = signing.generate(tmp_path / "keys", "maintenance")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / public.name).write_bytes(public.read_bytes())
    return signing.load_private(private), trusted


@pytest.fixture
def swap(tmp_path, bundle_path, keys):
    key, trusted = keys
    store = BundleStore(tmp_path / "store", trusted, 64 * 1024 * 1024, 1)
    first = tmp_path / "2001.lsb"
    first.write_bytes(kit.repack(bundle_path.read_bytes(), key, _created("2001-01-01T00:00:00")))
    replies: list[tuple] = []
    s = ModelSwap(store, store.startup(first, False), lambda *a, **kw: replies.append((a, kw)))
    s.start()
    yield s, replies, key, bundle_path.read_bytes(), store
    s.stop()


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def test_swaps_that_wait_between_frames_are_made_in_order_and_each_answered(swap):
    s, replies, key, data, store = swap
    bundles = [kit.repack(data, key, _created(f"{year}-01-01")) for year in ("2002", "2003")]
    for b in bundles:
        s.submit(Job("model", "mqtt", None, b))
    # No frame takes the first before the second is vetted and written.
    _wait(lambda: store.active_path.read_bytes() == bundles[1], "both vetted")
    taken = s.take_pending()
    assert taken is not None and s.active.bundle.manifest.model.version == "2003"
    answers = [(kw["previous"]["version"], kw["model"]["version"]) for _, kw in replies]
    assert answers == [("2001", "2002"), ("2002", "2003")]


def test_an_older_bundle_is_refused_with_a_reason(swap):
    s, replies, key, data, _ = swap
    s.submit(Job("model", "mqtt", None, kit.repack(data, key, _created("1999-01-01"))))
    _wait(lambda: replies, "an answer")
    (command, _), fields = replies[0]
    assert command == "model" and fields["ok"] is False and "signed rollback" in fields["error"]
    assert s.take_pending() is None


def _control(swap, trusted, turn) -> tuple[Control, list]:
    s = swap[0]
    said: list[tuple] = []
    control = Control(
        "cell-1",
        Inbox(),
        turn,
        s,
        trusted,
        lambda: said.append("reload"),
        lambda *a, **kw: said.append((a, kw)),
        OrderedDict(),
        lambda cmd: said.append(("label", cmd.doc)),
        lambda cmd: said.append(("export", cmd.id)),
    )
    return control, said


def test_commands_are_answered_by_what_they_may_do(swap, keys):
    key, trusted = keys
    control, said = _control(swap, trusted, triggers.Continuous(None))
    control.handle("trigger", b'{"id": "t"}')
    control.handle("rollback", b'{"id": "r0"}')
    signed = contract.sign_command("rollback", "cell-2", "r1", time.time(), key)
    control.handle("rollback", json.dumps(signed).encode())
    control.handle("reload", b"")
    errors = [answer[1].get("error", "") for answer in said if answer != "reload"]
    assert "trigger mode is not 'mqtt'" in errors[0]
    assert "needs a signature" in errors[1]
    assert "another command or station" in errors[2]
    assert "reload" in said
    # Labels and exports are handed to the station, checked first.
    control.handle("label", b'{"seq": 7, "label": "good"}')
    control.handle("label", b'{"seq": 7, "label": "fine"}')
    control.handle("export", b'{"id": "e1"}')
    assert ("label", {"seq": 7, "label": "good"}) in said and ("export", "e1") in said
    assert "'label' must be one of" in said[-2][1]["error"]


def test_a_signed_rollback_acts_once(swap, keys):
    key, trusted = keys
    s, _, _, data, store = swap
    first = store.active_path.read_bytes()
    s.submit(Job("model", "mqtt", None, kit.repack(data, key, _created("2002-01-01"))))
    _wait(lambda: store.active_path.read_bytes() != first, "the 2002 bundle vetted")
    s.take_pending()
    control, said = _control(swap, trusted, triggers.OnCommand())
    signed = json.dumps(contract.sign_command("rollback", "cell-1", "r1", time.time(), key))
    control.handle("rollback", signed.encode())
    _wait(lambda: store.active_path.read_bytes() == first, "the rollback vetted")
    _wait(lambda: s.take_pending() is not None, "the rollback waiting")
    assert s.active.bundle.manifest.model.version == "2001"
    control.handle("rollback", signed.encode())
    assert "used before" in said[-1][1]["error"]


def test_a_bundle_pushed_onto_a_full_disk_is_answered_and_the_old_one_serves(
    small_disk, bundle_path, keys
):
    key, trusted = keys
    store = BundleStore(small_disk / "store", trusted, 64 * 1024 * 1024, 1)
    first = kit.repack(bundle_path.read_bytes(), key, _created("2001-01-01"))
    (small_disk.parent / "2001.lsb").write_bytes(first)
    replies: list[tuple] = []
    s = ModelSwap(
        store,
        store.startup(small_disk.parent / "2001.lsb", False),
        lambda *a, **kw: replies.append((a, kw)),
    )
    s.start()
    try:
        filler = fill(small_disk)
        newer = kit.repack(bundle_path.read_bytes(), key, _created("2002-01-01"))
        s.submit(Job("model", "mqtt", None, newer))
        _wait(lambda: replies, "an answer")
        assert replies[0][1]["ok"] is False
        assert "cannot write the bundle" in replies[0][1]["error"]
        assert s.take_pending() is None and store.active_path.read_bytes() == first
        filler.unlink()
        s.submit(Job("model", "mqtt", None, newer))
        _wait(lambda: s.take_pending() is not None, "the push after space returned")
        assert s.active.bundle.manifest.model.version == "2002"
    finally:
        s.stop()
