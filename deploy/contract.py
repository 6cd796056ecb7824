"""MQTT topic names, built in one place: `<prefix>/<station>/<name>`."""

from __future__ import annotations

COMMANDS = ("trigger", "reload", "model", "rollback")


def topic(prefix: str, station: str, name: str) -> str:
    return f"{prefix}/{station}/{name}"


def command_filter(prefix: str, station: str) -> str:
    """The subscription that receives every command for this station."""
    return topic(prefix, station, "cmd/#")


def command_name(prefix: str, station: str, full_topic: str) -> str | None:
    """'trigger' for `<prefix>/<station>/cmd/trigger`; None for our own replies or other topics."""
    head = topic(prefix, station, "cmd/")
    if not full_topic.startswith(head):
        return None
    name = full_topic[len(head) :]
    return None if name == "reply" else name
