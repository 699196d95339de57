"""The rules docs/receipts.md states, one at a time, without a chain.

Scenarios:

* strict JSON: duplicate keys at any depth (also spelled with an escape), a byte order mark,
  non-UTF-8, fractions, exponents, -0, NaN, integers past 2^64-1 or below 0 (except
  evidence.distance = -1), unpaired surrogates in keys and values, nesting past 16 levels, a
  file over the size limit; what RFC 8259 allows (whitespace, escapes) still parses
* genesis hashes typed in any case; trusted-chains files: comments, names, tabs, a bad line
* SM2 strict DER: the one accepted form and each way to bend it (long-form length, padding,
  negative, zero, r or s at or past n, trailing bytes, a third integer)
* key validity: Ed25519 small-order and mixed-order points, a non-canonical encoding, a key off
  the SM2 curve; genesis refuses each, and a key listed for two orgs
* records: each kind's exact fields and types, and evidence's distance rule
"""

from __future__ import annotations

import json
from typing import Any

import nacl.bindings
import pytest
from receipts import check_record

from xinchain.crypto import suite_named
from xinchain.crypto.suites import SM2_ORDER, sm2_signature_integers
from xinchain.errors import ConfigError, ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.receipt import (
    load_receipt_json,
    load_trusted_chains,
    normalize_genesis_hash,
    receipt_bytes_max,
)

# --- strict JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (b'{"a": 1, "a": 2}', "appears twice"),
        (b'{"a": {"b": [{"c": 1, "c": 1}]}}', "appears twice"),
        (b'{"a": 1, "\\u0061": 2}', "appears twice"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
        (b'{"a": "\xe9"}', "not UTF-8"),
        (b'{"a": 1.0}', "integers"),
        (b'{"a": 1e3}', "integers"),
        (b'{"a": -0}', "-0"),
        (b'{"a": NaN}', "integers"),
        (b'{"a": 18446744073709551616}', "outside 0 to 2^64-1"),
        (b'{"a": -1}', "outside 0 to 2^64-1"),
        (b'{"evidence": {"distance": -2}}', "outside -1 to 2^64-1"),
        (b'{"a": ' + b"9" * 5000 + b"}", "outside 0 to 2^64-1"),
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udc00": 1}', "surrogate"),
        (b'{"a": "line\nbreak"}', "not JSON"),
        (b"[1]", "expected a JSON object"),
        (b'{"a": 1} x', "not JSON"),
        (b'{"a": ' + b"[" * 16 + b"]" * 16 + b"}", "nest more than 16"),
        (b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}", "malformed receipt"),
    ],
)
def test_malformed_receipt_files_are_refused(text: bytes, named: str) -> None:
    with pytest.raises(ReceiptInvalid) as refused:
        load_receipt_json(text)
    assert "malformed receipt" in refused.value.reason
    assert named in refused.value.reason


def test_what_json_allows_still_parses() -> None:
    value = load_receipt_json(b' \t\r\n{"a" : [ ] , "b":"\\u00e9\\u0000\\uffff", "c": 0}\n')
    assert value == {"a": [], "b": "é\x00\uffff", "c": 0}
    assert load_receipt_json(b'{"evidence": {"distance": -1}}')["evidence"]["distance"] == -1
    assert load_receipt_json(b'{"a": ' + b"[" * 15 + b"]" * 15 + b"}")


def test_a_file_past_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ReceiptInvalid, match="more than"):
        load_receipt_json(b" " * (receipt_bytes_max + 1))


# --- pinning input -------------------------------------------------------------------------


def test_a_genesis_hash_may_be_typed_in_any_case() -> None:
    assert normalize_genesis_hash(" " + "AbC" * 21 + "d\n") == "abc" * 21 + "d"
    for bad in ("ab" * 31, "g" * 64, "0x" + "a" * 62, ""):
        with pytest.raises(ReceiptInvalid, match="64 hex digits"):
            normalize_genesis_hash(bad)


def test_trusted_chains_files() -> None:
    text = f"# ours\n\n  # indented comment\n{'A' * 64}\tTrade net (2026)\n{'b' * 64}\n"
    assert load_trusted_chains(text) == {"a" * 64: "Trade net (2026)", "b" * 64: ""}
    assert load_trusted_chains("") == {}
    with pytest.raises(ReceiptInvalid, match="line 2"):
        load_trusted_chains(f"{'a' * 64}\nnot a hash\n")


# --- SM2 strict DER ------------------------------------------------------------------------


