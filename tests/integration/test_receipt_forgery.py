"""Forged receipts, built the way an attacker would, against real `xinchain up` processes.

The consortium's chain and an attacker's own chain run as real nodes; records and anchors go
through the public REST API and `xinchain notary put`; every verdict is `xinchain verify`'s
exit code and output. Each forgery below was accepted before receipts were hardened.

Scenarios:

* a record forged from a notary anchor: an entry "order 9999 is No. 1" and a copyright work
  "registered" by another org, each anchored as a plain file and attached as the record, are
  refused even with the chain pinned (the same bytes still verify as a file, so the anchor is
  genuine); a genuine entry receipt of the same chain verifies
* record fields: an extra field, a missing `buyer_mask`, `rank: true`, and an event relabelled
  as an entry are refused with the field named
* malformed JSON: a duplicate key (`"ok": false` before the real `"ok": true`), a byte order
  mark, Latin-1 bytes, an integer of 2^64, a fraction, `-0`
* pinning: the attacker's own chain issues a receipt for the same file; unpinned it prints
  `not pinned` with the genesis hash to compare, pinned to the consortium it is refused, pinned
  in upper case to its own hash it is accepted, a trusted-chains file without it refuses it,
  and two new chains never share a chain id
* header rules on the attacker's chain, re-signed by its validator: a failed result that says
  `ok`, height 0, a proposer outside the validator set (a re-signed unchanged receipt passes)
* Ed25519 rules: a signature with a small-order R that OpenSSL accepts; S + L; a genesis with
  a small-order validator key whose "signature" verifies in OpenSSL for any message; a genesis
  listing one key for two validators, each "signing"
* SM2 rules: a genuine signature re-encoded with a long-form length, a padded integer, a
  trailing byte, and s + n, each refused
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningNode, run_cli, running_node
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from xinchain import codec
from xinchain.apps.promo.contract import payment_skew_ms
from xinchain.apps.provenance.demo import COMPANY_PREFIX, FACTORY, ITEM_REFERENCE, demo_gtin
from xinchain.apps.provenance.epcis import to_chain_event
from xinchain.apps.provenance.gs1 import Sgtin
from xinchain.client.sdk import Client
from xinchain.crypto import suite_named
from xinchain.crypto.suites import SM2_ORDER
from xinchain.merkle import leaf_hash, root_from_inclusion
from xinchain.node.home import Home
from xinchain.receipt import proof_from_value
from xinchain.types import commit_statement

pytestmark = pytest.mark.slow

PROMO = "double11-gift"
# The Ed25519 group order L and the encoding of the identity point (order 1, a small order).
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
IDENTITY_POINT = bytes([1]) + bytes(31)


# --- chains ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The consortium's chain, with a closed promotion, an event, a work and evidence."""
    with running_node(tmp_path_factory.mktemp("consortium") / "home", "ed25519-sha256") as node:
        _record_everything(node)
        yield node


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A chain the attacker started with `xinchain up`: it holds every key of it."""
    with running_node(tmp_path_factory.mktemp("attacker") / "home", "ed25519-sha256") as node:
        yield node


@pytest.fixture(scope="module")
def sm2_attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("sm2") / "home", "sm2-sm3") as node:
        yield node


def _call(node: RunningNode, org: str, contract: str, method: str, args: Any) -> None:
    with Client(node.api) as client:
        genesis = client.genesis()
        key = Home(node.home).org_key(genesis.suite, org)
        client.call(genesis, key, sender=org, contract=contract, method=method, args=args)


def _record_everything(node: RunningNode) -> None:
    """`xinchain up` has recorded the demo journey already (tin 0001): this adds tin 9001."""
    now_ms = int(time.time() * 1000)
    window = {"starts_ms": now_ms - 60_000, "ends_ms": now_ms + 2_000}
    _call(node, "brand", "promo", "open", {"promo": PROMO, "title": "First 2", "gift": "A tin",
                                           "winners": 2, **window})  # fmt: skip
    orders = [
        {"order_no": f"100{i}", "paid_ms": now_ms - i, "buyer_hash": f"{i + 1}" * 64,
         "buyer_mask": f"c***{i}"}
        for i in range(2)
    ]  # fmt: skip
    _call(node, "platform", "promo", "order", {"promo": PROMO, "orders": orders})
    node.move_clock_past(window["ends_ms"] + payment_skew_ms)  # the grace after the window
    _call(node, "brand", "promo", "close", {"promo": PROMO})
    _call(node, "brand", "provenance", "register_product",
          {"gtin": demo_gtin(), "name": "Infant formula", "origin": "Zwolle",
           "company_prefix_digits": 7})  # fmt: skip
    _call(node, "brand", "provenance", "record_events", {"events": [_event()]})
    work = {"sha256": "5" * 64, "pdq": "a5" * 32, "quality": 90, "crops": [], "title": "Tin",
            "seller": ""}  # fmt: skip
    _call(node, "brand", "copyright", "register", {"works": [work]})


def _event() -> dict[str, Any]:
    return to_chain_event(
        {"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
         "eventTime": "2026-11-02T08:00:00+01:00", "eventTimeZoneOffset": "+01:00",
         "epcList": [Sgtin(COMPANY_PREFIX, ITEM_REFERENCE, "9001").uri],
         "readPoint": {"id": FACTORY}}
    )  # fmt: skip


def _served(node: RunningNode, path: str) -> dict[str, Any]:
    response = httpx.get(node.api + path, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def genesis_hash(node: RunningNode) -> str:
    return str(_served(node, "/v1/status")["genesis_hash"])


def entry_receipt(node: RunningNode, order_no: str = "1000") -> dict[str, Any]:
    return _served(node, f"/v1/promos/{PROMO}/rank/{order_no}/receipt")


def event_receipt(node: RunningNode) -> dict[str, Any]:
    digest = hashlib.sha256(codec.encode(_event())).hexdigest()
    return _served(node, f"/v1/provenance/events/{digest}/receipt")


def notarize(node: RunningNode, directory: Path, name: str, data: bytes) -> dict[str, Any]:
    """Anchor `data` as a file with `xinchain notary put`, as any member may; its receipt."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    done = run_cli("notary", "put", path, "--home", node.home, "--api", node.api,
                   "--as", "platform", "--out", directory)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads((directory / f"{name}.receipt.json").read_text()))


