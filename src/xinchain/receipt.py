"""Court-ready receipts: built by a node or a client, verified offline by anyone.

A receipt is one JSON document (docs/receipts.md gives the format field by field and every rule
a verifier applies). It proves a chain of facts, each checked with nothing but hashing and
signature verification:

    file or record ──H──► document.hash
         ──anchor proof (RFC 9162)──► result.data.root          (the batch root)
    result ──result_proof (RFC 9162)──► header.result_root
    header ──hash──► certificate.block_hash
    certificate ──≥ quorum signatures of──► genesis.validators
    genesis ──hash──► the chain's genesis hash (pinned by whoever relies on the receipt)

A receipt that carries a record (a provenance event, a ranking entry, a registered work, a
piece of evidence) proves it only under the one contract method that writes that kind of
record: the record's kind is bound to the result's contract and method, and a plain notary
anchor never proves a record. A receipt whose genesis nobody pinned proves only that *some*
chain with that genesis certified it: `Verification.pinned` says which case holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from xinchain import codec
from xinchain.errors import CertificateInvalid, ConfigError, DecodeError, ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.merkle import InclusionProof, MerkleTree, leaf_hash, root_from_inclusion
from xinchain.records import UINT64_MAX, ReceiptKinds, RecordKind, Words, hex64, integer
from xinchain.types import BlockHeader, CommitCertificate, TxResult, quorum_size
from xinchain.types import certificate_signers as signers_of

FORMAT = "xinchain-receipt/1"
# A receipt file larger than this is refused before parsing. The largest legitimate receipt is
# a registered work with its 25 crop hashes on a chain whose genesis lists many orgs with their
# TLS CA certificates: well under 1 MiB.
receipt_bytes_max = 16 * 1024 * 1024
# Nesting deeper than this is malformed (an EPCIS event's JSON is text, not nesting).
receipt_nesting_max = 16

# What a receipt proves and which contract method's result anchors it come from the apps
# (xinchain.records.ReceiptKinds, gathered by the registry): a file is proven only by an
# AnchorMethod, each record kind only by the method that builds that kind of record itself from
# what it checked, so no sender can anchor made-up bytes and present them as a record.
RECEIPT_FIELDS = frozenset(
    {"format", "document", "anchor", "result", "result_proof", "header", "certificate", "genesis"}
)
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_HEX_ANY = re.compile(r"^[0-9A-Fa-f]{64}$")
Outcome = Literal["pass", "fail", "warn"]


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
class Check:
    """One step of the verification, as the report lists it."""

    name: str  # English, e.g. "Merkle proof of the document"
    name_zh: str
    outcome: Outcome  # "warn" only for an unpinned chain: valid, but about *some* chain
    detail: str  # what was compared, or why it failed


@dataclass(frozen=True)
class Signer:
    """A validator whose signature in the certificate verified."""

    index: int
    name: str
    org: str
    org_name: str
    public_key: str
    fingerprint: str  # H(public key) in hex, first 16 bytes: what an operator reads out


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
    sender_name: str = ""
    suite: str = ""
    hash_name: str = ""
    contract: str = ""
    method: str = ""
    tx_id: str = ""
    block_hash: str = ""
    round: int = 0
    record_kind: str = ""  # "" when the receipt proves a file
    record: dict[str, Any] | None = None
    kind: RecordKind | None = None  # the app's declaration of the record kind
    does: Words | None = None  # what the contract method does, in a few words
    certified_by: tuple[Signer, ...] = ()
    pinned: bool = False  # the genesis hash was one the caller gave (flag or trusted chains)
    pinned_name: str = ""  # the name the trusted-chains file gives the chain, if any
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Verification:
    """Everything a verification run found, valid or not: what the report is made from."""

    verified: VerifiedReceipt | None  # None when the receipt is invalid
    reason: str  # "" when valid
    checks: tuple[Check, ...]
    field: str | None = None  # the receipt field that failed, when one is named


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
        if not isinstance(node, str) or not _HEX32.fullmatch(node):
            raise ReceiptInvalid("expected 64 lowercase hex digits", field=f"{where}.path")
    return InclusionProof(index, size, tuple(bytes.fromhex(node) for node in path))


def _common(proof: TxProof) -> dict[str, Any]:
    """What every receipt of one transaction carries alike."""
    return {
        "format": FORMAT,
        "result": proof.result.to_value(),
        "result_proof": proof_to_value(proof.result_proof),
        "header": proof.header.to_value(),
        "certificate": proof.certificate.to_value(),
        "genesis": proof.genesis.to_value(),
    }


def build_receipt(
    proof: TxProof,
    digest: bytes,
    anchor: InclusionProof,
    record: dict[str, Any],
    record_field: str,
) -> dict[str, Any]:
    """The receipt of one record whose path to the transaction's root was built elsewhere
    (a ranking kept in blocks): checked against the root before it is handed out."""
    hasher = proof.genesis.suite.hash
    if root_from_inclusion(hasher, leaf_hash(hasher, digest), anchor).hex() != (
        proof.result.data.get("root")
    ):
        raise ReceiptInvalid("this path does not lead to the root this transaction committed")
    return {
        **_common(proof),
        "document": {"algorithm": proof.genesis.suite.hash_name, "hash": digest.hex()},
        "anchor": proof_to_value(anchor),
        record_field: record,
    }


def build_receipts(
    proof: TxProof,
    digests: list[bytes],
    positions: list[int] | None = None,
    records: list[dict[str, Any]] | None = None,
    record_field: str = "",
    tree: MerkleTree | None = None,
) -> list[dict[str, Any]]:
    """Receipts for the digests one transaction anchored (all, or those at `positions`). For a
    record kind, `records` (parallel to `digests`) puts each record in its receipt under
    `record_field`, the kind's name. `tree`, the digests' tree built already, saves rebuilding
    it for every receipt of a large batch."""
    if records is not None and not record_field:
        raise ConfigError("build_receipts: records need the record kind's field name")
    hasher = proof.genesis.suite.hash
    tree = tree or MerkleTree(hasher, digests)
    if tree.root().hex() != proof.result.data.get("root"):
        raise ReceiptInvalid("these digests are not the batch this transaction anchored")
    common = _common(proof)
    chosen = range(len(digests)) if positions is None else positions
    receipts = []
    for i in chosen:
        receipt = {
            **common,
            "document": {"algorithm": proof.genesis.suite.hash_name, "hash": digests[i].hex()},
            "anchor": proof_to_value(tree.inclusion_proof(i)),
        }
        if records is not None:
            receipt[record_field] = records[i]
        receipts.append(receipt)
    return receipts


# --- reading a receipt file ---------------------------------------------------------------------


def load_receipt_json(data: bytes | str) -> dict[str, Any]:
    """Parse a receipt file strictly (docs/receipts.md, "Malformed receipts"): UTF-8 without a
    byte order mark, one JSON object, no key twice in any object, integers only (no fraction,
    exponent, minus zero or constant such as NaN), every integer from 0 to 2^64-1 (the one
    exception is `evidence.distance`, -1 when no copy was hashed), text that is valid Unicode,
    nesting at most `receipt_nesting_max` deep. Raises `ReceiptInvalid` naming the fault."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if len(data) > receipt_bytes_max:
        raise ReceiptInvalid(
            f"malformed receipt: {len(data)} bytes, more than {receipt_bytes_max}",
            field="receipt",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        raise ReceiptInvalid(
            "malformed receipt: it starts with a byte order mark; a receipt is UTF-8 without one",
            field="receipt",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReceiptInvalid(
            f"malformed receipt: not UTF-8 (byte {exc.start}: {exc.reason})", field="receipt"
        ) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_float=_refuse_number,
            parse_int=_parse_integer,
            parse_constant=_refuse_number,
        )
    except json.JSONDecodeError as exc:
        raise ReceiptInvalid(f"malformed receipt: not JSON: {exc}", field="receipt") from None
    except RecursionError:
        raise ReceiptInvalid("malformed receipt: nested too deeply", field="receipt") from None
    if not isinstance(value, dict):
        raise ReceiptInvalid(
            f"malformed receipt: expected a JSON object, found {_json_kind(value)}",
            field="receipt",
        )
    _check_values(value, "", 0)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ReceiptInvalid(
                f"malformed receipt: key {key!r} appears twice in one object", field=key
            )
        value[key] = item
    return value


def _refuse_number(literal: str) -> Any:
    raise ReceiptInvalid(
        f"malformed receipt: numbers in a receipt are integers, found {literal}", field="receipt"
    )


def _parse_integer(literal: str) -> int:
    if literal == "-0":
        raise ReceiptInvalid("malformed receipt: -0 is not an integer's form", field="receipt")
    digits = literal.lstrip("-")
    if len(digits) > 20:  # 2^64 - 1 has 20 digits: refuse before converting a long string
        raise ReceiptInvalid(
            f"malformed receipt: integer {literal[:24]}... lies outside 0 to 2^64-1",
            field="receipt",
        )
    return int(literal)


def _check_values(value: Any, where: str, depth: int) -> None:
    if isinstance(value, dict | list) and depth >= receipt_nesting_max:
        raise ReceiptInvalid(
            f"malformed receipt: objects and arrays nest more than {receipt_nesting_max} "
            "levels deep",
            field=where or "receipt",
        )
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        lowest = -1 if where == "evidence.distance" else 0
        if not lowest <= value <= UINT64_MAX:
            raise ReceiptInvalid(
                f"malformed receipt: integer {value} lies outside {lowest} to 2^64-1",
                field=where,
            )
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{where}[{index}]", depth + 1)
    else:
        for key, item in value.items():
            _check_text(key, where)
            _check_values(item, f"{where}.{key}" if where else key, depth + 1)


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ReceiptInvalid(
            "malformed receipt: text with an unpaired surrogate escape is not Unicode",
            field=where or "receipt",
        ) from None


def _json_kind(value: object) -> str:
    names = {list: "an array", str: "a string", int: "a number", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def normalize_genesis_hash(text: str) -> str:
    """A genesis hash as the user typed it (any letter case, spaces around it) in the form
    receipts use: 64 lowercase hex digits. Raises `ReceiptInvalid` for anything else."""
    stripped = text.strip()
    if not _HEX_ANY.fullmatch(stripped):
        raise ReceiptInvalid(
            f"a genesis hash is 64 hex digits, found {text!r}", field="genesis_hash"
        )
    return stripped.lower()


def load_trusted_chains(text: str) -> dict[str, str]:
    """Parse a trusted-chains file: one chain a line, its genesis hash (any letter case), then
    optionally whitespace and a name (the rest of the line); blank lines and lines whose first
    non-blank character is # are ignored; any other line is an error. Returns hash → name."""
    chains: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        genesis_hash, *rest = stripped.split(maxsplit=1)
        name = rest[0] if rest else ""
        try:
            chains[normalize_genesis_hash(genesis_hash)] = name
        except ReceiptInvalid:
            raise ReceiptInvalid(
                f"trusted chains, line {number}: expected a 64-hex-digit genesis hash and a "
                f"name, found {stripped[:80]!r}",
                field="trusted_chains",
            ) from None
    return chains


# --- verification -------------------------------------------------------------------------------


def verify_receipt(
    receipt: dict[str, Any],
    document: bytes | None,
    *,
    kinds: ReceiptKinds,
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> VerifiedReceipt:
    """Check `receipt` proves `document` (a file's bytes) or the record it carries; raise
    `ReceiptInvalid` naming the first rule that fails.

    A record receipt needs no `document`; if one is given it must be the record's canonical
    encoding. `expected_genesis_hash` (any letter case) or `trusted_chains` (genesis hash →
    name) pin the chain; without either the result says `pinned=False`. `kinds` are the anchor
    methods and record kinds the apps declare (`xinchain.apps.registry.RECEIPT_KINDS`): a
    receipt of any other is refused."""
    verification = inspect_receipt(
        receipt,
        document,
        kinds=kinds,
        expected_genesis_hash=expected_genesis_hash,
        trusted_chains=trusted_chains,
    )
    if verification.verified is None:
        raise ReceiptInvalid(verification.reason, field=verification.field)
    return verification.verified


def inspect_receipt(
    receipt: dict[str, Any],
    document: bytes | None,
    *,
    kinds: ReceiptKinds,
    expected_genesis_hash: str | None = None,
    trusted_chains: Mapping[str, str] | None = None,
) -> Verification:
    """Run every check on `receipt` and say what each found; never raises for a bad receipt."""
    run = _Run(receipt, document, kinds, expected_genesis_hash, trusted_chains)
    try:
        verified = run.verify()
    except ReceiptInvalid as exc:
        return Verification(None, exc.reason, tuple(run.checks), exc.field)
    except DecodeError as exc:  # a parser below named a malformed field
        reason = f"malformed field: {exc.reason}"
        run.checks.append(Check("Receipt structure", "收据结构", "fail", reason))
        return Verification(None, reason, tuple(run.checks), exc.field)
    return Verification(verified, "", tuple(run.checks))


def anchoring_text(verified: VerifiedReceipt) -> str:
    """Where and by whom a verified receipt's subject was anchored, as `xinchain verify` says."""
    when = datetime.fromtimestamp(verified.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return (
        f"anchored by {verified.sender} at {when} in block {verified.height} of chain "
        f"{verified.chain_id} (genesis {verified.genesis_hash}), certified by "
        f"{verified.signers} of {verified.validators} validators"
    )


def pinning_text(verified: VerifiedReceipt) -> str:
    """Whether the chain was pinned, and what to compare when it was not."""
    if verified.pinned:
        named = f" ({verified.pinned_name})" if verified.pinned_name else ""
        return f"pinned: genesis {verified.genesis_hash}{named}"
    return (
        f"not pinned: nothing was given to compare genesis {verified.genesis_hash} with. Anyone "
        "can start a chain with any name; compare this hash with the one the consortium "
        "publishes, or pass --genesis-hash or --trusted-chains."
    )


class _Run:
    """One verification: the steps of docs/receipts.md in order, each recorded as a Check."""

    def __init__(
        self,
        receipt: dict[str, Any],
        document: bytes | None,
        kinds: ReceiptKinds,
        expected_genesis_hash: str | None,
        trusted_chains: Mapping[str, str] | None,
    ) -> None:
        self.receipt = receipt
        self.document = document
        self.kinds = kinds
        self.kind: RecordKind | None = None
        self.expected_genesis_hash = expected_genesis_hash
        self.trusted_chains = trusted_chains
        self.checks: list[Check] = []

    def step(self, name: str, name_zh: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except (ReceiptInvalid, DecodeError) as exc:
            where = f" ({exc.field})" if exc.field and exc.field not in exc.reason else ""
            reason = f"{exc.reason}{where}"
            self.checks.append(Check(name, name_zh, "fail", reason))
            raise ReceiptInvalid(reason, field=exc.field) from None
        self.checks.append(Check(name, name_zh, "pass", detail))

    def verify(self) -> VerifiedReceipt:
        receipt = self.receipt
        self.step("Receipt structure", "收据结构", self._structure)
        self.step("Genesis", "创世文件", self._genesis)
        self._pinning()
        self.step("Document hash", "文件哈希", self._document)
        self.step("Record bound to its contract", "记录类型与合约", self._kind)
        self.step("Merkle proof of the document", "文件默克尔证明", self._anchor)
        self.step("Result in the block", "交易结果上链证明", self._result_in_block)
        self.step("Block header", "区块头", self._header)
        self.step("Commit certificate", "提交证书", self._certificate)
        self.step("Validator signatures", "验证节点签名", self._signatures)
        self.step("Quorum", "法定签名数", self._quorum)
        genesis, result, header = self.genesis, self.result, self.header
        sender_org = genesis.org(result.sender)
        return VerifiedReceipt(
            document_hash=self.document_hash,
            sender=result.sender,
            height=header.height,
            time_ms=header.time_ms,
            chain_id=genesis.chain_id,
            genesis_hash=self.genesis_hash,
            signers=len(self.signers),
            validators=len(genesis.validators),
            sender_name=sender_org.name if sender_org else "",
            suite=genesis.suite_name,
            hash_name=genesis.suite.hash_name,
            contract=result.contract,
            method=result.method,
            tx_id=result.tx_id,
            block_hash=self.block_hash,
            round=self.certificate.round,
            record_kind=self.record_kind,
            record=receipt.get(self.record_kind) if self.record_kind else None,
            kind=self.kind,
            does=self.kinds.does(result.contract, result.method),
            certified_by=tuple(self.signers),
            pinned=self.pinned,
            pinned_name=self.pinned_name,
            checks=tuple(self.checks),
        )

    # Step 1: exactly the receipt's fields, at most one record, a known format.
    def _structure(self) -> str:
        receipt = self.receipt
        if not isinstance(receipt, dict):
            raise ReceiptInvalid("expected a JSON object", field="receipt")
        known = [kind.name for kind in self.kinds.records]
        carried = [name for name in known if name in receipt]
        if len(carried) > 1:
            raise ReceiptInvalid(f"a receipt carries one record, found {carried}", field="receipt")
        fields = set(receipt) - set(carried)
        if fields != RECEIPT_FIELDS:
            missing, extra = sorted(RECEIPT_FIELDS - fields), sorted(fields - RECEIPT_FIELDS)
            raise ReceiptInvalid(
                f"expected the fields {sorted(RECEIPT_FIELDS)} and at most one of "
                f"{known}: missing {missing}, unexpected {extra}",
                field="receipt",
            )
        if receipt["format"] != FORMAT:
            raise ReceiptInvalid(
                f"format {receipt['format']!r} is not one this verifier knows: it checks "
                f"{FORMAT!r}. Ask the chain's node for a new receipt "
                "(GET /v1/transactions/{id}/proof, or the xinchain command that issued it)",
                field="format",
            )
        self.record_kind = carried[0] if carried else ""
        if self.record_kind:
            self.kind = self.kinds.record(self.record_kind)
            assert self.kind is not None  # a carried field is a known record kind by now
            self.kind.check(receipt[self.record_kind], self.record_kind)
            article = "an" if self.record_kind[0] in "ae" else "a"
            return f"format {FORMAT}, carries {article} {self.record_kind} record"
        return f"format {FORMAT}, proves a file"

    # Step 2: the genesis in its complete form, with valid keys.
    def _genesis(self) -> str:
        value = self.receipt["genesis"]
        try:
            genesis = Genesis.from_value(value)
        except ConfigError as exc:
            raise ReceiptInvalid(f"genesis in the receipt: {exc.reason}", field="genesis") from exc
        if genesis.to_value() != value:
            raise ReceiptInvalid(
                "genesis in the receipt is not in its complete form (every parameter listed)",
                field="genesis",
            )
        self.genesis = genesis
        self.genesis_hash = genesis.hash_hex()
        return (
            f"chain {genesis.chain_id}, suite {genesis.suite_name}, "
            f"{len(genesis.validators)} validators, genesis hash {self.genesis_hash}"
        )

    # Step 2, continued: is this the chain the caller trusts?
    def _pinning(self) -> None:
        self.pinned, self.pinned_name = False, ""
        name, name_zh = "Chain pinned", "链身份锁定"
        if self.expected_genesis_hash is not None:
            self.step(name, name_zh, self._pinned_by_hash)
            self.pinned = True
        if self.trusted_chains is not None:
            self.step(name, name_zh, self._pinned_by_list)
            self.pinned = True
        if not self.pinned:
            self.checks.append(
                Check(
                    name,
                    name_zh,
                    "warn",
                    f"not pinned: no genesis hash was given to compare with. The receipt "
                    f"proves only that the chain with genesis {self.genesis_hash} certified "
                    "it; anyone can make a chain with any name. Compare that hash with the "
                    "one the consortium publishes, or pass --genesis-hash",
                )
            )

    def _pinned_by_hash(self) -> str:
        assert self.expected_genesis_hash is not None
        expected = normalize_genesis_hash(self.expected_genesis_hash)
        if self.genesis_hash != expected:
            raise ReceiptInvalid(
                f"receipt belongs to the chain with genesis {self.genesis_hash}, "
                f"expected {expected}",
                field="genesis",
            )
        return f"genesis hash {self.genesis_hash} is the one given (--genesis-hash)"

    def _pinned_by_list(self) -> str:
        assert self.trusted_chains is not None
        if self.genesis_hash not in self.trusted_chains:
            raise ReceiptInvalid(
                f"receipt belongs to the chain with genesis {self.genesis_hash}, which is not "
                f"among the {len(self.trusted_chains)} trusted chains",
                field="genesis",
            )
        self.pinned_name = self.trusted_chains[self.genesis_hash]
        named = f" ({self.pinned_name})" if self.pinned_name else ""
        return f"genesis hash {self.genesis_hash} is a trusted chain{named}"

    # Step 3: the file (or the record's canonical encoding) hashes to document.hash.
    def _document(self) -> str:
        suite = self.genesis.suite
        field = self.receipt["document"]
        if not isinstance(field, dict) or set(field) != {"algorithm", "hash"}:
            raise ReceiptInvalid("expected {algorithm, hash}", field="document")
        if field["algorithm"] != suite.hash_name:
            raise ReceiptInvalid(
                f"chain suite {suite.name} hashes documents with {suite.hash_name}, receipt "
                f"says {field['algorithm']!r}",
                field="document.algorithm",
            )
        hex64(field["hash"], "document.hash")
        document = self.document
        if self.record_kind:
            record_bytes = codec.encode(self.receipt[self.record_kind])
            if document is not None and document != record_bytes:
                raise ReceiptInvalid(
                    f"the file given is not the canonical encoding of the {self.record_kind} "
                    "the receipt carries; a record receipt needs no file",
                    field="document",
                )
            document = record_bytes
        if document is None:
            raise ReceiptInvalid(
                "this receipt proves a file: give the file to check it against", field="document"
            )
        self.document_hash = suite.hash(document).hex()
        if self.document_hash != field["hash"]:
            raise ReceiptInvalid(
                f"hash mismatch: the {'record' if self.record_kind else 'file'} hashes to "
                f"{self.document_hash}, the receipt proves {field['hash']}",
                field="document.hash",
            )
        subject = f"the {self.record_kind} record's canonical CBOR" if self.record_kind else "file"
        return f"{suite.hash_name} of the {subject} is {self.document_hash}"

    # Step 4: what the receipt proves is what the result's contract method anchors.
    def _kind(self) -> str:
        self.result = _parsed(TxResult.from_value, self.receipt["result"], "result")
        result = self.result
        if not result.ok or result.error != "":
            raise ReceiptInvalid(
                f"the result is not a success (ok={result.ok}, error={result.error!r}): it "
                "proves nothing",
                field="result.ok",
            )
        method = (result.contract, result.method)
        called = f"{result.contract}.{result.method}"
        if self.kind is not None:
            kind = self.kind
            if method != (kind.contract, kind.method):
                raise ReceiptInvalid(
                    f"a {kind.name} record is proven only by {kind.contract}.{kind.method}; "
                    f"this result is {called}, which does not write {kind.name} records",
                    field="result.contract",
                )
            record = self.receipt[kind.name]
            if kind.party and record[kind.party] != result.sender:
                raise ReceiptInvalid(
                    f"the {kind.name} names {kind.party} {record[kind.party]!r}, but the "
                    f"result's sender is {result.sender!r}",
                    field=f"{kind.name}.{kind.party}",
                )
        elif self.kinds.anchor(*method) is None:
            anchors = " or ".join(f"{a.contract}.{a.method}" for a in self.kinds.anchors)
            writes = self.kinds.record_for(*method)
            hint = f"; its receipts carry the {writes.name} record" if writes else ""
            raise ReceiptInvalid(
                f"a file is proven only by {anchors or 'an anchor method no app declared'}; "
                f"this result is {called}{hint}",
                field="result.contract",
            )
        if set(result.data) != {"root", "size"}:
            raise ReceiptInvalid("expected exactly {root, size}", field="result.data")
        hex64(result.data["root"], "result.data.root")
        integer(1, UINT64_MAX)(result.data["size"], "result.data.size")
        return f"{called} by {result.sender} (transaction {result.tx_id}) succeeded"

    # Step 5: document hash → batch root.
    def _anchor(self) -> str:
        suite, data = self.genesis.suite, self.result.data
        anchor = proof_from_value(self.receipt["anchor"], "anchor")
        if anchor.size != data["size"]:
            raise ReceiptInvalid(
                f"bad Merkle proof: anchor proof is for {anchor.size} documents, the batch has "
                f"{data['size']}",
                field="anchor.size",
            )
        document_leaf = leaf_hash(suite.hash, bytes.fromhex(self.document_hash))
        if _root(suite.hash, document_leaf, anchor) != data["root"]:
            raise ReceiptInvalid(
                "bad Merkle proof: the document does not lead to the anchored batch root",
                field="anchor",
            )
        return f"item {anchor.index + 1} of {anchor.size} leads to batch root {data['root']}"

    # Step 6: result → the header's result root.
    def _result_in_block(self) -> str:
        suite = self.genesis.suite
        self.header = _parsed(BlockHeader.from_value, self.receipt["header"], "header")
        header = self.header
        proof = proof_from_value(self.receipt["result_proof"], "result_proof")
        if proof.size != header.tx_count:
            raise ReceiptInvalid(
                f"bad Merkle proof: result proof is for {proof.size} results, the block has "
                f"{header.tx_count}",
                field="result_proof.size",
            )
        leaf = leaf_hash(suite.hash, self.result.encode())
        if _root(suite.hash, leaf, proof) != header.result_root:
            raise ReceiptInvalid(
                "bad Merkle proof: the result does not lead to the block's result root",
                field="result_proof",
            )
        return (
            f"transaction {proof.index + 1} of {proof.size} leads to result root "
            f"{header.result_root}"
        )

    # Step 7: the header belongs to this genesis and is well formed.
    def _header(self) -> str:
        header, genesis = self.header, self.genesis
        if header.chain_id != genesis.chain_id:
            raise ReceiptInvalid(
                f"bad header: chain {header.chain_id!r}, genesis names {genesis.chain_id!r}",
                field="header.chain_id",
            )
        if header.genesis_hash != self.genesis_hash:
            raise ReceiptInvalid(
                f"bad header: it names genesis {header.genesis_hash}, the receipt's genesis "
                f"hashes to {self.genesis_hash}",
                field="header.genesis_hash",
            )
        if header.validators_hash != genesis.validators_hash_hex():
            raise ReceiptInvalid(
                "bad header: its validator set is not the one genesis lists",
                field="header.validators_hash",
            )
        if header.height < 1:
            raise ReceiptInvalid(
                "bad header: height 0 is the genesis, which holds no block", field="header.height"
            )
        if header.proposer >= len(genesis.validators):
            raise ReceiptInvalid(
                f"bad header: proposer {header.proposer}, but genesis lists "
                f"{len(genesis.validators)} validators (indexes from 0)",
                field="header.proposer",
            )
        party = self._record_time()
        self.block_hash = genesis.suite.hash(header.encode()).hex()
        return f"block {header.height} of chain {header.chain_id}, hash {self.block_hash}{party}"

    def _record_time(self) -> str:
        """A work or evidence record carries the block time it was written at."""
        if self.record_kind not in ("work", "evidence"):
            return ""
        recorded = self.receipt[self.record_kind]["time_ms"]
        if recorded != self.header.time_ms:
            raise ReceiptInvalid(
                f"the {self.record_kind} says it was written at {recorded} ms, but its block's "
                f"time is {self.header.time_ms} ms",
                field=f"{self.record_kind}.time_ms",
            )
        return ""

    # Step 8: the certificate is for this header.
    def _certificate(self) -> str:
        self.certificate = _parsed(
            CommitCertificate.from_value, self.receipt["certificate"], "certificate"
        )
        certificate, header = self.certificate, self.header
        if certificate.block_hash != self.block_hash or certificate.height != header.height:
            raise ReceiptInvalid(
                f"bad header: the certificate is for block {certificate.block_hash} at height "
                f"{certificate.height}; the header is block {self.block_hash} at height "
                f"{header.height}",
                field="certificate",
            )
        return f"height {certificate.height}, round {certificate.round}, block {self.block_hash}"

    # Step 9: each signature verifies, from a listed validator, in ascending index order.
    def _signatures(self) -> str:
        self.signers = certificate_signers(self.genesis, self.certificate)
        return f"{len(self.signers)} valid signatures from distinct validators"

    # Step 10: a quorum of the validator set signed.
    def _quorum(self) -> str:
        validators = len(self.genesis.validators)
        needed = quorum_size(validators)
        if len(self.signers) < needed:
            raise ReceiptInvalid(
                f"too few validator signatures: {len(self.signers)} of {validators}, and "
                f"{needed} are needed",
                field="certificate.signatures",
            )
        return f"{len(self.signers)} of {validators} validators signed; {needed} are needed"


def certificate_signers(genesis: Genesis, certificate: CommitCertificate) -> list[Signer]:
    """The validators whose signatures in `certificate` verify, by the one rule consensus
    applies too (`xinchain.types.certificate_signers`). Raises `ReceiptInvalid` otherwise; the
    quorum is the caller's."""
    suite, validators = genesis.suite, genesis.validators
    keys = [bytes.fromhex(validator.public_key) for validator in validators]

    def verify(index: int, message: bytes, signature: bytes) -> bool:
        return suite.verify(keys[index], message, signature)

    names = [validator.name for validator in validators]
    try:
        indexes = signers_of(certificate, genesis.chain_id, names, verify)
    except CertificateInvalid as exc:
        raise ReceiptInvalid(exc.reason, field=exc.field) from None
    signers = []
    for index in indexes:
        validator = validators[index]
        org = genesis.org(validator.org)
        signers.append(
            Signer(
                index=index,
                name=validator.name,
                org=validator.org,
                org_name=org.name if org else "",
                public_key=validator.public_key,
                fingerprint=suite.hash(keys[index])[:16].hex(),
            )
        )
    return signers


def _root(hasher: Callable[[bytes], bytes], leaf: bytes, proof: InclusionProof) -> str:
    try:
        return root_from_inclusion(hasher, leaf, proof).hex()
    except ValueError as exc:
        raise ReceiptInvalid(f"bad Merkle proof: {exc}", field="path") from None


def _parsed(parse: Any, value: object, where: str) -> Any:
    try:
        return parse(value)
    except DecodeError as exc:
        raise ReceiptInvalid(f"{where} is malformed: {exc.reason}", field=exc.field) from exc
