"""How often and from where each item's code was scanned on this node: node-local counts,
never part of consensus, that make a copied code visible (DESIGN.md: counterfeit flags).

A scan is counted in memory on the request path, with no disk write: the page stays as fast as
a read. A node task writes the counts gathered since the last write to the node-local table
every `scan_flush_interval_s`, in one atomic batch, and once more when the node stops. A crash
(power cut, SIGKILL) loses at most the scans of the last `scan_flush_interval_s`; a clean stop
loses none.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from xinchain import codec
from xinchain.execution.chain import ChainStore
from xinchain.node.node import Node

# Counts gathered in memory are written this often: the most a crash can lose.
scan_flush_interval_s = 2.0
# Places (a scanner's network, or the place a scanner app reports) kept per item.
places_kept_max = 16
_PREFIX = b"scan/"


def _key(epc: str) -> bytes:
    return _PREFIX + epc.encode()


def _empty() -> dict[str, Any]:
    return {"count": 0, "places": [], "first_ms": 0, "last_ms": 0}


class ScanCounter:
    """One node's scan counts: the stored ones, and those not written yet."""

    def __init__(self, chain: ChainStore) -> None:
        self._chain = chain
        self._pending: dict[str, dict[str, Any]] = {}
        self._writing: dict[str, dict[str, Any]] = {}  # taken by a flush, not written yet
        self._lock = threading.Lock()  # pages are served from worker threads; held briefly
        self._flushing = threading.Lock()  # one flush at a time

    def record(self, epc: str) -> dict[str, Any]:
        """The item's counts as of now, written or not."""
        with self._lock:
            known = self._unwritten(epc)
            if known is not None:
                return dict(known)
        return self._stored(epc)

    def count(self, epc: str, place: str) -> dict[str, Any]:
        """Count one scan of `epc` from `place`; returns the new counts."""
        now = int(time.time() * 1000)
        with self._lock:
            record = self._unwritten(epc)
            if record is None:
                record = self._stored(epc)
            places = list(record["places"])
            if place and place not in places and len(places) < places_kept_max:
                places.append(place)
            record = {
                "count": record["count"] + 1,
                "places": places,
                "first_ms": record["first_ms"] or now,
                "last_ms": now,
            }
            self._pending[epc] = record
            return dict(record)

    def flush(self) -> int:
        """Write the counts gathered since the last flush; returns how many items. Scans go on
        being counted while the batch is written (the page never waits for the disk)."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._writing = batch
            if not batch:
                return 0
            try:
                self._chain.local_write(
                    {_key(epc): codec.encode(record) for epc, record in batch.items()}
                )
            except Exception:
                with self._lock:  # not written: keep them, under any newer counts
                    self._pending = {**batch, **self._pending}
                    self._writing = {}
                raise
            with self._lock:
                self._writing = {}
            return len(batch)

    def all(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every counted item with its counts, written or not."""
        with self._lock:
            pending = {**self._writing, **self._pending}
        for key, raw in self._chain.local_scan(_PREFIX):
            epc = key.removeprefix(_PREFIX).decode()
            yield epc, pending.pop(epc) if epc in pending else dict(codec.decode(raw))
        yield from pending.items()

    def _unwritten(self, epc: str) -> dict[str, Any] | None:
        """Counts not on disk yet (the caller holds the lock)."""
        pending = self._pending.get(epc)
        return pending if pending is not None else self._writing.get(epc)

    def _stored(self, epc: str) -> dict[str, Any]:
        raw = self._chain.local_get(_key(epc))
        return _empty() if raw is None else dict(codec.decode(raw))


_COUNTERS: weakref.WeakKeyDictionary[ChainStore, ScanCounter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def scans(chain: ChainStore) -> ScanCounter:
    """The scan counter of the node whose chain store this is (one a node)."""
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(chain)
        if counter is None:
            counter = _COUNTERS[chain] = ScanCounter(chain)
        return counter


async def flush_scans_forever(node: Node) -> None:
    """The node task that writes scan counts, and writes the last ones when the node stops."""
    counter = scans(node.chain)
    try:
        while True:
            await asyncio.sleep(scan_flush_interval_s)
            counter.flush()
    finally:
        counter.flush()
