"""Near-duplicate search over PDQ hashes: multi-index hashing, exact answers.

The index answers "which works hold a PDQ hash within Hamming distance r of one of these query
hashes?" over millions of stored 256-bit hashes without comparing the query with each of them.
It is multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012):

* Every hash is cut into `chunk_count` = 16 disjoint chunks of 16 bits (chunk c is bytes 2c and
  2c+1). For each chunk the index keeps one table from the chunk's 65,536 possible values to
  the rows whose chunk has that value.
* Pigeonhole: write r = 16·q + a with 0 ≤ a < 16. If a stored hash differed from the query in
  at least q + 1 bits in each of chunks 0..a and in at least q bits in each of chunks a+1..15,
  it would differ in at least 16·q + a + 1 = r + 1 bits. So a hash within r agrees with the
  query to within q bits in one of chunks 0..a, or to within q - 1 bits in one of chunks
  a+1..15 (the paper's tighter split). A search looks up, in every chunk's table, each value
  within that radius of the query's chunk (the query's value XOR every 16-bit mask of at most
  that many bits), gathers the rows found, computes their exact distances with numpy and keeps
  those within r. Nothing within r is missed and nothing beyond r is returned.

Why 16 chunks of 16 bits. The paper's rule of thumb is chunks of about log2(n) bits for n
stored hashes: 20 to 24 bits for one to 17 million. 16 bits is a little short of that, but it
lets each table be a dense array of 65,537 offsets (no sorted keys to search, one indexing
operation per bucket) and it divides 256 evenly. At ThreatExchange's match threshold r = 31,
q = 1 and a = 15: every chunk is probed at radius 1, 17 buckets a chunk, 272 per query hash.
Random hashes spread over 65,536 buckets a chunk, so a query hash gathers 272 · n / 65,536
candidates: about 4,200 of a million stored hashes (0.4 %), 70,000 of 17 million. Smaller r
probes fewer chunks (r < 16 probes only chunks 0..r, each for its exact value). Larger r needs
more masks (137 a chunk at radius 2, 697 at 3, ...): once the buckets to probe are more than
`probe_buckets_fraction_max` of a chunk's buckets, summed over the chunks (r > 50), and so
would gather about that fraction of the stored hashes, the search scans instead. So
any r in 0..256 gives exact answers, the larger ones at the speed of a linear scan.

Real PDQ hashes are not uniform: an index full of near-identical product shots fills some
buckets more than others. The search counts a segment's candidates before gathering them and
scans the segment instead when they exceed `candidates_fraction_max` of its rows (per query
hash), so skewed data costs at most about a scan.

Storage. Hashes live in one append-only array of rows (four uint64 words each) with the work
of each row beside it. The rows are covered by a few sealed segments and a fresh tail:

* A sealed segment covers a contiguous range of rows. Per chunk it keeps the rows sorted by
  (chunk value, row) in a postings array, and the offsets where each of the 65,536 values
  starts (compressed sparse rows). 16 · 4 bytes of postings a row; with the 32-byte hash and
  the 8-byte work id, about 104 bytes a stored hash: 17 million hashes take about 1.8 GB.
* The fresh tail, at most `fresh_rows_max` rows, is scanned linearly. Adding a work only
  appends to it. When it reaches `fresh_rows_max` rows it is sealed into a new segment, and
  then the newest two segments are merged while the older is no larger than the newer (a
  binary counter: every row takes part in about log2(n / fresh_rows_max) merges, and there
  are at most that many segments, bounded by `segments_max`). A merge interleaves the two
  segments' sorted postings in one linear pass; no re-sorting. A bulk load (`add_many`) seals
  its rows into one segment at once, sorting each chunk: about 0.5 s a million hashes.
* Transient memory: a merge builds the merged postings (64 bytes a row) while the old ones
  may still be read, and growing the row array (by half, when full) copies it (40 bytes a
  row). The largest merge, of everything, happens each time the index doubles.

Threads. One writer at a time (`add`, `add_many`) and any number of concurrent readers
(`search`, `len`). Segments are never changed once built, and rows are only ever appended past
the published row count (the row array is copied, not changed in place, when it must grow),
so a search takes a consistent snapshot under a short lock and runs without it. Seals, merges
and growth happen in the writer's call and block no search (beyond sharing the GIL); they make
that one `add` slow instead (half a second when the row array of 17 million grows). Under
CPython's GIL, threads searching back to back can starve the writer: each time it gives up
the GIL it waits out a switch interval (tests/unit/test_copyright_index.py saw 1,000 adds take
25 s against two such threads, 0.5 s when they paused 1 ms between searches).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xinchain.apps.copyright.perceptual import HASH_BYTES
from xinchain.errors import XinchainError, ensure

hash_bits = 8 * HASH_BYTES
hash_words = HASH_BYTES // 8  # uint64 words a hash
chunk_count = 16
chunk_bits = hash_bits // chunk_count
bucket_count = 1 << chunk_bits
# Rows appended since the last seal that a search scans linearly. Scanning 4,096 rows for eight
# query hashes takes about as long as probing one segment (~0.2 ms); sealing them ~7 ms (the
# 16 offset tables of 65,537 entries dominate), once every few hundred works.
fresh_rows_max = 4096
# More segments than this (only after bulk loads of shrinking sizes) are merged regardless.
segments_max = 24
# Gathering a candidate row costs 4 to 10 times as much as comparing a row in a linear scan (a
# random read against a sequential one; measured with bench/copyright_search.py), so probing
# pays while it gathers less than about 1/8 of the rows. A search whose probes, summed over the
# chunks, would cover more than 1/16 of a chunk's buckets (and so gather about that fraction of
# the rows; r > 50) scans without probing: this also bounds the probe lists to 4,096 a query
# hash.
probe_buckets_fraction_max = 1 / 16
# A segment whose probed buckets hold more than this fraction of its rows, per query hash,
# is scanned instead (only with skewed data: uniform hashes stay under the fraction above).
candidates_fraction_max = 1 / 8
# Rows compared at a time by a linear scan: bounds its scratch memory (32 bytes a row).
scan_block_rows = 1 << 16
# Query hashes in one search: the eight dihedral hashes of an image, with room to spare.
queries_max = 64
# Row numbers are stored as uint32 in postings and offsets.
rows_max = (1 << 32) - 1
work_max = (1 << 63) - 1

# Every 16-bit mask, in order of weight; masks of weight ≤ w are the first _masks_within[w].
_weights = np.bitwise_count(np.arange(bucket_count, dtype=np.uint16))
_masks_by_weight = np.argsort(_weights, kind="stable").astype(np.int64)
_masks_within = np.cumsum(np.bincount(_weights, minlength=chunk_bits + 1))
_bucket_numbers = np.arange(bucket_count + 1, dtype=np.int64)


@dataclass(frozen=True)
class _Segment:
    """Rows `first` to `end` (exclusive) indexed by chunk: `postings[c, offsets[c, v] :
    offsets[c, v + 1]]` are, in increasing order, the rows whose chunk c has the value v."""

    first: int
    end: int
    offsets: NDArray[np.uint32]  # (chunk_count, bucket_count + 1)
    postings: NDArray[np.uint32]  # (chunk_count, end - first)

    @property
    def size(self) -> int:
        return self.end - self.first


@dataclass(frozen=True)
class _Snapshot:
    """What one search sees: rows below `count`, the segments over the first of them."""

    hashes: NDArray[np.uint64]  # (capacity, hash_words); rows below `count` are stored hashes
    works: NDArray[np.int64]  # (capacity,)
    count: int
    segments: tuple[_Segment, ...]

    @property
    def sealed_end(self) -> int:
        return self.segments[-1].end if self.segments else 0


@dataclass(frozen=True)
class _Probes:
    """The buckets a search looks in, each for one query hash."""

    chunks: NDArray[np.int64]
    buckets: NDArray[np.int64]  # chunk · (bucket_count + 1) + value: an index into offsets
    queries: NDArray[np.int64]


class PdqIndex:
    """Works' PDQ hashes, searchable by Hamming distance; see the module docstring."""

    def __init__(self, *, fresh_rows: int = fresh_rows_max) -> None:
        ensure(fresh_rows >= 1, "fresh_rows must be positive")
        self._fresh_rows = fresh_rows
        self._write_lock = threading.Lock()  # one writer at a time
        self._lock = threading.Lock()  # guards `_current`, held only to read or replace it
        empty = _Snapshot(
            hashes=np.empty((0, hash_words), dtype=np.uint64),
            works=np.empty(0, dtype=np.int64),
            count=0,
            segments=(),
        )
        self._current = empty

    def __len__(self) -> int:
        return self._snapshot().count

    def add(self, work: int, hashes: Sequence[bytes]) -> None:
        """Store the hashes (32 bytes each) of one work; a work may be added more than once."""
        number = _integer(work)
        if number is None or not 0 <= number <= work_max:
            raise XinchainError(
                f"expected a work id from 0 to {work_max}, got {work!r}", field="work"
            )
        words = _hash_words(hashes, "hashes")
        self._append(np.full(len(words), number, dtype=np.int64), words)

    def add_many(self, works: NDArray[Any], hashes: NDArray[Any]) -> None:
        """Bulk load: `works` (n,) integers, `hashes` (n, 32) uint8, row i a hash of works[i]."""
        if not isinstance(works, np.ndarray) or works.ndim != 1:
            raise XinchainError("expected a one-dimensional array of work ids", field="works")
        if not np.issubdtype(works.dtype, np.integer):
            raise XinchainError(f"expected integer work ids, got {works.dtype}", field="works")
        shape = (len(works), HASH_BYTES)
        if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint8 or hashes.shape != shape:
            got = f"{hashes.dtype} {hashes.shape}" if isinstance(hashes, np.ndarray) else "other"
            raise XinchainError(
                f"expected a uint8 array of shape {shape}, got {got}", field="hashes"
            )
        if len(works) and (works.min() < 0 or works.max() > work_max):
            raise XinchainError(
                f"expected work ids from 0 to {work_max}, got {works.min()} to {works.max()}",
                field="works",
            )
        words = np.ascontiguousarray(hashes).view(np.uint64).reshape(len(works), hash_words)
        self._append(works.astype(np.int64), words)

    def search(
        self, queries: Sequence[bytes], distance_max: int, limit: int = 100
    ) -> list[tuple[int, int]]:
        """(work, distance) for every work holding a hash within `distance_max` of any query
        hash, the distance being the least over its hashes and the queries; nearest first
        (then by work), at most `limit`."""
        radius = _integer(distance_max)
        if radius is None or not 0 <= radius <= hash_bits:
            raise XinchainError(
                f"expected a distance from 0 to {hash_bits}, got {distance_max!r}",
                field="distance_max",
            )
        count_max = _integer(limit)
        if count_max is None or count_max < 0:
            raise XinchainError(f"expected a limit of 0 or more, got {limit!r}", field="limit")
        if len(queries) > queries_max:
            raise XinchainError(
                f"at most {queries_max} query hashes, got {len(queries)}", field="queries"
            )
        query_words = _hash_words(queries, "queries")
        snapshot = self._snapshot()
        if count_max == 0 or len(query_words) == 0 or snapshot.count == 0:
            return []
        return _search(snapshot, query_words, radius, count_max)

    # --- the writer ----------------------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            return self._current

    def _append(self, works: NDArray[np.int64], words: NDArray[np.uint64]) -> None:
        if len(works) == 0:
            return
        with self._write_lock:
            current = self._current  # only this writer replaces it
            count = current.count + len(works)
            if count > rows_max:
                raise XinchainError(
                    f"the index holds at most {rows_max} hashes; {current.count} are stored "
                    f"and {len(works)} more were given",
                    field="hashes",
                )
            hashes, work_rows = current.hashes, current.works
            if count > len(hashes):
                # Grow by half (or to fit) into new arrays: searches keep reading the old ones.
                capacity = max(count, len(hashes) + len(hashes) // 2, self._fresh_rows)
                hashes = np.empty((capacity, hash_words), dtype=np.uint64)
                hashes[: current.count] = current.hashes[: current.count]
                work_rows = np.empty(capacity, dtype=np.int64)
                work_rows[: current.count] = current.works[: current.count]
            hashes[current.count : count] = words  # past `count`: no search reads these yet
            work_rows[current.count : count] = works
            segments = current.segments
            if count - current.sealed_end >= self._fresh_rows:
                segments = _sealed(hashes, segments, current.sealed_end, count)
            update = _Snapshot(hashes=hashes, works=work_rows, count=count, segments=segments)
            with self._lock:
                self._current = update


# --- validation ------------------------------------------------------------------------------


def _integer(value: object) -> int | None:
    """`value` as an int if it is an integer (Python's or numpy's, but not a bool)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        return None
    return int(value)


def _hash_words(hashes: Sequence[bytes], field: str) -> NDArray[np.uint64]:
    """Hashes as rows of uint64 words; each must be exactly HASH_BYTES bytes."""
    if isinstance(hashes, bytes | str):
        raise XinchainError("expected a list of hashes, not one value", field=field)
    for position, value in enumerate(hashes):
        if not isinstance(value, bytes):
            raise XinchainError(
                f"expected {HASH_BYTES} bytes, got {type(value).__name__}",
                field=f"{field}[{position}]",
            )
        if len(value) != HASH_BYTES:
            raise XinchainError(
                f"expected {HASH_BYTES} bytes, got {len(value)}", field=f"{field}[{position}]"
            )
    joined = b"".join(hashes)
    return np.frombuffer(joined, dtype=np.uint64).reshape(len(hashes), hash_words).copy()


# --- building and merging segments -----------------------------------------------------------


def _sealed(
    hashes: NDArray[np.uint64], segments: tuple[_Segment, ...], first: int, end: int
) -> tuple[_Segment, ...]:
    """Segments after sealing rows `first`..`end` into one and merging the newest two while
    the older is no larger than the newer (or while there are too many)."""
    result = (*segments, _built(hashes, first, end))
    while len(result) >= 2 and (result[-2].size <= result[-1].size or len(result) > segments_max):
        result = (*result[:-2], _merged(result[-2], result[-1]))
    return result


def _built(hashes: NDArray[np.uint64], first: int, end: int) -> _Segment:
    """A segment over rows `first`..`end`, sorting each chunk's values."""
    size = end - first
    chunks = hashes[first:end].view(np.uint16)  # (size, chunk_count): chunk c is bytes 2c, 2c+1
    postings = np.empty((chunk_count, size), dtype=np.uint32)
    offsets = np.empty((chunk_count, bucket_count + 1), dtype=np.uint32)
    for chunk in range(chunk_count):
        values = np.ascontiguousarray(chunks[:, chunk])
        order = np.argsort(values, kind="stable")  # stable: rows ascend within a bucket
        postings[chunk] = order + first
        offsets[chunk] = np.searchsorted(values[order], _bucket_numbers)
    return _Segment(first=first, end=end, offsets=offsets, postings=postings)


def _merged(older: _Segment, newer: _Segment) -> _Segment:
    """One segment over both (adjacent) row ranges. In every bucket the older segment's rows
    come first, so a row of `newer` at position i of its postings, in bucket v, lands at
    older.offsets[v + 1] + i; the older rows fill the other places in order."""
    ensure(older.end == newer.first, "merged segments must be adjacent")
    size = older.size + newer.size
    offsets = older.offsets + newer.offsets
    postings = np.empty((chunk_count, size), dtype=np.uint32)
    places = np.arange(newer.size, dtype=np.int64)
    for chunk in range(chunk_count):
        newer_buckets = np.repeat(_bucket_numbers[:-1], np.diff(newer.offsets[chunk]))
        newer_places = older.offsets[chunk][newer_buckets + 1] + places
        older_places = np.ones(size, dtype=bool)
        older_places[newer_places] = False
        postings[chunk][newer_places] = newer.postings[chunk]
        postings[chunk][older_places] = older.postings[chunk]
    return _Segment(first=older.first, end=newer.end, offsets=offsets, postings=postings)


# --- searching -------------------------------------------------------------------------------


def _search(
    snapshot: _Snapshot, query_words: NDArray[np.uint64], distance_max: int, limit: int
) -> list[tuple[int, int]]:
    """Probe each segment (or scan it, when that is cheaper), scan the fresh tail, and keep
    each work's nearest row."""
    probes = _probes(query_words, distance_max)
    found = []
    for segment in snapshot.segments:
        matches = None
        if probes is not None:
            matches = _probe(snapshot, segment, probes, query_words, distance_max)
        if matches is None:
            matches = _scan(snapshot, segment.first, segment.end, query_words, distance_max)
        found.append(matches)
    end = snapshot.count
    found.append(_scan(snapshot, snapshot.sealed_end, end, query_words, distance_max))
    return _nearest_works(snapshot.works, found, limit)


def _chunk_radii(distance_max: int) -> list[int]:
    """How far each chunk is probed for a search within `distance_max` (-1: not probed)."""
    quotient, remainder = divmod(distance_max, chunk_count)
    return [quotient if chunk <= remainder else quotient - 1 for chunk in range(chunk_count)]


def _probes(query_words: NDArray[np.uint64], distance_max: int) -> _Probes | None:
    """Every bucket to look in, or None when there are so many that a scan is cheaper."""
    radii = [radius for radius in _chunk_radii(distance_max) if radius >= 0]
    masks_per_chunk = [int(_masks_within[radius]) for radius in radii]
    if sum(masks_per_chunk) > probe_buckets_fraction_max * bucket_count:
        return None
    values = query_words.view(np.uint16).astype(np.int64)  # (queries, chunk_count)
    chunks, buckets, queries = [], [], []
    for chunk, masks in enumerate(masks_per_chunk):
        near = values[:, chunk, None] ^ _masks_by_weight[None, :masks]  # (queries, masks)
        chunks.append(np.full(near.size, chunk, dtype=np.int64))
        buckets.append((chunk * (bucket_count + 1) + near).ravel())
        queries.append(np.repeat(np.arange(len(values), dtype=np.int64), masks))
    return _Probes(
        chunks=np.concatenate(chunks),
        buckets=np.concatenate(buckets),
        queries=np.concatenate(queries),
    )


def _probe(
    snapshot: _Snapshot,
    segment: _Segment,
    probes: _Probes,
    query_words: NDArray[np.uint64],
    distance_max: int,
) -> tuple[NDArray[np.int64], NDArray[np.uint16]] | None:
    """Rows of one segment within `distance_max` of the query hash whose probes found them,
    with that distance (a row may appear more than once), or None when gathering the probed
    buckets would cost more than scanning the segment."""
    offsets = segment.offsets.ravel()
    starts = offsets[probes.buckets].astype(np.int64)
    lengths = offsets[probes.buckets + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total > candidates_fraction_max * segment.size * len(query_words):
        return None
    # The postings of every probed bucket, one after another: position j of bucket b's run is
    # postings[chunk · size + starts[b] + j].
    run_ends = np.cumsum(lengths)
    shift = probes.chunks * segment.size + starts - (run_ends - lengths)
    places = np.arange(total, dtype=np.int64) + np.repeat(shift, lengths)
    # np.take: several times faster than fancy indexing for gathering rows.
    rows = np.take(segment.postings.ravel(), places).astype(np.int64)
    queries = np.repeat(probes.queries, lengths)
    distances = _distances(
        np.take(snapshot.hashes, rows, axis=0), np.take(query_words, queries, axis=0)
    )
    keep = distances <= distance_max
    return rows[keep], distances[keep]


def _scan(
    snapshot: _Snapshot,
    first: int,
    end: int,
    query_words: NDArray[np.uint64],
    distance_max: int,
) -> tuple[NDArray[np.int64], NDArray[np.uint16]]:
    """Rows `first`..`end` within `distance_max` of any query hash, with the least distance to
    any of them: every row compared, a block at a time."""
    rows = [np.empty(0, dtype=np.int64)]
    distances = [np.empty(0, dtype=np.uint16)]
    for start in range(first, end, scan_block_rows):
        block = snapshot.hashes[start : min(end, start + scan_block_rows)]
        nearest = _distances(block, query_words[0])
        for query in query_words[1:]:
            np.minimum(nearest, _distances(block, query), out=nearest)
        keep = np.flatnonzero(nearest <= distance_max)
        rows.append(keep + start)
        distances.append(nearest[keep])
    return np.concatenate(rows), np.concatenate(distances)


def _distances(rows: NDArray[np.uint64], query: NDArray[np.uint64]) -> NDArray[np.uint16]:
    """Hamming distances between rows of words and one query (or one query per row)."""
    bits = np.bitwise_count(rows ^ query)  # uint8 per word; summing columns beats .sum(axis=1)
    total: NDArray[np.uint16] = bits[:, 0].astype(np.uint16)
    for word in range(1, hash_words):
        total += bits[:, word]
    return total


def _nearest_works(
    works: NDArray[np.int64],
    found: list[tuple[NDArray[np.int64], NDArray[np.uint16]]],
    limit: int,
) -> list[tuple[int, int]]:
    """The least distance of each work among the rows found, nearest first, at most `limit`."""
    rows = np.concatenate([found_rows for found_rows, _ in found])
    distances = np.concatenate([found_distances for _, found_distances in found])
    if len(rows) == 0:
        return []
    row_works = works[rows]
    order = np.lexsort((distances, row_works))  # by work, nearest first within a work
    row_works, distances = row_works[order], distances[order]
    first = np.ones(len(row_works), dtype=bool)
    first[1:] = row_works[1:] != row_works[:-1]
    row_works, distances = row_works[first], distances[first]
    order = np.lexsort((row_works, distances))[:limit]
    nearest = zip(row_works[order].tolist(), distances[order].tolist(), strict=True)
    return [(int(work), int(distance)) for work, distance in nearest]
