"""docs/receipts.md is enough to verify a receipt: an independent verifier agrees with xinchain.

The first half of this file is a verifier written from docs/receipts.md alone ("Verifying by
hand, step by step", steps 1-9). It imports nothing from xinchain: only hashlib, json, cbor2,
PyNaCl (Ed25519), cryptography (SM3) and tongsuopy (SM2). The second half checks it, and
`xinchain.receipt.verify_receipt`, against receipts a real node served over the REST API.

Scenarios, on both suites (ed25519-sha256, sm2-sm3):

* the verifier's RFC 9162 inclusion check recomputes the root for every leaf of trees of 1 to
  17 leaves (proofs built from the RFC's recursive definition), and refuses an index beyond the
  tree, a path one node too long and one node too short
* receipts for a single anchor and for every member of a batch of five, from a block of three
  transactions, pass the independent verifier and verify_receipt; a pinned genesis hash is
  honoured by both, a wrong one refused by both
* named mutations fail both, and the independent verifier fails them at the step the document
  says: format, genesis org name, document byte, document algorithm, anchor path node, anchor
  index beyond the batch, result.ok, result field, header field, certificate height, signature
  byte, unknown validator, repeated signer, no signature
* every single-leaf mutation of a receipt (each value changed within its type, given another
  type, made a fraction, pushed past 64 bits, uppercased, made unencodable, nulled; each map
  key deleted, each map given an extra key; each list shortened or lengthened) is judged alike
  by both verifiers: accepted by both or refused by both, and never a crash
* every such mutation is refused by the independent verifier ("changing any byte of any field
  makes verification fail")
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cbor2
import nacl.exceptions
import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes as cryptography_hashes
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

# ==============================================================================================
# The independent verifier: docs/receipts.md only. No xinchain import above this line's section.
# ==============================================================================================

RECEIPT_FORMAT = "xinchain-receipt/1"
RECEIPT_FIELDS = {
    "format",
    "document",
    "anchor",
    "result",
    "result_proof",
    "header",
    "certificate",
    "genesis",
}
PROOF_FIELDS = {"index", "size", "path"}
COMMIT_PREFIX = b"xinchain/commit/v1\x00"
NOTARY_METHODS = ("anchor", "anchor_batch")
_LOWER_HEX = frozenset("0123456789abcdef")


class Rejected(Exception):
    """The receipt does not prove the file; `step` is the numbered step of the document."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class SpecSuite:
    """A row of the document's suite table."""

    hash_name: str
    hash: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sm3(data: bytes) -> bytes:
    digest = cryptography_hashes.Hash(cryptography_hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def _verify_sm2(public_key: bytes, message: bytes, signature: bytes) -> bool:
    # 65 bytes, uncompressed point 04‖x‖y; SM2 with SM3 and the default signer id.
    if len(public_key) != 65 or public_key[0] != 0x04:
        return False
    try:
        key = tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), public_key)
        key.verify(signature, message, tongsuo_ec.ECDSA(tongsuo_hashes.SM3()))
    except Exception:  # tongsuopy raises InvalidSignature, ValueError, ... for a bad signature
        return False
    return True


SPEC_SUITES = {
    "ed25519-sha256": SpecSuite("sha256", _sha256, _verify_ed25519),
    "sm2-sm3": SpecSuite("sm3", _sm3, _verify_sm2),
}


def canonical_cbor(value: Any) -> bytes:
    """`CBOR(v)`: deterministic CBOR of the value json.loads returned."""
    return bytes(cbor2.dumps(value, canonical=True))


