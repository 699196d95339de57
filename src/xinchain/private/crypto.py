"""Private records sealed to the member orgs of a collection (docs/private-data.md).

The suite is HPKE (RFC 9180) in base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
AES-128-GCM, from pyhpke over `cryptography`. A record is sealed once under a fresh 16-byte
content key with AES-128-GCM (`cryptography`'s AESGCM); the content key is sealed with HPKE to
each recipient org's current encryption key. Both layers authenticate the same header (chain,
collection, key, recipients' key ids), so an envelope cannot be moved to another place or have
a recipient swapped without every recipient's open failing.

The record itself is `{collection, key, salt, value, writer}`; its commitment, the suite hash
of its canonical encoding, is what the shared ledger holds. The 32-byte random salt hides the
value from anyone guessing it; revealing the record (with the salt) proves it against the
commitment, which is how a private record's receipt works.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, OpenError

from xinchain import codec
from xinchain.errors import DecodeError, XinchainError

SUITE_NAME = "hpke-base-x25519-sha256-aes128gcm"
HPKE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
HPKE_INFO = b"xinchain/private/v1"
ENVELOPE_VERSION = 1
content_key_bytes = 16
nonce_bytes = 12
salt_bytes = 32
public_key_bytes = 32
# A private record's encoded value, and a whole envelope: records, not files.
value_bytes_max = 256 * 1024
envelope_bytes_max = 512 * 1024
recipients_max = 64


class PrivateDataError(XinchainError):
    """A private record that cannot be sealed, opened or proven as asked."""

    code = "private_data"


def key_id(public: bytes) -> str:
    """An encryption key's id: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class EncryptionKey:
    """An org's X25519 decryption key (its public half goes on chain)."""

    private: bytes

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(
            X25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    @property
    def public(self) -> bytes:
        return (
            X25519PrivateKey.from_private_bytes(self.private)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def pem(self) -> bytes:
        return X25519PrivateKey.from_private_bytes(self.private).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> EncryptionKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError as exc:
            raise PrivateDataError(f"{where} holds no readable PEM key: {exc}") from None
        if not isinstance(key, X25519PrivateKey):
            raise PrivateDataError(f"{where} holds a {type(key).__name__}, not an X25519 key")
        return cls(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )


def check_public_key(text: object, where: str) -> bytes:
    """An X25519 public key given as 64 lowercase hex digits."""
    if not isinstance(text, str) or len(text) != 2 * public_key_bytes:
        raise DecodeError("expected an X25519 public key as 64 lowercase hex digits", field=where)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise DecodeError("expected 64 lowercase hex digits", field=where) from None
    if raw.hex() != text:
        raise DecodeError("expected lowercase hex digits", field=where)
    try:
        X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise DecodeError(f"not an X25519 public key: {exc}", field=where) from None
    return raw


# --- keyrings on disk ----------------------------------------------------------------------------


class Keyring:
    """The decryption keys a node holds for its org: `<dir>/<kid>.pem`, one file a key, the
    newest registered on chain and every older one (records sealed before a rotation stay
    readable to the org). Read again when a key id is asked for that is not loaded."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, EncryptionKey] = {}

    def add(self, key: EncryptionKey) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key.kid}.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.pem())
            handle.flush()
            os.fsync(handle.fileno())
        self._keys[key.kid] = key
        return path

    def get(self, kid: str) -> EncryptionKey | None:
        if kid not in self._keys:
            self._load()
        return self._keys.get(kid)

    def newest(self) -> EncryptionKey | None:
        """The key written last (by file time), which a node registers for its org."""
        paths = sorted(self.directory.glob("*.pem"), key=lambda path: path.stat().st_mtime_ns)
        if not paths:
            return None
        return self._read(paths[-1])

    def _load(self) -> None:
        for path in self.directory.glob("*.pem"):
            if path.stem not in self._keys:
                self._read(path)

    def _read(self, path: Path) -> EncryptionKey:
        key = EncryptionKey.from_pem(path.read_bytes(), str(path))
        if key.kid != path.stem:
            raise PrivateDataError(f"{path} holds key {key.kid}, not the one its name says")
        self._keys[key.kid] = key
        return key


# --- records and envelopes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    org: str
    kid: str
    public: bytes


def private_record(
    collection: str, key: str, value: dict[str, Any], writer: str, salt: bytes | None = None
) -> dict[str, Any]:
    """The record a commitment is made to (and a receipt reveals)."""
    return {
        "collection": collection,
        "key": key,
        "salt": (salt if salt is not None else secrets.token_bytes(salt_bytes)).hex(),
        "value": value,
        "writer": writer,
    }


def commitment(record: dict[str, Any]) -> str:
    """The commitment the ledger holds: SHA-256 of the record's canonical CBOR, hex."""
    return hashlib.sha256(codec.encode(record)).hexdigest()


def check_value(value: object, where: str = "value") -> dict[str, Any]:
    """A private value: a JSON object of text, integers, booleans, null, lists and objects."""
    if not isinstance(value, dict) or not codec.is_text_model(value):
        raise PrivateDataError(
            "expected a JSON object of text, integers, booleans, null, lists and objects",
            field=where,
        )
    size = len(codec.encode_checked(value))
    if size > value_bytes_max:
        raise PrivateDataError(
            f"the value encodes to {size} bytes; at most {value_bytes_max} are accepted",
            field=where,
        )
    return value


def envelope_header(chain_id: str, collection: str, key: str, kids: list[str]) -> bytes:
    return codec.encode(
        {
            "v": ENVELOPE_VERSION,
            "suite": SUITE_NAME,
            "chain": chain_id,
            "collection": collection,
            "key": key,
            "kids": kids,
        }
    )


def seal(chain_id: str, record: dict[str, Any], recipients: list[Recipient]) -> bytes:
    """The envelope of `record` for `recipients` (canonical CBOR)."""
    if not recipients:
        raise PrivateDataError("a private record needs at least one recipient")
    kids = [recipient.kid for recipient in recipients]
    header = envelope_header(chain_id, record["collection"], record["key"], kids)
    content_key = AESGCM.generate_key(bit_length=8 * content_key_bytes)
    nonce = secrets.token_bytes(nonce_bytes)
    sealed = AESGCM(content_key).encrypt(nonce, codec.encode(record), header)
    to = []
    for recipient in recipients:
        enc, sender = HPKE.create_sender_context(
            HPKE.kem.deserialize_public_key(recipient.public), HPKE_INFO
        )
        wrapped = sender.seal(content_key, header)
        to.append({"org": recipient.org, "kid": recipient.kid, "enc": enc, "wrapped": wrapped})
    return codec.encode(
        {
            "v": ENVELOPE_VERSION,
            "suite": SUITE_NAME,
            "chain": chain_id,
            "collection": record["collection"],
            "key": record["key"],
            "to": to,
            "nonce": nonce,
            "ct": sealed,
        }
    )


def envelope_kids(envelope: bytes) -> list[str]:
    """The recipients' key ids an envelope names (readable by anyone; checked by no one but
    the recipients, whose open fails if they were swapped)."""
    return [entry["kid"] for entry in _parse(envelope)["to"]]


def open_envelope(envelope: bytes, keyring: Keyring) -> dict[str, Any]:
    """The record inside, opened with whichever of the keyring's keys the envelope names;
    `PrivateDataError` when none is named or the envelope does not open."""
    value = _parse(envelope)
    kids = [entry["kid"] for entry in value["to"]]
    header = envelope_header(value["chain"], value["collection"], value["key"], kids)
    for entry in value["to"]:
        key = keyring.get(entry["kid"])
        if key is None:
            continue
        try:
            opener = HPKE.create_recipient_context(
                entry["enc"], HPKE.kem.deserialize_private_key(key.private), HPKE_INFO
            )
            content_key = opener.open(entry["wrapped"], header)
            plain = AESGCM(content_key).decrypt(value["nonce"], value["ct"], header)
        except (InvalidTag, OpenError, ValueError) as exc:
            raise PrivateDataError(
                f"the envelope does not open with key {entry['kid']}: {type(exc).__name__}"
            ) from None
        try:
            record = codec.decode(plain)
        except DecodeError:
            raise PrivateDataError(
                f"the envelope opens with key {entry['kid']} to no record (not canonical CBOR)"
            ) from None
        if (
            not isinstance(record, dict)
            or record.get("collection") != value["collection"]
            or record.get("key") != value["key"]
        ):
            raise PrivateDataError("the envelope holds a record of another place")
        return record
    raise PrivateDataError(
        f"this org holds none of the keys the record is sealed to ({', '.join(kids)})"
    )


def _parse(envelope: bytes) -> dict[str, Any]:
    if len(envelope) > envelope_bytes_max:
        raise PrivateDataError(f"an envelope is at most {envelope_bytes_max} bytes")
    try:
        value = codec.decode(envelope)
    except DecodeError as exc:
        raise PrivateDataError(f"not an envelope: {exc.reason}") from None
    if not isinstance(value, dict) or value.get("v") != ENVELOPE_VERSION:
        raise PrivateDataError(f"expected an envelope of version {ENVELOPE_VERSION}")
    if value.get("suite") != SUITE_NAME:
        raise PrivateDataError(f"expected suite {SUITE_NAME}, found {value.get('suite')!r}")
    to = value.get("to")
    if not isinstance(to, list) or not 1 <= len(to) <= recipients_max:
        raise PrivateDataError(f"expected 1 to {recipients_max} recipients")
    for entry in to:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(name), bytes) for name in ("enc", "wrapped")
        ):
            raise PrivateDataError("expected each recipient as {org, kid, enc, wrapped}")
        if not isinstance(entry.get("kid"), str) or not isinstance(entry.get("org"), str):
            raise PrivateDataError("expected each recipient as {org, kid, enc, wrapped}")
    if not isinstance(value.get("nonce"), bytes) or not isinstance(value.get("ct"), bytes):
        raise PrivateDataError("expected the sealed record as nonce and ct bytes")
    for name in ("chain", "collection", "key"):
        if not isinstance(value.get(name), str):
            raise PrivateDataError(f"expected the envelope's {name} as text")
    return value


def cipher_hash(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()
