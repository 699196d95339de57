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

from collections.abc import Iterator
from typing import Protocol

from xinchain import codec
from xinchain.crypto import Suite


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class RangeReader(Protocol):
    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries with start <= key < end, in key (byte) order."""
        ...


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
        # `base` answers `scan` too where contracts read ranges (the node's committed state,
        # and every overlay above it).
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

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The base's entries in [start, end) as these writes change them, in key order. The
        writes in range are sorted once a call: a contract scans a range a few times a block,
        not once a key."""
        scan = getattr(self._base, "scan", None)
        if scan is None:
            raise TypeError(f"{type(self._base).__name__} cannot read a range of keys")
        changed = sorted((key, value) for key, value in self.writes.items() if start <= key < end)
        below: Iterator[tuple[bytes, bytes]] = scan(start, end)
        mine = iter(changed)
        theirs = next(below, None)
        own = next(mine, None)
        while theirs is not None or own is not None:
            if own is None or (theirs is not None and theirs[0] < own[0]):
                assert theirs is not None
                yield theirs
                theirs = next(below, None)
                continue
            if theirs is not None and theirs[0] == own[0]:
                theirs = next(below, None)
            if own[1] is not None:
                yield own[0], own[1]
            own = next(mine, None)

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
