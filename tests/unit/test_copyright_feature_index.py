"""The local-feature index: which works have points near a query's points.

* A work's own points, each with a few bits changed, find it first among many other works,
  with votes from a quarter of them or more.
* Every vote is real: for each candidate, at least `votes` query points have one of its points
  within `distance_max` (checked by brute force), and its score is at most those votes (a
  point near k distinct descriptors gives each work it found 1/k).
* Nine more registrations of one work's points do not hide it or them: all ten are found,
  each with its votes.
* Every stored point sits in exactly one leaf of each tree after many additions and splits;
  every leaf has its own slot and inner nodes have none.
* The same additions give the same answers (the trees' centres are drawn from seeded
  generators).
* A thousand copies of one descriptor neither break a split nor drown a search (a leaf that
  cannot be split keeps `leaf_points_max` of them).
* Bad input is refused: a work number per descriptor, 32-byte descriptors, work numbers that
  fit.
"""

from __future__ import annotations

import numpy as np
import pytest

from xinchain.apps.copyright import feature_index
from xinchain.apps.copyright.feature_index import FeatureIndex

POINTS_A_WORK = 64


# Descriptors of real photos cluster (edges, corners and letters look alike everywhere): the
# test's points are drawn around this many patterns, each 40 bits from its pattern.
PATTERNS = np.random.default_rng(0).integers(0, 256, (300, 32), dtype=np.uint8)
PATTERN_NOISE_BITS = 40


