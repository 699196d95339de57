"""In-memory backend for tests and the simulator: same contract as LMDB, no durability."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from xinchain.storage.interface import Table


class MemoryBatch:
    def __init__(self) -> None:
        self.writes: list[tuple[Table, bytes, bytes | None]] = []

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        self.writes.append((table, bytes(key), bytes(value)))

    def delete(self, table: Table, key: bytes) -> None:
        self.writes.append((table, bytes(key), None))

    def put_many(self, table: Table, items: list[tuple[bytes, bytes]]) -> None:
        for key, value in items:
            self.put(table, key, value)


class MemoryStore:
    def __init__(self) -> None:
        self._tables: dict[Table, dict[bytes, bytes]] = {table: {} for table in Table}

    def get(self, table: Table, key: bytes) -> bytes | None:
        return self._tables[table].get(key)

    def get_many(self, table: Table, keys: list[bytes]) -> dict[bytes, bytes]:
        stored = self._tables[table]
        return {key: stored[key] for key in keys if key in stored}

    @contextmanager
    def atomic_batch(self) -> Iterator[MemoryBatch]:
        batch = MemoryBatch()
        yield batch  # an exception here propagates and nothing is applied
        for table, key, value in batch.writes:
            if value is None:
                self._tables[table].pop(key, None)
            else:
                self._tables[table][key] = value

    def scan_prefix(self, table: Table, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._tables[table] if k.startswith(prefix)):
            yield key, self._tables[table][key]

    def scan_range(self, table: Table, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        stored = self._tables[table]
        for key in sorted(k for k in stored if start <= k < end):
            yield key, stored[key]

    def close(self) -> None:
        pass
