"""LMDB backend: one environment per node, one named database per table.

LMDB's copy-on-write B+tree makes each write transaction atomic, and with `sync=True` the
commit returns only after fsync, so a batch either survives a kill -9 or power loss whole or
is absent whole. One writer at a time is all we need: the node has one writer task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from xinchain.storage.interface import Table
from xinchain.storage.space import DiskSpace, is_out_of_space

# Address space reserved for the map, not disk used: the file grows as data arrives. 1 TiB
# holds billions of notary records before the node would need restarting with a larger map.
map_bytes_max = 1 << 40


class LmdbBatch:
    def __init__(self, txn: lmdb.Transaction, databases: dict[Table, Any]) -> None:
        self._txn = txn
        self._databases = databases

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._databases[table])

    def delete(self, table: Table, key: bytes) -> None:
        self._txn.delete(key, db=self._databases[table])

    def put_many(self, table: Table, items: list[tuple[bytes, bytes]]) -> None:
        self._txn.cursor(db=self._databases[table]).putmulti(items)


class LmdbStore:
    def __init__(self, path: Path, space: DiskSpace | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        # Checked before every write batch; the node sets its marks from node.json.
        self.space = space or DiskSpace(path)
        self._env = lmdb.open(
            str(path),
            map_size=map_bytes_max,
            max_dbs=len(Table) + 4,
            sync=True,
            metasync=True,
            readahead=False,
            max_readers=256,
        )
        self._databases = {table: self._env.open_db(table.value.encode()) for table in Table}

    def get(self, table: Table, key: bytes) -> bytes | None:
        with self._env.begin(db=self._databases[table], buffers=False) as txn:
            value = txn.get(key)
        return None if value is None else bytes(value)

    def get_many(self, table: Table, keys: list[bytes]) -> dict[bytes, bytes]:
        with self._env.begin(db=self._databases[table], buffers=False) as txn:
            found = txn.cursor().getmulti(keys)
        return {bytes(key): bytes(value) for key, value in found}

    @contextmanager
    def atomic_batch(self) -> Iterator[LmdbBatch]:
        self.space.check()
        try:
            with self._env.begin(write=True) as txn:
                yield LmdbBatch(txn, self._databases)
        except lmdb.Error as exc:
            # The transaction was aborted whole. LMDB reports a disk that filled up as
            # ENOSPC, or as EIO when the kernel refused to extend the file.
            low = self.space.free_bytes() < self.space.stop_below_bytes
            if is_out_of_space(exc) or ("Input/output error" in str(exc) and low):
                raise self.space.full() from exc
            raise

    def scan_prefix(self, table: Table, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._env.begin(db=self._databases[table]) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not bytes(key).startswith(prefix):
                    return
                yield bytes(key), bytes(value)

    def scan_range(self, table: Table, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._env.begin(db=self._databases[table]) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return
            for key, value in cursor:
                if bytes(key) >= end:
                    return
                yield bytes(key), bytes(value)

    def close(self) -> None:
        self._env.close()
