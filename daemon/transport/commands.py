"""Commands arriving on `cmd/<name>`: parsed and checked before anything acts on them.

Every command gets a reply on `cmd/reply`, carrying the request's `id` when it had one, so a
malformed or unknown command is answered rather than silently dropped. Ids are strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lineside.deploy.contract import COMMANDS, LABELS, MAX_ID_CHARS

MAX_COMMAND_BYTES = 64 * 1024  # bundles (cmd/model) are checked by their own size limit
SIGNATURE_FIELDS = {"command", "station", "issued_at", "key_id", "signature"}
LABEL_FIELDS = {"seq", "label", "by", "note"}
MAX_BY_CHARS = 64
MAX_NOTE_CHARS = 500


class CommandError(ValueError):
    """A command that cannot be acted on; the message goes back in the reply."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    name: str
    id: str | None
    part_id: str | None = None
    body: bytes = b""
    doc: dict = field(default_factory=dict, compare=False)  # the parsed JSON, for signatures


def _json_object(payload: bytes) -> dict:
    if not payload.strip():
        return {}
    try:
        doc = json.loads(payload)
    # Deeply nested arrays raise RecursionError inside json; they are as malformed as any.
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CommandError("payload is not valid JSON") from None
    if not isinstance(doc, dict):
        raise CommandError(f"payload must be a JSON object, got {type(doc).__name__}")
    return doc


def _request_id(doc: dict) -> str | None:
    rid = doc.get("id")
    if rid is None:
        return None
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID_CHARS:
        raise CommandError(f"'id' must be a string of 1 to {MAX_ID_CHARS} characters")
    return rid


def parse(name: str, payload: bytes) -> Command:
    """Raise CommandError (with `.request_id` when one could be read) for anything malformed."""
    if name not in COMMANDS:
        raise CommandError(f"unknown command '{name[:64]}'; known: {', '.join(COMMANDS)}")
    if name == "model":
        return Command(name, None, body=payload)
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"payload of {len(payload)} bytes is over {MAX_COMMAND_BYTES}")
    doc = _json_object(payload)
    request_id = _request_id(doc)
    extra = {"rollback": SIGNATURE_FIELDS, "label": LABEL_FIELDS}.get(name, set())
    allowed = {"id", "part_id"} | extra
    unknown = set(doc) - allowed
    if unknown:
        listed = ", ".join(sorted(map(str, unknown)))[:200]
        raise CommandError(f"unknown field(s): {listed}", request_id)
    part_id = doc.get("part_id")
    if part_id is not None and (not isinstance(part_id, str) or len(part_id) > 256):
        raise CommandError("'part_id' must be a string of at most 256 characters", request_id)
    if part_id is not None and name not in ("trigger", "label"):
        raise CommandError(f"'part_id' is only for trigger and label, not {name}", request_id)
    if name == "label":
        check_label(doc, request_id)
    return Command(name, request_id, part_id=part_id, doc=doc)


def check_label(doc: dict, request_id: str | None = None) -> None:
    """`{"seq": 1234 | "part_id": "...", "label": "good" | "defective", "by": "...",
    "note": "..."}`"""
    seq = doc.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise CommandError("'seq' must be a non-negative integer", request_id)
    if seq is None and doc.get("part_id") is None:
        raise CommandError("label needs 'seq' or 'part_id' of a kept part", request_id)
    if doc.get("label") not in LABELS:
        raise CommandError(f"'label' must be one of: {', '.join(LABELS)}", request_id)
    by = doc.get("by")
    if by is not None and (not isinstance(by, str) or len(by) > MAX_BY_CHARS):
        raise CommandError(
            f"'by' must be a string of at most {MAX_BY_CHARS} characters", request_id
        )
    note = doc.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
        raise CommandError(
            f"'note' must be a string of at most {MAX_NOTE_CHARS} characters", request_id
        )
