"""The storage interface every backend implements (STYLE.md §6).

A store is a set of tables of byte keys to byte values. All writes go through
`atomic_batch()`: the batch commits whole when the `with` block ends normally, or not at all.
A durable backend has made the batch survive power loss before `atomic_batch()` returns.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Table(enum.StrEnum):
    META = "meta"  # chain tip, genesis hash, schema version
    BLOCKS = "blocks"  # height → encoded {header, txs}
    RESULTS = "results"  # height → encoded [TxResult]
    CERTIFICATES = "certificates"  # height → encoded CommitCertificate
    TX_INDEX = "tx_index"  # tx id → encoded [height, index]; also the replay guard
    STATE = "state"  # contract key → encoded value
    # Indexes that apps query, derived from their block's transactions and written with it
    # (document hash → anchors): not in the state hash, and never read by contracts.
    INDEX = "index"
    LOCAL = "local"  # this node's own records (scan counts): never part of consensus


class Batch(Protocol):
    def put(self, table: Table, key: bytes, value: bytes) -> None: ...

    def delete(self, table: Table, key: bytes) -> None: ...

    def put_many(self, table: Table, items: list[tuple[bytes, bytes]]) -> None:
        """Put every (key, value); cheapest with the items in key order."""
        ...


class Store(Protocol):
    def get(self, table: Table, key: bytes) -> bytes | None: ...

    def get_many(self, table: Table, keys: list[bytes]) -> dict[bytes, bytes]:
        """The values of those `keys` that are present, in one read."""
        ...

    def atomic_batch(self) -> AbstractContextManager[Batch]: ...

    def scan_prefix(self, table: Table, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def scan_range(self, table: Table, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries with start <= key < end, in key (byte) order."""
        ...

    def close(self) -> None: ...


def height_key(height: int) -> bytes:
    """Heights as 8-byte big-endian keys, so that byte order is height order."""
    return height.to_bytes(8, "big")
