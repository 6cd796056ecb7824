"""OPC UA application certificates for tests (RSA, as Basic256Sha256 needs), made with asyncua's
own generator so they carry the URI and key usages OPC UA checks."""

from __future__ import annotations

from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID


def make(folder: Path, name: str, uri: str, server: bool = False) -> tuple[Path, Path]:
    """(certificate.der, key.pem) for an application with this URI."""
    key = cert_gen.generate_private_key()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        name,
        {"organizationName": "Lineside tests"},
        [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        extended=usage,
        days=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path
