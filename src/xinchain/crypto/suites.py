"""Signature and hash suites, chosen once per chain in genesis.

* `ed25519-sha256` (default): Ed25519 signatures through libsodium (PyNaCl), SHA-256 hashes.
* `sm2-sm3`: the Chinese national algorithms that finance users require: SM2 signatures
  (GB/T 32918, with the default signer id 1234567812345678) through Tongsuo (`tongsuopy`), SM3
  hashes (GB/T 32905) through `cryptography`.

Public keys travel as raw bytes: 32 bytes for Ed25519, the 65-byte uncompressed point for SM2.
Private keys live in PEM files (PKCS#8, unencrypted; protect them with file permissions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.exceptions import UnsupportedAlgorithm as CryptoUnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes as crypto_hashes
from cryptography.hazmat.primitives import serialization as crypto_serialization
from cryptography.hazmat.primitives.asymmetric import ed25519 as crypto_ed25519
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec
from tongsuopy.crypto.exceptions import InvalidSignature as TongsuoInvalidSignature
from tongsuopy.crypto.exceptions import UnsupportedAlgorithm as TongsuoUnsupportedAlgorithm

from xinchain.errors import ConfigError

# Verifying keys are parsed once and kept: parsing an SM2 point costs as much as a verify.
# Bounded because keys come from peers and clients.
verifying_keys_cached_max = 4096


class PrivateKey(Protocol):
    def sign(self, message: bytes) -> bytes: ...

    def public_bytes(self) -> bytes: ...

    def to_pem(self) -> bytes: ...


class Suite(Protocol):
    name: str
    hash_name: str
    public_key_bytes: int

    def hash(self, data: bytes) -> bytes: ...

    def hash_chunks(self, chunks: Iterable[bytes]) -> bytes: ...

    def generate_key(self) -> PrivateKey: ...

    def load_private_pem(self, pem: bytes) -> PrivateKey: ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...

    def valid_public_key(self, public_key: bytes) -> bool: ...


# --- Ed25519 + SHA-256 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ed25519Key:
    signing_key: nacl.signing.SigningKey

    def sign(self, message: bytes) -> bytes:
        return bytes(self.signing_key.sign(message).signature)

    def public_bytes(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def to_pem(self) -> bytes:
        key = crypto_ed25519.Ed25519PrivateKey.from_private_bytes(bytes(self.signing_key))
        return key.private_bytes(
            crypto_serialization.Encoding.PEM,
            crypto_serialization.PrivateFormat.PKCS8,
            crypto_serialization.NoEncryption(),
        )


@lru_cache(maxsize=verifying_keys_cached_max)
def _ed25519_verify_key(public_key: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(public_key)


class Ed25519Sha256:
    name = "ed25519-sha256"
    hash_name = "sha256"
    public_key_bytes = 32

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def hash_chunks(self, chunks: Iterable[bytes]) -> bytes:
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        return digest.digest()

    def generate_key(self) -> PrivateKey:
        return Ed25519Key(nacl.signing.SigningKey.generate())

    def load_private_pem(self, pem: bytes) -> PrivateKey:
        try:
            key = crypto_serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, CryptoUnsupportedAlgorithm) as exc:
            raise ConfigError(f"not a PEM private key: {exc}") from exc
        if not isinstance(key, crypto_ed25519.Ed25519PrivateKey):
            raise ConfigError(
                f"expected an Ed25519 key for {self.name}, found {type(key).__name__}"
            )
        return Ed25519Key(nacl.signing.SigningKey(key.private_bytes_raw()))

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """libsodium's strict rules (docs/receipts.md, "Signatures"): S below the group order,
        R and the public key canonical and not of small order, R compared byte for byte with
        the recomputed point, the cofactorless equation [S]B = R + [k]A."""
        if len(public_key) != 32 or len(signature) != 64:
            return False
        try:
            _ed25519_verify_key(bytes(public_key)).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True

    def valid_public_key(self, public_key: bytes) -> bool:
        """A canonical encoding of a point of the prime-order subgroup (not the identity, no
        small-order component): what a key generated honestly always is."""
        return len(public_key) == 32 and bool(
            nacl.bindings.crypto_core_ed25519_is_valid_point(bytes(public_key))
        )


# --- SM2 + SM3 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sm2Key:
    key: tongsuo_ec.EllipticCurvePrivateKey

    def sign(self, message: bytes) -> bytes:
        return bytes(self.key.sign(message, tongsuo_ec.ECDSA(tongsuo_hashes.SM3())))

    def public_bytes(self) -> bytes:
        return bytes(
            self.key.public_key().public_bytes(
                tongsuo_serialization.Encoding.X962,
                tongsuo_serialization.PublicFormat.UncompressedPoint,
            )
        )

    def to_pem(self) -> bytes:
        return bytes(
            self.key.private_bytes(
                tongsuo_serialization.Encoding.PEM,
                tongsuo_serialization.PrivateFormat.PKCS8,
                tongsuo_serialization.NoEncryption(),
            )
        )


@lru_cache(maxsize=verifying_keys_cached_max)
def _sm2_public_key(public_key: bytes) -> tongsuo_ec.EllipticCurvePublicKey | None:
    try:
        return tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), public_key)
    except ValueError:
        return None


class Sm2Sm3:
    name = "sm2-sm3"
    hash_name = "sm3"
    public_key_bytes = 65

    def hash(self, data: bytes) -> bytes:
        return self.hash_chunks((data,))

    def hash_chunks(self, chunks: Iterable[bytes]) -> bytes:
        digest = crypto_hashes.Hash(crypto_hashes.SM3())
        for chunk in chunks:
            digest.update(chunk)
        return digest.finalize()

    def generate_key(self) -> PrivateKey:
        return Sm2Key(tongsuo_ec.generate_private_key(tongsuo_ec.SM2()))

    def load_private_pem(self, pem: bytes) -> PrivateKey:
        try:
            key = tongsuo_serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, TongsuoUnsupportedAlgorithm) as exc:
            raise ConfigError(f"not a PEM private key: {exc}") from exc
        if not isinstance(key, tongsuo_ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, tongsuo_ec.SM2
        ):
            raise ConfigError(f"expected an SM2 key for {self.name}, found {type(key).__name__}")
        return Sm2Key(key)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Strict DER only (docs/receipts.md, "Signatures"): exactly SEQUENCE {INTEGER r,
        INTEGER s} in minimal form with nothing after it, 1 <= r, s <= n - 1; then GB/T
        32918.2 verification with the default signer id."""
        if len(public_key) != 65 or sm2_signature_integers(signature) is None:
            return False
        key = _sm2_public_key(bytes(public_key))
        if key is None:
            return False
        try:
            key.verify(signature, message, tongsuo_ec.ECDSA(tongsuo_hashes.SM3()))
        except TongsuoInvalidSignature:
            return False
        except Exception:  # Tongsuo raises InternalError for malformed DER: not a signature
            return False
        return True

    def valid_public_key(self, public_key: bytes) -> bool:
        """An uncompressed point 04 || x || y on the SM2 curve (never the point at infinity,
        which has no such encoding)."""
        return (
            len(public_key) == 65
            and public_key[0] == 4
            and _sm2_public_key(bytes(public_key)) is not None
        )


