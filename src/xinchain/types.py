"""Core chain types: transactions, block headers, results, commit certificates, blocks and what
the application boundary (execution/app.py) takes and returns.

Every type here converts to and from a value of the canonical data model (`codec.py`); that
value, canonically encoded, is what is hashed and signed.

Structures that appear in offline receipts (block header, transaction result, commit
certificate, genesis) hold hashes as lowercase hex *text*, not bytes, so that their JSON form
maps one-to-one onto their CBOR form and an independent verifier needs no schema to re-encode
them (docs/receipts.md). Transactions, which never travel in a receipt, hold raw bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cbor2

from xinchain import codec
from xinchain.errors import CertificateInvalid, DecodeError, InvalidTransaction, ensure

# Domain separation: a signature made for one purpose can never be replayed for another.
TX_SIGNING_PREFIX = b"xinchain/tx/v1\x00"
COMMIT_SIGNING_PREFIX = b"xinchain/commit/v1\x00"

# A transaction larger than this is refused before decoding. 1 MiB holds a notary batch of
# 16,384 hashes (about 560 KB) with room to spare, and keeps a block of many of them in memory.
tx_bytes_max = 1024 * 1024
# The largest frame a peer accepts (p2p/transport.py): a proposal carries a whole block, so a
# block's transactions (`block_bytes_max`, a governance parameter) must fit with room for the
# header, the signature and CBOR's framing of each transaction (`block_framing_bytes_max`).
frame_bytes_max = 20 * 1024 * 1024
block_framing_bytes_max = 1024 * 1024
# Identifiers (chain, org, contract, method) are short names, never free text.
identifier_chars_max = 64
IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # also stated in the API description
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_UINT64_MAX = 2**64 - 1


def check_identifier(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidTransaction(
            "expected a name of 1-64 characters from a-z 0-9 _ . - starting with a letter or "
            f"digit, found {value!r}",
            field=field_name,
        )
    return value


def check_uint(value: object, field_name: str, maximum: int = _UINT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise DecodeError(
            f"expected an integer from 0 to {maximum}, found {value!r}", field=field_name
        )
    return value


def check_hex32(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise DecodeError(f"expected 64 lowercase hex digits, found {value!r}", field=field_name)
    return value


def check_map_keys(value: object, expected: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"expected a map, found {type(value).__name__}", field=where)
    keys = set(value)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise DecodeError(f"fields missing {missing}, unexpected {extra}", field=where)
    return value


# --- transactions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionBody:
    """What the sender signs. Its hash is the transaction id, accepted once by the chain."""

    chain_id: str
    sender: str  # member org id
    public_key: bytes  # the key that signed; must be registered for `sender`
    contract: str
    method: str
    args: dict[str, Any]
    nonce: int
    valid_until: int  # last height at which the transaction may be included
    # Its canonical encoding when known (cut from the transaction it arrived in): the body is
    # hashed for the id and signed over, and re-encoding it each time cost more than hashing.
    encoded: bytes = field(default=b"", compare=False, repr=False)

    def to_value(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sender": self.sender,
            "public_key": self.public_key,
            "contract": self.contract,
            "method": self.method,
            "args": self.args,
            "nonce": self.nonce,
            "valid_until": self.valid_until,
        }

    @classmethod
    def from_value(cls, value: object, encoded: bytes = b"") -> TransactionBody:
        body = check_map_keys(value, _BODY_FIELDS, "body")
        public_key = body["public_key"]
        if not isinstance(public_key, bytes) or not 1 <= len(public_key) <= 128:
            raise InvalidTransaction("expected the public key as 1-128 bytes", field="public_key")
        if not isinstance(body["args"], dict):
            raise InvalidTransaction("expected a map of arguments", field="args")
        return cls(
            chain_id=check_identifier(body["chain_id"], "chain_id"),
            sender=check_identifier(body["sender"], "sender"),
            public_key=public_key,
            contract=check_identifier(body["contract"], "contract"),
            method=check_identifier(body["method"], "method"),
            args=body["args"],
            nonce=check_uint(body["nonce"], "nonce"),
            valid_until=check_uint(body["valid_until"], "valid_until"),
            encoded=encoded,
        )

    def encode(self) -> bytes:
        return self.encoded or codec.encode(self.to_value())

    def signing_message(self) -> bytes:
        return TX_SIGNING_PREFIX + self.encode()


_BODY_FIELDS = {
    "chain_id",
    "sender",
    "public_key",
    "contract",
    "method",
    "args",
    "nonce",
    "valid_until",
}


@dataclass(frozen=True)
class Transaction:
    body: TransactionBody
    signature: bytes
    # The exact bytes this transaction arrived as (canonical, so equal to re-encoding).
    raw: bytes = field(compare=False, repr=False, default=b"")

    def to_value(self) -> dict[str, Any]:
        return {"body": self.body.to_value(), "signature": self.signature}

    def encode(self) -> bytes:
        return self.raw or codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        if len(data) > tx_bytes_max:
            raise InvalidTransaction(
                f"transaction is {len(data)} bytes; at most {tx_bytes_max} are accepted"
            )
        value = check_map_keys(codec.decode(data), {"body", "signature"}, "transaction")
        signature = value["signature"]
        if not isinstance(signature, bytes) or not 1 <= len(signature) <= 128:
            raise InvalidTransaction("expected the signature as 1-128 bytes", field="signature")
        # Canonical, so the bytes are: map(2) "body" <body> "signature" <signature>.
        tail = _SIGNATURE_KEY + cbor2.dumps(signature)
        ensure(data.startswith(_BODY_KEY) and data.endswith(tail), "canonical transaction layout")
        encoded = bytes(data[len(_BODY_KEY) : len(data) - len(tail)])
        body = TransactionBody.from_value(value["body"], encoded)
        return cls(body=body, signature=signature, raw=data)


_BODY_KEY = b"\xa2\x64body"
_SIGNATURE_KEY = b"\x69signature"


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxResult:
    """What executing one transaction produced: a leaf of the block's result tree.

    `data` is the contract's answer; like every receipt-carried structure it holds text, ints,
    bools, lists and maps only (hashes as hex).
    """

    tx_id: str
    ok: bool
    sender: str
    contract: str
    method: str
    data: dict[str, Any]
    error: str

    def to_value(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id,
            "ok": self.ok,
            "sender": self.sender,
            "contract": self.contract,
            "method": self.method,
            "data": self.data,
            "error": self.error,
        }

    @classmethod
    def from_value(cls, value: object) -> TxResult:
        result = check_map_keys(value, _RESULT_FIELDS, "result")
        if not isinstance(result["ok"], bool):
            raise DecodeError("expected true or false", field="result.ok")
        for name in ("sender", "contract", "method", "error"):
            if not isinstance(result[name], str):
                raise DecodeError("expected text", field=f"result.{name}")
        if not isinstance(result["data"], dict):
            raise DecodeError("expected a map", field="result.data")
        codec.encode(result)  # refuses what lies outside the data model, naming it
        return cls(
            tx_id=check_hex32(result["tx_id"], "result.tx_id"),
            ok=result["ok"],
            sender=result["sender"],
            contract=result["contract"],
            method=result["method"],
            data=result["data"],
            error=result["error"],
        )

    def encode(self) -> bytes:
        return self.encoded

    @cached_property
    def encoded(self) -> bytes:
        """The canonical encoding, computed once: it is hashed into the result root, stored
        with the block and sent in proofs. The fields are in the data model by construction
        (execution checks contract data with `codec.is_text_model`; decoding checks the rest),
        so it is written out field by field, keys in canonical order (shorter first):
        ok, data, error, tx_id, method, sender, contract. tests/unit/test_codec.py checks it
        against codec.encode."""
        text = codec.encode_text
        return b"".join(
            (
                b"\xa7\x62ok\xf5" if self.ok else b"\xa7\x62ok\xf4",
                b"\x64data",
                codec.encode_checked(self.data),
                b"\x65error",
                text(self.error),
                b"\x65tx_id",
                text(self.tx_id),
                b"\x66method",
                text(self.method),
                b"\x66sender",
                text(self.sender),
                b"\x68contract",
                text(self.contract),
            )
        )


_RESULT_FIELDS = {"tx_id", "ok", "sender", "contract", "method", "data", "error"}


# --- blocks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockHeader:
    chain_id: str
    genesis_hash: str  # binds every block to the genesis that names its validators
    height: int
    round: int
    parent_hash: str  # hex; the genesis hash for the first block
    tx_root: str  # RFC 9162 root over the encoded transactions
    result_root: str  # RFC 9162 root over the encoded TxResults, same order
    state_hash: str  # app-state hash after this block's transactions (execution/state.py)
    validators_hash: str  # hash of the validator set that certifies this block
    proposer: int  # index into that validator set
    time_ms: int  # proposer's clock, milliseconds since the Unix epoch, never decreasing
    tx_count: int

    def to_value(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "height": self.height,
            "round": self.round,
            "parent_hash": self.parent_hash,
            "tx_root": self.tx_root,
            "result_root": self.result_root,
            "state_hash": self.state_hash,
            "validators_hash": self.validators_hash,
            "proposer": self.proposer,
            "time_ms": self.time_ms,
            "tx_count": self.tx_count,
        }

    @classmethod
    def from_value(cls, value: object) -> BlockHeader:
        header = check_map_keys(value, _HEADER_FIELDS, "header")
        if not isinstance(header["chain_id"], str):
            raise DecodeError("expected text", field="header.chain_id")
        return cls(
            chain_id=header["chain_id"],
            genesis_hash=check_hex32(header["genesis_hash"], "header.genesis_hash"),
            height=check_uint(header["height"], "header.height"),
            round=check_uint(header["round"], "header.round"),
            parent_hash=check_hex32(header["parent_hash"], "header.parent_hash"),
            tx_root=check_hex32(header["tx_root"], "header.tx_root"),
            result_root=check_hex32(header["result_root"], "header.result_root"),
            state_hash=check_hex32(header["state_hash"], "header.state_hash"),
            validators_hash=check_hex32(header["validators_hash"], "header.validators_hash"),
            proposer=check_uint(header["proposer"], "header.proposer"),
            time_ms=check_uint(header["time_ms"], "header.time_ms"),
            tx_count=check_uint(header["tx_count"], "header.tx_count"),
        )

    def encode(self) -> bytes:
        return codec.encode(self.to_value())


_HEADER_FIELDS = {
    "chain_id",
    "genesis_hash",
    "height",
    "round",
    "parent_hash",
    "tx_root",
    "result_root",
    "state_hash",
    "validators_hash",
    "proposer",
    "time_ms",
    "tx_count",
}


@dataclass(frozen=True)
class ValidatorSignature:
    validator: int
    signature: str  # hex

    def to_value(self) -> dict[str, Any]:
        return {"validator": self.validator, "signature": self.signature}


@dataclass(frozen=True)
class CommitCertificate:
    """Precommits of validators for one block in one round: signatures over
    `commit_statement(chain_id, height, round, block_hash)`."""

    height: int
    round: int
    block_hash: str
    signatures: tuple[ValidatorSignature, ...]

    def to_value(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "signatures": [signature.to_value() for signature in self.signatures],
        }

    @classmethod
    def from_value(cls, value: object) -> CommitCertificate:
        certificate = check_map_keys(
            value, {"height", "round", "block_hash", "signatures"}, "certificate"
        )
        raw_signatures = certificate["signatures"]
        if not isinstance(raw_signatures, list):
            raise DecodeError("expected a list", field="certificate.signatures")
        signatures = []
        for index, item in enumerate(raw_signatures):
            where = f"certificate.signatures[{index}]"
            entry = check_map_keys(item, {"validator", "signature"}, where)
            text = entry["signature"]
            if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9a-f]{2}){1,128}", text):
                raise DecodeError("expected the signature as lowercase hex", field=where)
            signatures.append(
                ValidatorSignature(check_uint(entry["validator"], f"{where}.validator"), text)
            )
        return cls(
            height=check_uint(certificate["height"], "certificate.height"),
            round=check_uint(certificate["round"], "certificate.round"),
            block_hash=check_hex32(certificate["block_hash"], "certificate.block_hash"),
            signatures=tuple(signatures),
        )


def commit_statement(
    chain_id: str, height: int, round_number: int, block_hash: str | None
) -> bytes:
    """What a validator signs to precommit `block_hash` (None: nil) in a round of a height.

    2f+1 such signatures for one block in one round make its commit certificate. The round is
    signed because an honest validator may precommit different blocks in different rounds of
    one height (Tendermint's lock change); a certificate never mixes rounds.
    """
    statement = {
        "kind": "commit",
        "chain_id": chain_id,
        "height": height,
        "round": round_number,
        "block_hash": block_hash,
    }
    return COMMIT_SIGNING_PREFIX + codec.encode(statement)


def quorum_size(validator_count: int) -> int:
    """Signatures needed for a certificate: 2f+1 of n = 3f+1, i.e. more than two thirds."""
    return (2 * validator_count) // 3 + 1


# Checks one validator's signature: (validator index, signed bytes, signature) → valid.
VerifySignature = Callable[[int, bytes, bytes], bool]


def certificate_signers(
    certificate: CommitCertificate,
    chain_id: str,
    validator_names: Sequence[str],
    verify: VerifySignature,
) -> list[int]:
    """The validators that signed `certificate`, by index. The one rule for certificates, the
    same for consensus (a commit proof from a peer) and for receipts (docs/receipts.md): every
    listed signature verifies over `commit_statement`, from a validator genesis lists, in
    strictly ascending validator order (so none twice, and one order for one set). Raises
    `CertificateInvalid` naming the first entry that breaks it (the quorum: check_certificate)."""
    statement = commit_statement(
        chain_id, certificate.height, certificate.round, certificate.block_hash
    )
    where = "certificate.signatures"
    signers: list[int] = []
    previous = -1
    for entry in certificate.signatures:
        validator = entry.validator
        if validator >= len(validator_names):
            raise CertificateInvalid(
                f"unknown validator {validator}: genesis lists {len(validator_names)}", field=where
            )
        if validator == previous:
            raise CertificateInvalid(f"validator {validator} signs twice", field=where)
        if validator < previous:
            raise CertificateInvalid(
                f"signatures out of order: validator {validator} after {previous}; entries are "
                "in ascending validator order",
                field=where,
            )
        previous = validator
        if not verify(validator, statement, bytes.fromhex(entry.signature)):
            raise CertificateInvalid(
                f"bad validator signature from validator {validator} "
                f"({validator_names[validator]})",
                field=where,
            )
        signers.append(validator)
    return signers


def check_certificate(
    certificate: CommitCertificate,
    chain_id: str,
    validator_names: Sequence[str],
    verify: VerifySignature,
) -> list[int]:
    """`certificate_signers`, and at least a quorum of them."""
    signers = certificate_signers(certificate, chain_id, validator_names, verify)
    needed = quorum_size(len(validator_names))
    if len(signers) < needed:
        raise CertificateInvalid(
            f"too few validator signatures: {len(signers)} of {len(validator_names)}, and "
            f"{needed} are needed",
            field="certificate.signatures",
        )
    return signers


# --- blocks and the application boundary -------------------------------------------------------


@dataclass(frozen=True)
class CheckedTx:
    """A transaction that passed admission: decoded, signature verified, id computed."""

    tx: Transaction
    tx_id: str

    @property
    def raw(self) -> bytes:
        return self.tx.encode()


@dataclass(frozen=True)
class ChainTip:
    height: int
    block_hash: str  # the genesis hash at height 0
    state_hash: str
    time_ms: int


@dataclass(frozen=True)
class ExecuteBlockRequest:
    height: int
    time_ms: int
    txs: tuple[CheckedTx, ...]


@dataclass(frozen=True)
class ExecuteBlockResponse:
    results: tuple[TxResult, ...]
    writes: dict[bytes, bytes | None]
    state_hash: str
    tx_root: str
    result_root: str
    # Derived index entries (Table.INDEX) of the successful transactions, in block order.
    indexed: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]


@dataclass(frozen=True)
class CommitRequest:
    block: Block
    block_hash: str
    execution: ExecuteBlockResponse
    tx_ids: tuple[str, ...]
    certificate: CommitCertificate
