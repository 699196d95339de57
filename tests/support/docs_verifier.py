"""An independent verifier of xinchain receipts, written from docs/receipts.md alone.

It was written by an outside reader from the specification page `docs/receipts.md` and the
public standards it cites (RFC 8259, RFC 8949 §4.2.1, RFC 9162 §2.1, RFC 8032, GB/T 32918.2),
without reading any xinchain source code, its tests or its history, and without importing the
`xinchain` package. It exists to test whether the specification is complete: wherever the
page was silent, ambiguous or contradictory, the question and the choice made are listed in
`SPEC_QUESTIONS` below.

Libraries: the Python standard library, PyNaCl (libsodium: Ed25519 verification and point
validity), `cryptography` (SM3) and `tongsuopy` (SM2 verification). The JSON strictness rules,
canonical CBOR, RFC 9162 inclusion proofs, strict SM2 DER and the SM2 curve check are written
here.

    verify(receipt_file, document=None, pinned=None, trusted=None) -> Accepted   # or Refused
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

SPEC_QUESTIONS: list[str] = [
    # --- Malformed receipts (strict JSON) -------------------------------------------------
    "Nesting depth: 'nests deeper than 16 levels' does not say what a level is. Is the "
    "top-level object level 1 or 0? Do scalars (a string inside an array) count as a level? "
    "CHOICE: only objects and arrays count, the top-level object is level 1, 17 or more nested "
    "containers is malformed. (Harmless for accept/refuse: the schema never nests deeper than "
    "5 containers, so a deeper receipt fails step 1 anyway; only the step/reason differ.)",
    "Duplicate keys: are keys compared as written or after unescaping? Is "
    '{"a": 1, "\\u0061": 2} a duplicate? CHOICE: compared after unescaping (they are the same '
    "key value, and the layout of escapes is 'not covered'), so it is malformed.",
    "Negative integers: the only exception is 'evidence.distance' being -1. Is this the "
    "top-level record field R.evidence.distance only (not e.g. a key named 'evidence' deeper "
    "down)? Is distance -2 malformed (step 0) or a type error of the record (step 1)? CHOICE: "
    "only the integer -1 and only at R['evidence']['distance'] escapes the range rule; any "
    "other negative integer anywhere (including distance -2) is malformed (step 0).",
    "Is -1 at R.evidence.distance still malformed when copy_pdq is not empty? The malformed "
    "rules say -1 is allowed 'when no image of the copy was hashed'. CHOICE: it passes the "
    "parse (step 0) and is refused by the record rule of step 1.",
    "'larger than 16 MiB': is exactly 16 MiB (16,777,216 bytes) allowed, and does MiB mean "
    "2^20? CHOICE: yes, > 16,777,216 bytes is refused, exactly that size is allowed.",
    "Whitespace around the single JSON value (leading/trailing spaces, a final newline) is "
    "allowed by RFC 8259; the page only says 'exactly one JSON value'. CHOICE: allowed "
    "(JSON whitespace only: space, tab, CR, LF).",
    "Raw control characters (U+0000-U+001F) inside a JSON string are invalid JSON under "
    "RFC 8259; the page does not mention them. CHOICE: malformed (not a JSON value).",
    "An escaped \\u0000 or a noncharacter (U+FFFE) in a string is valid Unicode: the page only "
    "forbids unpaired surrogates. CHOICE: allowed.",
    "Do the malformed-file rules apply to object KEYS as well (unpaired surrogate in a key)? "
    "CHOICE: yes, keys are strings.",
    "A huge integer literal (thousands of digits) is 'outside 0 to 2^64-1'. CHOICE: malformed "
    "(checked on the literal's length first, never converted).",
    # --- Canonical CBOR ---------------------------------------------------------------------
    "Canonical CBOR map-key order: the page says 'bytewise order of their encodings (for text "
    "keys: shorter first, then bytewise)'; 'shorter' is taken as shorter UTF-8 byte length "
    "(which is what the bytewise order of encodings gives), not fewer characters.",
    # --- Types ------------------------------------------------------------------------------
    "Org id regex ^[a-z0-9][a-z0-9_.-]{0,63}$: in Python, PCRE and Java '$' also matches "
    "before a final newline, so 'brand\\n' would match the regex as written. CHOICE: the "
    "whole string must match, no trailing newline.",
    "event.type ('one of ObjectEvent, ...') and event.action ('ADD, OBSERVE, DELETE, or "
    "empty') are listed in the description column while the type column says 'text', and the "
    "page says 'Nothing else is checked about a record's values by the verifier'. Are the "
    "enumerations checked? CHOICE: NOT checked; only the type column is enforced (text).",
    "Arrays that may be empty: event.epcs, work.crops, evidence.files, org.roles, org.keys, "
    "anchor.path, certificate.signatures, genesis.orgs. The page only says validators has 'at "
    "least one'. CHOICE: all others may be empty (an empty signatures list then fails the "
    "quorum; empty orgs fails because each validator must name a listed org).",
    "Must array elements be unique where nothing is said (event.epcs, work.crops, "
    "evidence.files, org.roles)? CHOICE: duplicates allowed.",
    "result.sender is 'text': must it be an org id, or an org listed in the genesis? CHOICE: "
    "any text, not compared with genesis.orgs (orgs may join after genesis by governance). "
    "work.org / evidence.recorder are org ids and must equal it.",
    "entry.rank is 'integer >= 1' and work.quality 'integer 0-100': the upper bound of rank "
    "is taken from the malformed rule (2^64 - 1).",
    "Is work.time_ms/evidence.time_ms == header.time_ms checked at step 7 (where the steps "
    "put it) although the table is in Records? CHOICE: step 7 as the steps say.",
    # --- Genesis ----------------------------------------------------------------------------
    "Genesis uniqueness: 'a duplicate id, name or key is not a genesis'. Does 'name' cover "
    "org display names (org.name) or only validator names? CHOICE: only validator names and "
    "org ids must be unique; two orgs may share a display name.",
    "May a validator's public_key also appear among an org's keys? The page has two separate "
    "rules ('A public key appears once among all orgs' keys'; validators 'keys unique'). "
    "CHOICE: allowed (the genuine samples keep them apart, but nothing forbids it).",
    "Org roles: is there a fixed vocabulary (platform, brand, merchant, ...)? Duplicates? "
    "CHOICE: any string of org-id syntax, duplicates allowed.",
    "tls_ca: only 'starting -----BEGIN CERTIFICATE-----' is said. Must it be a complete, "
    "parseable PEM certificate (END line, base64, X.509)? CHOICE: only the prefix is checked.",
    "params: any range for the three values (e.g. block_txs_max >= 1)? CHOICE: any uint.",
    "SM2 key 'on the curve': must x and y be below p (canonical field elements), or is the "
    "equation checked mod p only? CHOICE: x < p and y < p required, then y^2 = x^3 + ax + b "
    "mod p. (Cofactor is 1, so no subgroup check is needed.)",
    "Ed25519 key validity for ORG keys too: the page says 'Every public key (orgs' and "
    "validators') is a valid key of the suite'. CHOICE: yes, every org key is checked with "
    "crypto_core_ed25519_is_valid_point / the SM2 curve check.",
    "Must genesis.time_ms relate to header.time_ms (genesis before block)? CHOICE: no.",
    "tls_ca is present 'only when the org runs nodes'. An org that has a validator runs a "
    "node: must every validator's org carry tls_ca? (In the samples every org has one, "
    "including orgs without a validator, so the samples cannot tell.) CHOICE: not required; "
    "tls_ca is optional for every org, but when present must be non-empty PEM-looking text.",
    # --- Pinning ----------------------------------------------------------------------------
    "A pinned genesis hash 'as typed': is surrounding whitespace (a newline from a file) "
    "stripped? What happens to a pinned value that is not 64 hex digits? CHOICE: ASCII "
    "whitespace is stripped; anything else not 64 hex digits is refused at step 2.",
    "--genesis-hash and --trusted-chains together: must g match both, or either? CHOICE: "
    "each pin given must hold (conjunction).",
    "A trusted-chains entry that is not 64 hex digits, or a line with leading spaces: ignored, "
    "or an error? CHOICE (API takes a set): entries are stripped and lower-cased; entries "
    "that are not 64 hex digits never match. An empty set pins to nothing: always refused.",
    "Trusted-chains file: 'its genesis hash, a space, and a name' but the example has two "
    "spaces; is the name required, may the hash be followed by a tab, may a line have leading "
    "spaces, is a malformed line an error or skipped, and may a '#' follow spaces? Not testable "
    "through this API (it takes a set of hashes) but a CLI re-implementation must guess.",
    "event.json is 'the whole original event as canonical JSON text': which canonical JSON "
    "(RFC 8785?) and is it checked against the indexed fields? CHOICE: not checked ('nothing "
    "else is checked'; the validators did it).",
    # --- Where each object's shape is checked -----------------------------------------------
    "The steps name where document (3), result (4), header (6) and genesis (2) shapes are "
    "checked, but not anchor, result_proof, certificate or the signature entries. CHOICE: "
    "anchor shape at step 5, result_proof at step 6, certificate {height, round, block_hash, "
    "signatures} at step 8, each signature entry {validator, signature} at step 9. A top-level "
    'field of the wrong JSON type (e.g. "genesis": 5) is refused at that field\'s step.',
    "Merkle proof path entries: 'Hashes are 64 digits for both suites' is read as: each path "
    "element must be hex 64 (a path element of another even length is refused, not hashed).",
    "'path holds at most 64 hashes': a path longer than 64 is refused at the step of its "
    "proof (5 or 6); RFC 9162 would refuse it anyway since size < 2^64.",
    "Is data.size == 1 required for 'copyright.evidence' ('a batch of one') and for "
    "notary.anchor ('A single anchored file is a batch of one: index 0, size 1')? Steps 4-5 "
    "do not check it. CHOICE: NOT checked; only anchor.size == data.size and the proof.",
    "The file/record table says the leaves of data.root for 'entry' are 'rank 1 first': "
    "should anchor.index == entry.rank - 1 be checked? (The genuine sample entry with rank 2 "
    "has index 1.) CHOICE: NOT checked, the steps do not list it.",
    "header.height >= 1 and header.proposer < n appear both in the header table (type "
    "column 'uint >= 1') and in step 7. CHOICE: step 6 checks uint only; step 7 the bounds.",
    # --- Certificate & signatures -----------------------------------------------------------
    "'certificate.round need not equal header.round: a block proposed in one round may be "
    "decided in a later one' suggests certificate.round >= header.round. Is that checked? "
    "CHOICE: NOT checked (no step lists it).",
    "Step 9 order of checks: for each entry in turn (order, then index range, then "
    "signature), or first order/range for all, then signatures? CHOICE: order and range for "
    "all entries first, then every signature (only the printed reason differs).",
    "'signature is lowercase hex of 2 to 256 digits': an Ed25519 signature must be 128 "
    "digits and an SM2 one 16-144; a well-formed hex of another length is refused as a bad "
    "validator signature (step 9), not as a malformed entry.",
    "Is the signed message the commit statement itself or H(commit statement)? CHOICE: the "
    "statement bytes are the message M (Ed25519 signs M; SM2 computes e = SM3(Z_A || M)).",
    "SM2 DER rule 1 says 'a signature is 8 to 72 bytes': an extra explicit rule, or implied "
    "by rule 2 (two INTEGERs of 1..33 bytes)? CHOICE: both are enforced; they coincide.",
    "SM2 DER: INTEGER body 00 alone (value 0) is minimal DER but fails 1 <= r; refused at "
    "rule 3. A body of 33 bytes is accepted by rule 2 only with a leading 00.",
    # --- File / record ----------------------------------------------------------------------
    "When a record is carried and --file is given but differs from CBOR(record): is this "
    "checked before or after the hash comparison? CHOICE: before (step 3 either way).",
    "Document hash of a file receipt when --file is missing: refused at step 3 ('required').",
    "A receipt with a 'format' other than xinchain-receipt/1 AND other structural faults: the "
    "format message is given first only if the top-level is an object with a 'format' key; "
    "order within step 1 only changes the reason.",
    "SAMPLES: all 18 genuine samples in /tmp/receipt-samples (ed25519-sha256 and sm2-sm3; "
    "single file, batch of 3, event, two ranking entries, work, evidence) were accepted by "
    "this verifier as written from the page; none forced a choice not derivable from the "
    "page. They do not exercise: validator sets larger than 1, distance -1, multi-transaction "
    "blocks (all have tx_count 1), a non-zero round, or any edge choice above.",
    "Accepted.pinned: True when a pin (pinned or trusted) was given and matched; the API has "
    "no way to say which trusted name matched.",
]

# --- constants ---------------------------------------------------------------------------

MAX_FILE = 16 * 1024 * 1024
MAX_DEPTH = 16
U64_MAX = 2**64 - 1
FORMAT = "xinchain-receipt/1"

BASE_FIELDS = frozenset(
    {"format", "document", "anchor", "result", "result_proof", "header", "certificate", "genesis"}
)
RECORD_KINDS = ("event", "entry", "work", "evidence")

PAIRS: dict[str, frozenset[tuple[str, str]]] = {
    "": frozenset({("notary", "anchor"), ("notary", "anchor_batch")}),
    "event": frozenset({("provenance", "record_events")}),
    "entry": frozenset({("promo", "close")}),
    "work": frozenset({("copyright", "register")}),
    "evidence": frozenset({("copyright", "evidence")}),
}

SUITES = {"ed25519-sha256": "sha256", "sm2-sm3": "sm3"}

ORG_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
HEX = re.compile(r"(?:[0-9a-f]{2})*")
HEX64 = re.compile(r"[0-9a-f]{64}")
ANYCASE_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
SURROGATE = re.compile("[\ud800-\udfff]")
TLS_PREFIX = "-----BEGIN CERTIFICATE-----"

# Ed25519 group order
ED_L = 2**252 + 27742317777372353535851937790883648493

# SM2 curve (GB/T 32918.5)
SM2_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
SM2_A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
SM2_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
SM2_GX = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
SM2_GY = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)
SM2_ID = b"1234567812345678"


# --- API ---------------------------------------------------------------------------------


class Refused(Exception):
    """The receipt does not hold. `step` is the step of 'Verifying by hand' (0: malformed)."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class Accepted:
    pinned: bool
    genesis_hash: str
    sender: str
    height: int
    record_kind: str  # "" for a file


