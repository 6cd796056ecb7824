"""A hostile plant's barrage of commands: 290 of them, 16 carrying bad bundles of every kind.

None of them may change what the station does: each is answered with a refusal. The bundles are
made from a real one (`good`, signed with `key`); `rogue` is a key the station does not trust.
"""

from __future__ import annotations

import io
import json
import zipfile

from tests.support import bundles as kit

COMMANDS = 290


def _many_members(good: bytes, n: int = 50_000) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in kit.members(good).items():
            zf.writestr(name, data)
        for i in range(n):
            zf.writestr(f"m/{i}", b"")
    return buf.getvalue()


def _padded(good: bytes, mb: int = 240) -> bytes:
    """The signed members and a padding member that inflates to `mb` MB."""
    return kit.zip_members({**kit.members(good), "pad.bin": b"\0" * (mb * 1_000_000)})


def bad_bundles(good: bytes, key, rogue) -> list[bytes]:
    """16 bundles, each refused for another reason."""
    files = kit.members(good)
    tampered = dict(files)
    manifest = json.loads(tampered["manifest.json"])
    manifest["thresholds"]["fail_at"] = 1e9
    tampered["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    selftest = json.loads(files["manifest.json"])["selftest"]
    # Past the tolerance whatever the score's scale.
    shift = 3 * selftest["tolerance"] + 0.5
    shifted = [{**img, "score": img["score"] + shift} for img in selftest["images"]]

    def put(name: str, data: bytes):
        return lambda f: f.__setitem__(name, data)

    return [
        good[: len(good) // 3],
        b"MZ\x90\x00 not a bundle" * 100,
        kit.zip_members(tampered),
        kit.repack(good, rogue),
        kit.repack(good, None),
        kit.repack(good, key, edit_files=put("../etc/cron.d/x", b"x")),
        _padded(good),
        _many_members(good),
        good + b"\0" * 9_000_000,
        kit.repack(good, key, edit_files=put("model.tflite", b"TFL3" + b"\0" * 64), rehash=False),
        kit.repack(good, key, kit.setting(schema_version=99)),
        kit.repack(good, key, edit_files=put("model.tflite", b"not a flatbuffer" * 8)),
        kit.repack(good, key, kit.setting(**{"input.shape": [1, 64, 64, 1]})),
        kit.repack(good, key, kit.setting(**{"selftest.images": shifted})),
        kit.repack(good, key, kit.setting(**{"model.created_at": "2001-01-01T00:00:00+00:00"})),
        kit.zip_members({"model.tflite": b"x"}),
    ]


def _small_commands() -> list[tuple[str, bytes]]:
    """Malformed and refused commands that carry no bundle."""
    deep = b"[" * 3000 + b"]" * 3000
    return [
        ("trigger", deep),
        ("reload", b"{not json"),
        ("rollback", b'{"id": "r", "signature": "AAAA"}'),
        ("trigger", b'{"id": true}'),
        ("trigger", json.dumps({"id": "x" * 60_000}).encode()),
        ("label", b'{"seq": "seven", "label": "good"}'),
        ("export", b'{"unknown": 1}'),
        ("reload", b'{"id": "r", "config": "/etc/passwd"}'),
        ("no-such-command", b"{}"),
        ("trigger", b"\xff\xfe\x00garbage"),
        ("rollback", deep),
        ("trigger", b"x" * 70_000),
    ]


def commands(good: bytes, key, rogue) -> list[tuple[str, bytes]]:
    """The barrage: the 16 bad bundles spread among 274 small hostile commands."""
    bundles = [("model", b) for b in bad_bundles(good, key, rogue)]
    small = _small_commands()
    out: list[tuple[str, bytes]] = []
    step = (COMMANDS - len(bundles)) // len(bundles)
    for i in range(COMMANDS - len(bundles)):
        if i % step == 0 and bundles:
            out.append(bundles.pop(0))
        out.append(small[i % len(small)])
    out.extend(bundles)
    assert len(out) == COMMANDS
    return out
