"""Tests for `xinchain.codec`: one canonical CBOR encoding of a restricted data model.

Scenarios:

* Round trip: `decode(encode(x)) == x`, with types preserved (a bool stays a bool), for every
  value of the data model, including the 64-bit integer bounds.
* Known encodings: RFC 8949 Appendix A examples encode to exactly the published bytes and decode
  back; map keys sort by the bytewise order of their encodings.
* One encoding per value: maps built in any insertion order encode identically; re-encoding a
  decoded value gives the same bytes.
* `encode` refuses values outside the model (floats, tuples, sets, non-text map keys, integers
  past 64 bits, text that is not valid Unicode, nesting past `nesting_depth_max`) with
  `DecodeError`, naming the offending field.
* `decode` refuses, always with `DecodeError`: no bytes, non-bytes input, truncated input,
  trailing bytes, malformed headers, invalid UTF-8, non-shortest integers and lengths, unsorted
  or duplicate map keys, indefinite lengths, floats, tags, simple values, non-text map keys and
  nesting past the limit (both just past it and absurdly deep).
* Written-out encodings (hot paths): `encode_text` of any text, at every head-length
  boundary, and a result's field-by-field encoding equal what `encode` gives.
* Fuzzing: for arbitrary bytes, and for mutations of valid encodings, `decode` either returns a
  value whose encoding is exactly the input, or raises `DecodeError`, and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinchain import codec
from xinchain.errors import DecodeError

INT_MIN = -(2**64)
INT_MAX = 2**64 - 1

integers = st.integers(min_value=INT_MIN, max_value=INT_MAX)
scalars = st.none() | st.booleans() | integers | st.binary(max_size=40) | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)

fast = settings(max_examples=200, deadline=None)


def assert_identical(actual: Any, expected: Any) -> None:
    """Equality that also tells `True` from `1` and a list from a tuple, all the way down."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, list):
        assert len(actual) == len(expected)
        for actual_item, expected_item in zip(actual, expected, strict=True):
            assert_identical(actual_item, expected_item)
    elif isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key, expected_item in expected.items():
            assert_identical(actual[key], expected_item)
    else:
        assert actual == expected


def nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# --- round trip ----------------------------------------------------------------------------------


@fast
@given(values)
def test_decode_of_encode_returns_the_same_value(value: Any) -> None:
    assert_identical(codec.decode(codec.encode(value)), value)


@fast
@given(values)
def test_reencoding_a_decoded_value_gives_the_same_bytes(value: Any) -> None:
    encoded = codec.encode(value)
    assert codec.encode(codec.decode(encoded)) == encoded


@pytest.mark.parametrize("value", [INT_MIN, INT_MIN + 1, -1, 0, INT_MAX - 1, INT_MAX])
def test_integers_at_the_64_bit_bounds_round_trip(value: int) -> None:
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("value", [True, False])
def test_booleans_decode_as_booleans_not_integers(value: bool) -> None:
    assert codec.decode(codec.encode(value)) is value


def test_bytearray_and_memoryview_input_are_accepted_like_bytes() -> None:
    encoded = codec.encode({"a": [1, b"x"]})
    assert codec.decode(bytearray(encoded)) == {"a": [1, b"x"]}
    assert codec.decode(memoryview(encoded)) == {"a": [1, b"x"]}


# --- known encodings (RFC 8949 Appendix A) -------------------------------------------------------

