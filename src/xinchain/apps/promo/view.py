"""What a node shows of a promotion: its ranking (final once closed), ranks and rank receipts.

Under chain rules 2 the state holds the orders in ranked order (`by/<sort key>`) and the settled
part of the ranking in blocks of `ranking_block_entries`, each with its first key and, once
full, its root. So a page of the ranking reads one block's range, a rank reads the order's sort
key and counts within its block, and a rank receipt rebuilds that one block's tree and takes the
path above it from the kept block roots: none of them reads the whole ranking. Orders not yet
settled (paid within the skew of block time) follow the settled ones, in key order; their rank
is provisional until close.

A promotion opened under rules 1 has its orders in arrival order; its ranking is sorted here, as
its close sorted it, and kept in memory for a few promotions at a time.
"""

from __future__ import annotations

import bisect
import itertools
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from xinchain.apps.promo.contract import (
    NAME,
    entry_digest,
    ranking_block_entries,
    ranking_entry,
    ranking_key,
    rules_of,
)
from xinchain.errors import NotFound
from xinchain.execution.chain import ChainStore
from xinchain.merkle import InclusionProof, MerkleTree

# Promotions whose derived structures (block roots; the unsettled tail; a rules-1 ranking) are
# kept in memory at a time; keyed by what changes them, so a stale one is never served.
rankings_cached_max = 16
# While orders arrive faster than blocks, the unsettled orders' keys are read again at most
# this often for provisional ranks (a million of them take about a second to read).
tail_refresh_s = 1.0
# Blocks of rules-2 rankings kept decoded (64 entries each): pages, ranks and receipts of the
# same block read it once.
blocks_cached_max = 2_048


def promotion(app: ChainStore, promo_id: str) -> dict[str, Any]:
    record = app.read_state(NAME, promo_id)
    if record is None:
        raise NotFound(f"no promotion {promo_id!r}", field="promo")
    return dict(record)


@dataclass(frozen=True)
class RankProof:
    """One entry of a committed ranking with what proves it: its digest and inclusion path."""

    entry: dict[str, Any]
    digest: bytes
    proof: InclusionProof


class Ranking:
    """A promotion's ranking as this node's state holds it (final once the record is closed)."""

    def __init__(self, app: ChainStore, record: dict[str, Any]) -> None:
        self.app = app
        self.record = record
        self.promo: str = record["promo"]

    @property
    def size(self) -> int:
        return int(self.record["orders"])

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def position(self, order_no: str) -> int | None:
        """The order's index in the ranking (rank - 1), or None if it is not ranked here."""
        raise NotImplementedError

    def proof(self, order_no: str) -> RankProof | None:
        """The committed entry and its path to the close's root (a closed promotion only)."""
        raise NotImplementedError

    def late(self, order_no: str) -> dict[str, Any] | None:
        record = self.app.read_state(NAME, f"{self.promo}/late/{order_no}")
        return None if record is None else dict(record)


def ranking(app: ChainStore, promo_id: str) -> Ranking:
    record = promotion(app, promo_id)
    if rules_of(record) == 1:
        return _ArrivalRanking(app, record)
    return _IndexRanking(app, record)


# --- rules 2: the ranking the state keeps sorted ---------------------------------------------