def _noisy(descriptors: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """Each descriptor with `bits` of its 256 bits flipped."""
    generator = np.random.default_rng(seed)
    flipped = np.unpackbits(descriptors, axis=1)
    for row in flipped:
        row[generator.choice(256, bits, replace=False)] ^= 1
    return np.packbits(flipped, axis=1)


def _works(count: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    chosen = PATTERNS[generator.integers(0, len(PATTERNS), count * POINTS_A_WORK)]
    points = _noisy(chosen, PATTERN_NOISE_BITS, seed)
    return points.reshape(count, POINTS_A_WORK, 32)


def _filled(works: np.ndarray, batch: int = 16) -> FeatureIndex:
    index = FeatureIndex()
    for first in range(0, len(works), batch):
        chunk = works[first : first + batch]
        numbers = np.repeat(np.arange(first, first + len(chunk)), POINTS_A_WORK)
        index.add_many(numbers, chunk.reshape(-1, 32))
    return index


@pytest.fixture(scope="module")
def stored() -> np.ndarray:
    return _works(600, seed=1)


@pytest.fixture(scope="module")
def index(stored: np.ndarray) -> FeatureIndex:
    return _filled(stored)


@pytest.mark.parametrize("work", [0, 299, 599])
def test_a_works_points_with_a_few_bits_changed_find_it_first(
    index: FeatureIndex, stored: np.ndarray, work: int
) -> None:
    query = _noisy(stored[work], bits=20, seed=work)
    found = index.candidates(query, limit=5)
    assert found[0].work == work
    assert found[0].votes >= POINTS_A_WORK // 4, found[0]


def test_every_vote_is_a_point_within_the_distance(index: FeatureIndex, stored: np.ndarray) -> None:
    query = np.concatenate([_noisy(stored[7][:20], 30, 7), _works(1, seed=99)[0]])
    found = index.candidates(query, limit=50)
    assert found
    query_bits = np.unpackbits(query, axis=1).astype(np.int32)
    near_works = []
    for row in query_bits:
        distances = np.abs(np.unpackbits(stored.reshape(-1, 32), axis=1) - row).sum(axis=1)
        near_works.append(set(np.flatnonzero(distances <= feature_index.distance_max) // 64))
    for candidate in found:
        real = sum(candidate.work in works for works in near_works)
        shared = sum(1 / len(works) for works in near_works if candidate.work in works)
        assert candidate.votes <= real, (candidate, real)
        assert candidate.score <= shared + 1e-9, (candidate, shared)


def test_every_point_is_in_one_leaf_of_each_tree(index: FeatureIndex) -> None:
    for tree in index._trees:
        leaves = [node for node in range(tree.node_count) if tree.first_child[node] < 0]
        inner = [node for node in range(tree.node_count) if tree.first_child[node] >= 0]
        assert inner, "600 works should have split the root"
        assert all(tree.slot_of[node] == -1 for node in inner)
        slots = [int(tree.slot_of[node]) for node in leaves]
        assert len(set(slots)) == len(slots)
        members = [int(p) for slot in slots for p in tree.slots[slot, : tree.sizes[slot]]]
        assert sorted(members) == list(range(len(index)))


def test_the_same_additions_give_the_same_answers(stored: np.ndarray) -> None:
    first, second = _filled(stored[:200]), _filled(stored[:200])
    query = _noisy(stored[50], 25, seed=3)
    assert first.candidates(query, 20) == second.candidates(query, 20)
    for a, b in zip(first._trees, second._trees, strict=True):
        assert np.array_equal(a.first_child[: a.node_count], b.first_child[: b.node_count])
        assert np.array_equal(a.slots[: a.slot_count], b.slots[: b.slot_count])


def test_nine_registrations_of_one_photos_points_are_all_found(stored: np.ndarray) -> None:
    index = _filled(stored[:100])
    for number in range(1000, 1009):  # the same points, registered nine more times
        index.add_many(np.full(POINTS_A_WORK, number), stored[42])
    found = index.candidates(_noisy(stored[42], 15, seed=4), limit=20)
    assert {candidate.work for candidate in found[:10]} == {42, *range(1000, 1009)}
    assert all(candidate.votes >= POINTS_A_WORK // 4 for candidate in found[:10])


def test_many_copies_of_one_descriptor_neither_break_a_split_nor_drown_a_search() -> None:
    index = FeatureIndex()
    same = np.tile(_works(1, seed=5)[0][:1], (1000, 1))
    index.add_many(np.arange(1000) // 64, same)
    others = _works(20, seed=6)
    index.add_many(np.repeat(np.arange(100, 120), 64), others.reshape(-1, 32))
    found = index.candidates(np.concatenate([same[:1], _noisy(others[3], 15, 1)]), 5)
    assert found[0].work == 103
    assert all(candidate.votes <= 1 for candidate in found[1:]), found


def test_bad_input_is_refused() -> None:
    index = FeatureIndex()
    with pytest.raises(AssertionError, match="one work number per descriptor"):
        index.add_many(np.arange(3), np.zeros((2, 32), dtype=np.uint8))
    with pytest.raises(AssertionError, match="32-byte rows"):
        index.add_many(np.arange(2), np.zeros((2, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="work numbers must lie in"):
        index.add_many(np.array([-1]), np.zeros((1, 32), dtype=np.uint8))
    assert index.candidates(np.zeros((1, 32), dtype=np.uint8), 5) == []


def test_a_candidate_says_which_group_of_query_rows_voted_for_it(
    index: FeatureIndex, stored: np.ndarray
) -> None:
    # Group 0: points of no stored work; group 1: work 77's points with a few bits changed
    # (as a query's mirror orientation finds a mirrored copy).
    other = _works(1, seed=99)[0]
    query = np.concatenate([other, _noisy(stored[77], 12, seed=5)])
    groups = np.repeat(np.array([0, 1], dtype=np.int64), POINTS_A_WORK)
    first = index.candidates(query, 5, groups)[0]
    assert first.work == 77
    assert first.groups[0][0] == 1
    assert sum(score for _, score in first.groups) == pytest.approx(first.score)
    scores = [score for _, score in first.groups]
    assert scores == sorted(scores, reverse=True)
    # Without groups every row is group 0, and the ranking is the same.
    plain = index.candidates(query, 5)
    assert [c.work for c in plain] == [c.work for c in index.candidates(query, 5, groups)]
    assert plain[0].groups == ((0, pytest.approx(plain[0].score)),)


def test_one_batch_or_many_put_every_point_in_a_leaf() -> None:
    works = _works(300, seed=4)
    for batch in (1, 7, 300):
        index = _filled(works, batch=batch)
        for tree in index._trees:
            leaves = [node for node in range(tree.node_count) if tree.first_child[node] < 0]
            members = [
                int(p)
                for slot in (int(tree.slot_of[node]) for node in leaves)
                for p in tree.slots[slot, : tree.sizes[slot]]
            ]
            assert sorted(members) == list(range(len(index))), batch
        assert index.candidates(_noisy(works[123], 10, seed=6), 1)[0].work == 123


def test_registering_the_same_points_again_takes_no_score_from_the_first(
    stored: np.ndarray,
) -> None:
    query = _noisy(stored[42], 15, seed=8)
    alone = _filled(stored[:100])
    before = {c.work: c.score for c in alone.candidates(query, 5)}
    alone.add_many(np.full(POINTS_A_WORK, 500), stored[42])  # the same photo, again
    after = {c.work: c.score for c in alone.candidates(query, 5)}
    assert after[42] == pytest.approx(before[42])
    assert after[500] == pytest.approx(before[42])
