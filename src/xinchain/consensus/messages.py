"""Consensus messages and the exact bytes each validator signs (docs/consensus.md §Messages).

* Proposal  — the round's proposer offers a block: signed over
  ``"xinchain/proposal/v1" 0x00 CBOR({kind, chain_id, height, round, valid_round, block_hash})``.
* Prevote   — signed over ``"xinchain/prevote/v1" 0x00 CBOR({kind, chain_id, height, round,
  block_hash|null})``.
* Precommit — signed over the commit statement (types.commit_statement), so that 2f+1
  precommits for a block in one round *are* its commit certificate, the one receipts carry.
* CommitProof — a decided block with its certificate, sent to a node that is behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from xinchain import codec
from xinchain.errors import DecodeError
from xinchain.types import (
    Block,
    BlockHeader,
    CommitCertificate,
    check_hex32,
    check_map_keys,
    check_uint,
    commit_statement,
)

PROPOSAL_SIGNING_PREFIX = b"xinchain/proposal/v1\x00"
PREVOTE_SIGNING_PREFIX = b"xinchain/prevote/v1\x00"
PREVOTE = "prevote"  # a vote's kind, as the wire and the signing bytes name it
PRECOMMIT = "precommit"
NO_ROUND = -1


class Step(IntEnum):
    """Where a validator is in a height, in order: the core's state, what SafetyRules persist
    (as this number, in safety.json) and which timer fired. The one encoding of a step."""

    NEW_HEIGHT = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    DECIDED = 4


# The step a vote of each kind is signed in.
VOTE_STEPS = {PREVOTE: Step.PREVOTE, PRECOMMIT: Step.PRECOMMIT}
# Rounds beyond this are refused: at the slowest timeouts that is weeks of failed rounds, and it
# keeps a Byzantine peer from making us allocate per-round state without bound.
round_max = 1_000_000
_SIGNATURE_BYTES_MAX = 128


def block_to_value(block: Block) -> dict[str, Any]:
    return {"header": block.header.to_value(), "txs": list(block.txs)}


def block_from_value(value: object) -> Block:
    fields = check_map_keys(value, {"header", "txs"}, "block")
    txs = fields["txs"]
    if not isinstance(txs, list) or not all(isinstance(tx, bytes) for tx in txs):
        raise DecodeError("expected a list of encoded transactions", field="block.txs")
    return Block(BlockHeader.from_value(fields["header"]), tuple(txs))


def _signature(value: object, where: str) -> bytes:
    if not isinstance(value, bytes) or not 1 <= len(value) <= _SIGNATURE_BYTES_MAX:
        raise DecodeError(f"expected 1-{_SIGNATURE_BYTES_MAX} signature bytes", field=where)
    return value


def _round(value: object, where: str, allow_none: bool = False) -> int:
    if allow_none and value == NO_ROUND:
        return NO_ROUND
    return check_uint(value, where, round_max)


@dataclass(frozen=True)
class Proposal:
    height: int
    round: int
    valid_round: int  # NO_ROUND, or the earlier round whose polka this block carries
    block: Block
    block_hash: str
    proposer: int
    signature: bytes

    def to_value(self) -> dict[str, Any]:
        return {
            "type": "proposal",
            "height": self.height,
            "round": self.round,
            "valid_round": self.valid_round,
            "block": block_to_value(self.block),
            "block_hash": self.block_hash,
            "proposer": self.proposer,
            "signature": self.signature,
        }

    @classmethod
    def from_value(cls, value: object) -> Proposal:
        fields = check_map_keys(value, _PROPOSAL_FIELDS, "proposal")
        return cls(
            height=check_uint(fields["height"], "proposal.height"),
            round=_round(fields["round"], "proposal.round"),
            valid_round=_round(fields["valid_round"], "proposal.valid_round", allow_none=True),
            block=block_from_value(fields["block"]),
            block_hash=check_hex32(fields["block_hash"], "proposal.block_hash"),
            proposer=check_uint(fields["proposer"], "proposal.proposer"),
            signature=_signature(fields["signature"], "proposal.signature"),
        )


_PROPOSAL_FIELDS = {
    "type",
    "height",
    "round",
    "valid_round",
    "block",
    "block_hash",
    "proposer",
    "signature",
}


def proposal_signing_bytes(
    chain_id: str, height: int, round_number: int, valid_round: int, block_hash: str
) -> bytes:
    statement = {
        "kind": "proposal",
        "chain_id": chain_id,
        "height": height,
        "round": round_number,
        "valid_round": valid_round,
        "block_hash": block_hash,
    }
    return PROPOSAL_SIGNING_PREFIX + codec.encode(statement)


@dataclass(frozen=True)
class Vote:
    kind: str  # PREVOTE or PRECOMMIT
    height: int
    round: int
    block_hash: str | None  # None: a vote for nil
    validator: int
    signature: bytes

    def to_value(self) -> dict[str, Any]:
        return {
            "type": "vote",
            "kind": self.kind,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "validator": self.validator,
            "signature": self.signature,
        }

    @classmethod
    def from_value(cls, value: object) -> Vote:
        fields = check_map_keys(value, _VOTE_FIELDS, "vote")
        kind = fields["kind"]
        if kind not in (PREVOTE, PRECOMMIT):
            raise DecodeError(f"expected {PREVOTE!r} or {PRECOMMIT!r}", field="vote.kind")
        block_hash = fields["block_hash"]
        return cls(
            kind=kind,
            height=check_uint(fields["height"], "vote.height"),
            round=_round(fields["round"], "vote.round"),
            block_hash=None if block_hash is None else check_hex32(block_hash, "vote.block_hash"),
            validator=check_uint(fields["validator"], "vote.validator"),
            signature=_signature(fields["signature"], "vote.signature"),
        )


_VOTE_FIELDS = {"type", "kind", "height", "round", "block_hash", "validator", "signature"}


def vote_signing_bytes(
    chain_id: str, kind: str, height: int, round_number: int, block_hash: str | None
) -> bytes:
    if kind == PRECOMMIT:
        return commit_statement(chain_id, height, round_number, block_hash)
    statement = {
        "kind": PREVOTE,
        "chain_id": chain_id,
        "height": height,
        "round": round_number,
        "block_hash": block_hash,
    }
    return PREVOTE_SIGNING_PREFIX + codec.encode(statement)


@dataclass(frozen=True)
class CommitProof:
    block: Block
    certificate: CommitCertificate

    def to_value(self) -> dict[str, Any]:
        return {
            "type": "commit",
            "block": block_to_value(self.block),
            "certificate": self.certificate.to_value(),
        }

    @classmethod
    def from_value(cls, value: object) -> CommitProof:
        fields = check_map_keys(value, {"type", "block", "certificate"}, "commit")
        return cls(
            block=block_from_value(fields["block"]),
            certificate=CommitCertificate.from_value(fields["certificate"]),
        )


Message = Proposal | Vote | CommitProof


def decode_message(data: bytes) -> Message:
    value = codec.decode(data)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "proposal":
        return Proposal.from_value(value)
    if kind == "vote":
        return Vote.from_value(value)
    if kind == "commit":
        return CommitProof.from_value(value)
    raise DecodeError(f"unknown consensus message type {kind!r}", field="type")


def encode_message(message: Message) -> bytes:
    return codec.encode(message.to_value())
