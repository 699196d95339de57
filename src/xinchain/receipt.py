"""Court-ready notary receipts: built by a node or a client, verified offline by anyone.

A receipt is one JSON document (docs/receipts.md gives the format field by field). It proves
a chain of facts, each checked with nothing but hashing and signature verification:

    file ──hash──► document.hash
         ──anchor proof (RFC 9162)──► result.data.root          (the batch root)
    result ──result_proof (RFC 9162)──► header.result_root
    header ──hash──► certificate.block_hash
    certificate ──≥ quorum signatures of──► genesis.validators
    genesis ──hash──► the chain's genesis hash (pinned by whoever relies on the receipt)

Every field of the receipt takes part in one of these checks, so changing any of them breaks
the receipt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from xinchain import codec
from xinchain.errors import ConfigError, DecodeError, ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.merkle import InclusionProof, MerkleTree, leaf_hash, root_from_inclusion
from xinchain.types import BlockHeader, CommitCertificate, TxResult, commit_statement, quorum_size

FORMAT = "xinchain-receipt/1"
# Results whose data is {root, size}: an RFC 9162 root over the digests they anchored.
ANCHORING_RESULTS = {
    ("notary", "anchor"),
    ("notary", "anchor_batch"),
    ("provenance", "record_events"),
    ("promo", "close"),
    ("copyright", "register"),
    ("copyright", "evidence"),
}
# Optional fields that carry the record a receipt proves, when it is not a file: a provenance
# event, an entry of a committed promotion ranking, a registered work or a piece of
# infringement evidence. The document is then the record's canonical encoding.
RECORD_FIELDS = ("event", "entry", "work", "evidence")
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_RECEIPT_FIELDS = {
    "format",
    "document",
    "anchor",
    "result",
    "result_proof",
    "header",
    "certificate",
    "genesis",
}


@dataclass(frozen=True)
class TxProof:
    """What a node returns for one committed transaction: enough to build its receipts."""

    result: TxResult
    result_proof: InclusionProof
    header: BlockHeader
    certificate: CommitCertificate
    genesis: Genesis

    def to_value(self) -> dict[str, Any]:
        return {
            "result": self.result.to_value(),
            "result_proof": proof_to_value(self.result_proof),
            "header": self.header.to_value(),
            "certificate": self.certificate.to_value(),
            "genesis": self.genesis.to_value(),
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> TxProof:
        return cls(
            result=TxResult.from_value(value["result"]),
            result_proof=proof_from_value(value["result_proof"], "result_proof"),
            header=BlockHeader.from_value(value["header"]),
            certificate=CommitCertificate.from_value(value["certificate"]),
            genesis=Genesis.from_value(value["genesis"]),
        )


@dataclass(frozen=True)
class VerifiedReceipt:
    document_hash: str
    sender: str
    height: int
    time_ms: int
    chain_id: str
    genesis_hash: str
    signers: int
    validators: int


def proof_to_value(proof: InclusionProof) -> dict[str, Any]:
    return {"index": proof.index, "size": proof.size, "path": [node.hex() for node in proof.path]}


def proof_from_value(value: object, where: str) -> InclusionProof:
    if not isinstance(value, dict) or set(value) != {"index", "size", "path"}:
        raise ReceiptInvalid("expected {index, size, path}", field=where)
    index, size, path = value["index"], value["size"], value["path"]
    for name, number in (("index", index), ("size", size)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ReceiptInvalid("expected a non-negative integer", field=f"{where}.{name}")
    if not isinstance(path, list) or len(path) > 64:
        raise ReceiptInvalid("expected a list of at most 64 hashes", field=f"{where}.path")
    for node in path:
        if not isinstance(node, str) or not _HEX32.match(node):
            raise ReceiptInvalid("expected 64 lowercase hex digits", field=f"{where}.path")
    return InclusionProof(index, size, tuple(bytes.fromhex(node) for node in path))


def build_receipts(
    proof: TxProof,
    digests: list[bytes],
    positions: list[int] | None = None,
    events: list[dict[str, Any]] | None = None,
    record_field: str = "event",
    tree: MerkleTree | None = None,
) -> list[dict[str, Any]]:
    """Receipts for the digests one transaction anchored (all, or those at `positions`); for
    provenance, `events` (parallel to `digests`) puts each event in its receipt. `tree`, the
    digests' tree built already, saves rebuilding it for every receipt of a large batch."""
    hasher = proof.genesis.suite.hash
    tree = tree or MerkleTree(hasher, digests)
    if tree.root().hex() != proof.result.data.get("root"):
        raise ReceiptInvalid("these digests are not the batch this transaction anchored")
    common = {
        "format": FORMAT,
        "result": proof.result.to_value(),
        "result_proof": proof_to_value(proof.result_proof),
        "header": proof.header.to_value(),
        "certificate": proof.certificate.to_value(),
        "genesis": proof.genesis.to_value(),
    }
    chosen = range(len(digests)) if positions is None else positions
    receipts = []
    for i in chosen:
        receipt = {
            **common,
            "document": {"algorithm": proof.genesis.suite.hash_name, "hash": digests[i].hex()},
            "anchor": proof_to_value(tree.inclusion_proof(i)),
        }
        if events is not None:
            receipt[record_field] = events[i]
        receipts.append(receipt)
    return receipts


