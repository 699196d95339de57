"""Merkle trees exactly as RFC 9162 §2.1 (and RFC 6962 §2.1) define them.

    MTH({})       = HASH()
    MTH({d0})     = HASH(0x00 || d0)
    MTH(D[n])     = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k = largest power of two < n

The hash function is the chain's suite hash (SHA-256, or SM3 for the national suite); with
SHA-256 the results equal the published Certificate Transparency test vectors.

Building bottom-up, pairing neighbours and carrying an unpaired last node up unchanged, yields
the same tree as the recursive definition; `MerkleTree` does that once, so that every inclusion
path afterwards costs O(log n).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xinchain.errors import ReceiptInvalid

Hasher = Callable[[bytes], bytes]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(hasher: Hasher, data: bytes) -> bytes:
    return hasher(LEAF_PREFIX + data)


def node_hash(hasher: Hasher, left: bytes, right: bytes) -> bytes:
    return hasher(NODE_PREFIX + left + right)


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the leaf at `index` belongs to a tree of `size` leaves (RFC 9162 §2.1.3)."""

    index: int
    size: int
    path: tuple[bytes, ...]


class MerkleTree:
    """All levels of one tree, built once from leaf *data* (not leaf hashes)."""

    def __init__(self, hasher: Hasher, leaves: Sequence[bytes]) -> None:
        self._hasher = hasher
        # leaf_hash written out: a batch's tree hashes one leaf a document
        self._levels = _build_levels(hasher, [hasher(LEAF_PREFIX + leaf) for leaf in leaves])

    @classmethod
    def from_leaf_hashes(cls, hasher: Hasher, hashes: Sequence[bytes]) -> MerkleTree:
        tree = cls(hasher, [])
        tree._levels = _build_levels(hasher, list(hashes))
        return tree

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def root(self) -> bytes:
        if self.size == 0:
            return self._hasher(b"")
        return self._levels[-1][0]

    def leaf_hash_at(self, index: int) -> bytes:
        return self._levels[0][index]

    def inclusion_proof(self, index: int) -> InclusionProof:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} outside a tree of {self.size} leaves")
        path: list[bytes] = []
        position = index
        for level in self._levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            position //= 2
        return InclusionProof(index=index, size=self.size, path=tuple(path))


def _build_levels(hasher: Hasher, level: list[bytes]) -> list[list[bytes]]:
    levels = [level]
    while len(level) > 1:
        # node_hash written out, over (level[0], level[1]), (level[2], level[3]), ...
        pairs = zip(level[0::2], level[1::2], strict=False)
        paired = [hasher(NODE_PREFIX + left + right) for left, right in pairs]
        if len(level) % 2 == 1:
            paired.append(level[-1])
        levels.append(paired)
        level = paired
    return levels


def merkle_root(hasher: Hasher, leaves: Sequence[bytes]) -> bytes:
    return MerkleTree(hasher, leaves).root()


def root_from_inclusion(hasher: Hasher, leaf_digest: bytes, proof: InclusionProof) -> bytes:
    """Recompute the root from a leaf hash and its path (RFC 9162 §2.1.3.2).

    Raises `ReceiptInvalid` when the index, size and path length do not fit together.
    """
    if not 0 <= proof.index < proof.size:
        raise ReceiptInvalid(
            f"leaf index {proof.index} lies outside a tree of {proof.size} leaves",
            field="index",
        )
    fn, sn = proof.index, proof.size - 1
    result = leaf_digest
    for sibling in proof.path:
        if sn == 0:
            raise ReceiptInvalid("inclusion path is longer than the tree is deep", field="path")
        if fn & 1 or fn == sn:
            result = node_hash(hasher, sibling, result)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(hasher, result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ReceiptInvalid("inclusion path is shorter than the tree is deep", field="path")
    return result


def verify_inclusion(
    hasher: Hasher, leaf_digest: bytes, proof: InclusionProof, root: bytes
) -> bool:
    try:
        return root_from_inclusion(hasher, leaf_digest, proof) == root
    except ReceiptInvalid:
        return False


class MerkleFrontier:
    """A tree that grows one leaf at a time, kept as its frontier: the roots of the perfect
    subtrees its leaves fill so far, largest (leftmost) first, one for each bit set in the
    size. Appending costs O(log n) hashes at most; `root` folds the frontier from the right,
    which is MTH of the leaves (k, the largest power of two below n, is where the leftmost
    peak ends). Its state is (size, peaks), small enough to store between transactions."""

    def __init__(self, hasher: Hasher, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if size < 0 or len(peaks) != size.bit_count():
            raise ValueError(f"a frontier of {size} leaves has {size.bit_count()} peaks")
        self._hasher = hasher
        self.size = size
        self.peaks = list(peaks)

    def append(self, data: bytes) -> None:
        """Add the leaf with this data (hashed with the leaf prefix, as MerkleTree's)."""
        self.append_hash(self._hasher(LEAF_PREFIX + data))

    def append_hash(self, node: bytes) -> None:
        """Add a leaf given by its hash: the tree is then MTH over those hashes, as
        `MerkleTree.from_leaf_hashes` builds it. A frontier over the roots of consecutive
        2^k-leaf blocks so built has the root of the tree over all their leaves."""
        filled = self.size
        while filled & 1:  # each trailing 1 bit: a perfect subtree of that size to merge with
            node = self._hasher(NODE_PREFIX + self.peaks.pop() + node)
            filled >>= 1
        self.peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        if self.size == 0:
            return self._hasher(b"")
        node = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            node = self._hasher(NODE_PREFIX + peak + node)
        return node
