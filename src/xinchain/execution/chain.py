"""The query side of the application (CometBFT's query connection): what the API, the apps'
read models and the receipts read, from what commits wrote.

`ChainStore` never writes consensus data: blocks, results, certificates, the transaction
index, the state and the derived index are written only by `Application.commit`, in one atomic
batch. The one thing it writes is the node-local table (`Table.LOCAL`), data a node keeps for
itself and never agrees on with others (e.g. how often an item's code was scanned here).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from xinchain import codec
from xinchain.genesis import Genesis
from xinchain.storage import Store, Table, height_key
from xinchain.types import Block, BlockHeader, ChainTip, CommitCertificate, TxResult

# Blocks whose decoded results ChainStore keeps.
results_cached_max = 16


class ChainStore:
    def __init__(self, store: Store, genesis: Genesis, tip: Callable[[], ChainTip]) -> None:
        self._store = store
        self.genesis = genesis
        self.suite = genesis.suite
        self.genesis_hash = genesis.hash_hex()
        self.tip = tip
        # The results of the last few committed blocks, decoded: every gateway call that waits
        # for its commit reads the results of the block that holds it, and many calls share a
        # block. Committed results never change.
        self._results: OrderedDict[int, tuple[TxResult, ...]] = OrderedDict()

    # --- blocks and transactions ---------------------------------------------------------------

    def block(self, height: int) -> Block | None:
        raw = self._store.get(Table.BLOCKS, height_key(height))
        if raw is None:
            return None
        value = codec.decode(raw)
        return Block(BlockHeader.from_value(value["header"]), tuple(value["txs"]))

    def results(self, height: int) -> list[TxResult]:
        cached = self._results.get(height)
        if cached is not None:
            return list(cached)
        raw = self._store.get(Table.RESULTS, height_key(height))
        if raw is None:
            return []
        decoded = tuple(TxResult.from_value(item) for item in codec.decode(raw))
        self._results[height] = decoded
        if len(self._results) > results_cached_max:
            self._results.popitem(last=False)
        return list(decoded)

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self._store.get(Table.CERTIFICATES, height_key(height))
        return None if raw is None else CommitCertificate.from_value(codec.decode(raw))

    def tx_locations(self, tx_ids: list[str]) -> dict[str, tuple[int, int]]:
        """(height, index) of those of `tx_ids` that are committed, in one read."""
        found = self._store.get_many(Table.TX_INDEX, [bytes.fromhex(tx_id) for tx_id in tx_ids])
        return {key.hex(): _location(raw) for key, raw in found.items()}

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        raw = self._store.get(Table.TX_INDEX, bytes.fromhex(tx_id))
        return None if raw is None else _location(raw)

    # --- state and the derived index -----------------------------------------------------------

    def read_state(self, contract: str, key: str) -> Any:
        """A contract's committed record at `key`, decoded; None if there is none."""
        raw = self._store.get(Table.STATE, f"{contract}/{key}".encode())
        return None if raw is None else codec.decode(raw)

    def scan_state(self, contract: str, prefix: str) -> Iterator[tuple[str, Any]]:
        """A contract's records whose keys start with `prefix`, in key order: (key, record)."""
        start = f"{contract}/".encode()
        for key, raw in self._store.scan_prefix(Table.STATE, start + prefix.encode()):
            yield key[len(start) :].decode(), codec.decode(raw)

    def scan_state_range(self, contract: str, start: str, end: str) -> Iterator[tuple[str, Any]]:
        """A contract's records with start <= key < end, in key order: (key, record)."""
        for key, raw in self._state_range(contract, start, end):
            yield key, codec.decode(raw)

    def scan_state_keys(self, contract: str, start: str, end: str) -> Iterator[str]:
        """The keys alone of `scan_state_range`: nothing decoded."""
        for key, _ in self._state_range(contract, start, end):
            yield key

    def _state_range(self, contract: str, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        prefix = f"{contract}/".encode()
        entries = self._store.scan_range(
            Table.STATE, prefix + start.encode(), prefix + end.encode()
        )
        for key, raw in entries:
            yield key[len(prefix) :].decode(), raw

    def index_get(self, key: bytes) -> bytes | None:
        return self._store.get(Table.INDEX, key)

    def index_scan(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """The first `limit` index entries whose keys start with `prefix`, in key order."""
        return list(itertools.islice(self._store.scan_prefix(Table.INDEX, prefix), limit))

    # --- node-local data -----------------------------------------------------------------------

    def local_get(self, key: bytes) -> bytes | None:
        return self._store.get(Table.LOCAL, key)

    def local_scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._store.scan_prefix(Table.LOCAL, prefix)

    def local_write(self, items: dict[bytes, bytes]) -> None:
        """Write node-local entries in one atomic, durable batch."""
        with self._store.atomic_batch() as batch:
            for key, value in items.items():
                batch.put(Table.LOCAL, key, value)


def _location(raw: bytes) -> tuple[int, int]:
    height, index = codec.decode(raw)
    return int(height), int(index)
