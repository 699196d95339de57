"""The notary contract: anchor document hashes, one at a time or as a batch.

A batch transaction carries every hash; the contract computes their RFC 9162 root itself, so
each hash gets its own receipt: hash → batch root (inclusion proof) → result → block.
A single anchor is a batch of one, so receipts have one shape.

Only hashes go on chain; the documents stay with their owners.
"""

from __future__ import annotations

from typing import Any

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, require_args
from xinchain.errors import ContractError
from xinchain.execution.state import get_many
from xinchain.merkle import MerkleTree, leaf_hash

# Hashes in one batch transaction: 16,384 hashes of 32 bytes stays well inside the 1 MiB transaction
# limit, and a block of a few such batches executes in well under a second.
batch_hashes_max = 16_384
# Records kept per hash: the same document may be anchored again (by another org, or later),
# but a hash anchored this often is abuse, and its record list must stay small to read.
records_per_hash_max = 64
digest_bytes = 32


class Notary(Contract):
    name = "notary"

    def methods(self) -> dict[str, Handler]:
        return {"anchor": self.anchor, "anchor_batch": self.anchor_batch}

    def anchor(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"hash"})
        return self._anchor_all(context, [_digest(args["hash"], "args.hash")])

    def anchor_batch(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"hashes"})
        hashes = args["hashes"]
        if not isinstance(hashes, list) or not 1 <= len(hashes) <= batch_hashes_max:
            raise ContractError(
                f"expected a list of 1 to {batch_hashes_max} hashes", field="args.hashes"
            )
        return self._anchor_all(
            context, [_digest(item, f"args.hashes[{i}]") for i, item in enumerate(hashes)]
        )

    def _anchor_all(self, context: CallContext, digests: list[bytes]) -> dict[str, Any]:
        if len(digests) == 1:  # the root of a one-leaf tree is that leaf's hash
            root = leaf_hash(context.suite.hash, digests[0]).hex()
        else:
            root = MerkleTree(context.suite.hash, digests).root().hex()
        # A hash anchored for the first time (nearly always) gets a one-record list whose
        # encoding differs between positions only in the position, its last field: build the
        # rest once per transaction. codec.encode gives the same bytes (tests check it).
        shared = record_encoding_without_position(context, len(digests))
        keys = [f"{self.name}/h/{digest.hex()}".encode() for digest in digests]
        existing = get_many(context.state, keys)  # one read of the store for the batch
        written: set[bytes] = set()
        for position, (digest, state_key) in enumerate(zip(digests, keys, strict=True)):
            key = f"h/{digest.hex()}"
            if existing[state_key] is None and state_key not in written:
                context.state.put(state_key, shared + codec.encode_checked(position))
                written.add(state_key)
                continue
            records = context.read(self.name, key) or []
            if len(records) >= records_per_hash_max:
                raise ContractError(
                    f"hash {digest.hex()} is already anchored {len(records)} times, the most "
                    "kept per hash",
                    field=f"args.hashes[{position}]",
                )
            records.append(anchor_record(context, position, len(digests)))
            context.write(self.name, key, records)
        return {"root": root, "size": len(digests)}


def anchor_record(context: CallContext, position: int, size: int) -> dict[str, Any]:
    return {
        "height": context.height,
        "tx_id": context.tx_id,
        "position": position,
        "size": size,
        "sender": context.sender,
        "time_ms": context.time_ms,
    }


def record_encoding_without_position(context: CallContext, size: int) -> bytes:
    """The canonical encoding of `[anchor_record(...)]` up to its last field's value, written
    out: an array of one map of six fields, keys in canonical order (shorter first, so
    "position" comes last). tests/unit/test_notary_contract.py checks it against
    codec.encode."""
    value = codec.encode_checked
    return b"".join(
        (
            b"\x81\xa6\x64size",
            value(size),
            b"\x65tx_id",
            value(context.tx_id),
            b"\x66height",
            value(context.height),
            b"\x66sender",
            value(context.sender),
            b"\x67time_ms",
            value(context.time_ms),
            b"\x68position",
        )
    )


def _digest(value: object, where: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != digest_bytes:
        raise ContractError(f"expected a {digest_bytes}-byte digest", field=where)
    return value
