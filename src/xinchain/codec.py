"""The one canonical encoding of everything that is hashed or signed.

Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) restricted to a small data
model, so that one value has exactly one byte string:

* allowed: unsigned and negative integers (within 64 bits), byte strings, UTF-8 text strings,
  arrays, maps whose keys are text strings, `true`, `false`, `null`;
* refused: floats (not deterministic across implementations), tags, undefined, simple values,
  indefinite lengths, duplicate map keys, integers outside 64 bits;
* map keys are sorted by the bytewise order of their encodings; lengths and integers use the
  shortest form.

`decode` accepts only bytes that `encode` would have produced: it decodes, checks the data
model, re-encodes and compares. Anything else raises `DecodeError` naming what was wrong.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from xinchain.errors import DecodeError

# Values in the data model. `Any` because the model is recursive and cbor2 is untyped.
Value = Any

# Nesting deeper than this is refused: no legitimate structure of ours nests past a handful of
# levels, and unbounded recursion is a denial of service on the decoder.
nesting_depth_max = 32

_NOT_CANONICAL = (
    "not the canonical encoding (RFC 8949 §4.2.1: shortest forms, sorted unique keys, definite "
    "lengths)"
)
_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1


def encode(value: Value) -> bytes:
    """Encode `value` canonically; raises `DecodeError` if it lies outside the data model."""
    if not _in_model(value, 0, ordered=False):
        _check_model(value, "value", 0)
    return cbor2.dumps(value, canonical=True)


def encode_checked(value: Value) -> bytes:
    """Encode a value already known to lie in the data model (skips the model check)."""
    return cbor2.dumps(value, canonical=True)


def array_of_encoded(items: list[bytes]) -> bytes:
    """The canonical encoding of an array, given its items' canonical encodings."""
    return _head(0x80, len(items)) + b"".join(items)


def encode_text(value: str) -> bytes:
    """The canonical encoding of a text string, without a call into the encoder: for
    encodings written out field by field on hot paths (a result, a notary index record)."""
    data = value.encode()
    return _head(0x60, len(data)) + data


def _head(major: int, count: int) -> bytes:
    """A data item's head: its major type (as its top three bits) and count, shortest form."""
    if count < 24:
        return bytes((major + count,))
    if count < 1 << 8:
        return bytes((major + 24, count))
    if count < 1 << 16:
        return bytes((major + 25,)) + count.to_bytes(2, "big")
    if count < 1 << 32:
        return bytes((major + 26,)) + count.to_bytes(4, "big")
    return bytes((major + 27,)) + count.to_bytes(8, "big")


def decode(data: bytes) -> Value:
    """Decode canonical bytes; raises `DecodeError` for anything but exactly one canonical value."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, found {type(data).__name__}")
    raw = bytes(data)
    if not raw:
        raise DecodeError("expected one CBOR value, found no bytes")
    stream = io.BytesIO(raw)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except RecursionError as exc:
        raise DecodeError("value nests too deeply") from exc
    except Exception as exc:  # cbor2 raises a mix of its own, ValueError, struct.error, ...
        raise DecodeError(f"malformed or truncated CBOR: {exc}") from exc
    if stream.tell() != len(raw):
        raise DecodeError(f"expected one CBOR value, found {len(raw) - stream.tell()} extra bytes")
    # The model check also checks that map keys come in canonical order; re-encoding in the
    # decoded order (cbor2 always writes shortest forms and definite lengths) then gives back
    # the input exactly when it is canonical. That is 4x cheaper than a canonical re-encode,
    # which sorts every map again.
    if not _in_model(value, 0, ordered=True):
        _check_model(value, "value", 0)  # names what lies outside the model, if anything
        raise DecodeError(_NOT_CANONICAL)  # else the keys were out of order
    if cbor2.dumps(value) != raw:
        raise DecodeError(_NOT_CANONICAL)
    return value


def _in_model(value: Value, depth: int, ordered: bool) -> bool:
    """True if `value` is in the data model (with its map keys in canonical order, when
    `ordered`); the fast path of `_check_model`, which names what is wrong when this says
    False."""
    if depth > nesting_depth_max:
        return False
    kind = type(value)
    if kind is bytes or kind is bool or value is None:
        return True
    if kind is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if kind is str:
        return _valid_text(value)
    if kind is list:
        for item in value:
            kind = type(item)
            if kind is bytes or (kind is str and _valid_text(item)):
                continue  # the common leaves, without a call
            if not _in_model(item, depth + 1, ordered):
                return False
        return True
    if kind is dict:
        previous: tuple[int, bytes] | None = None
        for key, item in value.items():
            if type(key) is not str or not _valid_text(key):
                return False
            if ordered:
                encoded = key.encode()
                order = (len(encoded), encoded)
                if previous is not None and order <= previous:
                    return False
                previous = order
            if not _in_model(item, depth + 1, ordered):
                return False
        return True
    return False


def _valid_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DecodeError(f"text is not valid Unicode: {exc.reason}", field=where) from None


def is_text_model(value: Value) -> bool:
    """True if `value` holds no bytes: its JSON and CBOR forms then map one-to-one."""
    if value is None or isinstance(value, bool | str | int):
        return not isinstance(value, int) or _INT_MIN <= value <= _INT_MAX
    if isinstance(value, list):
        return all(is_text_model(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_text_model(v) for k, v in value.items())
    return False


def _check_model(value: Value, where: str, depth: int) -> None:
    if depth > nesting_depth_max:
        raise DecodeError(f"nests deeper than {nesting_depth_max} levels", field=where)
    if value is None or isinstance(value, bool | bytes):
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DecodeError(f"integer {value} lies outside 64 bits", field=where)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_model(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError(
                    f"map keys must be text strings, found {type(key).__name__}", field=where
                )
            _check_text(key, where)
            _check_model(item, f"{where}.{key}", depth + 1)
        return
    raise DecodeError(
        "expected int, bytes, text, bool, null, array or map with text keys; "
        f"found {type(value).__name__}",
        field=where,
    )
