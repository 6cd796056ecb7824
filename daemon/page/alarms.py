"""The page's alarm banners: what is wrong, what it means for the parts, and what to check.

One pure function of the station's health, so every banner is raised and cleared by the state it
describes (a banner clears on the next refresh after its cause clears) and is tested without a
browser.
"""

from __future__ import annotations

from typing import TypedDict


class Alarm(TypedDict):
    kind: str  # camera, broker, outbox, drift
    level: str  # "alarm": parts are not judged or not reported; "warning": act soon
    title: str
    meaning: str
    check: str


def alarms(health: dict, drift: dict, outbox_rows: int, outbox_share: float) -> list[Alarm]:
    """The banners for the station's `health` and drift state; the most urgent first."""
    found = [
        a
        for a in (
            _camera(health),
            _broker(health),
            _outbox(health["outbox_depth"], outbox_rows, outbox_share),
            _drift(drift),
        )
        if a is not None
    ]
    return sorted(found, key=lambda a: a["level"] != "alarm")


def _camera(health: dict) -> Alarm | None:
    state = health["camera"]
    if state == "fault":
        return Alarm(
            kind="camera",
            level="alarm",
            title="Camera fault: frames are refused",
            meaning="The camera delivers frames unlike the ones the model was trained on "
            f"({health.get('camera_fault') or 'refused'}). Parts are not being judged.",
            check="Lens cap, lighting, focus and the camera's mounting; a camera swapped "
            "for another model or resolution.",
        )
    if state in ("reconnecting", "failed"):
        return Alarm(
            kind="camera",
            level="alarm",
            title="No frames from the camera" + (": given up" if state == "failed" else ""),
            meaning="No part is being inspected."
            + (" The station has stopped retrying." if state == "failed" else ""),
            check="The camera's cable, power and network; restart the service once it is back."
            if state == "failed"
            else "The camera's cable, power and network; the station reconnects by itself.",
        )
    return None


def _broker(health: dict) -> Alarm | None:
    if health["mqtt_connected"]:
        return None
    return Alarm(
        kind="broker",
        level="alarm",
        title="Broker down: results are not reaching SCADA",
        meaning=f"Parts are still judged here; {health['outbox_depth']} results wait in the "
        "outbox and are sent when the broker is back.",
        check="The network to the broker's host and the broker service (mosquitto).",
    )


def _outbox(depth: int, rows: int, share: float) -> Alarm | None:
    if depth < share * rows:
        return None
    return Alarm(
        kind="outbox",
        level="warning",
        title=f"Outbox filling: {depth} results waiting ({depth / rows:.0%} full)",
        meaning="When it is full, the oldest unsent results are dropped and lost to SCADA.",
        check="The broker connection; the outbox drains by itself once results can be sent.",
    )


def _drift(drift: dict) -> Alarm | None:
    if not drift.get("alarm"):
        return None
    out = [
        f"{name} average {c['ewma']:.4g} (reference {c['reference']:.4g})"
        for name, c in (drift.get("charts") or {}).items()
        if c.get("out")
    ]
    return Alarm(
        kind="drift",
        level="warning",
        title="Drift: the line has moved away from what the model learned",
        meaning="Verdicts may be wrong: " + ("; ".join(out) or "a measure left its limits") + ".",
        check="Lighting, the camera's position and focus, a new batch of material. If the "
        "parts are good, label them in the review queue and have the model retrained.",
    )