class _IndexRanking(Ranking):
    def _entries(
        self, start_key: str, rank: int, count: int, skip: int = 0
    ) -> list[dict[str, Any]]:
        return _read_entries(self.app, self.promo, start_key, rank, count, skip)

    def _blocks(self) -> _Blocks:
        return _blocks(self.app, self.promo, int(self.record["blocks"]))

    def _kept(self, j: int) -> _Block:
        """The j-th block the state keeps (full, or the last one once closed)."""
        blocks = self._blocks()
        size = min(ranking_block_entries, self.record["ranked"] - j * ranking_block_entries)
        return _block(self.app, self.promo, j, blocks.firsts[j], size)

    def _tail(self, needed: str = "") -> tuple[str, ...]:
        """Sort keys of the orders not yet settled, in rank order: a snapshot at most
        `tail_refresh_s` old while orders keep arriving, taken again at once if it lacks the
        key `needed` (so an order just anchored is found; ranks among the unsettled are
        provisional anyway)."""
        record = self.record
        tails = _tails.setdefault(self.app, {})
        cached = tails.get(self.promo)
        if cached is not None and (cached.ranked, cached.cursor) == (
            record["ranked"],
            record["cursor"],
        ):
            fresh = time.monotonic() - cached.taken < tail_refresh_s
            if cached.orders == record["orders"] or (fresh and _holds(cached.keys, needed)):
                return cached.keys
        keys = _tail_keys(
            self.app, self.promo, record["orders"], record["ranked"], record["cursor"]
        )
        tails.pop(self.promo, None)
        tails[self.promo] = _Tail(
            time.monotonic(), record["orders"], record["ranked"], record["cursor"], keys
        )
        while len(tails) > rankings_cached_max:
            del tails[next(iter(tails))]
        return keys

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        record, kept = self.record, len(self._blocks().firsts)
        ranked = int(record["ranked"])
        entries: list[dict[str, Any]] = []
        end = min(offset + limit, self.size)
        at = offset
        while at < end and at // ranking_block_entries < kept:
            j = at // ranking_block_entries
            block = self._kept(j).entries
            entries += block[at - j * ranking_block_entries : end - j * ranking_block_entries]
            at = min(end, (j + 1) * ranking_block_entries)
        if at < min(end, ranked):  # the block being settled, not yet kept
            skip = at - kept * ranking_block_entries
            entries += self._entries(record["block_first"], at + 1, min(end, ranked) - at, skip)
            at = min(end, ranked)
        if at < end:
            tail = self._tail()
            if at - ranked < len(tail):
                entries += self._entries(tail[at - ranked], at + 1, end - at)
        return entries

    def position(self, order_no: str) -> int | None:
        key = self.app.read_state(NAME, f"{self.promo}/order/{order_no}")
        if not isinstance(key, str):
            return None
        record = self.record
        if record["ranked"] and key <= record["cursor"]:
            firsts = self._blocks().firsts
            j = bisect.bisect_right(firsts, key) - 1
            if j >= 0:
                found = self._kept(j).positions.get(order_no)
                if found is not None:
                    return j * ranking_block_entries + found
            by = f"{self.promo}/by/"
            start = by + record["block_first"]
            keys = self.app.scan_state_keys(NAME, start, by + key + "\x00")
            return len(firsts) * ranking_block_entries + sum(1 for _ in keys) - 1
        tail = self._tail(key)
        i = bisect.bisect_left(tail, key)
        return record["ranked"] + i if i < len(tail) and tail[i] == key else None

    def proof(self, order_no: str) -> RankProof | None:
        record = self.record
        position = self.position(order_no)
        if not record["closed"] or position is None:
            return None
        hasher = self.app.suite.hash
        j, i = divmod(position, ranking_block_entries)
        block = self._kept(j)
        inner = block.tree(hasher).inclusion_proof(i)
        outer = self._blocks().tree(hasher).inclusion_proof(j)
        proof = InclusionProof(position, record["ranked"], inner.path + outer.path)
        return RankProof(block.entries[i], block.digests(hasher)[i], proof)


@dataclass(frozen=True, eq=False)  # cached by identity
class _Block:
    entries: list[dict[str, Any]]
    positions: dict[str, int]  # order number → index in the block

    def digests(self, hasher: Any) -> list[bytes]:
        return _block_digests(self, hasher)

    def tree(self, hasher: Any) -> MerkleTree:
        return MerkleTree(hasher, self.digests(hasher))


def _read_entries(
    app: ChainStore, promo: str, start_key: str, rank: int, count: int, skip: int = 0
) -> list[dict[str, Any]]:
    """`count` ranking entries read in key order from `start_key` on (after skipping `skip`),
    the first at `rank`."""
    orders = app.scan_state_range(NAME, f"{promo}/by/{start_key}", f"{promo}/by0")
    found = itertools.islice(orders, skip, skip + count)
    return [ranking_entry(promo, rank + i, order) for i, (_, order) in enumerate(found)]


@lru_cache(maxsize=blocks_cached_max)
def _block(app: ChainStore, promo: str, j: int, first: str, size: int) -> _Block:
    entries = _read_entries(app, promo, first, j * ranking_block_entries + 1, size)
    return _Block(entries, {entry["order_no"]: i for i, entry in enumerate(entries)})