def _integer(value: int, pad: int = 0) -> bytes:
    body = bytes(pad) + value.to_bytes((value.bit_length() + 8) // 8, "big")
    return bytes([2, len(body)]) + body


def _sequence(inner: bytes) -> bytes:
    return bytes([0x30, len(inner)]) + inner


R_VALUE, S_VALUE = 2**255 + 12345, 2**200 + 1  # r needs a leading 00, s does not


def test_strict_der_is_read() -> None:
    signature = _sequence(_integer(R_VALUE) + _integer(S_VALUE))
    assert sm2_signature_integers(signature) == (R_VALUE, S_VALUE)
    assert sm2_signature_integers(_sequence(_integer(1) + _integer(SM2_ORDER - 1)))


@pytest.mark.parametrize(
    "signature",
    [
        bytes([0x30, 0x81, 0x45]) + _integer(R_VALUE) + _integer(S_VALUE),  # long-form length
        _sequence(_integer(R_VALUE, pad=1) + _integer(S_VALUE)),  # a needless 00
        _sequence(bytes([2, 32]) + R_VALUE.to_bytes(32, "big") + _integer(S_VALUE)),  # negative
        _sequence(_integer(0) + _integer(S_VALUE)),  # r = 0
        _sequence(_integer(R_VALUE) + _integer(SM2_ORDER)),  # s = n
        _sequence(_integer(SM2_ORDER + 5) + _integer(S_VALUE)),  # r past n
        _sequence(_integer(R_VALUE) + _integer(S_VALUE)) + b"\x00",  # trailing byte
        _sequence(_integer(R_VALUE) + _integer(S_VALUE) + _integer(1)),  # a third integer
        _sequence(_integer(R_VALUE) + bytes([4, 1, 1])),  # not an INTEGER
        bytes([0x31]) + _sequence(_integer(R_VALUE) + _integer(S_VALUE))[1:],  # a SET
        b"",
    ],
)
def test_anything_but_strict_der_is_not_an_sm2_signature(signature: bytes) -> None:
    assert sm2_signature_integers(signature) is None
    key = suite_named("sm2-sm3").generate_key()
    assert not suite_named("sm2-sm3").verify(key.public_bytes(), b"m", signature)


def test_a_genuine_sm2_signature_is_strict_der() -> None:
    suite = suite_named("sm2-sm3")
    key = suite.generate_key()
    for number in range(20):
        signature = key.sign(f"message {number}".encode())
        assert sm2_signature_integers(signature) is not None
        assert suite.verify(key.public_bytes(), f"message {number}".encode(), signature)


# --- keys ----------------------------------------------------------------------------------

ED25519 = suite_named("ed25519-sha256")
IDENTITY = bytes([1]) + bytes(31)
# A point of order 8 (one of libsodium's blocklisted encodings).
ORDER_EIGHT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def test_ed25519_keys_must_be_prime_order_points() -> None:
    good = ED25519.generate_key().public_bytes()
    assert ED25519.valid_public_key(good)
    mixed = nacl.bindings.crypto_core_ed25519_add(good, ORDER_EIGHT)
    for bad in (IDENTITY, ORDER_EIGHT, mixed, b"\xff" * 32, good[:31]):
        assert not ED25519.valid_public_key(bad), bad.hex()


def test_sm2_keys_must_lie_on_the_curve() -> None:
    suite = suite_named("sm2-sm3")
    good = suite.generate_key().public_bytes()
    assert suite.valid_public_key(good)
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    compressed = bytes([2 + (good[-1] & 1)]) + good[1:33]
    for bad in (off_curve, compressed, bytes(65)):
        assert not suite.valid_public_key(bad)


def _genesis_value(suite_name: str) -> dict[str, Any]:
    suite = suite_named(suite_name)
    return {
        "chain_id": "test-chain",
        "suite": suite_name,
        "time_ms": 0,
        "orgs": [
            {
                "id": "a",
                "name": "A",
                "roles": [],
                "keys": [suite.generate_key().public_bytes().hex()],
            },
            {"id": "b", "name": "B", "roles": [], "keys": []},
        ],
        "validators": [
            {"name": "v0", "org": "a", "public_key": suite.generate_key().public_bytes().hex()}
        ],
        "params": {},
    }


def test_genesis_refuses_a_small_order_validator_key() -> None:
    value = _genesis_value("ed25519-sha256")
    Genesis.from_value(value)
    value["validators"][0]["public_key"] = IDENTITY.hex()
    with pytest.raises(ConfigError, match="not a valid ed25519-sha256 public key"):
        Genesis.from_value(value)


def test_genesis_refuses_an_org_key_listed_twice() -> None:
    value = _genesis_value("sm2-sm3")
    value["orgs"][1]["keys"] = list(value["orgs"][0]["keys"])
    with pytest.raises(ConfigError, match="listed once"):
        Genesis.from_value(value)


def test_identifiers_are_matched_whole() -> None:
    value = _genesis_value("ed25519-sha256")
    value["orgs"][0]["id"] = "a\n"
    with pytest.raises(ConfigError):
        Genesis.from_value(value)


# --- records -------------------------------------------------------------------------------

ENTRY = {"promo": "p", "rank": 1, "order_no": "1", "paid_ms": 5, "buyer_hash": "1" * 64,
         "buyer_mask": "c***1"}  # fmt: skip
EVIDENCE = {"work": "5" * 64, "url": "https://x", "files": [{"name": "a", "sha256": "6" * 64}],
            "captured_ms": 1, "copy_pdq": "", "distance": -1, "note": "", "recorder": "brand",
            "time_ms": 2}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "record", "named"),
    [
        ("entry", {**ENTRY, "rank": 0}, "entry.rank"),
        ("entry", {**ENTRY, "rank": True}, "entry.rank"),
        ("entry", {**ENTRY, "buyer_hash": "1" * 63}, "entry.buyer_hash"),
        ("entry", {**ENTRY, "extra": 1}, "unexpected ['extra']"),
        ("entry", {k: v for k, v in ENTRY.items() if k != "buyer_mask"}, "missing ['buyer_mask']"),
        ("evidence", {**EVIDENCE, "distance": 3}, "distance is -1 exactly when"),
        ("evidence", {**EVIDENCE, "copy_pdq": "a" * 64}, "distance is -1 exactly when"),
        ("evidence", {**EVIDENCE, "files": [{"name": "a"}]}, "evidence.files[0]"),
        ("evidence", {**EVIDENCE, "recorder": "Brand"}, "evidence.recorder"),
        ("event", ENTRY, "missing"),
    ],
)
def test_records_have_exact_fields_and_types(kind: str, record: Any, named: str) -> None:
    check_record("entry", ENTRY)
    check_record("evidence", EVIDENCE)
    with pytest.raises(ReceiptInvalid) as refused:
        check_record(kind, json.loads(json.dumps(record)))
    assert named in f"{refused.value.reason} {refused.value.field}"