def _fail(step: int, reason: str) -> NoReturn:
    raise Refused(step, reason)


# --- strict JSON -------------------------------------------------------------------------


class _Malformed(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Malformed(f"duplicate key {k!r}")
        out[k] = v
    return out


def _parse_int(s: str) -> int:
    if s == "-0":
        raise _Malformed("-0")
    if s.startswith("-") and s != "-1":
        raise _Malformed(f"integer {s[:30]} outside 0 to 2^64-1")
    if len(s) > 20:
        raise _Malformed("integer outside 0 to 2^64-1")
    v = int(s)
    if v > U64_MAX:
        raise _Malformed(f"integer {s} outside 0 to 2^64-1")
    return v


def _parse_float(s: str) -> NoReturn:
    raise _Malformed(f"number with a fraction or exponent: {s[:30]}")


def _parse_constant(s: str) -> NoReturn:
    raise _Malformed(f"constant {s}")


def parse_strict(raw: bytes) -> dict[str, Any]:
    """Apply the 'Malformed receipts' rules; raise Refused(0, ...) or return the object."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        _fail(0, "receipt is not bytes")
    raw = bytes(raw)
    if len(raw) > MAX_FILE:
        _fail(0, "receipt larger than 16 MiB")
    if raw.startswith(b"\xef\xbb\xbf"):
        _fail(0, "receipt starts with a byte order mark")
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        _fail(0, "receipt is not valid UTF-8")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except _Malformed as e:
        _fail(0, f"malformed receipt: {e}")
    except RecursionError:
        _fail(0, "malformed receipt: nests deeper than 16 levels")
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        _fail(0, f"malformed receipt: not one JSON value ({str(e)[:80]})")
    if type(value) is not dict:
        _fail(0, "malformed receipt: not a JSON object")
    evidence = value.get("evidence")
    allowed_minus_one = evidence if type(evidence) is dict else None
    # iterative walk: depth, unpaired surrogates, negative integers
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            _fail(0, "malformed receipt: nests deeper than 16 levels")
        if type(node) is dict:
            for k, v in node.items():
                if SURROGATE.search(k):
                    _fail(0, "malformed receipt: unpaired surrogate in a key")
                if type(v) is int and v < 0 and not (node is allowed_minus_one and k == "distance"):
                    _fail(0, "malformed receipt: integer outside 0 to 2^64-1")
                if type(v) is dict or type(v) is list:
                    stack.append((v, depth + 1))
                elif type(v) is str and SURROGATE.search(v):
                    _fail(0, "malformed receipt: unpaired surrogate in a string")
        elif type(node) is list:
            for v in node:
                if type(v) is int and v < 0:
                    _fail(0, "malformed receipt: integer outside 0 to 2^64-1")
                if type(v) is dict or type(v) is list:
                    stack.append((v, depth + 1))
                elif type(v) is str and SURROGATE.search(v):
                    _fail(0, "malformed receipt: unpaired surrogate in a string")
    return value


# --- canonical CBOR (RFC 8949 §4.2.1), written here -------------------------------------


def _head(major: int, n: int) -> bytes:
    if n < 0 or n > U64_MAX:
        raise ValueError("CBOR argument out of range")
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes([major << 5 | 26]) + n.to_bytes(4, "big")
    return bytes([major << 5 | 27]) + n.to_bytes(8, "big")


def cbor(v: Any) -> bytes:
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if type(v) is int:
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if type(v) is str:
        b = v.encode("utf-8")
        return _head(3, len(b)) + b
    if type(v) is list:
        return _head(4, len(v)) + b"".join(cbor(x) for x in v)
    if type(v) is dict:
        items = sorted((cbor(k), cbor(x)) for k, x in v.items())
        for i in range(1, len(items)):
            if items[i][0] == items[i - 1][0]:
                raise ValueError("duplicate CBOR map key")
        return _head(5, len(items)) + b"".join(k + x for k, x in items)
    raise ValueError(f"not a JSON value: {type(v).__name__}")


# --- hashes, Merkle ----------------------------------------------------------------------


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _sm3(b: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SM3())
    h.update(b)
    return h.finalize()


def merkle_root(
    h: Callable[[bytes], bytes], leaf_hash: bytes, index: int, size: int, path: list[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2: recompute the root; raise ValueError when the proof is invalid."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    return r


# --- type predicates ---------------------------------------------------------------------


def _is_uint(v: Any) -> bool:
    return type(v) is int and 0 <= v <= U64_MAX


def _is_text(v: Any) -> bool:
    return type(v) is str


def _is_hex64(v: Any) -> bool:
    return type(v) is str and HEX64.fullmatch(v) is not None


def _is_hex(v: Any) -> bool:
    return type(v) is str and HEX.fullmatch(v) is not None


def _is_org_id(v: Any) -> bool:
    return type(v) is str and ORG_ID.fullmatch(v) is not None


def _is_obj(v: Any) -> bool:
    return type(v) is dict


def _exact(step: int, what: str, v: Any, fields: set[str] | frozenset[str]) -> dict[str, Any]:
    if type(v) is not dict:
        _fail(step, f"{what} is not an object")
    keys = set(v)
    if keys != set(fields):
        extra = sorted(keys - set(fields))
        missing = sorted(set(fields) - keys)
        _fail(step, f"{what} has the wrong fields (unknown {extra}, missing {missing})")
    return v


def _check_types(step: int, what: str, obj: dict[str, Any], spec: dict[str, Any]) -> None:
    for name, pred in spec.items():
        if not pred(obj[name]):
            _fail(step, f"{what}.{name} has the wrong type or value")


def _array_of(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is list and all(pred(x) for x in v)

    return check


def _int_range(lo: int, hi: int) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is int and lo <= v <= hi

    return check


def _is_file_entry(v: Any) -> bool:
    return (
        type(v) is dict
        and set(v) == {"name", "sha256"}
        and _is_text(v["name"])
        and _is_hex64(v["sha256"])
    )


RECORD_SPECS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "event": {
        "event_id": _is_text,
        "type": _is_text,
        "action": _is_text,
        "biz_step": _is_text,
        "disposition": _is_text,
        "event_time_us": _is_uint,
        "epcs": _array_of(_is_text),
        "parent_id": _is_text,
        "read_point": _is_text,
        "biz_location": _is_text,
        "customs_declaration": _is_text,
        "json": _is_text,
    },
    "entry": {
        "promo": _is_text,
        "rank": _int_range(1, U64_MAX),
        "order_no": _is_text,
        "paid_ms": _is_uint,
        "buyer_hash": _is_hex64,
        "buyer_mask": _is_text,
    },
    "work": {
        "sha256": _is_hex64,
        "pdq": _is_hex64,
        "crops": _array_of(_is_hex64),
        "quality": _int_range(0, 100),
        "title": _is_text,
        "org": _is_org_id,
        "seller": _is_text,
        "time_ms": _is_uint,
    },
    "evidence": {
        "work": _is_hex64,
        "url": _is_text,
        "files": _array_of(_is_file_entry),
        "captured_ms": _is_uint,
        "copy_pdq": lambda v: v == "" or _is_hex64(v),
        "distance": _int_range(-1, 256),
        "note": _is_text,
        "recorder": _is_org_id,
        "time_ms": _is_uint,
    },
}


def _is_local_features(v: Any) -> bool:
    """docs/receipts.md: base64 (standard alphabet, padded, canonical) of a 5-byte header
    (format 1, frame width and height, 1 to 2048 each, big-endian) and 1 to 64 points of 36
    bytes (x and y in sixteenths of a pixel, big-endian, inside the frame; a 32-byte
    descriptor)."""
    import base64
    import binascii

    if not isinstance(v, str):
        return False
    try:
        data = base64.b64decode(v.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return False
    if base64.b64encode(data).decode("ascii") != v or len(data) < 5 or data[0] != 1:
        return False
    width, height = int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big")
    body = data[5:]
    if not (1 <= width <= 2048 and 1 <= height <= 2048) or len(body) % 36:
        return False
    if not 1 <= len(body) // 36 <= 64:
        return False
    for start in range(0, len(body), 36):
        x = int.from_bytes(body[start : start + 2], "big") / 16
        y = int.from_bytes(body[start + 2 : start + 4], "big") / 16
        if x > width or y > height:
            return False
    return True


OPTIONAL_RECORD_FIELDS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "work": {"features": _is_local_features},
    "evidence": {"inliers": _int_range(0, 64), "points": _int_range(1, 64)},
}

HEADER_SPEC: dict[str, Callable[[Any], bool]] = {
    "chain_id": _is_text,
    "genesis_hash": _is_hex64,
    "height": _is_uint,
    "round": _is_uint,
    "parent_hash": _is_hex64,
    "tx_root": _is_hex64,
    "result_root": _is_hex64,
    "state_hash": _is_hex64,
    "validators_hash": _is_hex64,
    "proposer": _is_uint,
    "time_ms": _is_uint,
    "tx_count": _is_uint,
}

RESULT_SPEC: dict[str, Callable[[Any], bool]] = {
    "tx_id": _is_hex64,
    "ok": lambda v: type(v) is bool,
    "sender": _is_text,
    "contract": _is_text,
    "method": _is_text,
    "data": _is_obj,
    "error": _is_text,
}


# --- keys and signatures -----------------------------------------------------------------


def _ed25519_key_ok(pk_hex: str) -> bool:
    if type(pk_hex) is not str or len(pk_hex) != 64 or not _is_hex(pk_hex):
        return False
    from nacl.bindings import crypto_core_ed25519_is_valid_point

    try:
        return bool(crypto_core_ed25519_is_valid_point(bytes.fromhex(pk_hex)))
    except Exception:
        return False


def _sm2_key_ok(pk_hex: str) -> bool:
    if type(pk_hex) is not str or len(pk_hex) != 130 or not _is_hex(pk_hex):
        return False
    raw = bytes.fromhex(pk_hex)
    if raw[0] != 0x04:
        return False
    x = int.from_bytes(raw[1:33], "big")
    y = int.from_bytes(raw[33:65], "big")
    if x >= SM2_P or y >= SM2_P:
        return False
    return (y * y - (x * x * x + SM2_A * x + SM2_B)) % SM2_P == 0


def _ed25519_verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
    if len(pk) != 32 or len(sig) != 64:
        return False
    if int.from_bytes(sig[32:], "little") >= ED_L:
        return False
    import nacl.exceptions
    import nacl.signing

    try:
        nacl.signing.VerifyKey(pk).verify(msg, sig)
    except nacl.exceptions.BadSignatureError:
        return False
    except Exception:
        return False
    return True


def sm2_der_parse(sig: bytes) -> tuple[int, int] | None:
    """Strict DER SEQUENCE {r, s} as the page's SM2 rules 1-3 say; None when refused."""
    if not 8 <= len(sig) <= 72:
        return None
    if sig[0] != 0x30 or sig[1] >= 0x80 or sig[1] != len(sig) - 2:
        return None
    pos = 2
    ints: list[int] = []
    for _ in range(2):
        if pos + 2 > len(sig) or sig[pos] != 0x02:
            return None
        n = sig[pos + 1]
        if not 1 <= n <= 33:
            return None
        body = sig[pos + 2 : pos + 2 + n]
        if len(body) != n:
            return None
        if body[0] & 0x80:
            return None  # negative
        if n > 1 and body[0] == 0x00 and not body[1] & 0x80:
            return None  # not in the fewest bytes
        ints.append(int.from_bytes(body, "big"))
        pos += 2 + n
    if pos != len(sig):
        return None
    r, s = ints
    if not (1 <= r <= SM2_N - 1 and 1 <= s <= SM2_N - 1):
        return None
    return r, s


def _sm2_verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
    if sm2_der_parse(sig) is None:
        return False
    from tongsuopy.crypto import hashes as thashes
    from tongsuopy.crypto.asymciphers import ec

    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), pk)
        key.verify(sig, msg, ec.ECDSA(thashes.SM3()))
    except Exception:
        return False
    return True