@lru_cache(maxsize=blocks_cached_max)
def _block_digests(block: _Block, hasher: Any) -> list[bytes]:
    return [entry_digest(hasher, entry) for entry in block.entries]


@dataclass(frozen=True, eq=False)  # cached by identity
class _Blocks:
    firsts: list[str]
    roots: list[bytes]

    def tree(self, hasher: Any) -> MerkleTree:
        return _block_tree(self, hasher)


@lru_cache(maxsize=rankings_cached_max)
def _blocks(app: ChainStore, promo: str, count: int) -> _Blocks:
    found = list(itertools.islice(app.scan_state(NAME, f"{promo}/block/"), count))
    return _Blocks(
        [block["first"] for _, block in found], [bytes.fromhex(b["root"]) for _, b in found]
    )


@lru_cache(maxsize=rankings_cached_max)
def _block_tree(blocks: _Blocks, hasher: Any) -> MerkleTree:
    return MerkleTree.from_leaf_hashes(hasher, blocks.roots)


@dataclass(frozen=True)
class _Tail:
    taken: float  # time.monotonic()
    orders: int
    ranked: int
    cursor: str
    keys: tuple[str, ...]


# A node's chain → promotion → the last snapshot of its unsettled orders, oldest first.
_tails: weakref.WeakKeyDictionary[ChainStore, dict[str, _Tail]] = weakref.WeakKeyDictionary()


def _holds(keys: tuple[str, ...], key: str) -> bool:
    if not key:
        return True
    i = bisect.bisect_left(keys, key)
    return i < len(keys) and keys[i] == key


def _tail_keys(
    app: ChainStore, promo: str, orders: int, ranked: int, cursor: str
) -> tuple[str, ...]:
    if orders == ranked:
        return ()
    start = f"{promo}/by/{cursor}\x00" if cursor else f"{promo}/by/"
    prefix = len(f"{promo}/by/")
    keys = app.scan_state_keys(NAME, start, f"{promo}/by0")
    return tuple(key[prefix:] for key in keys)


# --- rules 1: orders in arrival order, sorted here --------------------------------------------


class _ArrivalRanking(Ranking):
    def _sorted(self) -> _Sorted:
        return _sorted(self.app, self.promo, self.record["orders"], self.record["closed"])

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return list(self._sorted().entries[offset : offset + limit])

    def position(self, order_no: str) -> int | None:
        return self._sorted().positions.get(order_no)

    def proof(self, order_no: str) -> RankProof | None:
        position = self.position(order_no)
        if not self.record["closed"] or position is None:
            return None
        ranked = self._sorted()
        tree = ranked.tree(self.app.suite.hash)
        return RankProof(
            ranked.entries[position], tree.leaf_data[position], tree.tree.inclusion_proof(position)
        )


@dataclass(frozen=True, eq=False)  # cached by identity
class _Sorted:
    entries: tuple[dict[str, Any], ...]
    positions: dict[str, int]  # order number → index in `entries`

    def tree(self, hasher: Any) -> _DigestTree:
        return _digest_tree(self, hasher)


@dataclass(frozen=True)
class _DigestTree:
    leaf_data: list[bytes]
    tree: MerkleTree


@lru_cache(maxsize=rankings_cached_max)
def _sorted(app: ChainStore, promo: str, count: int, closed: bool) -> _Sorted:
    orders = [
        app.read_state(NAME, f"{promo}/order/{app.read_state(NAME, f'{promo}/at/{i}')}")
        for i in range(count)
    ]
    orders.sort(key=ranking_key)
    entries = tuple(ranking_entry(promo, rank, order) for rank, order in enumerate(orders, 1))
    return _Sorted(entries, {entry["order_no"]: i for i, entry in enumerate(entries)})


@lru_cache(maxsize=rankings_cached_max)
def _digest_tree(ranked: _Sorted, hasher: Any) -> _DigestTree:
    digests = [entry_digest(hasher, entry) for entry in ranked.entries]
    return _DigestTree(digests, MerkleTree(hasher, digests))


def mask_order_number(order_no: str) -> str:
    """Hide the middle of an order number: `1454****1204`, `1**4`, `**`."""
    if len(order_no) <= 2:
        return "*" * len(order_no)
    if len(order_no) <= 8:
        return order_no[0] + "*" * (len(order_no) - 2) + order_no[-1]
    return order_no[:4] + "****" + order_no[-4:]
