"""Tests for `apps.copyright.index.PdqIndex`: exact near-duplicate search (multi-index hashing).

Scenarios (every search is checked against a brute-force reference written here with Python
integers: each work's least distance over its hashes and the queries, sorted by (distance, work)):

* Agreement with brute force (hypothesis): random hashes plus hashes planted at distances 0, 1,
  r - 1, r, r + 1 and a few others from the queries, 1 to 17 hashes a work, some works added
  twice, 1 to 8 query hashes, r anywhere in 0..256, small and default fresh tails, some rows
  loaded in bulk with `add_many`.
* Exact boundary: at r = 31 (ThreatExchange's threshold) hashes at 0, 1 and 31 are found with
  those distances and one at 32 is not; for every r in 0..256 a hash at r is found and one at
  r + 1 is not (probing for small r, scanning for large r).
* Appends interleaved with searches: one work at a time with a fresh tail of 8 rows, a search
  after every add, across many seals and merges; crossing the default 4,096-row tail; bulk
  load then single adds; the same answers whichever way the rows came in. Built and merged
  segments alike list each chunk's rows sorted by (chunk value, row).
* Skewed buckets: thousands of identical hashes make probing cost more than a scan; the answer
  is still exact.
* Limit, empty index, no queries, a work's distance being the least over all its hashes and
  all the queries; numpy integers accepted where ints are.
* Concurrent readers and one writer: every search sees every work added before it began and
  none that was not added yet.
* Bad input: a hash that is not 32 bytes (or not bytes), a negative or non-integer work id,
  `distance_max` outside 0..256, a negative limit, too many queries, bad `add_many` arrays;
  each raises `XinchainError` naming the field, and leaves the index unchanged.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xinchain.apps.copyright.index import PdqIndex, fresh_rows_max, queries_max
from xinchain.errors import XinchainError

HASH_BITS = 256


def to_bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


def flipped(value: int, bits: int, chooser: random.Random) -> int:
    """`value` with exactly `bits` of its bits flipped."""
    for bit in chooser.sample(range(HASH_BITS), bits):
        value ^= 1 << bit
    return value


def brute_force(
    stored: Sequence[tuple[int, bytes]], queries: Sequence[bytes], distance_max: int, limit: int
) -> list[tuple[int, int]]:
    nearest: dict[int, int] = {}
    for work, stored_hash in stored:
        for query in queries:
            distance = (
                int.from_bytes(stored_hash, "big") ^ int.from_bytes(query, "big")
            ).bit_count()
            if distance <= distance_max and distance < nearest.get(work, HASH_BITS + 1):
                nearest[work] = distance
    return sorted(((work, d) for work, d in nearest.items()), key=lambda item: (item[1], item[0]))[
        :limit
    ]


class Reference:
    """An index and the (work, hash) rows it was given, added the same way."""

    def __init__(self, fresh_rows: int = fresh_rows_max) -> None:
        self.index = PdqIndex(fresh_rows=fresh_rows)
        self.rows: list[tuple[int, bytes]] = []

    def add(self, work: int, hashes: list[bytes]) -> None:
        self.index.add(work, hashes)
        self.rows += [(work, stored_hash) for stored_hash in hashes]

    def add_many(self, rows: list[tuple[int, bytes]]) -> None:
        works = np.array([work for work, _ in rows], dtype=np.int64)
        hashes = np.frombuffer(b"".join(h for _, h in rows), dtype=np.uint8).reshape(-1, 32)
        self.index.add_many(works, hashes)
        self.rows += rows

    def check(self, queries: list[bytes], distance_max: int, limit: int = 10**6) -> None:
        expected = brute_force(self.rows, queries, distance_max, limit)
        assert self.index.search(queries, distance_max, limit) == expected
        assert len(self.index) == len(self.rows)


def planted_work(
    chooser: random.Random, queries: list[int], distance_max: int, size: int
) -> list[bytes]:
    """`size` hashes: random ones, and ones at chosen distances from a query."""
    hashes = []
    for _ in range(size):
        kind = chooser.random()
        if kind < 0.4:
            hashes.append(to_bytes(chooser.getrandbits(HASH_BITS)))
            continue
        distances = [0, 1, distance_max - 1, distance_max, distance_max + 1, chooser.randint(0, 40)]
        bits = min(HASH_BITS, max(0, chooser.choice(distances)))
        hashes.append(to_bytes(flipped(chooser.choice(queries), bits, chooser)))
    return hashes


# --- agreement with brute force ----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    distance_max=st.one_of(st.just(31), st.integers(0, 64), st.integers(0, HASH_BITS)),
    works=st.integers(0, 40),
    query_count=st.integers(1, 8),
    fresh_rows=st.sampled_from([1, 3, 16, fresh_rows_max]),
    bulk=st.booleans(),
)
@pytest.mark.slow  # a brute-force search over a large index
def test_search_agrees_with_brute_force(
    seed: int, distance_max: int, works: int, query_count: int, fresh_rows: int, bulk: bool
) -> None:
    chooser = random.Random(seed)
    queries = [chooser.getrandbits(HASH_BITS) for _ in range(query_count)]
    reference = Reference(fresh_rows)
    if bulk:
        rows = [
            (work, h)
            for work in range(works)
            for h in planted_work(chooser, queries, distance_max, chooser.randint(1, 17))
        ]
        reference.add_many(rows)
    for _ in range(works):
        work = chooser.randint(0, 2 * works)  # some works added twice
        reference.add(work, planted_work(chooser, queries, distance_max, chooser.randint(1, 17)))
    reference.check([to_bytes(q) for q in queries], distance_max)


def test_hashes_at_0_1_31_are_found_and_32_is_not() -> None:
    chooser = random.Random(1)
    query = chooser.getrandbits(HASH_BITS)
    reference = Reference(fresh_rows=4)
    for work in range(200):
        reference.add(work, [to_bytes(chooser.getrandbits(HASH_BITS)) for _ in range(17)])
    for work, bits in [(1000, 0), (1001, 1), (1002, 31), (1003, 32)]:
        reference.add(work, [to_bytes(flipped(query, bits, chooser))])
    found = reference.index.search([to_bytes(query)], 31)
    assert found == [(1000, 0), (1001, 1), (1002, 31)]
    reference.check([to_bytes(query)], 31)


def test_every_distance_max_finds_r_and_not_r_plus_1() -> None:
    chooser = random.Random(2)
    query = chooser.getrandbits(HASH_BITS)
    reference = Reference(fresh_rows=64)
    for work in range(HASH_BITS + 1):
        reference.add(work, [to_bytes(flipped(query, work, chooser))])  # work w at distance w
    reference.add(10_000, [to_bytes(chooser.getrandbits(HASH_BITS)) for _ in range(500)])
    for distance_max in range(HASH_BITS + 1):
        found = reference.index.search([to_bytes(query)], distance_max, limit=10**6)
        assert [work for work, _ in found if work != 10_000] == list(range(distance_max + 1))
        assert all(work == distance for work, distance in found if work != 10_000)
    for distance_max in (0, 15, 16, 17, 31, 32, 47, 48, 50, 51, 100, 256):
        reference.check([to_bytes(query)], distance_max)


# --- appends ------------------------------------------------------------------------------------


def test_searches_between_single_adds_across_seals_and_merges() -> None:
    chooser = random.Random(3)
    queries = [chooser.getrandbits(HASH_BITS) for _ in range(8)]
    reference = Reference(fresh_rows=8)
    for work in range(150):
        reference.add(work, planted_work(chooser, queries, 31, chooser.randint(1, 5)))
        reference.check([to_bytes(q) for q in queries], 31)
        reference.check([to_bytes(queries[0])], 20)
    segments = reference.index._snapshot().segments
    assert 1 <= len(segments) <= 8  # merged, not one segment per seal


def test_segments_list_each_chunk_sorted_by_value_then_row() -> None:
    """Built and merged segments alike: chunk c's postings are the segment's rows sorted by
    (value of chunk c, row), and offsets[c, v] is where value v's run starts."""
    chooser = random.Random(10)
    index = PdqIndex(fresh_rows=5)
    index.add_many(
        np.arange(40), np.frombuffer(chooser.randbytes(40 * 32), np.uint8).reshape(40, 32)
    )
    for work in range(40, 140):
        index.add(work, [chooser.randbytes(32) for _ in range(chooser.randint(1, 3))])
    snapshot = index._snapshot()
    assert len(snapshot.segments) >= 2
    chunks = snapshot.hashes[: snapshot.count].view(np.uint16)
    first = 0
    for segment in snapshot.segments:
        assert segment.first == first
        first = segment.end
        rows = np.arange(segment.first, segment.end)
        for chunk in range(16):
            values = chunks[segment.first : segment.end, chunk]
            order = np.lexsort((rows, values))
            assert segment.postings[chunk].tolist() == rows[order].tolist()
            starts = np.searchsorted(values[order], np.arange(65537))
            assert segment.offsets[chunk].tolist() == starts.tolist()
    assert first <= snapshot.count < first + 5


