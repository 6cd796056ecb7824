"""Pack and read `.lsb` bundles: a zip of manifest.json, model.tflite and friends.

Reading checks everything it can without running the model: zip sanity, manifest schema and the
SHA-256 of every file the manifest lists. Nothing in a bundle is ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from lineside.deploy.manifest import Manifest

MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.tflite"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024


class BundleError(Exception):
    """A bundle that cannot be used; the message is one line for a person."""


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    files: dict[str, bytes]
    sha256: str

    @property
    def model_bytes(self) -> bytes:
        return self.files[MODEL_NAME]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_manifest_bytes(manifest: dict) -> bytes:
    """The exact bytes stored (and, later, signed): sorted keys, no spaces, UTF-8."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def pack(manifest: dict, files: dict[str, bytes]) -> bytes:
    """Zip the files with a manifest that records the SHA-256 of each of them."""
    manifest = {**manifest, "files": {name: sha256_hex(data) for name, data in files.items()}}
    Manifest.model_validate(manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST_NAME, canonical_manifest_bytes(manifest))
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> Bundle:
    """Read and verify a bundle file; raise BundleError with the reason when it is not usable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: no such bundle file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read bundle ({exc.strerror})") from None
    try:
        return parse(data)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def parse(data: bytes) -> Bundle:
    """Verify bundle bytes: size, zip, manifest schema, file hashes."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is {len(data)} bytes, over the {MAX_BUNDLE_BYTES} limit")
    files = _unzip(data)
    if MANIFEST_NAME not in files:
        raise BundleError(f"no {MANIFEST_NAME} in the bundle")
    try:
        raw = json.loads(files.pop(MANIFEST_NAME))
        manifest = Manifest.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{MANIFEST_NAME} is not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "manifest"
        raise BundleError(f"{MANIFEST_NAME}: {where}: {err['msg']}") from None
    _check_hashes(manifest, files)
    return Bundle(manifest=manifest, files=files, sha256=sha256_hex(data))


def _unzip(data: bytes) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BundleError("not a bundle (not a zip file, or truncated)") from None
    with zf:
        total = 0
        for info in zf.infolist():
            name = info.filename
            if name.startswith("/") or ".." in Path(name).parts:
                raise BundleError(f"unsafe file name in bundle: {name!r}")
            total += info.file_size
            if total > MAX_BUNDLE_BYTES:
                raise BundleError("bundle unpacks to more than the size limit")
        try:
            return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BundleError(f"damaged zip member ({exc})") from None


def _check_hashes(manifest: Manifest, files: dict[str, bytes]) -> None:
    listed, present = set(manifest.files), set(files)
    if missing := sorted(listed - present):
        raise BundleError(f"files listed in the manifest are missing: {', '.join(missing)}")
    if extra := sorted(present - listed):
        raise BundleError(f"files not listed in the manifest: {', '.join(extra)}")
    for name, expected in manifest.files.items():
        if sha256_hex(files[name]) != expected:
            raise BundleError(f"{name}: SHA-256 does not match the manifest")
    if "model.tflite" not in files:
        raise BundleError("no model.tflite in the bundle")
