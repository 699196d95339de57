"""What a node shows of registered works: near-duplicate search, an org's works and evidence,
and receipts.

The search index is node-local and derived from committed state: it holds every stored PDQ
hash of every work (its own and its crops'), keyed by the work's registration number. It
catches up with the chain on each search, loading the works registered since (``at/<n>``), so
a node restarted with a million works pays the load once, on its first search.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xinchain.apps.copyright.contract import NAME, record_digest
from xinchain.apps.copyright.features import LocalFeatures, Verification
from xinchain.apps.copyright.matching import WorkIndex, ranked
from xinchain.apps.copyright.perceptual import DIHEDRAL, HASH_BYTES, distance, match_distance_max
from xinchain.errors import NotFound
from xinchain.execution.chain import ChainStore
from xinchain.merkle import MerkleTree
from xinchain.receipt import build_receipts
from xinchain.types import Transaction

# Works or pieces of evidence one listing returns.
listed_max = 200
# The search index loads works this many at a time (its lock is free between loads).
load_chunk_works = 4096
# A search waits for the index to load at most this many newly registered works first; further
# behind (a first search over a large registry), it answers from the index as it stands.
wait_backlog_max = 10_000
follow_interval_s = 0.2
follow_retry_s = 5.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    work: dict[str, Any]
    distance: int  # the least PDQ distance between the query's hashes and the work's
    orientation: str  # which dihedral variant of the query matched best
    found_by: tuple[str, ...]  # "hash", "features" or both (matching.py)
    inliers: int  # the work's registered points found in place (0 when not by features)
    points: int  # the points the work registered (0 without local features)


class CopyrightView:
    """Searches over the node's index of registered works. The index is built by a follower
    thread that a node starts on its first search (a node never asked to search spends no
    memory on it) and that then loads works as they commit, `load_chunk_works` at a time."""

    def __init__(self, app: ChainStore) -> None:
        self.app = app
        self._index = WorkIndex()
        self._loaded = 0
        self._shas: list[str] = []
        self._lock = threading.Lock()  # one load at a time
        self._start_lock = threading.Lock()
        self._follower: threading.Thread | None = None
        self._stopping = threading.Event()

    def _registered_count(self) -> int:
        return int(self.app.read_state(NAME, "count") or 0)

    def _load(self, most: int) -> int:
        """Load up to `most` of the works registered since the last load; how many."""
        with self._lock:
            count = min(self._registered_count(), self._loaded + most)
            rows: list[tuple[int, bytes]] = []
            described: list[tuple[int, LocalFeatures]] = []
            shas = []
            for number in range(self._loaded, count):
                sha = str(self.app.read_state(NAME, f"at/{number}"))
                record = work(self.app, sha)
                rows.extend(
                    (number, bytes.fromhex(text)) for text in [record["pdq"], *record["crops"]]
                )
                if "features" in record:
                    described.append((number, LocalFeatures.decode(record["features"])))
                shas.append(sha)
            # The works' SHA-256s first: a search running meanwhile may find them in the index.
            self._shas.extend(shas)
            try:
                self._index.add(rows, described)
            except BaseException:
                # Half an addition would leave work numbers and rows apart: start afresh
                # rather than answer from a mixed index.
                self._index, self._loaded, self._shas = WorkIndex(), 0, []
                raise
            loaded = count - self._loaded
            self._loaded = count
            return loaded

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                loaded = self._load(load_chunk_works)
            except Exception:
                log.exception("copyright index: loading works failed; retrying")
                loaded = 0
                self._stopping.wait(follow_retry_s)
            if not loaded:
                self._stopping.wait(follow_interval_s)

    def start_following(self) -> None:
        with self._start_lock:
            if self._follower is None:
                self._follower = threading.Thread(
                    target=self._follow, name="copyright-index", daemon=True
                )
                self._follower.start()

    def close(self) -> None:
        self._stopping.set()
        if self._follower is not None:
            self._follower.join(timeout=10.0)

    def _catch_up(self) -> None:
        """Start the follower; then, unless the index is more than `wait_backlog_max` works
        behind (a node's first search over a large registry), load the rest now, so that a
        search finds what committed before it."""
        self.start_following()
        registered = self._registered_count()
        if registered - self._loaded > wait_backlog_max:
            return
        while self._loaded < registered:
            self._load(registered - self._loaded)

    def status(self) -> dict[str, int | bool]:
        """How far the index is: works registered, works indexed, their points and hashes."""
        return {
            "registered": self._registered_count(),
            "indexed": self._loaded,
            "hashes": len(self._index.hashes),
            "points": len(self._index.points),
            "following": self._follower is not None,
        }

    def search(
        self,
        queries: list[bytes],
        distance_max: int = match_distance_max,
        limit: int = 20,
        feature_queries: Sequence[LocalFeatures] = (),
        timings: dict[str, float] | None = None,
    ) -> list[Match]:
        """Works within `distance_max` of any query hash (the eight dihedral hashes of an
        image and its mirror's, in DIHEDRAL order, or just one), or whose registered points
        the query's local features find in place (matching.py); found both ways first, then
        nearest, then most inliers."""
        by_hash = self.by_hash(queries, distance_max, limit, timings)
        by_features = self.by_features(feature_queries, timings)
        return self.matches(queries, by_hash, by_features, limit)

    def by_hash(
        self,
        queries: list[bytes],
        distance_max: int = match_distance_max,
        limit: int = 20,
        timings: dict[str, float] | None = None,
    ) -> dict[int, int]:
        """The works within `distance_max` of a query hash: their least distances."""
        self._catch_up()
        return self._index.by_hash(queries, distance_max, limit, timings)

    def by_features(
        self, feature_queries: Sequence[LocalFeatures], timings: dict[str, float] | None = None
    ) -> dict[int, Verification]:
        """The works whose registered points the query's find in place (matching.py)."""
        self._catch_up()
        index = self._index
        return index.by_features(feature_queries, index.features_of, timings)

    def matches(
        self,
        queries: list[bytes],
        by_hash: dict[int, int],
        by_features: dict[int, Verification],
        limit: int = 20,
    ) -> list[Match]:
        """The works found by hash and by features, as a search answers them: found both
        ways first, then nearest, then most inliers; at most `limit`."""
        matches = []
        shas = self._shas  # a failed load replaces the list; its works are not answered
        found = ranked(by_hash, by_features, limit)
        for item in found:
            if item.number >= len(shas):
                continue
            record = work(self.app, shas[item.number])
            stored = [bytes.fromhex(h) for h in [record["pdq"], *record["crops"]]]
            nearest = [min(distance(query, s) for s in stored) for query in queries]
            best = min(range(len(queries)), key=nearest.__getitem__) if queries else 0
            orientation = DIHEDRAL[best] if len(queries) >= len(DIHEDRAL) - 1 else "original"
            points = item.verification.registered if item.verification is not None else 0
            if not points and "features" in record:
                points = len(LocalFeatures.decode(record["features"]))
            matches.append(
                Match(
                    work=record,
                    distance=min(nearest) if nearest else HASH_BYTES * 8,
                    orientation=orientation,
                    found_by=item.methods,
                    inliers=item.inliers,
                    points=points,
                )
            )
        return matches


def stored_work(app: ChainStore, sha256: str) -> dict[str, Any]:
    stored = app.read_state(NAME, f"work/{sha256}")
    if stored is None:
        raise NotFound(f"no registered work with SHA-256 {sha256}", field="sha256")
    return dict(stored)


def work(app: ChainStore, sha256: str) -> dict[str, Any]:
    return dict(stored_work(app, sha256)["record"])


def stored_evidence(app: ChainStore, evidence_id: str) -> dict[str, Any]:
    stored = app.read_state(NAME, f"evidence/{evidence_id}")
    if stored is None:
        raise NotFound(f"no evidence {evidence_id}", field="evidence")
    return dict(stored)


def evidence_of_work(app: ChainStore, sha256: str) -> list[dict[str, Any]]:
    count = app.read_state(NAME, f"of/{sha256}/count") or 0
    ids = [app.read_state(NAME, f"of/{sha256}/{i:08d}") for i in range(min(count, listed_max))]
    return [{"id": i, **stored_evidence(app, str(i))["record"]} for i in ids]


def org_works(app: ChainStore, org: str, seller: str | None = None) -> list[dict[str, Any]]:
    """Works the org registered (its own and its sellers'), newest first, each with the
    number of pieces of evidence recorded about it (`evidence`)."""
    shas = [str(sha) for _, sha in app.scan_state(NAME, f"owner/{org}/")]
    found = []
    for sha in reversed(shas):
        record = work(app, sha)
        if seller is None or record["seller"] == seller:
            found.append({**record, "evidence": app.read_state(NAME, f"of/{sha}/count") or 0})
            if len(found) >= listed_max:
                break
    return found


def org_evidence(app: ChainStore, org: str) -> list[dict[str, Any]]:
    """Evidence the org recorded, newest first."""
    count = app.read_state(NAME, f"by/{org}/count") or 0
    found = []
    for i in range(count - 1, max(count - listed_max, 0) - 1, -1):
        evidence_id = str(app.read_state(NAME, f"by/{org}/{i:012d}"))
        found.append({"id": evidence_id, **stored_evidence(app, evidence_id)["record"]})
    return found


def _tx_body_args(app: ChainStore, tx_id: str) -> dict[str, Any]:
    location = app.tx_location(tx_id)
    block = None if location is None else app.block(location[0])
    if location is None or block is None:
        raise NotFound(f"transaction {tx_id} is not stored on this node", field="tx_id")
    return dict(Transaction.decode(block.txs[location[1]]).body.args)


def work_receipt(app: ChainStore, proof_of: Any, sha256: str) -> dict[str, Any]:
    """The receipt of a work's registration: it carries the work record. `proof_of` maps a
    transaction id to its TxProof (Node.tx_proof)."""
    stored = stored_work(app, sha256)
    args = _tx_body_args(app, stored["tx_id"])
    records = [work(app, str(item["sha256"])) for item in args["works"]]
    digests = [record_digest(app.suite.hash, record) for record in records]
    return build_receipts(
        proof_of(stored["tx_id"]),
        digests,
        positions=[stored["position"]],
        records=records,
        record_field="work",
        tree=MerkleTree(app.suite.hash, digests),
    )[0]


def evidence_receipt(app: ChainStore, proof_of: Any, evidence_id: str) -> dict[str, Any]:
    stored = stored_evidence(app, evidence_id)
    record = stored["record"]
    return build_receipts(
        proof_of(stored["tx_id"]),
        [record_digest(app.suite.hash, record)],
        records=[record],
        record_field="evidence",
    )[0]
