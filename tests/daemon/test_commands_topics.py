"""Command parsing and topic names: every malformed command is a CommandError with a reason."""

from __future__ import annotations

import json

import pytest

from lineside.daemon import commands
from lineside.deploy import contract


def test_topics_are_built_in_one_place():
    assert contract.topic("lineside", "cell-1", "verdict") == "lineside/cell-1/verdict"
    assert contract.command_filter("p", "s") == "p/s/cmd/#"
    assert contract.command_name("p", "s", "p/s/cmd/trigger") == "trigger"
    assert contract.command_name("p", "s", "p/s/cmd/reply") is None
    assert contract.command_name("p", "s", "p/other/cmd/trigger") is None


GOOD = [
    ("trigger", b"", commands.Command("trigger", None)),
    ("trigger", b'{"id": 7, "part_id": "A-1"}', commands.Command("trigger", "7", "A-1")),
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
    "part_id wrong type": ("trigger", b'{"part_id": 3}', "'part_id' must be"),
    "part_id too long": ("trigger", json.dumps({"part_id": "x" * 300}).encode(), "at most 256"),
    "unknown field": ("trigger", b'{"id": 1, "speed": 9}', "unknown field"),
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
    doc = json.loads(commands.reply("trigger", "a", False, error="boom"))
    assert doc == {"id": "a", "command": "trigger", "ok": False, "error": "boom"}