def load_receipt_json(text: str) -> dict[str, Any]:
    def refuse_float(literal: str) -> Any:
        raise ReceiptInvalid(f"numbers in a receipt are integers, found {literal}")

    try:
        value = json.loads(text, parse_float=refuse_float, parse_constant=refuse_float)
    except json.JSONDecodeError as exc:
        raise ReceiptInvalid(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ReceiptInvalid("expected a JSON object")
    return value


def verify_receipt(
    receipt: dict[str, Any],
    document: bytes | None,
    *,
    expected_genesis_hash: str | None = None,
) -> VerifiedReceipt:
    """Check `receipt` proves `document` (the file's bytes); raise `ReceiptInvalid` if not.

    A provenance receipt carries its `event`; the document is then that event's canonical
    encoding, and `document` may be None."""
    try:
        carried = [name for name in RECORD_FIELDS if name in receipt]
        if len(carried) > 1:
            raise ReceiptInvalid(f"a receipt carries one record, found {carried}")
        if carried:
            record_bytes = codec.encode(receipt[carried[0]])
            if document is not None and document != record_bytes:
                raise ReceiptInvalid(f"the file given is not the {carried[0]} the receipt carries")
            document = record_bytes
        if document is None:
            raise ReceiptInvalid("this receipt proves a file: give the file to check it against")
        return _verify(receipt, document, expected_genesis_hash)
    except DecodeError as exc:
        raise ReceiptInvalid(f"malformed field: {exc}", field=exc.field) from exc


def _verify(
    receipt: dict[str, Any], document: bytes, expected_genesis_hash: str | None
) -> VerifiedReceipt:
    if set(receipt) - set(RECORD_FIELDS) != _RECEIPT_FIELDS:
        raise ReceiptInvalid(
            f"expected fields {sorted(_RECEIPT_FIELDS)}, found {sorted(receipt)}", field="receipt"
        )
    if receipt["format"] != FORMAT:
        raise ReceiptInvalid(f"expected format {FORMAT!r}, found {receipt['format']!r}")
    genesis = _genesis(receipt["genesis"])
    suite = genesis.suite
    genesis_hash = genesis.hash_hex()
    if expected_genesis_hash is not None and genesis_hash != expected_genesis_hash:
        raise ReceiptInvalid(
            f"receipt belongs to the chain with genesis {genesis_hash}, "
            f"expected {expected_genesis_hash}"
        )

    # file → document hash
    document_field = receipt["document"]
    if not isinstance(document_field, dict) or set(document_field) != {"algorithm", "hash"}:
        raise ReceiptInvalid("expected {algorithm, hash}", field="document")
    if document_field["algorithm"] != suite.hash_name:
        raise ReceiptInvalid(
            f"chain suite {suite.name} hashes documents with {suite.hash_name}, receipt says "
            f"{document_field['algorithm']!r}",
            field="document.algorithm",
        )
    file_hash = suite.hash(document).hex()
    if file_hash != document_field["hash"]:
        raise ReceiptInvalid(
            f"hash mismatch: the file hashes to {file_hash}, the receipt proves "
            f"{document_field['hash']}",
            field="document.hash",
        )

    # document hash → batch root recorded in the result
    result = _parsed(TxResult.from_value, receipt["result"], "result")
    if (result.contract, result.method) not in ANCHORING_RESULTS or not result.ok:
        raise ReceiptInvalid(
            "the result is not a successful anchoring of documents or events "
            f"({result.contract}.{result.method}, ok={result.ok})",
            field="result",
        )
    if set(result.data) != {"root", "size"}:
        raise ReceiptInvalid("expected {root, size}", field="result.data")
    anchor = proof_from_value(receipt["anchor"], "anchor")
    if anchor.size != result.data["size"]:
        raise ReceiptInvalid(
            f"bad Merkle proof: anchor proof is for {anchor.size} documents, the batch has "
            f"{result.data['size']}",
            field="anchor.size",
        )
    document_leaf = leaf_hash(suite.hash, bytes.fromhex(file_hash))
    batch_root = root_from_inclusion(suite.hash, document_leaf, anchor)
    if batch_root.hex() != result.data["root"]:
        raise ReceiptInvalid(
            "bad Merkle proof: the document does not lead to the anchored batch root",
            field="anchor",
        )

    # result → block header
    header = _parsed(BlockHeader.from_value, receipt["header"], "header")
    result_proof = proof_from_value(receipt["result_proof"], "result_proof")
    if result_proof.size != header.tx_count:
        raise ReceiptInvalid(
            f"bad Merkle proof: result proof is for {result_proof.size} results, the block has "
            f"{header.tx_count}",
            field="result_proof.size",
        )
    result_leaf = leaf_hash(suite.hash, result.encode())
    if root_from_inclusion(suite.hash, result_leaf, result_proof).hex() != header.result_root:
        raise ReceiptInvalid(
            "bad Merkle proof: the result does not lead to the block's result root",
            field="result_proof",
        )

    # header → genesis
    if header.chain_id != genesis.chain_id:
        raise ReceiptInvalid(
            f"bad header: chain {header.chain_id!r}, genesis names {genesis.chain_id!r}",
            field="header.chain_id",
        )
    if header.genesis_hash != genesis_hash:
        raise ReceiptInvalid(
            f"bad header: it names genesis {header.genesis_hash}, the receipt's genesis hashes "
            f"to {genesis_hash}",
            field="header.genesis_hash",
        )
    if header.validators_hash != genesis.validators_hash_hex():
        raise ReceiptInvalid(
            "bad header: its validator set is not the one genesis lists",
            field="header.validators_hash",
        )
    block_hash = suite.hash(header.encode()).hex()

    # header → certificate → validators
    certificate = _parsed(CommitCertificate.from_value, receipt["certificate"], "certificate")
    if certificate.block_hash != block_hash or certificate.height != header.height:
        raise ReceiptInvalid(
            f"bad header: the certificate is for block {certificate.block_hash} at height "
            f"{certificate.height}; the header is block {block_hash} at height {header.height}",
            field="certificate",
        )
    signers = check_certificate_signatures(genesis, certificate)
    return VerifiedReceipt(
        document_hash=file_hash,
        sender=result.sender,
        height=header.height,
        time_ms=header.time_ms,
        chain_id=genesis.chain_id,
        genesis_hash=genesis_hash,
        signers=signers,
        validators=len(genesis.validators),
    )


def check_certificate_signatures(genesis: Genesis, certificate: CommitCertificate) -> int:
    """Every signature must verify, from distinct known validators, and reach the quorum."""
    suite = genesis.suite
    validators = genesis.validators
    message = commit_statement(
        genesis.chain_id, certificate.height, certificate.round, certificate.block_hash
    )
    seen: set[int] = set()
    for entry in certificate.signatures:
        if entry.validator >= len(validators):
            raise ReceiptInvalid(
                f"unknown validator {entry.validator}: genesis lists {len(validators)}",
                field="certificate.signatures",
            )
        if entry.validator in seen:
            raise ReceiptInvalid(
                f"validator {entry.validator} signs twice", field="certificate.signatures"
            )
        seen.add(entry.validator)
        public_key = bytes.fromhex(validators[entry.validator].public_key)
        if not suite.verify(public_key, message, bytes.fromhex(entry.signature)):
            raise ReceiptInvalid(
                f"bad validator signature from validator {entry.validator} "
                f"({validators[entry.validator].name})",
                field="certificate.signatures",
            )
    needed = quorum_size(len(validators))
    if len(seen) < needed:
        raise ReceiptInvalid(
            f"too few validator signatures: {len(seen)} of {len(validators)}, "
            f"and {needed} are needed",
            field="certificate.signatures",
        )
    return len(seen)


def _genesis(value: object) -> Genesis:
    try:
        genesis = Genesis.from_value(value)
    except ConfigError as exc:
        raise ReceiptInvalid(f"genesis in the receipt: {exc.reason}", field="genesis") from exc
    if genesis.to_value() != value:
        raise ReceiptInvalid(
            "genesis in the receipt is not in its complete form (every parameter listed)",
            field="genesis",
        )
    return genesis


def _parsed(parse: Any, value: object, where: str) -> Any:
    try:
        return parse(value)
    except DecodeError as exc:
        raise ReceiptInvalid(f"{where} is malformed: {exc}", field=where) from exc
