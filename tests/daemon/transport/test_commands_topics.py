"""Command parsing and topic names: every malformed command is a CommandError with a reason."""

from __future__ import annotations

import json

import pytest

from lineside.daemon.transport import commands
from lineside.deploy import contract, signing


def test_topics_are_built_in_one_place():
    assert contract.topic("lineside", "cell-1", "verdict") == "lineside/cell-1/verdict"
    assert contract.command_filter("p", "s") == "p/s/cmd/#"
    assert contract.command_name("p", "s", "p/s/cmd/trigger") == "trigger"
    assert contract.command_name("p", "s", "p/s/cmd/reply") is None
    assert contract.command_name("p", "s", "p/other/cmd/trigger") is None


GOOD = [
    ("trigger", b"", commands.Command("trigger", None)),
    ("trigger", b'{"id": "7", "part_id": "A-1"}', commands.Command("trigger", "7", "A-1")),
    ("reload", b'{"id": "x"}', commands.Command("reload", "x")),
]


@pytest.mark.parametrize("name,payload,expected", GOOD)
def test_good_commands(name, payload, expected):
    assert commands.parse(name, payload) == expected


BAD = {
    "unknown command": ("explode", b"{}", "unknown command"),
    "not JSON": ("trigger", b"{nope", "not valid JSON"),
    "not UTF-8": ("trigger", b"\xff\xfe", "not valid JSON"),
    "array": ("trigger", b"[1]", "JSON object"),
    "huge": ("trigger", b"{" + b" " * 70_000 + b"}", "over"),
    "id wrong type": ("trigger", b'{"id": [1]}', "'id' must be"),
    "id a boolean": ("trigger", b'{"id": true}', "'id' must be a string"),
    "id a number": ("rollback", b'{"id": 7}', "'id' must be a string"),
    "id too long": ("trigger", json.dumps({"id": "i" * 129}).encode(), "'id' must be"),
    "nested too deep": ("trigger", b"[" * 3000 + b"]" * 3000, "not valid JSON"),
    "nested too deep in an object": (
        "reload",
        b'{"id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "not valid JSON",
    ),
    "signature fields on trigger": ("trigger", b'{"signature": "x"}', "unknown field"),
    "part_id wrong type": ("trigger", b'{"part_id": 3}', "'part_id' must be"),
    "part_id too long": ("trigger", json.dumps({"part_id": "x" * 300}).encode(), "at most 256"),
    "unknown field": ("trigger", b'{"id": "1", "speed": 9}', "unknown field"),
    "part_id on reload": ("reload", b'{"part_id": "a"}', "only for trigger"),
}


@pytest.mark.parametrize("name,payload,reason", BAD.values(), ids=BAD.keys())
def test_bad_commands(name, payload, reason):
    with pytest.raises(commands.CommandError, match=reason):
        commands.parse(name, payload)


def test_error_keeps_the_request_id_when_readable():
    with pytest.raises(commands.CommandError) as info:
        commands.parse("trigger", b'{"id": "q9", "speed": 1}')
    assert info.value.request_id == "q9"


def test_reply_is_json_with_the_id():
    doc = json.loads(contract.reply("trigger", "a", False, error="boom"))
    assert doc == {"id": "a", "command": "trigger", "ok": False, "error": "boom"}


@pytest.fixture(scope="module")
def maintenance_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key, {signing.key_id(key.public_key()): key.public_key()}


def test_a_signed_rollback_is_accepted_once_signed_for_this_station_and_now(maintenance_key):
    key, trusted = maintenance_key
    doc = contract.sign_command("rollback", "cell-1", "r1", 1000.0, key)
    cmd = commands.parse("rollback", json.dumps(doc).encode())
    assert cmd.id == "r1"
    kid = contract.check_signed_command(cmd.doc, "rollback", "cell-1", trusted, 1010.0)
    assert kid == signing.key_id(key.public_key())


SIGNED_BAD = {
    "unsigned": (lambda d: {"id": "r1"}, "needs a signature"),
    "other station": (lambda d: {**d, "station": "cell-2"}, "another command or station"),
    "id changed": (lambda d: {**d, "id": "r2"}, "does not match"),
    "time changed": (lambda d: {**d, "issued_at": 1001.0}, "does not match"),
    "signature garbage": (lambda d: {**d, "signature": "%%%"}, "needs a signature"),
    "untrusted key": (lambda d: {**d, "key_id": "0" * 16}, "untrusted key"),
}


@pytest.mark.parametrize("edit,reason", SIGNED_BAD.values(), ids=SIGNED_BAD.keys())
def test_signed_rollbacks_that_are_refused(maintenance_key, edit, reason):
    key, trusted = maintenance_key
    doc = edit(contract.sign_command("rollback", "cell-1", "r1", 1000.0, key))
    with pytest.raises(signing.SignatureError, match=reason):
        contract.check_signed_command(doc, "rollback", "cell-1", trusted, 1000.0)


def test_a_replayed_signed_command_is_refused_after_its_time(maintenance_key):
    key, trusted = maintenance_key
    doc = contract.sign_command("rollback", "cell-1", "r1", 1000.0, key)
    late = 1000.0 + contract.SIGNED_COMMAND_TTL_S + 1
    with pytest.raises(signing.SignatureError, match="accepted within"):
        contract.check_signed_command(doc, "rollback", "cell-1", trusted, late)


def test_a_topic_outside_the_contract_is_refused_where_it_is_named(tmp_path):
    from lineside.daemon.config import Mqtt
    from lineside.daemon.transport.link import Link
    from lineside.daemon.transport.outbox import Outbox

    link = Link(Mqtt(), "press-3", Outbox(tmp_path / "o.db", 10, 10_000), print)
    assert link.topic("status") == "lineside/press-3/status"
    assert len({link.topic(t) for t in contract.TOPICS}) == len(contract.TOPICS)
    with pytest.raises(ValueError, match="not one of the contract's topics"):
        link.topic("inspections")
