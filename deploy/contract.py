"""The MQTT contract between a station and everyone who talks to it, defined once.

Topic names (`<prefix>/<station>/<name>`), command names, the reply format and the signed-command
format are used by the daemon and by `lineside-deploy`; nothing else builds these strings.
"""

from __future__ import annotations

import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lineside.deploy import signing

PAYLOAD_VERSION = 1
COMMANDS = ("trigger", "reload", "model", "rollback", "label", "export")
# What a station publishes, and under which name.
STATE_TOPICS = ("status", "model", "score", "verdict", "heatmap", "alarm")
EVENT_TOPICS = ("inspection", "stats", "label", "export")
LABELS = ("good", "defective")
# The layout of an export (`cmd/export`, `lineside-deploy pull`): a dataset the trainer reads.
EXPORT_FOLDERS = {"good": "train/good", "defective": "defective"}
EXPORT_INDEX = "labels.json"
REPLY = "cmd/reply"
TOPICS = (*STATE_TOPICS, *EVENT_TOPICS, REPLY)  # every topic a station publishes
MAX_ID_CHARS = 128
# A signed command is good for this long after it was issued (clocks on a plant network agree
# to within seconds; a replayed command older than this is refused).
SIGNED_COMMAND_TTL_S = 300.0


def topic(prefix: str, station: str, name: str) -> str:
    return f"{prefix}/{station}/{name}"


def command_topic(prefix: str, station: str, command: str) -> str:
    return topic(prefix, station, f"cmd/{command}")


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


def station_of(prefix: str, full_topic: str) -> tuple[str, str] | None:
    """(station, name) for any topic under `<prefix>/`, e.g. ('cell-1', 'cmd/reply')."""
    head = prefix + "/"
    if not full_topic.startswith(head):
        return None
    station, _, name = full_topic[len(head) :].partition("/")
    return (station, name) if station and name else None


def reply(command: str, request_id: str | None, ok: bool, **fields) -> bytes:
    """The JSON answer to every command, on `cmd/reply`."""
    doc = {"id": request_id, "command": command, "ok": ok, **fields}
    return json.dumps(doc, separators=(",", ":")).encode()


def _signed_part(doc: dict) -> bytes:
    body = {k: doc[k] for k in ("command", "station", "id", "issued_at")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_command(
    command: str, station: str, request_id: str, issued_at: float, key: Ed25519PrivateKey
) -> dict:
    """A command that only the holder of a trusted key can give: bound to one station, one
    request id and a time, so it cannot be replayed elsewhere or later."""
    doc = {"command": command, "station": station, "id": request_id, "issued_at": issued_at}
    doc["key_id"] = signing.key_id(key.public_key())
    doc["signature"] = base64.b64encode(key.sign(_signed_part(doc))).decode()
    return doc


def check_signed_command(
    doc: dict,
    command: str,
    station: str,
    trusted: dict[str, Ed25519PublicKey],
    now: float,
) -> str:
    """The key id that signed `doc`; raises signing.SignatureError naming what is wrong."""
    try:
        kid, sig = doc["key_id"], base64.b64decode(doc["signature"], validate=True)
        issued = float(doc["issued_at"])
        body = _signed_part(doc)
    except (KeyError, TypeError, ValueError):
        raise signing.SignatureError(
            "needs a signature: command, station, id, issued_at, "
            "key_id, signature (lineside-deploy signs it)"
        ) from None
    if doc["command"] != command or doc["station"] != station:
        raise signing.SignatureError("signed for another command or station")
    if abs(now - issued) > SIGNED_COMMAND_TTL_S:
        raise signing.SignatureError(
            f"issued {now - issued:.0f} s from now; accepted within {SIGNED_COMMAND_TTL_S:.0f} s"
        )
    if kid not in trusted:
        raise signing.SignatureError(f"signed by an untrusted key (key id {str(kid)[:16]})")
    try:
        trusted[kid].verify(sig, body)
    except InvalidSignature:
        raise signing.SignatureError("signature does not match the command") from None
    return kid