def _require(condition: bool, step: int, reason: str) -> None:
    if not condition:
        raise Rejected(step, reason)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: `1` and `true` are different values (Python says they are equal)."""
    return type(left) is type(right) and left == right


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hex(value: Any, length: int | None = None) -> bool:
    """Lowercase hex of whole bytes; the document: "uppercase ... does not verify"."""
    return (
        isinstance(value, str)
        and len(value) % 2 == 0
        and (length is None or len(value) == length)
        and set(value) <= _LOWER_HEX
    )


def _object(value: Any, fields: set[str] | None, step: int, where: str) -> dict[str, Any]:
    _require(isinstance(value, dict), step, f"{where} is not an object")
    if fields is not None:
        _require(set(value) == fields, step, f"{where} does not have exactly {sorted(fields)}")
    return dict(value)


def rfc9162_root(
    hash_function: Callable[[bytes], bytes], leaf_hash: bytes, proof: Any, step: int, where: str
) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof `{index, size, path}` leads to."""
    proof = _object(proof, PROOF_FIELDS, step, where)
    index, size, path = proof["index"], proof["size"], proof["path"]
    _require(_is_count(index) and _is_count(size), step, f"{where}: index, size not integers")
    _require(isinstance(path, list), step, f"{where}.path is not a list")
    _require(all(_is_hex(node, 64) for node in path), step, f"{where}.path: not 32-byte hex")
    _require(index < size, step, f"{where}: index {index} outside a tree of {size}")
    fn, sn, result = index, size - 1, leaf_hash
    for node in (bytes.fromhex(text) for text in path):
        _require(sn != 0, step, f"{where}: path too long")
        if fn & 1 or fn == sn:
            result = hash_function(b"\x01" + node + result)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            result = hash_function(b"\x01" + result + node)
        fn >>= 1
        sn >>= 1
    _require(sn == 0, step, f"{where}: path too short")
    return result


def _refuse_fraction(literal: str) -> Any:
    raise Rejected(1, f"a number with a fraction or exponent: {literal}")


def verify_by_spec(
    text: str, document: bytes, pinned_genesis_hash: str | None = None
) -> dict[str, Any]:
    """Steps 1-9 of "Verifying by hand"; returns what the receipt proves or raises Rejected."""
    try:
        receipt = json.loads(text, parse_float=_refuse_fraction, parse_constant=_refuse_fraction)
        return _verify_steps(receipt, document, pinned_genesis_hash)
    except Rejected:
        raise
    except Exception as exc:  # a value the steps cannot even read (unencodable text, ...)
        raise Rejected(0, f"malformed: {type(exc).__name__}: {exc}") from exc


