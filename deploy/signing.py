"""Ed25519 keys and bundle signatures.

The signature covers the canonical manifest bytes; the manifest holds the SHA-256 of every other
file, so one signature vouches for the whole bundle. A bundle's `signature` file is JSON:
`{"algorithm": "ed25519", "key_id": ..., "signature": <base64>}`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_NAME = "signature"


class SignatureError(Exception):
    """A signature or key problem; one line for a person."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write `<name>.key` (private, mode 0600) and `<name>.pub`; refuse to overwrite."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (private_path, public_path):
        if p.exists():
            raise SignatureError(f"{p} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create with 0600 from the start, so the key is never readable by others, even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read key ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise SignatureError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key")
    return key


def load_trusted(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Every `*.pub` in a folder, by key id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SignatureError(f"{directory}: no such trusted-keys folder")
    keys = {}
    for path in sorted(directory.glob("*.pub")):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError:
            raise SignatureError(f"{path}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"{path}: not an Ed25519 key")
        keys[key_id(key)] = key
    return keys


def signature_file(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    doc = {
        "algorithm": "ed25519",
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode(),
    }
    return json.dumps(doc, sort_keys=True).encode()


def check(manifest_bytes: bytes, signature: bytes, trusted: dict[str, Ed25519PublicKey]) -> str:
    """Verify a signature file against trusted keys; returns the key id that signed."""
    try:
        doc = json.loads(signature)
        kid, sig = doc["key_id"], base64.b64decode(doc["signature"], validate=True)
        if doc.get("algorithm") != "ed25519":
            raise SignatureError(f"unsupported signature algorithm {doc.get('algorithm')!r}")
    except (ValueError, KeyError, TypeError):
        raise SignatureError("signature file is malformed") from None
    if kid not in trusted:
        raise SignatureError(f"signed by an untrusted key (key id {str(kid)[:16]})")
    try:
        trusted[kid].verify(sig, manifest_bytes)
    except InvalidSignature:
        raise SignatureError("signature does not match the manifest") from None
    return kid