# --- SM2 in pure Python (used only by the self-test, to cross-check tongsuopy) -----------


def _sm2_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % SM2_P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + SM2_A) * pow(2 * y1, -1, SM2_P) % SM2_P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, SM2_P) % SM2_P
    x3 = (lam * lam - x1 - x2) % SM2_P
    return x3, (lam * (x1 - x3) - y1) % SM2_P


def _sm2_mul(k: int, pt: tuple[int, int] | None) -> tuple[int, int] | None:
    acc: tuple[int, int] | None = None
    while k:
        if k & 1:
            acc = _sm2_add(acc, pt)
        pt = _sm2_add(pt, pt)
        k >>= 1
    return acc


def sm2_verify_pure(pk: bytes, msg: bytes, sig: bytes) -> bool:
    rs = sm2_der_parse(sig)
    if rs is None or len(pk) != 65 or not _sm2_key_ok(pk.hex()):
        return False
    r, s = rs

    def b32(v: int) -> bytes:
        return v.to_bytes(32, "big")

    za = _sm3(
        (len(SM2_ID) * 8).to_bytes(2, "big")
        + SM2_ID
        + b32(SM2_A)
        + b32(SM2_B)
        + b32(SM2_GX)
        + b32(SM2_GY)
        + pk[1:]
    )
    e = int.from_bytes(_sm3(za + msg), "big")
    t = (r + s) % SM2_N
    if t == 0:
        return False
    q = (int.from_bytes(pk[1:33], "big"), int.from_bytes(pk[33:], "big"))
    pt = _sm2_add(_sm2_mul(s, (SM2_GX, SM2_GY)), _sm2_mul(t, q))
    if pt is None:
        return False
    return (e + pt[0]) % SM2_N == r