def _verify_steps(receipt: Any, document: bytes, pinned_genesis_hash: str | None) -> dict[str, Any]:
    # 1. Exactly the eight fields, and the format.
    receipt = _object(receipt, RECEIPT_FIELDS, 1, "receipt")
    _require(_same(receipt["format"], RECEIPT_FORMAT), 1, "unknown format")

    # 2. Genesis: its suite fixes H and the signature scheme; g = hex(H(CBOR(G))).
    genesis = _object(receipt["genesis"], None, 2, "genesis")
    suite_name = genesis.get("suite")
    _require(isinstance(suite_name, str) and suite_name in SPEC_SUITES, 2, "unknown suite")
    suite = SPEC_SUITES[suite_name]
    hash_function = suite.hash
    genesis_hash = hash_function(canonical_cbor(genesis)).hex()
    if pinned_genesis_hash is not None:
        _require(genesis_hash == pinned_genesis_hash, 2, "not the pinned genesis")

    # 3. Document: the algorithm names H, and hex(H(F)) == R.document.hash.
    document_field = _object(receipt["document"], {"algorithm", "hash"}, 3, "document")
    _require(_same(document_field["algorithm"], suite.hash_name), 3, "algorithm is not H")
    file_digest = hash_function(document)
    _require(_same(document_field["hash"], file_digest.hex()), 3, "hash mismatch")

    # 4. Anchor: a successful notary anchor whose batch root the document leads to.
    result = _object(receipt["result"], None, 4, "result")
    _require(result.get("ok") is True, 4, "result.ok is not true")
    _require(_same(result.get("contract"), "notary"), 4, "not the notary contract")
    method = result.get("method")
    _require(isinstance(method, str) and method in NOTARY_METHODS, 4, "not an anchor method")
    data = _object(result.get("data"), {"root", "size"}, 4, "result.data")
    anchor = _object(receipt["anchor"], PROOF_FIELDS, 4, "anchor")
    _require(_same(anchor["size"], data["size"]), 4, "anchor.size is not result.data.size")
    batch_root = rfc9162_root(
        hash_function, hash_function(b"\x00" + file_digest), anchor, 4, "anchor"
    )
    _require(_same(batch_root.hex(), data["root"]), 4, "bad Merkle proof (anchor)")

    # 5. Result in block.
    header = _object(receipt["header"], None, 5, "header")
    result_proof = _object(receipt["result_proof"], PROOF_FIELDS, 5, "result_proof")
    _require(_same(result_proof["size"], header.get("tx_count")), 5, "size is not tx_count")
    result_leaf = hash_function(b"\x00" + canonical_cbor(result))
    result_root = rfc9162_root(hash_function, result_leaf, result_proof, 5, "result_proof")
    _require(_same(result_root.hex(), header.get("result_root")), 5, "bad Merkle proof (result)")

    # 6. Header: bound to this genesis and its validator set; b = hex(H(CBOR(header))).
    _require(_same(header.get("chain_id"), genesis.get("chain_id")), 6, "chain_id differs")
    _require(_same(header.get("genesis_hash"), genesis_hash), 6, "genesis_hash differs")
    validators = genesis.get("validators")
    _require(isinstance(validators, list), 6, "genesis.validators is not a list")
    validators_hash = hash_function(canonical_cbor(validators)).hex()
    _require(_same(header.get("validators_hash"), validators_hash), 6, "validators_hash differs")
    block_hash = hash_function(canonical_cbor(header)).hex()

    # 7. Certificate names this block at this height.
    certificate = _object(
        receipt["certificate"], {"height", "round", "block_hash", "signatures"}, 7, "certificate"
    )
    _require(_is_count(certificate["round"]), 7, "certificate round is not a count")
    _require(_same(certificate["block_hash"], block_hash), 7, "certificate names another block")
    _require(_same(certificate["height"], header.get("height")), 7, "certificate height differs")

    # 8. Every listed signature: a known validator, once, verifying over the commit statement.
    statement = COMMIT_PREFIX + canonical_cbor(
        {
            "kind": "commit",
            "chain_id": header["chain_id"],
            "height": header["height"],
            "round": certificate["round"],
            "block_hash": block_hash,
        }
    )
    signatures = certificate["signatures"]
    _require(isinstance(signatures, list), 8, "signatures is not a list")
    signers: set[int] = set()
    for entry in signatures:
        entry = _object(entry, {"validator", "signature"}, 8, "signature entry")
        index = entry["validator"]
        _require(_is_count(index), 8, "validator is not an index")
        _require(index < len(validators), 8, f"unknown validator {index}")
        _require(index not in signers, 8, f"validator {index} signs twice")
        signers.add(index)
        validator = _object(validators[index], None, 8, "validator")
        public_key = validator.get("public_key")
        _require(_is_hex(public_key) and _is_hex(entry["signature"]), 8, "not lowercase hex")
        verified = suite.verify(
            bytes.fromhex(public_key), statement, bytes.fromhex(entry["signature"])
        )
        _require(verified, 8, f"bad validator signature from validator {index}")

    # 9. Quorum: floor(2n/3) + 1 distinct signers.
    quorum = 2 * len(validators) // 3 + 1
    _require(len(signers) >= quorum, 9, f"too few validator signatures: {len(signers)}")
    return {
        "sender": result.get("sender"),
        "height": header["height"],
        "time_ms": header.get("time_ms"),
        "genesis_hash": genesis_hash,
        "signers": len(signers),
    }


# ==============================================================================================
# The tests. From here on xinchain is used, to produce receipts and to compare verdicts.
# ==============================================================================================

from api_harness import SUITE_NAMES, Harness, open_harness  # noqa: E402
from receipt_mutations import value_mutations  # noqa: E402
from receipts import verify_receipt  # noqa: E402

from xinchain.errors import XinchainError  # noqa: E402
from xinchain.receipt import load_receipt_json  # noqa: E402

BATCH = [f"bill of lading {number}".encode() for number in range(5)]
SINGLES = [b"customs declaration", b"warehouse receipt"]


@dataclass(frozen=True)
class Chain:
    suite_name: str
    genesis_hash: str
    receipts: dict[str, tuple[dict[str, Any], bytes]]  # name → (receipt, document)


@pytest.fixture(scope="module", params=SUITE_NAMES)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """One block of three transactions: a single anchor, a batch of five, another single."""
    with open_harness(tmp_path_factory.mktemp("chain"), request.param) as harness:
        for documents in ([SINGLES[0]], BATCH, [SINGLES[1]]):
            harness.submit(harness.anchor_tx(documents))
        harness.commit()
        yield Chain(request.param, harness.genesis_hash(), _receipts(harness))


def _receipts(harness: Harness) -> dict[str, tuple[dict[str, Any], bytes]]:
    receipts = {f"single-{i}": (harness.receipt(doc), doc) for i, doc in enumerate(SINGLES)}
    receipts.update({f"batch-{i}": (harness.receipt(doc), doc) for i, doc in enumerate(BATCH)})
    return receipts


