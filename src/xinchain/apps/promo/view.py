"""What a node shows of a promotion: its ranking (final once closed), ranks and rank receipts.

Before close the ranking shown is provisional: the same rule the chain applies at close
(payment time, then order number), computed here from the orders anchored so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from xinchain.apps.promo.contract import NAME, entry_digest, ranking_entry, ranking_key
from xinchain.errors import NotFound
from xinchain.execution.chain import ChainStore
from xinchain.merkle import MerkleTree

# Rankings kept in memory per (promotion, orders anchored): a page view must not re-read
# 50,000 orders; a new order changes the key, so a stale ranking is never served.
rankings_cached_max = 8


def promotion(app: ChainStore, promo_id: str) -> dict[str, Any]:
    record = app.read_state(NAME, promo_id)
    if record is None:
        raise NotFound(f"no promotion {promo_id!r}", field="promo")
    return dict(record)


def ranking(app: ChainStore, promo_id: str) -> list[dict[str, Any]]:
    """Ranking entries (rank from 1), final if the promotion is closed."""
    record = promotion(app, promo_id)
    return list(_ranking(app, promo_id, record["orders"], record["closed"]))


@lru_cache(maxsize=rankings_cached_max)
def _ranking(
    app: ChainStore, promo_id: str, count: int, closed: bool
) -> tuple[dict[str, Any], ...]:
    orders = [
        app.read_state(NAME, f"{promo_id}/order/{app.read_state(NAME, f'{promo_id}/at/{i}')}")
        for i in range(count)
    ]
    orders.sort(key=ranking_key)
    return tuple(ranking_entry(promo_id, rank, order) for rank, order in enumerate(orders, 1))


def rank_positions(app: ChainStore, promo_id: str) -> dict[str, int]:
    """Order number → index in the ranking (provisional or final)."""
    record = promotion(app, promo_id)
    return _positions(app, promo_id, record["orders"], record["closed"])


@lru_cache(maxsize=rankings_cached_max)
def _positions(app: ChainStore, promo_id: str, count: int, closed: bool) -> dict[str, int]:
    entries = _ranking(app, promo_id, count, closed)
    return {entry["order_no"]: index for index, entry in enumerate(entries)}


@dataclass(frozen=True)
class CommittedRanking:
    entries: tuple[dict[str, Any], ...]
    digests: list[bytes]
    tree: MerkleTree
    positions: dict[str, int]  # order number → index in `entries`


def committed_ranking(app: ChainStore, promo_id: str) -> CommittedRanking:
    """The closed promotion's ranking with its digests and tree, built once per node."""
    record = promotion(app, promo_id)
    return _committed(app, promo_id, record["orders"], record["closed"])


@lru_cache(maxsize=rankings_cached_max)
def _committed(app: ChainStore, promo_id: str, count: int, closed: bool) -> CommittedRanking:
    entries = _ranking(app, promo_id, count, closed)
    digests = [entry_digest(app.suite.hash, entry) for entry in entries]
    return CommittedRanking(
        entries=entries,
        digests=digests,
        tree=MerkleTree(app.suite.hash, digests),
        positions={entry["order_no"]: index for index, entry in enumerate(entries)},
    )


def mask_order_number(order_no: str) -> str:
    """Hide the middle of an order number: `1454****1204`, `1**4`, `**`."""
    if len(order_no) <= 2:
        return "*" * len(order_no)
    if len(order_no) <= 8:
        return order_no[0] + "*" * (len(order_no) - 2) + order_no[-1]
    return order_no[:4] + "****" + order_no[-4:]