# --- the steps ---------------------------------------------------------------------------


def _step1(r: dict[str, Any]) -> str:
    if "format" in r and r["format"] != FORMAT:
        found = r["format"]
        shown = repr(found) if not isinstance(found, str) else f'"{found[:80]}"'
        _fail(
            1,
            f"receipt format {shown} is not {FORMAT!r}, the format this verifier checks; get a "
            "new receipt from the chain's nodes (GET /v1/transactions/{id}/proof)",
        )
    keys = set(r)
    if not keys >= BASE_FIELDS:
        _fail(1, f"receipt lacks fields {sorted(BASE_FIELDS - keys)}")
    extra = keys - BASE_FIELDS
    if not extra <= set(RECORD_KINDS):
        _fail(1, f"receipt has unknown fields {sorted(extra - set(RECORD_KINDS))}")
    if len(extra) > 1:
        _fail(1, f"receipt carries more than one record: {sorted(extra)}")
    kind = next(iter(extra)) if extra else ""
    if kind:
        spec = dict(RECORD_SPECS[kind])
        optional = OPTIONAL_RECORD_FIELDS.get(kind, {})
        present = set(r[kind]) & set(optional) if isinstance(r[kind], dict) else set()
        spec.update({name: optional[name] for name in present})
        rec = _exact(1, kind, r[kind], set(spec))
        _check_types(1, kind, rec, spec)
        if kind == "evidence" and (rec["copy_pdq"] == "") != (rec["distance"] == -1):
            _fail(1, "evidence.distance must be -1 exactly when copy_pdq is empty")
        if kind == "evidence" and (("inliers" in rec) != ("points" in rec)):
            _fail(1, "evidence.inliers and evidence.points come together")
        if kind == "evidence" and rec.get("inliers", 0) > rec.get("points", 64):
            _fail(1, "evidence.inliers must be at most evidence.points")
    return kind