# The order n of the SM2 curve's base point (GB/T 32918.5).
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def sm2_signature_integers(signature: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER signature in its one strict form, or None. DER here means: tag 0x30 and
    a one-byte length equal to the rest (a signature is at most 72 bytes, so the short form);
    two INTEGERs, each tag 0x02, a one-byte length of 1 to 33, big-endian two's complement in
    the fewest bytes (a leading 0x00 only when the next byte's top bit is set), positive; and
    1 <= r, s <= n - 1."""
    if not 8 <= len(signature) <= 72 or signature[0] != 0x30 or signature[1] != len(signature) - 2:
        return None
    integers = []
    position = 2
    for _ in range(2):
        if position + 2 > len(signature) or signature[position] != 0x02:
            return None
        length = signature[position + 1]
        body = signature[position + 2 : position + 2 + length]
        if not 1 <= length <= 33 or len(body) != length:
            return None
        if body[0] & 0x80:  # negative
            return None
        if length > 1 and body[0] == 0 and not body[1] & 0x80:  # not the fewest bytes
            return None
        integers.append(int.from_bytes(body, "big"))
        position += 2 + length
    if position != len(signature):
        return None
    r, s = integers
    if not (1 <= r < SM2_ORDER and 1 <= s < SM2_ORDER):
        return None
    return r, s


SUITES: dict[str, Suite] = {suite.name: suite for suite in (Ed25519Sha256(), Sm2Sm3())}
DEFAULT_SUITE = Ed25519Sha256.name


def suite_named(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise ConfigError(
            f"unknown crypto suite {name!r}; expected one of {sorted(SUITES)}", field="suite"
        ) from None
