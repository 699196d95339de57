"""The notary contract: anchor document hashes, one at a time or as a batch.

A batch transaction carries every hash; the contract computes their RFC 9162 root itself, so
each hash gets its own receipt: hash → batch root (inclusion proof) → result → block.
A single anchor is a batch of one, so receipts have one shape.

Only hashes go on chain; the documents stay with their owners. What the chain agrees on is
the transaction (in the block's transaction root) and its result, the root and the size (in
the result root). Finding a document's anchors by its hash is a query, so the lookup entries
go to the derived index beside the state (Table.INDEX), as the transaction index does:

    notary/t/<height:8><tx index:4>                   → {tx_id, sender, size, time_ms}
    notary/h/<digest:32><height:8><tx index:4><position:4> → b""

One index entry a document and no state write keeps a batch's cost per document to its
Merkle leaf and one sorted insert. A hash may be anchored any number of times; a lookup lists
its first `records_listed_max` anchors in chain order.
"""

from __future__ import annotations

from typing import Any, Protocol

from xinchain import codec
from xinchain.contracts.base import CallContext, Contract, Handler, index_prefix, require_args
from xinchain.errors import ContractError, StorageCorrupted
from xinchain.merkle import MerkleTree, leaf_hash

NAME = "notary"
# Hashes in one batch transaction: 16,384 hashes of 32 bytes stays well inside the 1 MiB transaction
# limit, and a block of a few such batches executes in well under a second.
batch_hashes_max = 16_384
# Anchors of one hash a lookup lists (the receipt route can fetch any of them).
records_listed_max = 256
digest_bytes = 32
_TX_PREFIX = index_prefix(NAME) + b"t/"
_HASH_PREFIX = index_prefix(NAME) + b"h/"
# A position's 4 big-endian bytes, made once: a batch's index keys are built in one pass.
_POSITIONS = tuple(position.to_bytes(4, "big") for position in range(batch_hashes_max))


class Notary(Contract):
    name = NAME

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
        for position, item in enumerate(hashes):  # the common case checked without a call
            if type(item) is not bytes or len(item) != digest_bytes:
                _digest(item, f"args.hashes[{position}]")
        return self._anchor_all(context, hashes)

    def _anchor_all(self, context: CallContext, digests: list[bytes]) -> dict[str, Any]:
        if len(digests) == 1:  # the root of a one-leaf tree is that leaf's hash
            root = leaf_hash(context.suite.hash, digests[0]).hex()
        else:
            root = MerkleTree(context.suite.hash, digests).root().hex()
        location = context.height.to_bytes(8, "big") + context.tx_index.to_bytes(4, "big")
        entries = [(_TX_PREFIX + location, anchored_encoding(context, len(digests)))]
        entries += [
            (_HASH_PREFIX + digest + location + position, b"")
            for digest, position in zip(digests, _POSITIONS, strict=False)
        ]
        context.index(entries)
        return {"root": root, "size": len(digests)}


def anchored_encoding(context: CallContext, size: int) -> bytes:
    """What the index keeps of an anchoring transaction: the canonical encoding of
    {tx_id, sender, size, time_ms}, written out for single anchors' sake (a map of four fields,
    keys in canonical order, shorter first). tests/unit/test_notary_contract.py checks it
    against codec.encode."""
    value, text = codec.encode_checked, codec.encode_text
    return b"".join(
        (
            b"\xa4\x64size",
            value(size),
            b"\x65tx_id",
            text(context.tx_id),
            b"\x66sender",
            text(context.sender),
            b"\x67time_ms",
            value(context.time_ms),
        )
    )


class IndexReader(Protocol):
    def index_get(self, key: bytes) -> bytes | None: ...

    def index_scan(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]: ...


def anchor_records(
    reader: IndexReader, digest: bytes, limit: int = records_listed_max
) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` anchors of `digest` in chain order, each {height, tx_id, position,
    size, sender, time_ms}, and whether there are more."""
    prefix = _HASH_PREFIX + digest
    found = reader.index_scan(prefix, limit + 1)
    records = []
    for key, _ in found[:limit]:
        location = key[len(prefix) :]
        raw = reader.index_get(_TX_PREFIX + location[:12])
        if raw is None:
            raise StorageCorrupted(f"index entry {key.hex()} names a transaction it lacks")
        transaction = codec.decode(raw)
        records.append(
            {
                "height": int.from_bytes(location[:8], "big"),
                "tx_id": transaction["tx_id"],
                "position": int.from_bytes(location[12:16], "big"),
                "size": transaction["size"],
                "sender": transaction["sender"],
                "time_ms": transaction["time_ms"],
            }
        )
    return records, len(found) > limit


def _digest(value: object, where: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != digest_bytes:
        raise ContractError(f"expected a {digest_bytes}-byte digest", field=where)
    return value