def _check_key(suite: str, v: Any) -> bool:
    if suite == "ed25519-sha256":
        return _ed25519_key_ok(v)
    return _sm2_key_ok(v)


def _step2(g: Any) -> tuple[str, Callable[[bytes], bytes]]:
    top = {"chain_id", "suite", "time_ms", "orgs", "validators", "params"}
    g = _exact(2, "genesis", g, top | {"nodes"} if isinstance(g, dict) and "nodes" in g else top)
    if not _is_org_id(g["chain_id"]):
        _fail(2, "genesis.chain_id is not of org id syntax")
    suite = g["suite"]
    if type(suite) is not str or suite not in SUITES:
        _fail(2, "genesis.suite is not ed25519-sha256 or sm2-sm3")
    if not _is_uint(g["time_ms"]):
        _fail(2, "genesis.time_ms is not a uint")
    orgs = g["orgs"]
    if type(orgs) is not list:
        _fail(2, "genesis.orgs is not an array")
    org_ids: set[str] = set()
    org_keys: set[str] = set()
    for i, o in enumerate(orgs):
        if type(o) is not dict:
            _fail(2, f"genesis.orgs[{i}] is not an object")
        base = {"id", "name", "roles", "keys"}
        if set(o) != base and set(o) != base | {"tls_ca"}:
            _fail(2, f"genesis.orgs[{i}] has the wrong fields")
        if not _is_org_id(o["id"]):
            _fail(2, f"genesis.orgs[{i}].id is not an org id")
        if o["id"] in org_ids:
            _fail(2, f"genesis: duplicate org id {o['id']}")
        org_ids.add(o["id"])
        if not _is_text(o["name"]) or o["name"] == "":
            _fail(2, f"genesis.orgs[{i}].name is not non-empty text")
        if not _array_of(_is_org_id)(o["roles"]):
            _fail(2, f"genesis.orgs[{i}].roles is not an array of org-id-syntax text")
        if type(o["keys"]) is not list:
            _fail(2, f"genesis.orgs[{i}].keys is not an array")
        for k in o["keys"]:
            if not _check_key(suite, k):
                _fail(2, f"genesis.orgs[{i}]: bad public key")
            if k in org_keys:
                _fail(2, "genesis: a public key appears twice among the orgs' keys")
            org_keys.add(k)
        if "tls_ca" in o and not (_is_text(o["tls_ca"]) and o["tls_ca"].startswith(TLS_PREFIX)):
            _fail(2, f"genesis.orgs[{i}].tls_ca is not PEM text of a certificate")
    vals = g["validators"]
    if type(vals) is not list or not vals:
        _fail(2, "genesis.validators is not a non-empty array")
    names: set[str] = set()
    vkeys: set[str] = set()
    for i, v in enumerate(vals):
        v = _exact(2, f"genesis.validators[{i}]", v, {"name", "org", "public_key"})
        if not _is_org_id(v["name"]):
            _fail(2, f"genesis.validators[{i}].name is not of org id syntax")
        if v["name"] in names:
            _fail(2, f"genesis: duplicate validator name {v['name']}")
        names.add(v["name"])
        if type(v["org"]) is not str or v["org"] not in org_ids:
            _fail(2, f"genesis.validators[{i}].org is not an org of the genesis")
        if not _check_key(suite, v["public_key"]):
            _fail(2, f"genesis.validators[{i}]: bad public key")
        if v["public_key"] in vkeys:
            _fail(2, "genesis: two validators have the same public key")
        vkeys.add(v["public_key"])
    params = _exact(
        2,
        "genesis.params",
        g["params"],
        {"tx_validity_blocks_max", "block_txs_max", "block_bytes_max"},
    )
    for name, value in params.items():
        if not _is_uint(value):
            _fail(2, f"genesis.params.{name} is not a uint")
    if "nodes" in g:
        _nodes(g["nodes"], {o["id"] for o in orgs if "tls_ca" in o}, vals)
    h = _sha256 if suite == "ed25519-sha256" else _sm3
    return suite, h