def verify(directory: Path, receipt: dict[str, Any] | bytes, *options: object) -> tuple[int, str]:
    """`xinchain verify` on a receipt written to a file; (exit code, output)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"forged-{time.monotonic_ns()}.json"
    path.write_bytes(receipt if isinstance(receipt, bytes) else json.dumps(receipt).encode())
    done = run_cli("verify", path, *options)
    return done.returncode, done.stdout + done.stderr


def assert_refused(outcome: tuple[int, str], *words: str) -> None:
    code, output = outcome
    assert code == 1, output
    assert output.startswith("invalid: "), output
    for word in words:
        assert word in output, output


# --- a record forged from a notary anchor ----------------------------------------------------


def test_a_ranking_entry_anchored_as_a_file_is_not_proof_of_a_rank(
    consortium: RunningNode, tmp_path: Path
) -> None:
    genuine = entry_receipt(consortium)
    forged_entry = {**genuine["entry"], "rank": 1, "order_no": "9999", "buyer_mask": "z***9"}
    receipt = notarize(consortium, tmp_path, "entry.bin", codec.encode(forged_entry))
    pinned = ("--genesis-hash", genesis_hash(consortium))
    # The anchor itself is genuine: as a file, those bytes verify.
    code, output = verify(tmp_path, receipt, "--file", tmp_path / "entry.bin", *pinned)
    assert code == 0 and output.startswith("valid: entry.bin"), output
    assert_refused(verify(tmp_path, {**receipt, "entry": forged_entry}, *pinned),
                   "entry record is proven only by promo.close", "notary.anchor")  # fmt: skip
    assert verify(tmp_path, genuine, *pinned)[0] == 0


def test_a_work_anchored_as_a_file_is_not_proof_of_registration(
    consortium: RunningNode, tmp_path: Path
) -> None:
    a_day_ago_ms = int(time.time() * 1000) - 86_400_000
    work = {"sha256": "7" * 64, "pdq": "b6" * 32, "quality": 90, "crops": [], "title": "Mine",
            "org": "brand", "seller": "", "time_ms": a_day_ago_ms}  # fmt: skip
    receipt = notarize(consortium, tmp_path, "work.bin", codec.encode(work))
    assert_refused(
        verify(tmp_path, {**receipt, "work": work}, "--genesis-hash", genesis_hash(consortium)),
        "work record is proven only by copyright.register",
    )


# --- record fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("extra field", "unexpected ['note']"),
        ("no buyer_mask", "missing ['buyer_mask']"),
        ("rank true", "entry.rank"),
    ],
)
def test_an_entry_with_wrong_fields_is_refused(
    consortium: RunningNode, tmp_path: Path, change: str, named: str
) -> None:
    receipt = entry_receipt(consortium)
    entry = dict(receipt["entry"])
    if change == "extra field":
        entry["note"] = "VIP"
    elif change == "no buyer_mask":
        del entry["buyer_mask"]
    else:
        entry["rank"] = True
    assert_refused(verify(tmp_path, {**receipt, "entry": entry}), named)


def test_an_event_relabelled_as_an_entry_is_refused(
    consortium: RunningNode, tmp_path: Path
) -> None:
    receipt = event_receipt(consortium)
    assert verify(tmp_path, receipt)[0] == 0
    relabelled = {key: value for key, value in receipt.items() if key != "event"}
    relabelled["entry"] = receipt["event"]
    code, output = verify(tmp_path, relabelled)
    assert_refused((code, output), "entry", "missing")
    assert "order None" not in output


# --- malformed JSON --------------------------------------------------------------------------


def _file_receipt(node: RunningNode, directory: Path) -> tuple[bytes, Path]:
    receipt = notarize(node, directory, "invoice.txt", b"invoice 2026-001")
    return json.dumps(receipt, indent=1).encode(), directory / "invoice.txt"


@pytest.mark.parametrize(
    ("name", "edit", "named"),
    [
        ("duplicate key", lambda text: text.replace(b'"ok": true', b'"ok": false, "ok": true'),
         "appears twice"),
        ("byte order mark", lambda text: b"\xef\xbb\xbf" + text, "byte order mark"),
        ("latin-1", lambda text: text.replace(b'"tx_id"', b'"tx_id", "\xe9": 1,'), "not UTF-8"),
        ("integer of 2^64",
         lambda text: text.replace(b'"tx_count": 1', b'"tx_count": ' + str(2**64).encode()),
         "outside 0 to 2^64-1"),
        ("fraction", lambda text: text.replace(b'"tx_count": 1', b'"tx_count": 1.0'), "integers"),
        ("minus zero", lambda text: text.replace(b'"round": 0', b'"round": -0'), "-0"),
    ],
)  # fmt: skip
def test_malformed_json_is_refused(
    consortium: RunningNode,
    tmp_path: Path,
    name: str,
    edit: Callable[[bytes], bytes],
    named: str,
) -> None:
    text, document = _file_receipt(consortium, tmp_path)
    assert verify(tmp_path, text, "--file", document)[0] == 0
    edited = edit(text)
    assert edited != text, f"{name}: the edit found nothing to change"
    assert_refused(verify(tmp_path, edited, "--file", document), "malformed receipt", named)


# --- pinning ---------------------------------------------------------------------------------


def test_a_receipt_of_an_unpinned_chain_says_not_pinned(
    consortium: RunningNode, attacker: RunningNode, tmp_path: Path
) -> None:
    receipt = notarize(attacker, tmp_path, "contract.pdf", b"a contract never signed")
    document = tmp_path / "contract.pdf"
    theirs = genesis_hash(attacker)
    code, output = verify(tmp_path, receipt, "--file", document)
    assert code == 0 and "not pinned" in output and theirs in output, output
    assert_refused(
        verify(tmp_path, receipt, "--file", document, "--genesis-hash", genesis_hash(consortium)),
        theirs,
    )
    code, output = verify(tmp_path, receipt, "--file", document, "--genesis-hash", theirs.upper())
    assert code == 0 and "not pinned" not in output and f"pinned: genesis {theirs}" in output
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(f"# courts' list\n{genesis_hash(consortium)} Trade consortium\n")
    assert_refused(
        verify(tmp_path, receipt, "--file", document, "--trusted-chains", trusted),
        "not among the 1 trusted chains",
    )
    trusted.write_text(f"{theirs.upper()} Their chain\n")
    code, output = verify(tmp_path, receipt, "--file", document, "--trusted-chains", trusted)
    assert code == 0 and "(Their chain)" in output, output


def test_new_consortia_get_different_chain_ids(
    consortium: RunningNode, attacker: RunningNode
) -> None:
    ours = _served(consortium, "/v1/genesis")["chain_id"]
    theirs = _served(attacker, "/v1/genesis")["chain_id"]
    assert ours != theirs
    assert ours.startswith("xinchain-local-") and theirs.startswith("xinchain-local-")


# --- header rules, re-signed by the attacker's own validator ---------------------------------


def resigned(node: RunningNode, receipt: dict[str, Any]) -> dict[str, Any]:
    """The receipt with its result root, block hash and certificate made consistent again and
    signed by `node`'s validator: what an attacker holding the chain's keys can do."""
    suite = suite_named(receipt["genesis"]["suite"])
    forged = json.loads(json.dumps(receipt))
    header, certificate = forged["header"], forged["certificate"]
    leaf = leaf_hash(suite.hash, codec.encode(forged["result"]))
    proof = proof_from_value(forged["result_proof"], "result_proof")
    header["result_root"] = root_from_inclusion(suite.hash, leaf, proof).hex()
    block_hash = suite.hash(codec.encode(header)).hex()
    certificate.update(block_hash=block_hash, height=header["height"])
    statement = commit_statement(header["chain_id"], header["height"], certificate["round"],
                                 block_hash)  # fmt: skip
    key = Home(node.home).validator_key(suite, "validator-0")
    certificate["signatures"] = [{"validator": 0, "signature": key.sign(statement).hex()}]
    return dict(forged)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("error", "not a success"),
        ("height 0", "height 0"),
        ("proposer", "proposer 7"),
    ],
)
def test_header_and_result_rules_hold_against_a_validator_that_signs_anything(
    attacker: RunningNode, tmp_path: Path, change: str, named: str
) -> None:
    receipt = notarize(attacker, tmp_path, "deed.txt", b"title deed 42")
    document = ("--file", tmp_path / "deed.txt")
    assert verify(tmp_path, resigned(attacker, receipt), *document)[0] == 0
    if change == "error":
        receipt["result"]["error"] = "refused: not a member"
    elif change == "height 0":
        receipt["header"]["height"] = 0
    else:
        receipt["header"]["proposer"] = 7
    assert_refused(verify(tmp_path, resigned(attacker, receipt), *document), named)


# --- Ed25519 -----------------------------------------------------------------------------------


def _openssl_accepts(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _statement(receipt: dict[str, Any]) -> bytes:
    header, certificate = receipt["header"], receipt["certificate"]
    return commit_statement(header["chain_id"], header["height"], certificate["round"],
                            certificate["block_hash"])  # fmt: skip


def _scalar(node: RunningNode) -> tuple[int, bytes]:
    """The validator's secret scalar (RFC 8032 §5.1.5) and public key, from its key file."""
    suite = suite_named("ed25519-sha256")
    key = Home(node.home).validator_key(suite, "validator-0")
    seed = bytes(key.signing_key)  # type: ignore[attr-defined]
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return int.from_bytes(digest, "little"), key.public_bytes()


