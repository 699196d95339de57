"""Block, state and index storage behind one interface (LMDB for real, memory for tests)."""

from xinchain.storage.interface import Batch, Store, Table, height_key
from xinchain.storage.lmdb_store import LmdbStore
from xinchain.storage.memory import MemoryStore

__all__ = ["Batch", "LmdbStore", "MemoryStore", "Store", "Table", "height_key"]