RECEIPT_NAMES = [f"single-{i}" for i in range(len(SINGLES))] + [
    f"batch-{i}" for i in range(len(BATCH))
]


def xinchain_verdict(text: str, document: bytes, pinned: str | None = None) -> bool:
    """What `xinchain verify` decides: True valid, False invalid (any XinchainError)."""
    try:
        verify_receipt(load_receipt_json(text), document, expected_genesis_hash=pinned)
    except XinchainError:
        return False
    return True


def spec_verdict(text: str, document: bytes, pinned: str | None = None) -> bool:
    try:
        verify_by_spec(text, document, pinned)
    except Rejected:
        return False
    return True


# --- the verifier's RFC 9162 check, against the RFC's own definitions -------------------------


def _tree_hash(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, recursively."""
    if len(leaves) == 1:
        return _sha256(b"\x00" + leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _sha256(b"\x01" + _tree_hash(leaves[:split]) + _tree_hash(leaves[split:]))


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, lowest level first."""
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*_path(index, leaves[:split]), _tree_hash(leaves[split:])]
    return [*_path(index - split, leaves[split:]), _tree_hash(leaves[:split])]


def _proof(index: int, leaves: list[bytes]) -> dict[str, Any]:
    return {
        "index": index,
        "size": len(leaves),
        "path": [node.hex() for node in _path(index, leaves)],
    }


@pytest.mark.parametrize("size", range(1, 18))
def test_spec_inclusion_check_recomputes_the_root_for_every_leaf(size: int) -> None:
    leaves = [bytes([number]) * 32 for number in range(size)]
    for index in range(size):
        leaf = _sha256(b"\x00" + leaves[index])
        assert rfc9162_root(_sha256, leaf, _proof(index, leaves), 4, "t") == _tree_hash(leaves)


def test_spec_inclusion_check_refuses_an_index_beyond_the_tree() -> None:
    leaves = [bytes([number]) * 32 for number in range(4)]
    proof = {**_proof(3, leaves), "index": 4}
    with pytest.raises(Rejected, match="outside"):
        rfc9162_root(_sha256, _sha256(b"\x00" + leaves[3]), proof, 4, "t")


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_spec_inclusion_check_refuses_a_path_of_the_wrong_length(change: str) -> None:
    leaves = [bytes([number]) * 32 for number in range(5)]
    proof = _proof(1, leaves)
    proof["path"] = [*proof["path"], "00" * 32] if change == "longer" else proof["path"][:-1]
    with pytest.raises(Rejected, match="too long" if change == "longer" else "too short"):
        rfc9162_root(_sha256, _sha256(b"\x00" + leaves[1]), proof, 4, "t")


# --- genuine receipts -------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECEIPT_NAMES)
def test_genuine_receipt_passes_the_independent_verifier(chain: Chain, name: str) -> None:
    receipt, document = chain.receipts[name]
    proved = verify_by_spec(json.dumps(receipt), document, chain.genesis_hash)
    assert (proved["sender"], proved["height"], proved["signers"]) == ("platform", 1, 1)
    assert proved["genesis_hash"] == chain.genesis_hash


@pytest.mark.parametrize("name", RECEIPT_NAMES)
def test_genuine_receipt_passes_verify_receipt(chain: Chain, name: str) -> None:
    receipt, document = chain.receipts[name]
    verified = verify_receipt(receipt, document, expected_genesis_hash=chain.genesis_hash)
    assert (verified.sender, verified.height, verified.signers) == ("platform", 1, 1)


def test_receipts_prove_positions_in_a_block_of_three(chain: Chain) -> None:
    # Guards the fixture: the proofs under test are not all trivial.
    single, batch_member = chain.receipts["single-1"][0], chain.receipts["batch-4"][0]
    assert single["result_proof"]["index"] == 2 and single["header"]["tx_count"] == 3
    assert batch_member["anchor"] == {**batch_member["anchor"], "index": 4, "size": 5}
    assert len(batch_member["anchor"]["path"]) == 1 and single["anchor"]["path"] == []


def test_wrong_pinned_genesis_hash_is_refused_by_both(chain: Chain) -> None:
    receipt, document = chain.receipts["batch-0"]
    wrong = "00" * 32
    with pytest.raises(Rejected) as refusal:
        verify_by_spec(json.dumps(receipt), document, wrong)
    assert refusal.value.step == 2
    assert xinchain_verdict(json.dumps(receipt), document, wrong) is False


