"""State overlays used while executing a block, and the app-state hash.

Execution never writes to the store: it reads through an overlay and returns the writes, which
`commit` applies in the same atomic batch as the block (execution/app.py). That is what lets a
proposer execute a block speculatively and a BFT validator re-execute a proposal before voting.

The app-state hash chains the write sets: state_hash(h) = H(encode({"previous":
state_hash(h-1), "writes": sorted [key, value-or-null]})). Two nodes agree on it exactly when
they applied the same writes in the same blocks; it is cheap (linear in the writes of one
block) and needs no tree over the whole state.
"""

from __future__ import annotations

from typing import Protocol

from xinchain import codec
from xinchain.crypto import Suite


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


def get_many(state: StateReader, keys: list[bytes]) -> dict[bytes, bytes | None]:
    """The values of `keys` (None where absent), in one read of the store where it can."""
    bulk = getattr(state, "get_many", None)
    if bulk is not None:
        found: dict[bytes, bytes | None] = bulk(keys)
        return found
    return {key: state.get(key) for key in keys}


class Overlay:
    """Reads fall through to `base`; writes stay here until `merge_into` or discard."""

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self.writes: dict[bytes, bytes | None] = {}
        # Entries for the derived index (Table.INDEX), kept or discarded with the writes.
        self.indexed: list[tuple[bytes, bytes]] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self._base.get(key)

    def get_many(self, keys: list[bytes]) -> dict[bytes, bytes | None]:
        found = get_many(self._base, [key for key in keys if key not in self.writes])
        for key in keys:
            if key in self.writes:
                found[key] = self.writes[key]
            else:
                found.setdefault(key, None)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def merge_into(self, parent: Overlay) -> None:
        parent.writes.update(self.writes)
        parent.indexed.extend(self.indexed)


def next_state_hash(suite: Suite, previous_hex: str, writes: dict[bytes, bytes | None]) -> str:
    entries = [[key, writes[key]] for key in sorted(writes)]
    # Keys and values are bytes (or null) by construction: no model check needed.
    return suite.hash(codec.encode_checked({"previous": previous_hex, "writes": entries})).hex()