KNOWN_ENCODINGS = [
    (0, "00"),
    (1, "01"),
    (23, "17"),
    (24, "1818"),
    (255, "18ff"),
    (256, "190100"),
    (65535, "19ffff"),
    (65536, "1a00010000"),
    (2**32 - 1, "1affffffff"),
    (2**32, "1b0000000100000000"),
    (INT_MAX, "1bffffffffffffffff"),
    (-1, "20"),
    (-24, "37"),
    (-25, "3818"),
    (-1000, "3903e7"),
    (INT_MIN, "3bffffffffffffffff"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ([], "80"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
]


@pytest.mark.parametrize(
    ("value", "hex_bytes"), KNOWN_ENCODINGS, ids=[h for _, h in KNOWN_ENCODINGS]
)
def test_encode_gives_the_published_bytes(value: Any, hex_bytes: str) -> None:
    assert codec.encode(value).hex() == hex_bytes


@pytest.mark.parametrize(
    ("value", "hex_bytes"), KNOWN_ENCODINGS, ids=[h for _, h in KNOWN_ENCODINGS]
)
def test_decode_of_published_bytes_gives_the_value(value: Any, hex_bytes: str) -> None:
    assert_identical(codec.decode(bytes.fromhex(hex_bytes)), value)


def test_map_keys_sort_by_the_bytewise_order_of_their_encodings() -> None:
    # "a" (6161) < "b" (6162) < "aa" (626161): shorter keys first, then bytewise.
    assert codec.encode({"aa": 3, "b": 1, "a": 2}).hex() == "a3" + "616102" + "616201" + "62616103"


# --- one encoding per value ----------------------------------------------------------------------


@fast
@given(st.dictionaries(st.text(max_size=8), scalars, max_size=8), st.randoms(use_true_random=False))
def test_map_insertion_order_does_not_change_the_encoding(
    mapping: dict[str, Any], random: Any
) -> None:
    items = list(mapping.items())
    random.shuffle(items)
    assert codec.encode(dict(items)) == codec.encode(mapping)


def reverse_every_map(value: Any) -> Any:
    """The same value with every map, at every depth, built in reversed insertion order."""
    if isinstance(value, list):
        return [reverse_every_map(item) for item in value]
    if isinstance(value, dict):
        return {key: reverse_every_map(value[key]) for key in reversed(list(value))}
    return value


@settings(max_examples=100, deadline=None)
@given(values)
def test_maps_at_every_depth_in_reversed_insertion_order_encode_identically(value: Any) -> None:
    assert codec.encode(reverse_every_map(value)) == codec.encode(value)


# --- encode refuses values outside the model -----------------------------------------------------

OUTSIDE_MODEL = {
    "integer-above-64-bits": INT_MAX + 1,
    "integer-below-64-bits": INT_MIN - 1,
    "float": 1.0,
    "integral-float-zero": 0.0,
    "nan": float("nan"),
    "tuple": (1, 2),
    "set": {1},
    "frozenset": frozenset(),
    "int-map-key": {1: "a"},
    "bytes-map-key": {b"k": 1},
    "none-map-key": {None: 1},
    "object": object(),
    "nested-float": {"a": [1, 2.5]},
    "nested-big-integer": [[INT_MAX + 1]],
    "lone-surrogate-text": "\ud800",
    "lone-surrogate-map-key": {"\udc00": 1},
    "lone-surrogate-nested": {"a": ["ok", "\udfff"]},
}


@pytest.mark.parametrize("value", OUTSIDE_MODEL.values(), ids=OUTSIDE_MODEL.keys())
def test_encode_refuses_values_outside_the_data_model(value: Any) -> None:
    with pytest.raises(DecodeError):
        codec.encode(value)


def test_encode_error_names_the_offending_field() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.encode({"a": [0, INT_MAX + 1]})
    assert caught.value.field == "value.a[1]"
    assert caught.value.code == "decode_error"


def test_encode_accepts_nesting_up_to_the_limit() -> None:
    depth = codec.nesting_depth_max + 1  # containers: the outermost sits at depth 0
    assert codec.decode(codec.encode(nested_lists(depth))) == nested_lists(depth)


def test_encode_refuses_nesting_past_the_limit() -> None:
    with pytest.raises(DecodeError):
        codec.encode(nested_lists(codec.nesting_depth_max + 2))


def test_encode_refuses_a_scalar_nested_past_the_limit() -> None:
    value: Any = 0
    for _ in range(codec.nesting_depth_max + 1):
        value = {"k": value}
    with pytest.raises(DecodeError):
        codec.encode(value)


# --- decode refuses anything but one canonical value ---------------------------------------------


@pytest.mark.parametrize("data", ["00", b"\x00".decode(), None, 0, [0]], ids=repr)
def test_decode_refuses_input_that_is_not_bytes(data: Any) -> None:
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_decode_refuses_empty_input() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"")


@fast
@given(values, st.data())
def test_decode_refuses_every_strict_prefix_of_an_encoding(value: Any, data: st.DataObject) -> None:
    encoded = codec.encode(value)
    cut = data.draw(st.integers(min_value=1, max_value=len(encoded)), label="bytes dropped")
    with pytest.raises(DecodeError):
        codec.decode(encoded[:-cut])


@fast
@given(values, st.binary(min_size=1, max_size=16))
def test_decode_refuses_trailing_bytes(value: Any, trailing: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(value) + trailing)


def test_decode_refuses_two_concatenated_values() -> None:
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(1) + codec.encode("a"))


