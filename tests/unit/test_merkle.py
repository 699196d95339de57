"""Tests for `xinchain.merkle`: RFC 9162 / RFC 6962 Merkle trees and inclusion proofs.

Scenarios:

* Published vectors: with SHA-256, the roots of the first n Certificate Transparency test leaves
  (n = 0..8) and the inclusion paths of leaves 0 and 5 in the 8-leaf tree are exactly the
  published values; every proof in every published tree verifies against its published root.
* Agreement with the RFC: for every size 1..70 (and for arbitrary leaf data) the root equals
  MTH (RFC 9162 §2.1.1) and every inclusion path equals PATH(m, D[n]) (§2.1.3.1), both written
  here recursively, straight from the RFC text. `root_from_inclusion` agrees with a recursive
  verifier written from the same definition, for right and wrong (index, size, path) alike.
* Building blocks: empty tree, leaf hash domain separation, `merkle_root`, `leaf_hash_at`,
  `from_leaf_hashes` agreeing with building from leaf data; out-of-range proof requests.
* Failure paths (each for every leaf of every tree up to 33 leaves): a wrong index, a flipped
  byte in any path node, a path element added or removed, a different leaf, a wrong root, a
  wrong size whose tree has a different shape along the path, an index outside the tree. Shapes
  that cannot fit raise `ReceiptInvalid` from `root_from_inclusion`; otherwise it returns another
  root; `verify_inclusion` returns False either way and never raises.
* Known limit: the path alone does not bind the tree size (RFC 9162 binds it through the signed
  tree head), so a size whose tree has the same shape along the path gives the same root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinchain.errors import ReceiptInvalid
from xinchain.merkle import (
    InclusionProof,
    MerkleFrontier,
    MerkleTree,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion,
    verify_inclusion,
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# Certificate Transparency test vectors (RFC 6962 reference implementation, merkle_tree_test.cc).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
CT_PATHS_IN_8 = {
    0: [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    5: [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}

SIZES_EXHAUSTIVE = range(1, 34)
SIZES_AGAINST_RFC = range(1, 71)


# --- RFC 9162 §2.1, transcribed recursively ------------------------------------------------------


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]), RFC 9162 §2.1.1."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:]))


def rfc_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_root_from_path(index: int, size: int, leaf_digest: bytes, path: Sequence[bytes]) -> bytes:
    """Inverse of PATH: rebuild MTH from a leaf hash; raises ReceiptInvalid when shapes differ."""
    if not 0 <= index < size:
        raise ReceiptInvalid("index outside tree")
    if size == 1:
        if path:
            raise ReceiptInvalid("path too long")
        return leaf_digest
    if not path:
        raise ReceiptInvalid("path too short")
    k = largest_power_of_two_below(size)
    *below, sibling = path
    if index < k:
        return sha256(b"\x01" + rfc_root_from_path(index, k, leaf_digest, below) + sibling)
    return sha256(b"\x01" + sibling + rfc_root_from_path(index - k, size - k, leaf_digest, below))


def rfc_shape(index: int, size: int) -> tuple[bool, ...]:
    """For each path element from the bottom: is the sibling on the left?"""
    if size == 1:
        return ()
    k = largest_power_of_two_below(size)
    if index < k:
        return (*rfc_shape(index, k), False)
    return (*rfc_shape(index - k, size - k), True)


def numbered_leaves(size: int) -> list[bytes]:
    return [index.to_bytes(2, "big") for index in range(size)]


def every_leaf_of(size: int) -> list[tuple[list[bytes], MerkleTree, int]]:
    leaves = numbered_leaves(size)
    tree = MerkleTree(sha256, leaves)
    return [(leaves, tree, index) for index in range(size)]


def flip_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def fails(leaf_digest: bytes, proof: InclusionProof, root: bytes) -> bool:
    """True when the proof is rejected in every way the API offers."""
    if verify_inclusion(sha256, leaf_digest, proof, root):
        return False
    try:
        return root_from_inclusion(sha256, leaf_digest, proof) != root
    except ReceiptInvalid:
        return True


# --- published vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_tree_root_equals_the_published_root(size: int) -> None:
    assert MerkleTree(sha256, CT_LEAVES[:size]).root() == CT_ROOTS[size]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_merkle_root_equals_the_published_root(size: int) -> None:
    assert merkle_root(sha256, CT_LEAVES[:size]) == CT_ROOTS[size]


@pytest.mark.parametrize("index", sorted(CT_PATHS_IN_8))
def test_inclusion_path_equals_the_published_path(index: int) -> None:
    proof = MerkleTree(sha256, CT_LEAVES).inclusion_proof(index)
    assert proof == InclusionProof(
        index=index, size=8, path=tuple(bytes.fromhex(h) for h in CT_PATHS_IN_8[index])
    )


@pytest.mark.parametrize("index", sorted(CT_PATHS_IN_8))
def test_published_path_verifies_against_the_published_root(index: int) -> None:
    proof = InclusionProof(
        index=index, size=8, path=tuple(bytes.fromhex(h) for h in CT_PATHS_IN_8[index])
    )
    digest = leaf_hash(sha256, CT_LEAVES[index])
    assert root_from_inclusion(sha256, digest, proof) == CT_ROOTS[8]


@pytest.mark.parametrize("size", range(1, len(CT_ROOTS)))
def test_every_proof_in_a_published_tree_verifies_against_its_published_root(size: int) -> None:
    tree = MerkleTree(sha256, CT_LEAVES[:size])
    for index in range(size):
        digest = leaf_hash(sha256, CT_LEAVES[index])
        proof = tree.inclusion_proof(index)
        assert verify_inclusion(sha256, digest, proof, CT_ROOTS[size])
        assert root_from_inclusion(sha256, digest, proof) == CT_ROOTS[size]


# --- agreement with the RFC definitions ----------------------------------------------------------


@pytest.mark.parametrize("size", SIZES_AGAINST_RFC)
def test_root_equals_rfc_mth_for_every_size(size: int) -> None:
    leaves = numbered_leaves(size)
    assert MerkleTree(sha256, leaves).root() == rfc_mth(leaves)


@pytest.mark.parametrize("size", SIZES_AGAINST_RFC)
def test_every_inclusion_path_equals_rfc_path_for_every_size(size: int) -> None:
    leaves = numbered_leaves(size)
    tree = MerkleTree(sha256, leaves)
    for index in range(size):
        assert tree.inclusion_proof(index).path == tuple(rfc_path(index, leaves))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=0, max_size=70))
def test_root_equals_rfc_mth_for_arbitrary_leaves(leaves: list[bytes]) -> None:
    assert MerkleTree(sha256, leaves).root() == rfc_mth(leaves)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=70), st.data())
def test_inclusion_path_equals_rfc_path_for_arbitrary_leaves(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1), label="index")
    proof = MerkleTree(sha256, leaves).inclusion_proof(index)
    assert proof == InclusionProof(
        index=index, size=len(leaves), path=tuple(rfc_path(index, leaves))
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=1, max_size=70), st.data())
def test_every_proof_of_arbitrary_leaves_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(sha256, leaves)
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1), label="index")
    digest = leaf_hash(sha256, leaves[index])
    assert root_from_inclusion(sha256, digest, tree.inclusion_proof(index)) == tree.root()
    assert verify_inclusion(sha256, digest, tree.inclusion_proof(index), tree.root())


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=-2, max_value=72),
    size=st.integers(min_value=0, max_value=70),
    length_offset=st.sampled_from([0, 0, 0, -2, -1, 1, 2]),
    seed=st.binary(min_size=1, max_size=4),
)
def test_root_from_inclusion_agrees_with_the_rfc_for_any_index_size_and_path(
    index: int, size: int, length_offset: int, seed: bytes
) -> None:
    # Mostly paths of the length the shape needs, so that both outcomes are exercised.
    fitting_length = len(rfc_shape(index, size)) if 0 <= index < size else 3
    path_length = max(0, fitting_length + length_offset)
    leaf_digest = sha256(b"leaf" + seed)
    path = tuple(sha256(bytes([position]) + seed) for position in range(path_length))
    proof = InclusionProof(index=index, size=size, path=path)
    try:
        expected = rfc_root_from_path(index, size, leaf_digest, path)
    except ReceiptInvalid:
        with pytest.raises(ReceiptInvalid):
            root_from_inclusion(sha256, leaf_digest, proof)
        return
    assert root_from_inclusion(sha256, leaf_digest, proof) == expected


# --- building blocks -----------------------------------------------------------------------------


def test_empty_tree_has_size_zero_and_the_hash_of_nothing_as_root() -> None:
    tree = MerkleTree(sha256, [])
    assert tree.size == 0
    assert tree.root() == sha256(b"")


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(sha256, b"ab") == sha256(b"\x00ab")
    assert node_hash(sha256, b"a", b"b") == sha256(b"\x01ab")
    assert leaf_hash(sha256, b"\x01ab") != node_hash(sha256, b"a", b"b")


def test_single_leaf_root_is_its_leaf_hash_and_its_path_is_empty() -> None:
    tree = MerkleTree(sha256, [b"only"])
    assert tree.root() == leaf_hash(sha256, b"only")
    assert tree.inclusion_proof(0) == InclusionProof(index=0, size=1, path=())


def test_leaf_hash_at_returns_the_prefixed_hash_of_the_leaf_data() -> None:
    tree = MerkleTree(sha256, CT_LEAVES)
    assert [tree.leaf_hash_at(index) for index in range(8)] == [
        sha256(b"\x00" + leaf) for leaf in CT_LEAVES
    ]


def test_the_hasher_is_a_parameter() -> None:
    def sha512(data: bytes) -> bytes:
        return hashlib.sha512(data).digest()

    leaves = numbered_leaves(5)
    tree = MerkleTree(sha512, leaves)
    proof = tree.inclusion_proof(3)
    assert len(tree.root()) == 64
    assert root_from_inclusion(sha512, leaf_hash(sha512, leaves[3]), proof) == tree.root()
    assert tree.root() != MerkleTree(sha256, leaves).root()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=70))
def test_from_leaf_hashes_agrees_with_building_from_leaf_data(leaves: list[bytes]) -> None:
    from_data = MerkleTree(sha256, leaves)
    from_hashes = MerkleTree.from_leaf_hashes(sha256, [leaf_hash(sha256, leaf) for leaf in leaves])
    assert from_hashes.size == from_data.size
    assert from_hashes.root() == from_data.root()
    for index in range(len(leaves)):
        assert from_hashes.inclusion_proof(index) == from_data.inclusion_proof(index)
        assert from_hashes.leaf_hash_at(index) == from_data.leaf_hash_at(index)


@pytest.mark.parametrize("index", [-1, 8, 9])
def test_inclusion_proof_of_a_leaf_outside_the_tree_raises_index_error(index: int) -> None:
    with pytest.raises(IndexError):
        MerkleTree(sha256, CT_LEAVES).inclusion_proof(index)


def test_inclusion_proof_of_an_empty_tree_raises_index_error() -> None:
    with pytest.raises(IndexError):
        MerkleTree(sha256, []).inclusion_proof(0)


# --- failure paths -------------------------------------------------------------------------------
# Each test runs over every leaf of every tree of 1..33 leaves.


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_with_a_wrong_index_fails(size: int) -> None:
    for _leaves, tree, index in every_leaf_of(size):
        digest = tree.leaf_hash_at(index)
        proof = tree.inclusion_proof(index)
        for wrong_index in range(size):
            if wrong_index != index:
                assert fails(digest, replace(proof, index=wrong_index), tree.root()), (
                    index,
                    wrong_index,
                )


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_with_a_flipped_byte_in_any_path_node_fails(size: int) -> None:
    for _leaves, tree, index in every_leaf_of(size):
        digest = tree.leaf_hash_at(index)
        proof = tree.inclusion_proof(index)
        for node in range(len(proof.path)):
            for position in (0, 13, 31):
                path = list(proof.path)
                path[node] = flip_byte(path[node], position)
                tampered = replace(proof, path=tuple(path))
                assert fails(digest, tampered, tree.root()), (index, node, position)


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_with_a_path_element_added_raises_receipt_invalid(size: int) -> None:
    extra = sha256(b"extra")
    for _leaves, tree, index in every_leaf_of(size):
        digest = tree.leaf_hash_at(index)
        proof = tree.inclusion_proof(index)
        for position in range(len(proof.path) + 1):
            tampered = replace(proof, path=(*proof.path[:position], extra, *proof.path[position:]))
            with pytest.raises(ReceiptInvalid):
                root_from_inclusion(sha256, digest, tampered)
            assert not verify_inclusion(sha256, digest, tampered, tree.root())


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE[1:])
def test_proof_with_a_path_element_removed_raises_receipt_invalid(size: int) -> None:
    for _leaves, tree, index in every_leaf_of(size):
        digest = tree.leaf_hash_at(index)
        proof = tree.inclusion_proof(index)
        for position in range(len(proof.path)):
            tampered = replace(proof, path=proof.path[:position] + proof.path[position + 1 :])
            with pytest.raises(ReceiptInvalid):
                root_from_inclusion(sha256, digest, tampered)
            assert not verify_inclusion(sha256, digest, tampered, tree.root())


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_for_a_different_leaf_fails(size: int) -> None:
    for leaves, tree, index in every_leaf_of(size):
        proof = tree.inclusion_proof(index)
        others = [b"not a leaf", leaves[index] + b"\x00", *leaves[:index], *leaves[index + 1 :]]
        for other in others:
            assert fails(leaf_hash(sha256, other), proof, tree.root()), (index, other)


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_raw_leaf_data_hash_instead_of_leaf_hash_fails(size: int) -> None:
    for leaves, tree, index in every_leaf_of(size):
        assert fails(sha256(leaves[index]), tree.inclusion_proof(index), tree.root()), index


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_against_another_trees_root_fails(size: int) -> None:
    for leaves, tree, index in every_leaf_of(size):
        other_root = MerkleTree(sha256, [*leaves[:-1], b"changed"]).root()
        digest = tree.leaf_hash_at(index)
        assert not verify_inclusion(sha256, digest, tree.inclusion_proof(index), other_root)


@pytest.mark.parametrize("size", SIZES_EXHAUSTIVE)
def test_proof_with_a_wrong_size_of_another_shape_fails(size: int) -> None:
    for _leaves, tree, index in every_leaf_of(size):
        digest = tree.leaf_hash_at(index)
        proof = tree.inclusion_proof(index)
        for wrong_size in range(2 * size + 2):
            if wrong_size == size:
                continue
            if wrong_size > index and rfc_shape(index, wrong_size) == rfc_shape(index, size):
                continue  # indistinguishable from the path alone; see the next test
            assert fails(digest, replace(proof, size=wrong_size), tree.root()), (
                index,
                wrong_size,
            )


def test_the_path_alone_does_not_bind_the_tree_size() -> None:
    # Leaf 0 of a 4-leaf tree and of a 3-leaf tree both have two right-hand siblings, so the
    # 4-leaf proof also "verifies" as a 3-leaf proof: callers must check the size they were
    # given against a signed tree head, as RFC 9162 does.
    tree = MerkleTree(sha256, CT_LEAVES[:4])
    proof = tree.inclusion_proof(0)
    assert verify_inclusion(sha256, tree.leaf_hash_at(0), replace(proof, size=3), tree.root())


@pytest.mark.parametrize(
    ("index", "size"),
    [(8, 8), (9, 8), (-1, 8), (0, 0), (0, -1), (2**63, 8)],
)
def test_index_outside_the_claimed_size_raises_receipt_invalid(index: int, size: int) -> None:
    tree = MerkleTree(sha256, CT_LEAVES)
    proof = InclusionProof(index=index, size=size, path=tree.inclusion_proof(0).path)
    with pytest.raises(ReceiptInvalid) as caught:
        root_from_inclusion(sha256, tree.leaf_hash_at(0), proof)
    assert caught.value.field == "index"
    assert not verify_inclusion(sha256, tree.leaf_hash_at(0), proof, tree.root())


def test_path_too_long_names_the_path_field() -> None:
    tree = MerkleTree(sha256, CT_LEAVES)
    proof = tree.inclusion_proof(5)
    with pytest.raises(ReceiptInvalid) as caught:
        root_from_inclusion(sha256, tree.leaf_hash_at(5), replace(proof, path=(*proof.path, b"x")))
    assert caught.value.field == "path"


def test_path_too_short_names_the_path_field() -> None:
    tree = MerkleTree(sha256, CT_LEAVES)
    proof = tree.inclusion_proof(5)
    with pytest.raises(ReceiptInvalid) as caught:
        root_from_inclusion(sha256, tree.leaf_hash_at(5), replace(proof, path=proof.path[:-1]))
    assert caught.value.field == "path"


def test_a_frontier_grown_leaf_by_leaf_has_the_trees_root_at_every_size() -> None:
    hasher = sha256
    leaves = [f"entry {i}".encode() for i in range(300)]
    frontier = MerkleFrontier(hasher)
    assert frontier.root() == MerkleTree(hasher, []).root()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == size
        assert len(frontier.peaks) == bin(size).count("1")
        assert frontier.root() == MerkleTree(hasher, leaves[:size]).root(), size


def test_a_frontier_resumed_from_its_state_goes_on_alike() -> None:
    leaves = [bytes([i]) * 3 for i in range(77)]
    first = MerkleFrontier(sha256)
    for leaf in leaves[:45]:
        first.append(leaf)
    resumed = MerkleFrontier(sha256, first.size, tuple(first.peaks))
    for leaf in leaves[45:]:
        resumed.append(leaf)
    assert resumed.root() == MerkleTree(sha256, leaves).root()
    with pytest.raises(ValueError, match="a frontier of 45 leaves has 4 peaks"):
        MerkleFrontier(sha256, 45, first.peaks[:3])