def test_crossing_the_default_fresh_tail() -> None:
    chooser = random.Random(4)
    queries = [chooser.getrandbits(HASH_BITS) for _ in range(8)]
    reference = Reference()
    for work in range(300):  # 5,100 hashes: one seal at 4,096
        reference.add(work, planted_work(chooser, queries, 31, 17))
        if work % 60 == 0 or 235 <= work <= 245:
            reference.check([to_bytes(q) for q in queries], 31)
    assert len(reference.index._snapshot().segments) == 1
    reference.check([to_bytes(q) for q in queries], 31)


def test_bulk_load_then_single_adds_agrees_with_single_adds_only() -> None:
    chooser = random.Random(5)
    queries = [chooser.getrandbits(HASH_BITS) for _ in range(8)]
    works = [planted_work(chooser, queries, 31, 17) for _ in range(120)]
    bulk, single = Reference(fresh_rows=32), Reference(fresh_rows=32)
    bulk.add_many([(work, h) for work, hashes in enumerate(works[:100]) for h in hashes])
    for work, hashes in enumerate(works):
        single.add(work, hashes)
        if work >= 100:
            bulk.add(work, hashes)
    query_bytes = [to_bytes(q) for q in queries]
    for distance_max in (0, 5, 31, 40, 80):
        assert bulk.index.search(query_bytes, distance_max) == single.index.search(
            query_bytes, distance_max
        )
        bulk.check(query_bytes, distance_max)


