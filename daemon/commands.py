"""Commands arriving on `cmd/<name>`: parsed and checked before anything acts on them.

Every command gets a reply on `cmd/reply`, carrying the request's `id` when it had one, so a
malformed or unknown command is answered rather than silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lineside.deploy.contract import COMMANDS

MAX_COMMAND_BYTES = 64 * 1024  # bundles (cmd/model) are checked by their own size limit


class CommandError(ValueError):
    """A command that cannot be acted on; the message goes back in the reply."""


@dataclass(frozen=True)
class Command:
    name: str
    id: str | None
    part_id: str | None = None
    body: bytes = b""


def _id_of(doc: object) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("id"), str | int):
        return str(doc["id"])
    return None


def parse(name: str, payload: bytes) -> Command:
    """Raise CommandError (with `.request_id` when one could be read) for anything malformed."""
    if name not in COMMANDS:
        raise _error(f"unknown command '{name[:64]}'; known: {', '.join(COMMANDS)}", None)
    if name == "model":
        return Command(name, None, body=payload)
    if len(payload) > MAX_COMMAND_BYTES:
        raise _error(f"payload of {len(payload)} bytes is over {MAX_COMMAND_BYTES}", None)
    doc: object = {}
    if payload.strip():
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _error("payload is not valid JSON", None) from None
    if not isinstance(doc, dict):
        raise _error(f"payload must be a JSON object, got {type(doc).__name__}", None)
    request_id = _id_of(doc)
    if "id" in doc and request_id is None:
        raise _error("'id' must be a string or an integer", None)
    unknown = set(doc) - {"id", "part_id"}
    if unknown:
        raise _error(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}", request_id)
    part_id = doc.get("part_id")
    if part_id is not None and (not isinstance(part_id, str) or len(part_id) > 256):
        raise _error("'part_id' must be a string of at most 256 characters", request_id)
    if part_id is not None and name != "trigger":
        raise _error(f"'part_id' is only for trigger, not {name}", request_id)
    return Command(name, request_id, part_id=part_id)


def _error(message: str, request_id: str | None) -> CommandError:
    err = CommandError(message)
    err.request_id = request_id
    return err


def reply(command: str, request_id: str | None, ok: bool, **fields) -> bytes:
    doc = {"id": request_id, "command": command, "ok": ok, **fields}
    return json.dumps(doc, separators=(",", ":")).encode()