# Each entry is a hand-made byte string that `encode` would never produce.
NON_CANONICAL = {
    # integers and lengths not in their shortest form
    "zero-in-one-byte-argument": "1800",
    "23-in-one-byte-argument": "1817",
    "24-in-two-byte-argument": "190018",
    "255-in-two-byte-argument": "1900ff",
    "65535-in-four-byte-argument": "1a0000ffff",
    "2^32-1-in-eight-byte-argument": "1b00000000ffffffff",
    "minus-one-in-one-byte-argument": "3800",
    "minus-25-in-two-byte-argument": "390018",
    "bytes-length-not-shortest": "580100",
    "text-length-not-shortest": "780161",
    "array-length-not-shortest": "980100",
    "map-length-not-shortest": "b801616100",
    # map keys
    "unsorted-keys": "a2616201616102",
    "keys-sorted-lexically-not-by-length": "a262616101616202",
    "duplicate-keys": "a2616101616102",
    "duplicate-keys-same-value": "a2616101616101",
    "int-key": "a10101",
    "negative-int-key": "a12001",
    "bytes-key": "a1410001",
    "bool-key": "a1f500",
    "null-key": "a1f600",
    "array-key": "a18000",
    "map-key": "a1a000",
    # indefinite lengths
    "indefinite-array": "9f01ff",
    "indefinite-empty-array": "9fff",
    "indefinite-map": "bf616101ff",
    "indefinite-empty-map": "bfff",
    "indefinite-bytes": "5f4101ff",
    "indefinite-text": "7f6161ff",
    # floats
    "half-float-zero": "f90000",
    "half-float-one": "f93c00",
    "half-float-nan": "f97e00",
    "half-float-infinity": "f97c00",
    "single-float-one": "fa3f800000",
    "double-float-one": "fb3ff0000000000000",
    "double-float-zero": "fb0000000000000000",
    "float-inside-array": "8201f93c00",
    # tags
    "tag-0-date-time": "c074323031332d30332d32315432303a30343a30305a",
    "tag-1-epoch-time": "c11a514b67b0",
    "tag-2-bignum-in-range": "c24101",
    "tag-2-bignum-zero-length": "c240",
    "tag-2-bignum-2^64": "c249010000000000000000",
    "tag-3-negative-bignum": "c34100",
    "tag-3-negative-bignum-past-64-bits": "c349010000000000000000",
    "tag-4-decimal-fraction": "c48221196ab3",
    "tag-5-bigfloat-huge-exponent": "c5821b7fffffffffffffff01",
    "tag-24-embedded-cbor": "d818420102",
    "tag-28-shareable": "d81c80",
    "tag-29-shared-reference-unknown": "d81d00",
    "tag-30-rational": "d81e820102",
    "tag-32-uri": "d8207368747470733a2f2f6578616d706c652e636f6d",
    "tag-35-regex": "d8236128",
    "tag-37-uuid-wrong-length": "d825426162",
    "tag-258-set": "d9010283010203",
    "tag-55799-self-describe": "d9d9f700",
    "tag-255-unknown": "d8ff00",
    "tag-on-text-value": "d82a6161",
    # simple values
    "undefined": "f7",
    "simple-value-16": "f0",
    "simple-value-255": "f8ff",
    "simple-value-in-two-bytes-below-32": "f818",
    # malformed headers and payloads
    "reserved-argument-28": "1c",
    "reserved-argument-29": "3d",
    "reserved-argument-30": "5e",
    "lone-break": "ff",
    "break-inside-definite-array": "81ff",
    "invalid-utf8": "61ff",
    "invalid-utf8-continuation": "62c328",
    "utf8-encoded-surrogate": "63eda080",
    "overlong-utf8-slash": "62c0af",
    "truncated-argument": "19ff",
    "truncated-bytes-payload": "4401",
    "huge-array-length-no-items": "9bffffffffffffffff",
    "huge-bytes-length-no-payload": "5bffffffffffffffff",
    "huge-map-length-no-items": "bbffffffffffffffff",
}


