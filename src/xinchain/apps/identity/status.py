"""Bitstring Status Lists (W3C Bitstring Status List v1.0): a list of bits, GZIP-compressed,
base64url without padding, multibase `u`; bit i is the i-th bit from the left of the list.
An issuer publishes its lists on chain (`identity.status_publish`); a credential names its
entry as a `BitstringStatusListEntry` whose `statusListCredential` is the DID URL
`<issuer DID>/status/<list>`.
"""

from __future__ import annotations

import base64
import gzip
import re

from xinchain.errors import XinchainError

ENTRY_TYPE = "BitstringStatusListEntry"
# The specification's minimum list length, which keeps a holder in a crowd of 131,072.
bits_min = 131_072
_STATUS_URL = re.compile(r"^(?P<did>did:xin:[^/?#]+)/status/(?P<list>[A-Za-z0-9_.-]{1,64})$")


class StatusError(XinchainError):
    code = "status_invalid"


def encode(bits: bytearray) -> str:
    """The encodedList of a bitstring (its bytes, most significant bit first)."""
    return "u" + base64.urlsafe_b64encode(gzip.compress(bytes(bits), mtime=0)).decode().rstrip("=")


def decode(encoded: str) -> bytearray:
    if not encoded.startswith("u"):
        raise StatusError("an encodedList is multibase base64url (a leading 'u')")
    text = encoded[1:]
    try:
        compressed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return bytearray(gzip.decompress(compressed))
    except (ValueError, OSError, EOFError) as exc:
        raise StatusError(f"the encodedList does not decode: {exc}") from None


def empty() -> bytearray:
    return bytearray(bits_min // 8)


def is_set(bits: bytearray, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise StatusError(f"index {index} is outside a list of {len(bits) * 8} bits")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def set_bit(bits: bytearray, index: int, value: bool) -> None:
    if not 0 <= index < len(bits) * 8:
        raise StatusError(f"index {index} is outside a list of {len(bits) * 8} bits")
    if value:
        bits[index // 8] |= 0x80 >> (index % 8)
    else:
        bits[index // 8] &= ~(0x80 >> (index % 8)) & 0xFF


def status_url(issuer_did: str, list_name: str) -> str:
    return f"{issuer_did}/status/{list_name}"


def parse_status_url(url: object) -> tuple[str, str]:
    """(issuer DID, list name) of a status list credential's DID URL."""
    found = _STATUS_URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        raise StatusError(
            f"expected statusListCredential <did:xin issuer>/status/<list>, found {url!r}"
        )
    return found.group("did"), found.group("list")