def test_a_signature_with_a_small_order_r_is_refused_though_openssl_accepts_it(
    attacker: RunningNode, tmp_path: Path
) -> None:
    receipt = notarize(attacker, tmp_path, "memo.txt", b"memo")
    statement = _statement(receipt)
    scalar, public_key = _scalar(attacker)
    k = int.from_bytes(hashlib.sha512(IDENTITY_POINT + public_key + statement).digest(), "little")
    s = (k * scalar) % ED25519_ORDER  # [S]B = [k]A, so R' = [S]B - [k]A is the identity
    signature = IDENTITY_POINT + s.to_bytes(32, "little")
    assert _openssl_accepts(public_key, statement, signature)
    receipt["certificate"]["signatures"] = [{"validator": 0, "signature": signature.hex()}]
    assert_refused(verify(tmp_path, receipt, "--file", tmp_path / "memo.txt"),
                   "bad validator signature")  # fmt: skip


def test_a_signature_with_s_above_the_group_order_is_refused(
    attacker: RunningNode, tmp_path: Path
) -> None:
    receipt = notarize(attacker, tmp_path, "note.txt", b"note")
    entry = receipt["certificate"]["signatures"][0]
    signature = bytes.fromhex(entry["signature"])
    s = int.from_bytes(signature[32:], "little") + ED25519_ORDER
    entry["signature"] = (signature[:32] + s.to_bytes(32, "little")).hex()
    assert_refused(verify(tmp_path, receipt, "--file", tmp_path / "note.txt"),
                   "bad validator signature")  # fmt: skip