def test_skewed_buckets_fall_back_to_scanning_and_stay_exact() -> None:
    chooser = random.Random(6)
    popular = chooser.getrandbits(HASH_BITS)
    reference = Reference(fresh_rows=256)
    reference.add_many([(work, to_bytes(popular)) for work in range(3000)])
    for work in range(3000, 3100):
        reference.add(work, [to_bytes(flipped(popular, chooser.randint(0, 60), chooser))])
    reference.check([to_bytes(flipped(popular, 3, chooser))], 31)
    reference.check([to_bytes(chooser.getrandbits(HASH_BITS))], 31)


# --- results ------------------------------------------------------------------------------------


def test_limit_keeps_the_nearest() -> None:
    chooser = random.Random(7)
    query = chooser.getrandbits(HASH_BITS)
    reference = Reference(fresh_rows=16)
    for work in range(40):
        reference.add(work, [to_bytes(flipped(query, work % 13, chooser))])
    for limit in (0, 1, 5, 39, 40, 41):
        reference.check([to_bytes(query)], 31, limit)
    assert [d for _, d in reference.index.search([to_bytes(query)], 31, 4)] == [0, 0, 0, 0]


def test_distance_is_least_over_hashes_and_queries() -> None:
    chooser = random.Random(8)
    first, second = chooser.getrandbits(HASH_BITS), chooser.getrandbits(HASH_BITS)
    index = PdqIndex(fresh_rows=2)
    index.add(7, [to_bytes(flipped(first, 20, chooser)), to_bytes(flipped(second, 9, chooser))])
    index.add(7, [to_bytes(flipped(first, 12, chooser))])
    assert index.search([to_bytes(first)], 31) == [(7, 12)]
    assert index.search([to_bytes(first), to_bytes(second)], 31) == [(7, 9)]
    assert index.search([to_bytes(second), to_bytes(first)], 10) == [(7, 9)]


def test_empty_index_and_no_queries() -> None:
    index = PdqIndex()
    assert len(index) == 0
    assert index.search([bytes(32)], 256) == []
    index.add(1, [bytes(32)])
    index.add(2, [])
    assert len(index) == 1
    assert index.search([], 31) == []
    assert index.search([bytes(32)], 0) == [(1, 0)]


def test_numpy_integers_are_accepted_as_work_distance_and_limit() -> None:
    """Values read from numpy arrays work although the signatures say int."""
    index = PdqIndex()
    index.add(np.int64(5), [bytes(32)])  # type: ignore[arg-type]
    index.add(np.uint8(6), [bytes(31) + b"\x01"])  # type: ignore[arg-type]
    found = index.search([bytes(32)], np.int32(1), np.int64(10))  # type: ignore[arg-type]
    assert found == [(5, 0), (6, 1)]