def _nodes(nodes: Any, certifying: set[str], validators: list[Any]) -> None:
    """genesis.nodes, when present: the registered P2P nodes, validators among them."""
    if type(nodes) is not list or not nodes:
        _fail(2, "genesis.nodes is not a non-empty array")
    registered: dict[str, str] = {}
    for i, n in enumerate(nodes):
        n = _exact(2, f"genesis.nodes[{i}]", n, {"name", "org", "tls_key"})
        if not _is_org_id(n["name"]):
            _fail(2, f"genesis.nodes[{i}].name is not of org id syntax")
        if n["name"] in registered:
            _fail(2, f"genesis: duplicate node name {n['name']}")
        if type(n["org"]) is not str or n["org"] not in certifying:
            _fail(2, f"genesis.nodes[{i}].org is not an org of the genesis with a tls_ca")
        if not _is_hex64(n["tls_key"]):
            _fail(2, f"genesis.nodes[{i}].tls_key is not hex 64")
        registered[n["name"]] = n["org"]
    for v in validators:
        if registered.get(v["name"]) != v["org"]:
            _fail(2, f"genesis: validator {v['name']} has no node of its org in genesis.nodes")


def _proof(
    step: int,
    what: str,
    v: Any,
    h: Callable[[bytes], bytes],
    leaf: bytes,
    size: int,
    size_name: str,
    root: str,
) -> None:
    """Check an inclusion proof {index, size, path}: its size must be `size`, its root `root`."""
    p = _exact(step, what, v, {"index", "size", "path"})
    if not _is_uint(p["index"]) or not _is_uint(p["size"]):
        _fail(step, f"{what}.index/size is not a uint")
    path = p["path"]
    if type(path) is not list or not all(_is_hex64(x) for x in path):
        _fail(step, f"{what}.path is not an array of hex 64")
    if len(path) > 64:
        _fail(step, f"{what}.path holds more than 64 hashes")
    if p["size"] != size:
        _fail(step, f"{what}.size is not {size_name}")
    try:
        got = merkle_root(
            h, h(b"\x00" + leaf), p["index"], p["size"], [bytes.fromhex(x) for x in path]
        )
    except ValueError as e:
        _fail(step, f"bad Merkle proof ({what}: {e})")
    if got.hex() != root:
        _fail(step, f"bad Merkle proof ({what}: the root differs)")


