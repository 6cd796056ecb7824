"""Packing and reading bundles; every broken bundle is refused with a one-line reason."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import pytest

from lineside.deploy import bundle as bundles
from lineside.deploy.bundle import BundleError

MANIFEST = {
    "schema_version": 1,
    "model": {
        "name": "m",
        "version": "1",
        "architecture": "test",
        "created_at": "2026-01-01T00:00:00",
        "trainer_version": "0",
    },
    "input": {"shape": [1, 8, 8, 1], "dtype": "int8", "scale": 0.0039, "zero_point": -128},
    "output": {"shape": [1, 8, 8, 1], "dtype": "int8", "scale": 0.0039, "zero_point": -128},
    "frame": {"height": 8, "width": 8, "channels": 1},
    "preprocess": {"size": [8, 8]},
    "postprocess": {"pixel_threshold": 0.01, "min_cluster_px": 2},
    "thresholds": {"review_at": 0.0, "fail_at": 0.1},
}
MODEL = b"TFL3 not really a model, but hashed like one"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_round_trip_records_hashes():
    b = bundles.parse(bundles.pack(MANIFEST, {"model.tflite": MODEL}))
    assert b.model_bytes == MODEL
    assert b.manifest.files == {"model.tflite": bundles.sha256_hex(MODEL)}
    assert b.manifest.thresholds.fail_at == 0.1


def test_manifest_is_stored_canonically():
    members = _members(bundles.pack(MANIFEST, {"model.tflite": MODEL}))
    raw = members["manifest.json"]
    assert raw == bundles.canonical_manifest_bytes(json.loads(raw))


def _tampered(**changes) -> bytes:
    members = _members(bundles.pack(MANIFEST, {"model.tflite": MODEL}))
    manifest = json.loads(members["manifest.json"])
    for key, value in changes.items():
        manifest[key] = value
    members["manifest.json"] = json.dumps(manifest).encode()
    return _zip(members)


good = bundles.pack(MANIFEST, {"model.tflite": MODEL})
BROKEN = {
    "not a zip": (b"hello, not a zip", "not a zip"),
    "truncated": (good[: len(good) // 2], "not a zip"),
    "empty": (b"", "not a zip"),
    "no manifest": (_zip({"model.tflite": MODEL}), "no manifest.json"),
    "manifest not JSON": (_zip({"manifest.json": b"{", "model.tflite": MODEL}), "not valid JSON"),
    "path traversal": (_zip({"../evil": b"x", "manifest.json": b"{}"}), "unsafe file name"),
    "absolute name": (_zip({"/etc/evil": b"x"}), "unsafe file name"),
    "hash mismatch": (
        _zip({**_members(good), "model.tflite": MODEL + b"!"}),
        "SHA-256 does not match",
    ),
    "unlisted file": (_zip({**_members(good), "extra.bin": b"x"}), "not listed"),
    "listed file missing": (
        _zip({"manifest.json": _members(good)["manifest.json"]}),
        "missing: model.tflite",
    ),
    "unknown schema": (_tampered(schema_version=99), "schema_version 99 is not supported"),
    "unknown key": (_tampered(surprise=1), "surprise"),
    "bad thresholds": (_tampered(thresholds={"review_at": 0.5, "fail_at": 0.1}), "below review_at"),
}


@pytest.mark.parametrize("data,reason", BROKEN.values(), ids=BROKEN.keys())
def test_broken_bundles_are_refused(data, reason):
    with pytest.raises(BundleError, match=reason) as info:
        bundles.parse(data)
    assert "\n" not in str(info.value)


def test_zip_bomb_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.tflite", b"\0" * 1_000_000)  # compresses to about 1 kB
    assert len(buf.getvalue()) < 10_000
    with pytest.raises(BundleError, match="unpacks to more than the size limit"):
        bundles.parse(buf.getvalue(), max_bytes=10_000)


def test_read_names_the_file(tmp_path):
    with pytest.raises(BundleError, match=r"missing\.lsb: no such bundle file"):
        bundles.read(tmp_path / "missing.lsb")


def test_write_atomic_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "models" / "m.lsb"
    bundles.write_atomic(target, b"old")
    bundles.write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in target.parent.iterdir()] == ["m.lsb"]


def _zip_of(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_an_unsigned_bundle_is_refused_before_its_members_are_inflated():
    """A keyless client cannot make a box inflate a big member: the signature comes first."""
    manifest = json.dumps({"files": {"model.tflite": "0" * 64}}).encode()
    data = _zip_of({"manifest.json": manifest, "model.tflite": b"\0" * 40_000_000})
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(bundles.BundleError, match="not signed"):
            bundles.parse(data, trusted={}, max_bytes=64 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak} bytes allocated while refusing"


def test_too_many_members_are_refused_from_the_directory():
    data = _zip_of({f"f{i}": b"" for i in range(bundles.MAX_MEMBERS + 1)})
    with pytest.raises(bundles.BundleError, match="over the limit"):
        bundles.parse(data)


@pytest.mark.parametrize(
    "member,field,value",
    [("manifest.json", "flag_bits", 0x1), ("model.tflite", "compress_type", 99)],
    ids=["encrypted manifest", "compression method 99"],
)
def test_unreadable_members_are_a_bundle_error(member, field, value):
    manifest = json.dumps({"files": {"model.tflite": "0" * 64}}).encode()
    data = bytearray(
        _zip_of({"manifest.json": manifest, "model.tflite": b"x" * 100}, zipfile.ZIP_STORED)
    )
    name = member.encode()
    offsets = {"flag_bits": (6, 8), "compress_type": (8, 10)}[field]
    for sig, offset in zip((b"PK\x03\x04", b"PK\x01\x02"), offsets, strict=True):
        at = data.find(sig)
        while at != -1:
            start = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[start : start + len(name)] == name:
                data[at + offset : at + offset + 2] = value.to_bytes(2, "little")
            at = data.find(sig, at + 4)
    with pytest.raises(bundles.BundleError, match="damaged zip member"):
        bundles.parse(bytes(data))