def _regenesis(receipt: dict[str, Any], validators: list[dict[str, Any]]) -> dict[str, Any]:
    """The receipt under a genesis with other validators, every hash made consistent."""
    suite = suite_named(receipt["genesis"]["suite"])
    forged = json.loads(json.dumps(receipt))
    forged["genesis"]["validators"] = validators
    header = forged["header"]
    header["genesis_hash"] = suite.hash(codec.encode(forged["genesis"])).hex()
    header["validators_hash"] = suite.hash(codec.encode(validators)).hex()
    block_hash = suite.hash(codec.encode(header)).hex()
    forged["certificate"]["block_hash"] = block_hash
    return dict(forged)


def test_a_genesis_with_a_small_order_validator_key_is_refused(
    attacker: RunningNode, tmp_path: Path
) -> None:
    receipt = notarize(attacker, tmp_path, "will.txt", b"last will")
    org = receipt["genesis"]["validators"][0]["org"]
    forged = _regenesis(receipt, [{"name": "v", "org": org, "public_key": IDENTITY_POINT.hex()}])
    universal = IDENTITY_POINT + bytes(32)  # R = identity, S = 0: "valid" for every message
    assert _openssl_accepts(IDENTITY_POINT, _statement(forged), universal)
    forged["certificate"]["signatures"] = [{"validator": 0, "signature": universal.hex()}]
    assert_refused(verify(tmp_path, forged, "--file", tmp_path / "will.txt"),
                   "not a valid ed25519-sha256 public key")  # fmt: skip


