"""Finding registered works in a suspected copy: perceptual hashes first, local features second.

Two ways find a copy, and a match says which did:

* **hash**: a stored PDQ hash of the work (its own or one of its 25 crops') lies within
  `distance_max` bits of one of the query's PDQ hashes (index.py; its turned and upside-down
  hashes within `turned_distance_max`). Exact, fast, and enough
  for a copy that was resized, recompressed, brightened, greyed, mirrored or cut a little. The
  score is the distance: 0 is the same picture, 31 (ThreatExchange's line) the most a match
  may differ, unrelated pictures lie near 128.
* **features**: the query's ORB points find the work's registered points (feature_index.py
  narrows a million works to `candidates_max`), and features.verify finds `inliers_min` or more
  of them where one similarity transform of the picture puts them. This finds what a hash
  cannot: a copy cut by 10 % on a side, under a price banner or watermark, inside a screenshot,
  turned by a few degrees. The score is the inliers: "38 of the work's 64 points found in
  place"; different photos leave a handful by chance.

A work found both ways is reported once, with both scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from xinchain.apps.copyright import features, perceptual
from xinchain.apps.copyright.feature_codec import position_scale
from xinchain.apps.copyright.feature_index import Candidate, FeatureIndex
from xinchain.apps.copyright.features import NO_MATCH, LocalFeatures, Verification, inliers_min
from xinchain.apps.copyright.index import PdqIndex
from xinchain.apps.copyright.perceptual import DIHEDRAL, HASH_BYTES

# Works whose registered points a search verifies, the most-voted first. At a million works
# the copy's own work ranks among the first 8 for 97 % of hard copies, and 32 add 0.1 %.
candidates_max = 16
# Query points (in each orientation) that look for candidates; all of them verify.
retrieval_points_max = 500
# An orientation of the query is verified against a candidate only if its votes for it are at
# least this share of the most-voted orientation's.
orientation_votes_share = 0.5

# A search's hashes of the query turned by quarter turns or flipped upside down are looked up
# within this distance, not the whole `distance_max`: that probes a sixteenth of the buckets,
# and the lookup among 26 million hashes takes 8 ms instead of 22. A copy turned by a quarter
# and also resized and re-encoded can lie further (20 % of them, on real photos); its local
# features find it, as ORB's points do not depend on the turn.
turned_distance_max = 15
# Of an image's hashes (DIHEDRAL order): the picture as given and its mirror image (PDQ's
# derived hash and the mirrored pixels', when given: either may be the nearer), looked up
# within `distance_max`; the others are turned or upside down.
_NEAR = (0, DIHEDRAL.index("mirror"), DIHEDRAL.index("mirror_pixels"))
_TURNED = tuple(i for i in range(len(DIHEDRAL)) if i not in _NEAR)

# Candidates are verified on this many threads (numpy and OpenCV let go of the interpreter).
verify_threads = 2
_verify_threads = ThreadPoolExecutor(verify_threads, thread_name_prefix="copyright-verify")

HASH = "hash"
FEATURES = "features"


@dataclass(frozen=True)
class Found:
    """One registered work a search found, and how."""

    number: int  # the work's registration number
    methods: tuple[str, ...]  # HASH, FEATURES or both, in that order
    distance: int | None  # the least PDQ distance, when found by hash
    verification: Verification | None  # when found by features

    @property
    def inliers(self) -> int:
        return 0 if self.verification is None else self.verification.inliers


RegisteredFeatures = Callable[[int], LocalFeatures | None]


class WorkIndex:
    """Every registered work's PDQ hashes and local features, searchable together. The works'
    points stay in memory beside the index (their descriptors are the index's own rows, their
    positions 4 bytes a point), so verifying a candidate reads nothing from storage."""

    def __init__(self) -> None:
        self.hashes = PdqIndex()
        self.points = FeatureIndex()
        # Per point, its position in sixteenths of a pixel (the chain's own precision).
        self._positions = np.zeros((0, 2), dtype=np.uint16)
        # Per work number: its first point's row, its points, its frame's width and height.
        self._works = np.zeros((0, 4), dtype=np.int64)

    def add(
        self, hash_rows: Sequence[tuple[int, bytes]], described: Sequence[tuple[int, LocalFeatures]]
    ) -> None:
        """Add works: (work number, stored PDQ hash) rows, and (work number, local features)
        for the works that carry features."""
        if hash_rows:
            self.hashes.add_many(
                np.array([number for number, _ in hash_rows], dtype=np.int64),
                np.frombuffer(b"".join(row for _, row in hash_rows), dtype=np.uint8).reshape(
                    len(hash_rows), HASH_BYTES
                ),
            )
        described = [(number, found) for number, found in described if len(found)]
        if not described:
            return
        first = len(self.points)
        counts = np.array([len(found) for _, found in described], dtype=np.int64)
        numbers = np.array([number for number, _ in described], dtype=np.int64)
        positions = np.concatenate([found.points for _, found in described])
        descriptors = np.concatenate([found.descriptors for _, found in described])
        self.points.add_many(np.repeat(numbers, counts), descriptors)
        end = first + len(positions)
        if end > len(self._positions):
            grown = np.zeros((max(end, len(self._positions) * 3 // 2, 1024), 2), dtype=np.uint16)
            grown[:first] = self._positions[:first]
            self._positions = grown
        self._positions[first:end] = np.round(positions * position_scale)
        if numbers.max() >= len(self._works):
            works = np.zeros((max(int(numbers.max()) + 1, len(self._works) * 3 // 2), 4), np.int64)
            works[: len(self._works)] = self._works
            self._works = works
        self._works[numbers] = np.column_stack(
            [
                first + np.cumsum(counts) - counts,
                counts,
                [found.width for _, found in described],
                [found.height for _, found in described],
            ]
        )

    def features_of(self, number: int) -> LocalFeatures | None:
        """The local features work `number` registered, as the chain holds them; None for a
        work without any (or not indexed)."""
        works = self._works  # a concurrent addition may replace the arrays, never change rows
        if not 0 <= number < len(works) or works[number, 1] == 0:
            return None
        first, count, width, height = (int(value) for value in works[number])
        positions = self._positions[first : first + count].astype(np.float32)
        positions /= np.float32(position_scale)
        return LocalFeatures(width, height, positions, self.points.descriptors(first, count))

    def search(
        self,
        hash_queries: Sequence[bytes],
        feature_queries: Sequence[LocalFeatures],
        registered: RegisteredFeatures,
        distance_max: int,
        limit: int,
        timings: dict[str, float] | None = None,
    ) -> list[Found]:
        """Works found by hash (within `distance_max` of a query hash) or by features (the
        query's points, in each orientation given, verified against `registered(number)`).
        Found both ways first, then by hash (nearest first), then by features (most inliers
        first); at most `limit`. `timings`, if given, gets the seconds each step took
        (`hash`, `candidates`, `verify`)."""
        by_hash = self.by_hash(hash_queries, distance_max, limit, timings)
        by_features = self.by_features(feature_queries, registered, timings)
        return ranked(by_hash, by_features, limit)

    def by_hash(
        self,
        hash_queries: Sequence[bytes],
        distance_max: int,
        limit: int,
        timings: dict[str, float] | None = None,
    ) -> dict[int, int]:
        """The works within `distance_max` of a query hash, and their least distances. Given
        an image's nine hashes (DIHEDRAL) or first eight, the hashes of the picture turned or
        flipped upside down are looked up within `turned_distance_max` only; the mirror
        image's (PDQ's derived one and the mirrored pixels') within `distance_max`."""
        began = time.perf_counter()
        found: dict[int, int] = {}
        near, turned = list(hash_queries), []
        if len(hash_queries) in (len(DIHEDRAL), len(DIHEDRAL) - 1):
            near = [hash_queries[i] for i in _NEAR if i < len(hash_queries)]
            turned = [hash_queries[i] for i in _TURNED]
        if near:
            found = dict(self.hashes.search(near, distance_max, limit))
        if turned:
            radius = min(distance_max, turned_distance_max)
            for number, distance in self.hashes.search(turned, radius, limit):
                found[number] = min(distance, found.get(number, distance))
        _spent(timings, "hash", began)
        return found

    def by_features(
        self,
        feature_queries: Sequence[LocalFeatures],
        registered: RegisteredFeatures,
        timings: dict[str, float] | None = None,
    ) -> dict[int, Verification]:
        """The works whose registered points the query's find in place, in one of the
        orientations given: candidates from the index, each verified."""
        if not feature_queries or not len(self.points):
            return {}
        began = time.perf_counter()
        retrieval = [query.descriptors[:retrieval_points_max] for query in feature_queries]
        groups = np.concatenate(
            [np.full(len(rows), group, dtype=np.int64) for group, rows in enumerate(retrieval)]
        )
        candidates = self.points.candidates(np.concatenate(retrieval), candidates_max, groups)
        began = _spent(timings, "candidates", began)
        stored = [(candidate, registered(candidate.work)) for candidate in candidates]
        checked = [(candidate, points) for candidate, points in stored if points is not None]
        verified = _verify_threads.map(
            lambda item: verify_candidate(feature_queries, item[1], item[0]), checked
        )
        found: dict[int, Verification] = {}
        for (candidate, _), best in zip(checked, verified, strict=True):
            if best.matched:
                found[candidate.work] = best
        _spent(timings, "verify", began)
        return found


def _spent(timings: dict[str, float] | None, step: str, began: float) -> float:
    """Add the time since `began` to `timings[step]`; now."""
    now = time.perf_counter()
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + now - began
    return now


def ranked(
    by_hash: dict[int, int], by_features: dict[int, Verification], limit: int
) -> list[Found]:
    """The works found by hash (work: least distance) and by features (work: verification):
    found both ways first, then by hash (nearest first), then by features (most inliers
    first); at most `limit`."""
    found = []
    for number in set(by_hash) | set(by_features):
        methods = (HASH,) * (number in by_hash) + (FEATURES,) * (number in by_features)
        found.append(Found(number, methods, by_hash.get(number), by_features.get(number)))
    found.sort(
        key=lambda item: (
            -len(item.methods),
            item.distance if item.distance is not None else 257,
            -item.inliers,
            item.number,
        )
    )
    return found[:limit]


def copy_evidence(record: dict[str, Any], data: bytes) -> dict[str, Any]:
    """What a piece of evidence says of a copy (the image `data`) of the work `record`: its
    PDQ hash in the orientation nearest the work's stored hashes (`copy_pdq`, empty for a
    picture too flat to hash) and, when the work registered local features, how many of its
    points the copy shows in place (`inliers`, 0 unless they make a match). Raises
    ImageInvalid for what is no image."""
    rgb = perceptual.load_rgb(data)
    stored = [bytes.fromhex(text) for text in [record["pdq"], *record["crops"]]]
    try:
        hashes = perceptual.hash_pixels(rgb).hashes
        nearest = min(hashes, key=lambda query: min(perceptual.distance(query, s) for s in stored))
        found: dict[str, Any] = {"copy_pdq": nearest.hex()}
    except perceptual.ImageInvalid:
        found = {"copy_pdq": ""}
    if "features" in record:
        registered = LocalFeatures.decode(record["features"])
        queries = features.query_features(Image.fromarray(rgb))
        best = best_verification(queries, registered)
        # Points "in place" only where a transform a copy could have put them there.
        found["inliers"] = best.inliers if best.matched else 0
    return found


def verify_candidate(
    queries: Sequence[LocalFeatures], registered: LocalFeatures, candidate: Candidate
) -> Verification:
    """The candidate verified in the orientations that voted for it, the most-voted first,
    until one matches; an orientation with under `orientation_votes_share` of the best one's
    score is not tried (a mirror image's points vote for the mirror orientation)."""
    best = NO_MATCH
    first_score = candidate.groups[0][1] if candidate.groups else 0.0
    for group, score in candidate.groups:
        if score < orientation_votes_share * first_score:
            break
        found = features.verify(queries[group], registered, least=inliers_min)
        if found.matched:
            return found
        best = max(best, found, key=lambda verification: verification.inliers)
    return best


def best_verification(queries: Sequence[LocalFeatures], registered: LocalFeatures) -> Verification:
    """The verification of the orientation of the query that finds the most points."""
    return max(
        (features.verify(query, registered) for query in queries),
        key=lambda verification: verification.inliers,
    )