def _verify(
    receipt_file: bytes,
    document: bytes | None,
    pinned: str | None,
    trusted: set[str] | None,
    state: list[int],
) -> Accepted:
    state[0] = 0
    r = parse_strict(receipt_file)

    # 1. Structure
    state[0] = 1
    kind = _step1(r)

    # 2. Genesis
    state[0] = 2
    g = r["genesis"]
    suite, h = _step2(g)
    gh = h(cbor(g)).hex()
    is_pinned = False
    if pinned is not None:
        want = pinned.strip(" \t\r\n") if isinstance(pinned, str) else ""
        if not ANYCASE_HEX64.fullmatch(want):
            _fail(2, "the pinned genesis hash is not 64 hex digits")
        if want.lower() != gh:
            _fail(2, f"genesis {gh} is not the pinned genesis {want.lower()}")
        is_pinned = True
    if trusted is not None:
        wanted = {t.strip(" \t\r\n").lower() for t in trusted if isinstance(t, str)}
        if gh not in wanted:
            _fail(2, f"genesis {gh} is not among the trusted chains")
        is_pinned = True

    # 3. Document
    state[0] = 3
    d = _exact(3, "document", r["document"], {"algorithm", "hash"})
    if d["algorithm"] != SUITES[suite] or type(d["algorithm"]) is not str:
        _fail(3, f"document.algorithm must be {SUITES[suite]!r} for suite {suite}")
    if not _is_hex64(d["hash"]):
        _fail(3, "document.hash is not hex 64")
    if kind:
        doc = cbor(r[kind])
        if document is not None and bytes(document) != doc:
            _fail(3, f"--file is not the canonical CBOR encoding of the receipt's {kind}")
    else:
        if document is None:
            _fail(3, "a receipt of a file needs the file (--file)")
        doc = bytes(document)
    digest = h(doc)
    if digest.hex() != d["hash"]:
        _fail(3, "hash mismatch")

    # 4. Contract
    state[0] = 4
    res = _exact(4, "result", r["result"], set(RESULT_SPEC))
    _check_types(4, "result", res, RESULT_SPEC)
    if res["ok"] is not True:
        _fail(4, "result.ok is not true: a failed transaction proves nothing")
    if res["error"] != "":
        _fail(4, "result.error is not empty")
    if (res["contract"], res["method"]) not in PAIRS[kind]:
        _fail(4, f"{res['contract']}.{res['method']} does not prove {kind or 'a file'}")
    data = _exact(4, "result.data", res["data"], {"root", "size"})
    if not _is_hex64(data["root"]):
        _fail(4, "result.data.root is not hex 64")
    if not (_is_uint(data["size"]) and data["size"] >= 1):
        _fail(4, "result.data.size is not an integer >= 1")
    if kind == "work" and r["work"]["org"] != res["sender"]:
        _fail(4, "work.org is not result.sender")
    if kind == "evidence" and r["evidence"]["recorder"] != res["sender"]:
        _fail(4, "evidence.recorder is not result.sender")

    # 5. Anchor
    state[0] = 5
    _proof(5, "anchor", r["anchor"], h, digest, data["size"], "result.data.size", data["root"])

    # 6. Result in block
    state[0] = 6
    hdr = _exact(6, "header", r["header"], set(HEADER_SPEC))
    _check_types(6, "header", hdr, HEADER_SPEC)
    _proof(
        6,
        "result_proof",
        r["result_proof"],
        h,
        cbor(res),
        hdr["tx_count"],
        "header.tx_count",
        hdr["result_root"],
    )

    # 7. Header
    state[0] = 7
    vals = g["validators"]
    n = len(vals)
    if hdr["chain_id"] != g["chain_id"]:
        _fail(7, "header.chain_id is not genesis.chain_id")
    if hdr["genesis_hash"] != gh:
        _fail(7, "header.genesis_hash is not the genesis hash")
    if hdr["validators_hash"] != h(cbor(vals)).hex():
        _fail(7, "header.validators_hash is not H(CBOR(genesis.validators))")
    if hdr["height"] < 1:
        _fail(7, "header.height is 0")
    if hdr["proposer"] >= n:
        _fail(7, "header.proposer is not a validator index")
    if kind in ("work", "evidence") and r[kind]["time_ms"] != hdr["time_ms"]:
        _fail(7, f"{kind}.time_ms is not header.time_ms")
    b = h(cbor(hdr)).hex()

    # 8. Certificate
    state[0] = 8
    cert = _exact(
        8, "certificate", r["certificate"], {"height", "round", "block_hash", "signatures"}
    )
    if not _is_uint(cert["height"]) or not _is_uint(cert["round"]):
        _fail(8, "certificate.height/round is not a uint")
    if not _is_hex64(cert["block_hash"]):
        _fail(8, "certificate.block_hash is not hex 64")
    if type(cert["signatures"]) is not list:
        _fail(8, "certificate.signatures is not an array")
    if cert["block_hash"] != b:
        _fail(8, "certificate.block_hash is not the block hash")
    if cert["height"] != hdr["height"]:
        _fail(8, "certificate.height is not header.height")

    # 9. Signatures
    state[0] = 9
    sigs = cert["signatures"]
    last = -1
    for i, e in enumerate(sigs):
        e = _exact(9, f"certificate.signatures[{i}]", e, {"validator", "signature"})
        if not _is_uint(e["validator"]):
            _fail(9, f"certificate.signatures[{i}].validator is not a uint")
        s = e["signature"]
        if not (_is_hex(s) and 2 <= len(s) <= 256):
            _fail(9, f"certificate.signatures[{i}].signature is not lowercase hex of 2-256 digits")
        if e["validator"] <= last:
            _fail(9, "signatures are not in strictly ascending validator order")
        last = e["validator"]
        if e["validator"] >= n:
            _fail(9, "unknown validator")
    stmt = b"xinchain/commit/v1\x00" + cbor(
        {
            "kind": "commit",
            "chain_id": hdr["chain_id"],
            "height": hdr["height"],
            "round": cert["round"],
            "block_hash": b,
        }
    )
    check = _ed25519_verify if suite == "ed25519-sha256" else _sm2_verify
    for e in sigs:
        pk = bytes.fromhex(vals[e["validator"]]["public_key"])
        if not check(pk, stmt, bytes.fromhex(e["signature"])):
            _fail(9, f"bad validator signature (validator {e['validator']})")

    # 10. Quorum
    state[0] = 10
    if len(sigs) < 2 * n // 3 + 1:
        _fail(10, f"too few validator signatures ({len(sigs)} of {n}, need {2 * n // 3 + 1})")

    return Accepted(
        pinned=is_pinned,
        genesis_hash=gh,
        sender=res["sender"],
        height=hdr["height"],
        record_kind=kind,
    )


def verify(
    receipt_file: bytes,
    document: bytes | None = None,
    pinned: str | None = None,
    trusted: set[str] | None = None,
) -> Accepted:
    """Verify a receipt file's bytes; return Accepted or raise Refused (never anything else)."""
    state = [0]
    try:
        return _verify(receipt_file, document, pinned, trusted, state)
    except Refused:
        raise
    except RecursionError:
        raise Refused(state[0], "internal: recursion limit") from None
    except Exception as e:  # a bug of this verifier; still a refusal, never a crash
        raise Refused(state[0], f"internal error: {type(e).__name__}: {e}") from None


# --- self-test ---------------------------------------------------------------------------


