"""TLS material of the emulated tenant, made once and kept in the state folder.

msal only talks to an `https` authority, so the token host needs a certificate: a private
CA (`ca.pem`, handed to clients as the CA file) signs a server certificate for 127.0.0.1 and
localhost. The first app registration also gets a client certificate (`app.pem`: private key
and certificate) for certificate authentication, with its SHA-1 and SHA-256 thumbprints.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_DAYS = 3650


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """Paths of the CA certificate and the server's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCertificate:
    """An app's certificate credential."""

    pem_file: Path  # private key + certificate, as msal and azure-identity read them
    cert_pem: str
    thumbprint_sha1: str
    thumbprint_sha256: str


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "entra-bulk emulated tenant"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(
        now + dt.timedelta(days=_VALID_DAYS)
    )


def ensure_server_tls(folder: Path) -> TlsFiles:
    """The CA and the loopback server certificate, created on first use."""
    files = TlsFiles(
        ca_file=folder / "ca.pem",
        cert_file=folder / "server.pem",
        key_file=folder / "server-key.pem",
    )
    if files.ca_file.exists() and files.cert_file.exists() and files.key_file.exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("entra-bulk emulator CA")
    ca_cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = _key()
    server_cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(files.key_file, _key_pem(server_key))
    return files


def ensure_client_certificate(folder: Path, name: str) -> ClientCertificate:
    """A self-signed client certificate for an app, created on first use."""
    pem_file = folder / f"{name}.pem"
    if not pem_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = _key()
        subject = _name(name)
        cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .sign(key, hashes.SHA256())
        )
        _write_private(pem_file, _key_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    data = pem_file.read_bytes()
    cert = x509.load_pem_x509_certificate(data)
    return ClientCertificate(
        pem_file=pem_file,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        thumbprint_sha1=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t is SHA-1 by definition
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
    )
