"""What a node shows of registered works: near-duplicate search, an org's works and evidence,
and receipts.

The search index is node-local and derived from committed state: it holds every stored PDQ
hash of every work (its own and its crops'), keyed by the work's registration number. It
catches up with the chain on each search, loading the works registered since (``at/<n>``), so
a node restarted with a million works pays the load once, on its first search.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xinchain.apps.copyright.contract import NAME, record_digest
from xinchain.apps.copyright.features import LocalFeatures
from xinchain.apps.copyright.matching import WorkIndex
from xinchain.apps.copyright.perceptual import DIHEDRAL, HASH_BYTES, distance, match_distance_max
from xinchain.errors import NotFound
from xinchain.execution.chain import ChainStore
from xinchain.merkle import MerkleTree
from xinchain.receipt import build_receipts
from xinchain.types import Transaction

# Works or pieces of evidence one listing returns.
listed_max = 200


@dataclass(frozen=True)
class Match:
    work: dict[str, Any]
    distance: int  # the least PDQ distance between the query's hashes and the work's
    orientation: str  # which dihedral variant of the query matched best
    found_by: tuple[str, ...]  # "hash", "features" or both (matching.py)
    inliers: int  # the work's registered points found in place (0 when not by features)
    points: int  # the points the work registered (0 without local features)


class CopyrightView:
    def __init__(self, app: ChainStore) -> None:
        self.app = app
        self._index = WorkIndex()
        self._loaded = 0
        self._shas: list[str] = []
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        """Load the works registered since the last search, in one bulk add."""
        with self._lock:
            count = self.app.read_state(NAME, "count") or 0
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
            try:
                self._index.add(rows, described)
            except BaseException:
                # Half an addition would leave work numbers and rows apart: start afresh on
                # the next search rather than answer from a mixed index.
                self._index, self._loaded, self._shas = WorkIndex(), 0, []
                raise
            self._shas.extend(shas)
            self._loaded = count

    def _registered(self, number: int) -> LocalFeatures | None:
        record = work(self.app, self._shas[number])
        return LocalFeatures.decode(record["features"]) if "features" in record else None

    def search(
        self,
        queries: list[bytes],
        distance_max: int = match_distance_max,
        limit: int = 20,
        feature_queries: Sequence[LocalFeatures] = (),
    ) -> list[Match]:
        """Works within `distance_max` of any query hash (the eight dihedral hashes of an
        image and its mirror's, in DIHEDRAL order, or just one), or whose registered points
        the query's local features find in place (matching.py); found both ways first, then
        nearest, then most inliers."""
        self._catch_up()
        matches = []
        found = self._index.search(queries, feature_queries, self._registered, distance_max, limit)
        for item in found:
            record = work(self.app, self._shas[item.number])
            stored = [bytes.fromhex(h) for h in [record["pdq"], *record["crops"]]]
            nearest = [min(distance(query, s) for s in stored) for query in queries]
            best = min(range(len(queries)), key=nearest.__getitem__) if queries else 0
            orientation = DIHEDRAL[best] if len(queries) == len(DIHEDRAL) else "original"
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

    def indexed(self) -> int:
        self._catch_up()
        return len(self._index.hashes)


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