def _mutations(raw: bytes) -> list[tuple[str, bytes]]:
    text = raw.decode()

    out: list[tuple[str, bytes]] = []
    # flip one hex digit of several hashes
    for path in (
        ("document", "hash"),
        ("header", "state_hash"),
        ("result", "tx_id"),
        ("certificate", "block_hash"),
    ):
        o = json.loads(text)
        v = o[path[0]][path[1]]
        o[path[0]][path[1]] = ("1" if v[0] != "1" else "2") + v[1:]
        out.append((f"flip {'.'.join(path)}", json.dumps(o).encode()))
    o = json.loads(text)
    sig = o["certificate"]["signatures"][0]["signature"]
    o["certificate"]["signatures"][0]["signature"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    out.append(("flip signature digit", json.dumps(o).encode()))
    o = json.loads(text)
    o["certificate"]["signatures"][0]["signature"] = sig.upper()
    out.append(("uppercase signature", json.dumps(o).encode()))
    out.append(("duplicate key", raw.replace(b'"ok": true', b'"ok": false, "ok": true', 1)))
    out.append(
        ("duplicate key (escaped)", text.replace('"ok"', '"ok": true, "\\u006fk"', 1).encode())
    )
    o = json.loads(text)
    o["header"]["extra"] = 1
    out.append(("added header field", json.dumps(o).encode()))
    o = json.loads(text)
    o["note"] = ""
    out.append(("added top-level field", json.dumps(o).encode()))
    o = json.loads(text)
    del o["result"]["error"]
    out.append(("removed result.error", json.dumps(o).encode()))
    out.append(("BOM", b"\xef\xbb\xbf" + raw))
    out.append(("fraction", raw.replace(b'"round": 0', b'"round": 0.0', 1)))
    out.append(("minus zero", raw.replace(b'"round": 0', b'"round": -0', 1)))
    out.append(("exponent", raw.replace(b'"round": 0', b'"round": 0e0', 1)))
    out.append(("trailing garbage", raw + b" {}"))
    out.append(("not utf-8", raw.replace(b'"ok"', b'"o\xff"', 1)))
    out.append(("lone surrogate", raw.replace(b'"error": ""', b'"error": "\\ud800"', 1)))
    out.append(("deep nesting", b'{"a":' * 20 + b"1" + b"}" * 20))
    out.append(("very deep nesting", b"[" * 100000 + b"]" * 100000))
    out.append(("big integer", raw.replace(b'"round": 0', b'"round": 18446744073709551616', 1)))
    out.append(("negative integer", raw.replace(b'"round": 0', b'"round": -1', 1)))
    o = json.loads(text)
    o["format"] = "xinchain-receipt/2"
    out.append(("other format", json.dumps(o).encode()))
    o = json.loads(text)
    o["result"]["ok"] = 1
    out.append(("ok is 1", json.dumps(o).encode()))
    o = json.loads(text)
    o["certificate"]["signatures"].append(dict(o["certificate"]["signatures"][0]))
    out.append(("repeated signature", json.dumps(o).encode()))
    o = json.loads(text)
    o["certificate"]["signatures"] = []
    out.append(("no signature", json.dumps(o).encode()))
    o = json.loads(text)
    o["genesis"]["params"]["extra"] = 1
    out.append(("unknown param", json.dumps(o).encode()))
    o = json.loads(text)
    o["anchor"]["size"] = o["anchor"]["size"] + 1
    out.append(("anchor size", json.dumps(o).encode()))
    return out


def _main() -> int:
    import warnings

    warnings.simplefilter("ignore")
    here = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/receipt-samples")
    samples = sorted(here.glob("*.receipt.json"))
    passed = failed = 0
    bad_mut = 0
    for f in samples:
        stem = f.name[: -len(".receipt.json")]
        suite = stem.split(".")[0]
        doc_path = here / f"{stem}.doc"
        doc = doc_path.read_bytes() if doc_path.exists() else None
        hash_file = here / f"{suite}.genesis-hash.txt"
        pin = hash_file.read_text() if hash_file.exists() else None
        raw = f.read_bytes()
        try:
            a = verify(raw, doc, pin)
            passed += 1
            print(f"ACCEPT {f.name}: {a}")
        except Refused as e:
            failed += 1
            print(f"REFUSE {f.name}: {e}")
            continue
        # pretty-printed / re-laid-out copy is the same receipt
        relaid = json.dumps(json.loads(raw), indent=3, ensure_ascii=True, sort_keys=True).encode()
        try:
            verify(relaid, doc, pin.upper() if pin else None)
        except Refused as e:
            print(f"  !! re-laid-out copy refused: {e}")
            bad_mut += 1
        # unpinned and wrong pin
        try:
            if verify(raw, doc).pinned:
                print("  !! unpinned verify says pinned")
                bad_mut += 1
        except Refused as e:
            print(f"  !! unpinned verify refused: {e}")
            bad_mut += 1
        for label, kwargs in (
            ("wrong pin", {"pinned": "00" * 32}),
            ("empty trusted set", {"trusted": set()}),
            (
                "missing --file" if doc is not None else "wrong --file",
                {"document": None if doc is not None else b"x"},
            ),
        ):
            args: dict[str, Any] = {"document": doc, "pinned": pin}
            args.update(kwargs)
            try:
                verify(raw, **args)
                print(f"  !! {label}: accepted")
                bad_mut += 1
            except Refused:
                pass
        for label, mutated in _mutations(raw):
            try:
                verify(mutated, doc, pin)
                print(f"  !! mutation {label!r} accepted")
                bad_mut += 1
            except Refused as e:
                if e.reason.startswith("internal"):
                    print(f"  !! mutation {label!r}: {e}")
                    bad_mut += 1
        # cross-checks: CBOR against cbor2, SM2 against the pure-Python implementation
        import cbor2

        obj = json.loads(raw)
        if cbor(obj) != cbor2.dumps(obj, canonical=True):
            print("  !! canonical CBOR differs from cbor2")
            bad_mut += 1
        if suite == "sm2-sm3":
            o = obj
            hdr = o["header"]
            b = _sm3(cbor(hdr)).hex()
            stmt = b"xinchain/commit/v1\x00" + cbor(
                {
                    "kind": "commit",
                    "chain_id": hdr["chain_id"],
                    "height": hdr["height"],
                    "round": o["certificate"]["round"],
                    "block_hash": b,
                }
            )
            for ent in o["certificate"]["signatures"]:
                pk = bytes.fromhex(o["genesis"]["validators"][ent["validator"]]["public_key"])
                if not sm2_verify_pure(pk, stmt, bytes.fromhex(ent["signature"])):
                    print("  !! pure-Python SM2 disagrees with tongsuopy")
                    bad_mut += 1
    print(
        f"{passed} accepted, {failed} refused of {len(samples)} samples; {bad_mut} self-test faults"
    )
    return 0 if failed == 0 and bad_mut == 0 else 1


if __name__ == "__main__":
    sys.exit(_main())
