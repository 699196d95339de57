"""Candidate works for a search by local features: hierarchical clustering trees of descriptors.

A registered point is a 256-bit ORB descriptor; the same point in a copy is that descriptor with
some bits changed (a median of 2 to 31 bits of 256 by kind of copy, in tests/unit measurements).
Among tens of millions of stored descriptors the index finds, for each of a query's points,
stored ones that lie near it, and returns the works that have the most such points: a short
list for features.verify to prove or reject.

Why trees. Hashing fixed bits of the descriptors (LSH) fails on real photos: their descriptors
cluster (edges, letters and plain patches look alike everywhere), so the buckets a query falls
in hold hundreds of times the average, and the work grows with the index. A hierarchical
clustering tree adapts to the data instead (Muja and Lowe, "Fast Matching of Binary Features",
CRV 2012; FLANN's index for ORB): each inner node splits its points among `branching` centres,
points drawn from the node itself, each point going to its nearest centre; a node of at most
`leaf_points_max` points is a leaf. Dense regions get more, smaller cells, so a leaf holds a
bounded number of points however skewed the data. A query point walks down the tree keeping
the `beam` children nearest to it at each level and compares itself with every point of the
leaves it reaches (one: a second leaf per tree doubled the time and brought more chance votes
than finds); `trees` trees, each with its own centres, catch what one tree's borders cut off.
Candidates are stored points within `distance_max` bits.

Votes. A work's votes are the query points that found one of its points; a query point that
found k distinct descriptors gives each work it found 1/k (a plain patch or a letter's
corner, near thousands of works' points, says next to nothing; the same photo registered
twice is one descriptor, so both registrations keep the whole vote); works are ranked by
that score. The query's rows may come in groups (its orientations): each candidate says how
much of its score each group gave, and search verifies the orientations that voted most.

Growth. Points are added one batch at a time (a registration's works): each walks down to its
nearest leaf and joins it; a leaf that outgrows `leaf_points_max` splits into one child per
`leaf_points_target` points (at most `branching`) around centres drawn from its own points, so
leaves stay about half full. Centres are drawn by a generator seeded by the tree and the node's
number, so the same additions build the same trees.

Memory: per point its descriptor (32 bytes), its work (4) and, per tree, its place in a leaf
(4 bytes in leaves 40 % full on average: 10) and a share of a node (a centre and links, 56 bytes
for about 19 points: 3). About 60 bytes a point with two trees: 64 points a work make about
4 KB a work, 4 GB for a million works. One writer or searcher at a time (a lock): a search
takes milliseconds.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xinchain.apps.copyright.features import descriptor_bytes
from xinchain.errors import ensure

trees = 2
branching = 16
# A leaf that outgrows leaf_points_max splits into about this many points a child (at most
# `branching` children): leaves stay about half full, not a sixteenth.
leaf_points_target = 24
leaf_points_max = 64
# Leaves each query point reaches in each tree.
beam = 1
distance_max = 48
# Points assigned to centres at a time while splitting: bounds scratch memory (512 B a point).
assign_rows_max = 1 << 16
work_max = (1 << 32) - 1
_tree_threads = ThreadPoolExecutor(max_workers=trees, thread_name_prefix="copyright-trees")
# Point numbers are kept as int32 in the leaves: 4 bytes a point a tree.
points_max = (1 << 31) - 1
words = descriptor_bytes // 8
distance_span = 8 * descriptor_bytes + 1  # distances run from 0 to 256

Words = NDArray[np.uint64]


def _distance(a: Words, b: Words) -> NDArray[np.int32]:
    """Hamming distances between rows of `a` and `b` (broadcast), each 4 uint64 words."""
    counts: NDArray[np.int32] = np.bitwise_count(a ^ b).sum(axis=-1, dtype=np.int32)
    return counts


class _Tree:
    """One hierarchical clustering tree over the index's points (by point number).

    Nodes are rows of `centres` and `first_child` (-1: a leaf). A leaf's points fill the start
    of its row of `slots` (`sizes` of them); a leaf whose points are all one descriptor and
    that cannot be split keeps `leaf_points_max` of them and drops the rest (they would say
    nothing a search could use)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.node_count = 1  # node 0, the root, is a leaf until it first splits
        self.centres: Words = np.zeros((64, words), dtype=np.uint64)
        self.first_child = np.full(64, -1, dtype=np.int64)
        self.child_count = np.zeros(64, dtype=np.int64)
        self.slot_of = np.full(64, -1, dtype=np.int64)
        self.slot_of[0] = 0
        self.slot_count = 1
        self.slots = np.zeros((64, leaf_points_max), dtype=np.int32)
        self.sizes = np.zeros(64, dtype=np.int64)
        self.free_slots: list[int] = []

    def descend(self, query: Words, keep: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(query row, leaf node) pairs, ordered by row: for each query row, the `keep`
        leaves reached by keeping its `keep` nearest children at every level."""
        rows = np.arange(len(query), dtype=np.int64)
        nodes = np.zeros(len(query), dtype=np.int64)
        found_rows, found_leaves = [], []
        while len(rows):
            leaf = self.first_child[nodes] < 0
            found_rows.append(rows[leaf])
            found_leaves.append(nodes[leaf])
            rows, nodes = rows[~leaf], nodes[~leaf]
            if not len(rows):
                break
            offsets = np.arange(branching)[None, :]
            real = offsets < self.child_count[nodes][:, None]
            children = np.where(real, self.first_child[nodes][:, None] + offsets, 0)
            distances = _distance(self.centres[children], query[rows][:, None, :])
            distances[~real] = distance_span  # past the node's last child: never kept
            if keep == 1:  # each row's nearest child: no ranking needed
                nodes = children[np.arange(len(rows)), distances.argmin(axis=1)]
                continue
            # Keep, per query row, its `keep` nearest children over all its current nodes: one
            # stable sort by (row, distance); ties keep the children's order.
            all_rows = np.repeat(rows, branching)
            order = np.argsort(all_rows * distance_span + distances.ravel(), kind="stable")
            ranked_rows = all_rows[order]
            ranked_children = children.ravel()[order]
            ranked_distances = distances.ravel()[order]
            first = np.r_[True, ranked_rows[1:] != ranked_rows[:-1]]
            group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
            chosen = np.arange(len(order)) - group_start < keep
            chosen &= ranked_distances < distance_span
            rows, nodes = ranked_rows[chosen], ranked_children[chosen]
        all_rows, all_leaves = np.concatenate(found_rows), np.concatenate(found_leaves)
        order = np.argsort(all_rows, kind="stable")
        return all_rows[order], all_leaves[order]

    def members(self, leaves: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The points of each leaf in `leaves`: (index into `leaves`, point number) pairs."""
        slots = self.slot_of[leaves]
        sizes = self.sizes[slots]
        within = np.arange(leaf_points_max)[None, :] < sizes[:, None]
        owners = np.broadcast_to(np.arange(len(leaves))[:, None], within.shape)
        return owners[within], self.slots[slots][within].astype(np.int64)

    def add(self, numbers: NDArray[np.int64], points: Words, all_points: Words) -> None:
        """Put points `numbers` (their words `points`) in their nearest leaves; a leaf that
        outgrows leaf_points_max splits. `all_points` are every stored point's words."""
        leaves = np.empty(len(numbers), dtype=np.int64)
        for start in range(0, len(numbers), assign_rows_max):
            _, leaves[start : start + assign_rows_max] = self.descend(
                points[start : start + assign_rows_max], 1
            )
        order = np.argsort(leaves, kind="stable")
        leaves, numbers = leaves[order], numbers[order]
        starts = np.flatnonzero(np.r_[True, leaves[1:] != leaves[:-1]])
        counts = np.diff(np.r_[starts, len(leaves)])
        slots = self.slot_of[leaves[starts]]
        fits = self.sizes[slots] + counts <= leaf_points_max
        # Leaves with room take their new points in one step; only the others split.
        fitting = np.repeat(fits, counts)
        places = (
            np.repeat(self.sizes[slots], counts)
            + np.arange(len(leaves))
            - np.repeat(starts, counts)
        )
        self.slots[np.repeat(slots, counts)[fitting], places[fitting]] = numbers[fitting]
        self.sizes[slots[fits]] += counts[fits]
        for group in np.flatnonzero(~fits).tolist():
            first, end = int(starts[group]), int(starts[group] + counts[group])
            slot = int(slots[group])
            stored = self.slots[slot, : self.sizes[slot]]
            self._fill(int(leaves[first]), np.concatenate([stored, numbers[first:end]]), all_points)

    def _fill(self, node: int, members: NDArray[np.int64], all_points: Words) -> None:
        """Make leaf `node` hold `members`, splitting it (and its children) as needed; an
        explicit stack, not recursion, however the points fall."""
        pending = [(node, members)]
        while pending:
            node, members = pending.pop()
            slot = int(self.slot_of[node])
            if len(members) <= leaf_points_max:
                self.slots[slot, : len(members)] = members
                self.sizes[slot] = len(members)
                continue
            member_words = all_points[members]
            generator = np.random.default_rng((self.seed, node))
            wanted = min(branching, -(-len(members) // leaf_points_target))
            # Centres: distinct descriptors among a sample of the members (the whole of a
            # large node need not be sorted to find a few).
            sample = generator.choice(len(members), min(len(members), 4 * wanted), replace=False)
            distinct = np.unique(member_words[np.sort(sample)], axis=0)
            if len(distinct) < 2:
                if (member_words == member_words[0]).all():
                    # One descriptor many times over: nothing to split by.
                    self.slots[slot] = members[:leaf_points_max]
                    self.sizes[slot] = leaf_points_max
                    continue
                distinct = np.unique(member_words, axis=0)
            count = min(wanted, len(distinct))
            centres = distinct[generator.choice(len(distinct), count, replace=False)]
            nearest = np.empty(len(members), dtype=np.int64)
            for start in range(0, len(members), assign_rows_max):
                block = member_words[start : start + assign_rows_max]
                nearest[start : start + len(block)] = _distance(
                    block[:, None, :], centres[None, :, :]
                ).argmin(axis=1)
            first = self._new_nodes(count)
            self.centres[first : first + count] = centres
            self.first_child[node] = first
            self.child_count[node] = count
            self.slot_of[first] = slot  # the first child takes over the leaf's slot
            self.slot_of[node] = -1
            for child in range(1, count):
                self.slot_of[first + child] = self._new_slot()
            pending.extend((first + child, members[nearest == child]) for child in range(count))

    def _new_nodes(self, count: int) -> int:
        first = self.node_count
        if first + count > len(self.first_child):
            capacity = max(first + count, 2 * len(self.first_child))
            self.centres = _grown(self.centres, capacity, 0)
            self.first_child = _grown(self.first_child, capacity, -1)
            self.child_count = _grown(self.child_count, capacity, 0)
            self.slot_of = _grown(self.slot_of, capacity, -1)
        self.node_count += count
        return first

    def _new_slot(self) -> int:
        slot = self.slot_count
        if slot == len(self.sizes):
            self.slots = _grown(self.slots, 2 * slot, 0)
            self.sizes = _grown(self.sizes, 2 * slot, 0)
        self.slot_count += 1
        return slot


def _grown(array: NDArray[Any], capacity: int, fill: int) -> NDArray[Any]:
    grown = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


@dataclass(frozen=True)
class Candidate:
    work: int
    votes: int  # query points that found a point of this work within distance_max
    score: float  # those votes, each divided among the distinct descriptors its point found
    # (group, score) for each group of query rows that voted (say, a query's orientations),
    # the highest score first
    groups: tuple[tuple[int, float], ...] = ()


class FeatureIndex:
    def __init__(self) -> None:
        self._points: Words = np.zeros((0, words), dtype=np.uint64)
        self._works = np.zeros(0, dtype=np.uint32)
        self._count = 0
        self._trees = [_Tree(seed) for seed in range(trees)]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def add_many(self, works: NDArray[np.int64], descriptors: NDArray[np.uint8]) -> None:
        """Append points: `works[i]` is the work of `descriptors[i]` (n x 32 bytes)."""
        ensure(len(works) == len(descriptors), "one work number per descriptor")
        ensure(descriptors.ndim == 2 and descriptors.shape[1] == descriptor_bytes, "32-byte rows")
        if len(works) and (works.min() < 0 or works.max() > work_max):
            raise ValueError(f"work numbers must lie in 0..{work_max}")
        with self._lock:
            start, end = self._count, self._count + len(works)
            if end > points_max:
                raise ValueError(f"the index holds at most {points_max} points")
            if end > len(self._works):
                capacity = max(end, len(self._works) * 3 // 2, 1024)
                points = np.zeros((capacity, words), dtype=np.uint64)
                points[:start] = self._points[:start]
                work_numbers = np.zeros(capacity, dtype=np.uint32)
                work_numbers[:start] = self._works[:start]
                self._points, self._works = points, work_numbers
            self._points[start:end] = np.ascontiguousarray(descriptors).view(np.uint64)
            self._works[start:end] = works
            numbers = np.arange(start, end, dtype=np.int64)
            for tree in self._trees:
                tree.add(numbers, self._points[start:end], self._points)
            self._count = end

    def _near(
        self, tree: _Tree, query_words: Words
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], Words]:
        """The (query row, point) pairs of the leaves the query reaches in `tree` that lie
        within `distance_max`, and the points' words."""
        rows, leaves = tree.descend(query_words, beam)
        owners, points = tree.members(leaves)
        rows = rows[owners]
        found_words = self._points[points]
        near = _distance(query_words[rows], found_words) <= distance_max
        return rows[near], points[near], found_words[near]

    def descriptors(self, first: int, count: int) -> NDArray[np.uint8]:
        """The descriptors of rows first..first+count (a copy), as added."""
        points = self._points  # growing replaces the array, never changes stored rows
        rows = points[first : first + count]
        return np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), descriptor_bytes).copy()

    def candidates(
        self, query: NDArray[np.uint8], limit: int, groups: NDArray[np.int64] | None = None
    ) -> list[Candidate]:
        """Works with points within `distance_max` of the query's, most votes first (ties by
        work number), at most `limit`. `groups[i]` (0 for every row if not given) is the group
        of query row i: each candidate says how much each group voted for it."""
        query_words = np.ascontiguousarray(query).view(np.uint64)
        row_groups = np.zeros(len(query), dtype=np.int64) if groups is None else groups
        ensure(len(row_groups) == len(query), "one group per query row")
        with self._lock:
            if self._count == 0 or len(query) == 0:
                return []
            # Each tree in a thread of its own: numpy lets go of the interpreter while it
            # gathers and compares, so two trees take little more than one on two cores. A
            # (row, point) pair both trees found is compared twice: cheaper than sorting every
            # pair to drop the repeats; votes are counted once below.
            parts = list(_tree_threads.map(lambda tree: self._near(tree, query_words), self._trees))
            row_of = np.concatenate([rows for rows, _, _ in parts])
            point_of = np.concatenate([points for _, points, _ in parts])
            found_words = np.concatenate([words for _, _, words in parts])
            works_near = self._works[point_of].astype(np.int64)
        voters = _distinct(row_of * (work_max + 1) + works_near)
        voter, voted = np.divmod(voters, work_max + 1)
        if not len(voted):
            return []
        # A query point near k distinct descriptors gives each work it found 1/k of a vote: a
        # plain patch near thousands of works' points says next to nothing. Distinct
        # descriptors, not works: the same photo registered twice (or nine times) is one
        # descriptor found twice, and each registration keeps the whole vote.
        described = _distinct(row_of * _DESCRIPTOR_SPAN + (_mixed(found_words) % _DESCRIPTOR_SPAN))
        per_row = np.bincount(described // _DESCRIPTOR_SPAN, minlength=len(query))
        weight = 1.0 / per_row[voter]
        group_count = int(row_groups.max()) + 1
        # Votes and scores by (work, group), then by work.
        keys = voted * group_count + row_groups[voter]
        order = np.argsort(keys, kind="stable")
        keys, weight = keys[order], weight[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        pair_work, pair_group = np.divmod(keys[starts], group_count)
        pair_votes = np.diff(np.r_[starts, len(keys)])
        pair_scores = np.add.reduceat(weight, starts)
        work_starts = np.flatnonzero(np.r_[True, pair_work[1:] != pair_work[:-1]])
        work_numbers = pair_work[work_starts]
        votes = np.add.reduceat(pair_votes, work_starts)
        scores = np.add.reduceat(pair_scores, work_starts)
        ranked = np.lexsort((work_numbers, -np.round(scores, 9)))[:limit]
        ends = np.r_[work_starts[1:], len(pair_work)]
        found = []
        for i in ranked.tolist():
            span = range(int(work_starts[i]), int(ends[i]))
            by_group = sorted(
                ((int(pair_group[j]), float(pair_scores[j])) for j in span),
                key=lambda item: (-item[1], item[0]),
            )
            found.append(
                Candidate(int(work_numbers[i]), int(votes[i]), float(scores[i]), tuple(by_group))
            )
        return found


# Descriptors are told apart by a 40-bit mix of their words: two different descriptors found
# by one query point share a mix once in a trillion pairs (and only soften one weight).
_DESCRIPTOR_SPAN = 1 << 40


def _mixed(found_words: Words) -> NDArray[np.int64]:
    """A 63-bit mix of each row's four words (multiply-xorshift: distinct rows, distinct mixes
    but for chance)."""
    mixed = np.zeros(len(found_words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for word in range(words):
            mixed ^= found_words[:, word]
            mixed *= np.uint64(0x9E3779B97F4A7C15)
            mixed ^= mixed >> np.uint64(29)
    return (mixed >> np.uint64(1)).astype(np.int64)


def _distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """The distinct values, in order (a sort: numpy's hashing unique is slower here)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values
