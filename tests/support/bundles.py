"""Build good and deliberately broken bundles from a real trained one."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

from lineside.deploy import bundle as bundles
from lineside.deploy import signing


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


zip_members = bundles.zip_members


def repack(
    data: bytes,
    key=None,
    edit_manifest: Callable[[dict], None] | None = None,
    edit_files: Callable[[dict], None] | None = None,
    rehash: bool = True,
) -> bytes:
    """Change a bundle's manifest or files, re-hash (unless told not to) and sign with `key`."""
    files = members(data)
    manifest = json.loads(files.pop("manifest.json"))
    files.pop(signing.SIGNATURE_NAME, None)
    if edit_files:
        edit_files(files)
    if edit_manifest:
        edit_manifest(manifest)
    if rehash:
        manifest["files"] = {n: bundles.sha256_hex(d) for n, d in files.items()}
    manifest_bytes = bundles.canonical_manifest_bytes(manifest)
    out = {"manifest.json": manifest_bytes, **files}
    if key is not None:
        out[signing.SIGNATURE_NAME] = signing.signature_file(manifest_bytes, key)
    return zip_members(out)


def setting(**changes) -> Callable[[dict], None]:
    """A manifest edit for `repack`: dotted paths to new values, `{"input.shape": [1, 8]}`."""

    def apply(manifest: dict) -> None:
        for path, value in changes.items():
            node = manifest
            *parents, last = path.split(".")
            for p in parents:
                node = node[p]
            node[last] = value

    return apply


def with_version(data: bytes, version: str, key) -> bytes:
    def edit(m: dict) -> None:
        m["model"]["version"] = version

    return repack(data, key, edit)
