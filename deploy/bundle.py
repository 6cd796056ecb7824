"""Pack, sign and read `.lsb` bundles: a zip of manifest.json, model.tflite, selftest/ and a
signature.

Reading checks, in this order: size, zip sanity from the directory alone (member count, no
absolute or parent-relative names, bounded unpacked size), the signature against trusted keys
(required when keys are given) before any other member is inflated, the members against the
manifest's list, the SHA-256 of every file, and the manifest schema. Nothing in a bundle is
unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from lineside.deploy import signing
from lineside.deploy.manifest import Manifest

MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.tflite"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
UNPACK_FACTOR = 4  # unpacked size may be at most this multiple of the size limit
MAX_MEMBERS = 64
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SIGNATURE_BYTES = 4096
# What a damaged or hostile member raises while being read: a bad CRC or stream, an encrypted
# entry (RuntimeError), an unknown compression method (NotImplementedError).
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
)


class BundleError(Exception):
    """A bundle that cannot be used; the message is one line for a person."""


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    files: dict[str, bytes]
    sha256: str
    signed_by: str | None = None
    checks: list[str] = field(default_factory=list, compare=False)

    @property
    def model_bytes(self) -> bytes:
        return self.files[MODEL_NAME]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_manifest_bytes(manifest: dict) -> bytes:
    """The exact bytes stored and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def pack(manifest: dict, files: dict[str, bytes], key: Ed25519PrivateKey | None = None) -> bytes:
    """Zip the files with a manifest that records the SHA-256 of each; sign when given a key."""
    manifest = {**manifest, "files": {name: sha256_hex(data) for name, data in files.items()}}
    Manifest.model_validate(manifest)
    manifest_bytes = canonical_manifest_bytes(manifest)
    members = {MANIFEST_NAME: manifest_bytes, **files}
    if key is not None:
        members[signing.SIGNATURE_NAME] = signing.signature_file(manifest_bytes, key)
    return zip_members(members)


def sign(data: bytes, key: Ed25519PrivateKey) -> bytes:
    """The same bundle with its signature replaced by one made with `key`."""
    members = _unzip(data, len(data) * UNPACK_FACTOR + 1)
    if MANIFEST_NAME not in members:
        raise BundleError(f"no {MANIFEST_NAME} in the bundle")
    members[signing.SIGNATURE_NAME] = signing.signature_file(members[MANIFEST_NAME], key)
    return zip_members(members)


def zip_members(members: dict[str, bytes]) -> bytes:
    """A deflated zip of the members, in the order given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
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
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(
    path: Path,
    trusted: dict[str, Ed25519PublicKey] | None = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> Bundle:
    """Read and verify a bundle file; raise BundleError with the reason when it is not usable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: no such bundle file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read bundle ({exc.strerror})") from None
    try:
        return parse(data, trusted, max_bytes)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def parse(
    data: bytes,
    trusted: dict[str, Ed25519PublicKey] | None = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> Bundle:
    """Verify bundle bytes. Given `trusted` keys (even none), a valid signature is required."""
    checks = []
    if len(data) > max_bytes:
        raise BundleError(f"bundle is {len(data)} bytes, over the {max_bytes} limit")
    checks.append(f"size {len(data)} bytes, within {max_bytes}")
    with _open_zip(data) as zf:
        infos = _directory(zf, max_bytes * UNPACK_FACTOR)
        checks.append(f"zip: {len(infos)} files, safe names, unpacked size bounded")
        if MANIFEST_NAME not in infos:
            raise BundleError(f"no {MANIFEST_NAME} in the bundle")
        manifest_bytes = _member(zf, infos.pop(MANIFEST_NAME), MAX_MANIFEST_BYTES)
        sig_info = infos.pop(signing.SIGNATURE_NAME, None)
        signature = _member(zf, sig_info, MAX_SIGNATURE_BYTES) if sig_info else None
        # Nothing else is inflated before the signature holds: an unsigned bundle costs a box
        # no more than reading its manifest.
        signed_by = _check_signature(manifest_bytes, signature, trusted, checks)
        raw = _manifest_json(manifest_bytes)
        _check_listed(raw.get("files"), set(infos))
        files = {name: _member(zf, info, info.file_size) for name, info in infos.items()}
    _check_hashes(raw["files"], files, checks)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "".join(f"{p}: " for p in err["loc"])
        raise BundleError(
            f"{MANIFEST_NAME}: {where}{err['msg'].removeprefix('Value error, ')}"
        ) from None
    checks.append(f"manifest schema version {manifest.schema_version}")
    if MODEL_NAME not in files:
        raise BundleError(f"no {MODEL_NAME} in the bundle")
    return Bundle(manifest, files, sha256_hex(data), signed_by, checks)


def _check_signature(manifest_bytes, signature, trusted, checks) -> str | None:
    if trusted is None:
        checks.append("signature: not checked (no trusted keys given)")
        return None
    if signature is None:
        raise BundleError("bundle is not signed, and this box requires signed bundles")
    try:
        kid = signing.check(manifest_bytes, signature, trusted)
    except signing.SignatureError as exc:
        raise BundleError(str(exc)) from None
    checks.append(f"signature: valid, by trusted key {kid}")
    return kid


def _manifest_json(manifest_bytes: bytes) -> dict:
    try:
        raw = json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{MANIFEST_NAME} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{MANIFEST_NAME} is not a JSON object")
    return raw


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, *_MEMBER_ERRORS):
        raise BundleError("not a bundle (not a zip file, or truncated)") from None


def _directory(zf: zipfile.ZipFile, max_unpacked: int) -> dict[str, zipfile.ZipInfo]:
    """The members by name, checked from the zip's directory without inflating anything."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"bundle has {len(infos)} files, over the limit of {MAX_MEMBERS}")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in Path(name).parts:
            raise BundleError(f"unsafe file name in bundle: {name!r}")
        total += info.file_size
        if total > max_unpacked:
            raise BundleError(f"bundle unpacks to more than the size limit ({max_unpacked})")
    named = {i.filename: i for i in infos}
    if len(named) != len(infos):
        raise BundleError("bundle has two files with the same name")
    return named


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise BundleError(f"{info.filename} is {info.file_size} bytes, over its {limit} limit")
    try:
        return _read_member(zf, info)
    except _MEMBER_ERRORS as exc:
        raise BundleError(f"damaged zip member {info.filename!r} ({exc})") from None


def _unzip(data: bytes, max_unpacked: int) -> dict[str, bytes]:
    with _open_zip(data) as zf:
        infos = _directory(zf, max_unpacked)
        return {name: _member(zf, info, info.file_size) for name, info in infos.items()}


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    # Read no more than the header promises, so a forged size cannot inflate past the limit.
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ValueError(f"{info.filename} is not the size its header says")
    return data


def _check_listed(listed: object, present: set[str]) -> None:
    if not isinstance(listed, dict):
        raise BundleError(f"{MANIFEST_NAME}: files: missing or not a mapping")
    if missing := sorted(set(listed) - present):
        raise BundleError(f"files listed in the manifest are missing: {', '.join(missing)}")
    if extra := sorted(present - set(listed)):
        raise BundleError(f"files not listed in the manifest: {', '.join(extra)}")


def _check_hashes(listed: dict, files: dict[str, bytes], checks: list[str]) -> None:
    for name, expected in listed.items():
        if sha256_hex(files[name]) != expected:
            raise BundleError(f"{name}: SHA-256 does not match the manifest")
    checks.append(f"SHA-256 of {len(listed)} files match the manifest")