def test_a_genesis_listing_one_key_for_two_validators_is_refused(
    attacker: RunningNode, tmp_path: Path
) -> None:
    receipt = notarize(attacker, tmp_path, "lease.txt", b"lease")
    validator = receipt["genesis"]["validators"][0]
    twin = {**validator, "name": "validator-twin"}
    forged = _regenesis(receipt, [validator, twin])
    key = Home(attacker.home).validator_key(suite_named("ed25519-sha256"), "validator-0")
    signature = key.sign(_statement(forged)).hex()
    forged["certificate"]["signatures"] = [
        {"validator": 0, "signature": signature},
        {"validator": 1, "signature": signature},
    ]
    assert_refused(verify(tmp_path, forged, "--file", tmp_path / "lease.txt"),
                   "validator keys must be unique")  # fmt: skip


# --- SM2 -----------------------------------------------------------------------------------------


def _der_integer(value: int, pad: int = 0) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")
    body = bytes(pad) + body
    return bytes([0x02, len(body)]) + body


def _sm2_integers(signature: bytes) -> tuple[int, int]:
    length_r = signature[3]
    r = int.from_bytes(signature[4 : 4 + length_r], "big")
    s = int.from_bytes(signature[6 + length_r :], "big")
    return r, s


@pytest.mark.parametrize("variant", ["long-form length", "padded r", "trailing byte", "s + n"])
def test_sm2_signatures_in_any_form_but_strict_der_are_refused(
    sm2_attacker: RunningNode, tmp_path: Path, variant: str
) -> None:
    receipt = notarize(sm2_attacker, tmp_path, "bill.txt", b"bill")
    document = ("--file", tmp_path / "bill.txt")
    entry = receipt["certificate"]["signatures"][0]
    signature = bytes.fromhex(entry["signature"])
    r, s = _sm2_integers(signature)
    assert _der_integer(r) + _der_integer(s) == signature[2:], "the signature was not DER"
    inner = _der_integer(r) + _der_integer(s)
    if variant == "long-form length":
        forged = bytes([0x30, 0x81, len(inner)]) + inner
    elif variant == "padded r":
        inner = _der_integer(r, pad=1) + _der_integer(s)
        forged = bytes([0x30, len(inner)]) + inner
    elif variant == "trailing byte":
        forged = signature + b"\x00"
    else:
        inner = _der_integer(r) + _der_integer(s + SM2_ORDER)
        forged = bytes([0x30, len(inner)]) + inner
    assert verify(tmp_path, receipt, *document)[0] == 0
    entry["signature"] = forged.hex()
    assert_refused(verify(tmp_path, receipt, *document), "bad validator signature")


# --- the report a judge reads ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pdf", ".html"])
def test_verify_writes_a_report_that_says_whether_the_chain_is_pinned(
    attacker: RunningNode, tmp_path: Path, suffix: str
) -> None:
    receipt = notarize(attacker, tmp_path, "deed.txt", b"deed of gift")
    document = ("--file", tmp_path / "deed.txt")
    for pinned, options in ((False, ()), (True, ("--genesis-hash", genesis_hash(attacker)))):
        out = tmp_path / f"report-{pinned}{suffix}"
        code, output = verify(tmp_path, receipt, *document, *options, "--report", out)
        assert code == 0 and f"report: {out}" in output, output
        if suffix == ".pdf":
            assert out.read_bytes().startswith(b"%PDF")
            text = subprocess.run(["pdftotext", out, "-"], capture_output=True, text=True,
                                  check=True).stdout  # fmt: skip
        else:
            text = out.read_text(encoding="utf-8")
        assert "区块链存证核验报告" in text and "deed.txt" in text
        assert ("not pinned" in text) == (not pinned)
    forged = {**receipt, "document": {**receipt["document"], "hash": "0" * 64}}
    out = tmp_path / f"invalid{suffix}"
    code, output = verify(tmp_path, forged, *document, "--report", out)
    assert code == 1 and out.exists(), output
