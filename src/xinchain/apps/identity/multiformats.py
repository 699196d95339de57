"""Multibase (base58btc, `z`), multicodec key prefixes and Multikey, as DIDs and Data Integrity
proofs write keys and signatures (the Controlled Identifiers spec's Multikey, the did:key
method). Every refusal says what was wrong and what was expected.
"""

from __future__ import annotations

import base58

from xinchain.errors import XinchainError

BASE58BTC = "z"
# Multicodec codes of the keys xinchain reads, as their unsigned-varint prefixes.
ED25519_PUB = b"\xed\x01"
X25519_PUB = b"\xec\x01"
ED25519_PRIV = b"\x80\x26"
SM2_PUB = b"\x86\x24"  # 0x1206, a compressed point
_KEY_BYTES = {ED25519_PUB: 32, X25519_PUB: 32, ED25519_PRIV: 32, SM2_PUB: 33}
_NAMES = {
    ED25519_PUB: "ed25519-pub",
    X25519_PUB: "x25519-pub",
    ED25519_PRIV: "ed25519-priv",
    SM2_PUB: "sm2-pub",
}


class MultiformatError(XinchainError):
    code = "multiformat"


def base58btc_encode(data: bytes) -> str:
    return BASE58BTC + base58.b58encode(data).decode("ascii")


def base58btc_decode(text: object, field: str) -> bytes:
    """The bytes of a multibase base58btc string (`z...`)."""
    if not isinstance(text, str) or not text:
        raise MultiformatError("expected a multibase string", field=field)
    if text[0] != BASE58BTC:
        raise MultiformatError(
            f"expected multibase base58btc (a leading 'z'), found a leading {text[0]!r}",
            field=field,
        )
    try:
        return base58.b58decode(text[1:].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise MultiformatError(
            "not base58btc: a character outside the bitcoin base58 alphabet", field=field
        ) from None


def _varint(data: bytes, field: str) -> tuple[int, int]:
    value, shift = 0, 0
    for index, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if index > 0 and byte == 0:
                raise MultiformatError("a multicodec varint that is not minimal", field=field)
            return value, index + 1
        shift += 7
    raise MultiformatError("a multicodec prefix that never ends", field=field)


def multikey_encode(prefix: bytes, key: bytes) -> str:
    return base58btc_encode(prefix + key)


def multikey_decode(text: object, field: str, expected: tuple[bytes, ...]) -> tuple[bytes, bytes]:
    """(multicodec prefix, key bytes) of a Multikey value whose codec is one of `expected`."""
    raw = base58btc_decode(text, field)
    code, length = _varint(raw, field)
    prefix = raw[:length]
    if prefix not in expected:
        names = ", ".join(f"{_NAMES[p]} (0x{_varint(p, field)[0]:x})" for p in expected)
        raise MultiformatError(
            f"multicodec 0x{code:x} is not a key this accepts: expected {names}", field=field
        )
    key = raw[length:]
    if len(key) != _KEY_BYTES[prefix]:
        raise MultiformatError(
            f"a {_NAMES[prefix]} key is {_KEY_BYTES[prefix]} bytes, found {len(key)}",
            field=field,
        )
    return prefix, key
