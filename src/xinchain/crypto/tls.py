"""Certificates for mutual TLS between nodes.

Each member org runs a small CA (ECDSA P-256, self-signed); its certificate is listed in genesis.
The CA signs its nodes' certificates, whose common name is the node's name. A connection is
accepted only if the peer's certificate chains to a CA in genesis *and* was issued by the CA of
the org that genesis says runs that node.

Transport keys are separate from the chain's signing suite: TLS authenticates and encrypts the
link, while every consensus message and transaction carries its own suite signature.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates outlive any demo or test; a real deployment rotates them through governance.
certificate_days = 3650


@dataclass(frozen=True)
class CertifiedKey:
    certificate_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ca_common_name(org: str) -> str:
    return f"xinchain org {org} CA"


def make_org_ca(org: str) -> CertifiedKey:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name(ca_common_name(org))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=certificate_days))
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
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_node_certificate(ca: CertifiedKey, node_name: str) -> CertifiedKey:
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(node_name))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=certificate_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertifiedKey(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def tls_context(
    *, server: bool, certificate_path: Path, key_path: Path, ca_bundle_pem: str
) -> ssl.SSLContext:
    """A TLS 1.3 context that presents our certificate and demands one from the peer."""
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    context = ssl.create_default_context(purpose, cadata=ca_bundle_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False  # peers are identified by certificate name, checked after
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certificate_path, key_path)
    return context


def key_pin(certificate_pem_or_der: bytes) -> str:
    """The certificate's key pin: SHA-256 of its SubjectPublicKeyInfo (DER), as hex. Genesis
    and governance register each node's pin; a renewed certificate on the same key keeps it."""
    if certificate_pem_or_der.startswith(b"-----BEGIN"):
        certificate = x509.load_pem_x509_certificate(certificate_pem_or_der)
    else:
        certificate = x509.load_der_x509_certificate(certificate_pem_or_der)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return digest.finalize().hex()


@dataclass(frozen=True)
class PeerIdentity:
    name: str  # the certificate's common name: the node's name
    issuer: str  # the issuing CA's common name: its org's CA
    key_pin: str  # key_pin() of the certificate


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerIdentity | None:
    """Who a verified peer certificate names, who issued it, and its key pin."""
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    der = ssl_object.getpeercert(binary_form=True)
    if not certificate or not der:
        return None

    def common_name(field: str) -> str:
        for entry in certificate.get(field, ()):
            for pair in entry:
                if isinstance(pair, tuple) and pair[0] == "commonName":
                    return str(pair[1])
        return ""

    return PeerIdentity(common_name("subject"), common_name("issuer"), key_pin(der))