# --- threads ------------------------------------------------------------------------------------


def test_concurrent_searches_see_every_finished_add() -> None:
    chooser = random.Random(9)
    query = chooser.getrandbits(HASH_BITS)
    works = 1000
    hashes = [
        [to_bytes(flipped(query, work % 32, chooser))] + [to_bytes(chooser.getrandbits(256))] * 3
        for work in range(works)
    ]
    index = PdqIndex(fresh_rows=64)
    added = 0  # works whose add has returned
    failures: list[str] = []
    searches_during_adds = [0]

    def write() -> None:
        nonlocal added
        for work in range(works):
            index.add(work, hashes[work])
            added = work + 1

    def read() -> None:
        while added < works and not failures:
            before = added
            found = index.search([to_bytes(query)], 31, limit=works)
            after = added + 1  # the add in progress may be seen
            seen = {work for work, _ in found}
            if not set(range(before)) <= seen <= set(range(after)):
                failures.append(f"saw {len(seen)} works, expected {before} to {after}")
            if any(distance != work % 32 for work, distance in found):
                failures.append("wrong distance")
            searches_during_adds[0] += 1
            time.sleep(0.001)  # let the writer have the GIL: back-to-back searches starve it

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert time.monotonic() - started < 30
    assert failures == []
    assert searches_during_adds[0] >= 10
    assert len(index.search([to_bytes(query)], 31, limit=works)) == works


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("work", "hashes", "field"),
    [
        (1, [bytes(31)], "hashes[0]"),
        (1, [bytes(32), bytes(33)], "hashes[1]"),
        (1, [bytes(32).hex()], "hashes[0]"),
        (1, [bytearray(32)], "hashes[0]"),
        (1, bytes(32), "hashes"),
        (-1, [bytes(32)], "work"),
        (True, [bytes(32)], "work"),
        (1.0, [bytes(32)], "work"),
        (np.bool_(True), [bytes(32)], "work"),
        (2**63, [bytes(32)], "work"),
    ],
)
def test_add_rejects_bad_input(work: object, hashes: object, field: str) -> None:
    index = PdqIndex(fresh_rows=1)
    with pytest.raises(XinchainError) as raised:
        index.add(work, hashes)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert len(index) == 0
    assert index.search([bytes(32)], 256) == []


@pytest.mark.parametrize(
    ("queries", "distance_max", "limit", "field"),
    [
        ([bytes(32)], -1, 10, "distance_max"),
        ([bytes(32)], 257, 10, "distance_max"),
        ([bytes(32)], True, 10, "distance_max"),
        ([bytes(32)], 31.0, 10, "distance_max"),
        ([bytes(32)], 31, -1, "limit"),
        ([bytes(32)], 31, 1.5, "limit"),
        ([bytes(31)], 31, 10, "queries[0]"),
        ([bytes(32)] * (queries_max + 1), 31, 10, "queries"),
    ],
)
def test_search_rejects_bad_input(
    queries: list[bytes], distance_max: object, limit: object, field: str
) -> None:
    index = PdqIndex()
    index.add(1, [bytes(32)])
    with pytest.raises(XinchainError) as raised:
        index.search(queries, distance_max, limit)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert "expected" in raised.value.reason or "at most" in raised.value.reason


@pytest.mark.parametrize(
    ("works", "hashes", "field"),
    [
        (np.array([1, -1]), np.zeros((2, 32), dtype=np.uint8), "works"),
        (np.array([1.0, 2.0]), np.zeros((2, 32), dtype=np.uint8), "works"),
        (np.array([[1, 2]]), np.zeros((2, 32), dtype=np.uint8), "works"),
        (np.array([1, 2]), np.zeros((2, 31), dtype=np.uint8), "hashes"),
        (np.array([1, 2]), np.zeros((3, 32), dtype=np.uint8), "hashes"),
        (np.array([1, 2]), np.zeros((2, 32), dtype=np.int16), "hashes"),
        (np.array([2**63], dtype=np.uint64), np.zeros((1, 32), dtype=np.uint8), "works"),
    ],
)
def test_add_many_rejects_bad_input(works: np.ndarray, hashes: np.ndarray, field: str) -> None:
    index = PdqIndex(fresh_rows=1)
    with pytest.raises(XinchainError) as raised:
        index.add_many(works, hashes)
    assert raised.value.field == field
    assert len(index) == 0