@pytest.mark.parametrize("hex_bytes", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_decode_refuses_non_canonical_or_malformed_bytes(hex_bytes: str) -> None:
    with pytest.raises(DecodeError):
        codec.decode(bytes.fromhex(hex_bytes))


def test_decode_accepts_nesting_up_to_the_limit() -> None:
    # nesting_depth_max + 1 arrays: the innermost sits exactly at the limit.
    data = bytes.fromhex("81" * codec.nesting_depth_max + "80")
    assert codec.decode(data) == nested_lists(codec.nesting_depth_max + 1)


def test_decode_refuses_nesting_one_past_the_limit() -> None:
    data = bytes.fromhex("81" * (codec.nesting_depth_max + 1) + "80")
    with pytest.raises(DecodeError):
        codec.decode(data)


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_decode_refuses_absurdly_deep_nesting_with_a_typed_error(depth: int) -> None:
    with pytest.raises(DecodeError):
        codec.decode(bytes.fromhex("a16161" * depth + "00"))


# --- fuzzing -------------------------------------------------------------------------------------


def decode_or_refuse(data: bytes) -> None:
    """The whole contract of `decode` on arbitrary input."""
    try:
        value = codec.decode(data)
    except DecodeError:
        return
    assert codec.encode(value) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=48))
def test_arbitrary_bytes_decode_to_their_own_encoding_or_raise_decode_error(data: bytes) -> None:
    decode_or_refuse(data)


@fast
@given(values, st.data())
def test_mutated_encodings_decode_to_their_own_encoding_or_raise_decode_error(
    value: Any, data: st.DataObject
) -> None:
    encoded = bytearray(codec.encode(value))
    position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1), label="position")
    mutation = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="mutation")
    byte = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    if mutation == "replace":
        encoded[position] = byte
    elif mutation == "insert":
        encoded.insert(position, byte)
    else:
        del encoded[position]
    decode_or_refuse(bytes(encoded))


@pytest.mark.parametrize("count", [0, 1, 23, 24, 255, 256, 65_535, 65_536])
def test_an_array_built_from_encoded_items_is_the_array_encoded(count: int) -> None:
    items = [{"n": index, "b": index.to_bytes(3, "big")} for index in range(count)]
    built = codec.array_of_encoded([codec.encode(item) for item in items])
    assert built == codec.encode(items)
    assert codec.decode(built) == items


# --- encodings written out on hot paths --------------------------------------------------------

_UTF8_TEXT = st.text(st.characters(codec="utf-8"))


@given(_UTF8_TEXT)
def test_encode_text_is_the_canonical_encoding_of_the_text(value: str) -> None:
    assert codec.encode_text(value) == codec.encode(value)


@pytest.mark.parametrize("length", [0, 23, 24, 255, 256, 65_535, 65_536])
@pytest.mark.parametrize("letter", ["a", "链"], ids=["ascii", "three_bytes"])
def test_encode_text_at_the_head_length_boundaries(length: int, letter: str) -> None:
    value = letter * (length // len(letter.encode()))
    assert codec.encode_text(value) == codec.encode(value)


_TEXT_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | _UTF8_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_UTF8_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    ok=st.booleans(),
    texts=st.lists(_UTF8_TEXT, min_size=4, max_size=4),
    data=st.dictionaries(_UTF8_TEXT, _TEXT_DATA, max_size=4),
)
def test_a_results_written_out_encoding_is_the_canonical_one(
    ok: bool, texts: list[str], data: dict[str, Any]
) -> None:
    from xinchain.types import TxResult

    sender, contract, method, error = texts
    result = TxResult("ab" * 32, ok, sender, contract, method, data, error)

    assert result.encoded == codec.encode(result.to_value())