# --- named mutations --------------------------------------------------------------------------


def _flip_hex(text: str, position: int = -1) -> str:
    characters = list(text)
    characters[position] = "1" if characters[position] == "0" else "0"
    return "".join(characters)


def _mutate_signature(receipt: dict[str, Any]) -> None:
    entry = receipt["certificate"]["signatures"][0]
    entry["signature"] = _flip_hex(entry["signature"], len(entry["signature"]) // 2)


# name → (change to the receipt, or None to change the document instead; step that fails)
NAMED_MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None] | None, int]] = {
    "format": (lambda r: r.update(format="xinchain-receipt/2"), 1),
    "genesis org name": (lambda r: r["genesis"]["orgs"][1].update(name="Formula brand"), 6),
    "document byte": (None, 3),
    "document algorithm": (lambda r: r["document"].update(algorithm="md5"), 3),
    "anchor path node": (lambda r: r["anchor"]["path"].__setitem__(0, "00" * 32), 4),
    "anchor index beyond batch": (lambda r: r["anchor"].update(index=r["anchor"]["size"]), 4),
    "result not ok": (lambda r: r["result"].update(ok=False), 4),
    "result sender": (lambda r: r["result"].update(sender="brand"), 5),
    "header time": (lambda r: r["header"].update(time_ms=r["header"]["time_ms"] + 1), 7),
    "certificate height": (lambda r: r["certificate"].update(height=2), 7),
    "signature byte": (_mutate_signature, 8),
    "unknown validator": (lambda r: r["certificate"]["signatures"][0].update(validator=1), 8),
    "repeated signer": (
        lambda r: r["certificate"]["signatures"].append(r["certificate"]["signatures"][0]),
        8,
    ),
    "no signature": (lambda r: r["certificate"].update(signatures=[]), 9),
}


def _apply(name: str, receipt: dict[str, Any], document: bytes) -> tuple[str, bytes]:
    change, _ = NAMED_MUTATIONS[name]
    mutated = copy.deepcopy(receipt)
    if change is None:
        return json.dumps(mutated), bytes([document[0] ^ 0x01]) + document[1:]
    change(mutated)
    assert mutated != receipt
    return json.dumps(mutated), document


@pytest.mark.parametrize("name", NAMED_MUTATIONS)
def test_named_mutation_fails_the_independent_verifier_at_its_step(chain: Chain, name: str) -> None:
    text, document = _apply(name, *chain.receipts["batch-2"])
    with pytest.raises(Rejected) as refusal:
        verify_by_spec(text, document)
    assert refusal.value.step == NAMED_MUTATIONS[name][1], refusal.value


@pytest.mark.parametrize("name", NAMED_MUTATIONS)
def test_named_mutation_fails_verify_receipt(chain: Chain, name: str) -> None:
    text, document = _apply(name, *chain.receipts["batch-2"])
    assert xinchain_verdict(text, document) is False


# --- every single-leaf mutation ---------------------------------------------------------------


def _judge(verdict: Callable[[str, bytes], bool], text: str, document: bytes) -> str:
    try:
        return "valid" if verdict(text, document) else "invalid"
    except Exception as exc:  # neither verifier may crash on a malformed receipt
        return f"crash: {type(exc).__name__}: {exc}"


@pytest.fixture
def mutations(chain: Chain) -> list[tuple[str, str, bytes]]:
    receipt, document = chain.receipts["batch-2"]
    found = [(name, json.dumps(m), document) for name, m in value_mutations(receipt)]
    assert len(found) > 200  # the walk reached the whole receipt
    return found


def test_both_verifiers_judge_every_single_leaf_mutation_alike(
    mutations: list[tuple[str, str, bytes]],
) -> None:
    disagreements = []
    for name, text, document in mutations:
        by_spec = _judge(spec_verdict, text, document)
        by_xinchain = _judge(xinchain_verdict, text, document)
        if by_spec != by_xinchain:
            disagreements.append(f"{name}: spec {by_spec}, xinchain {by_xinchain}")
    assert not disagreements, "\n".join(disagreements)


def test_independent_verifier_refuses_every_single_leaf_mutation(
    mutations: list[tuple[str, str, bytes]],
) -> None:
    accepted = [name for name, text, document in mutations if spec_verdict(text, document)]
    assert not accepted, "\n".join(accepted)
