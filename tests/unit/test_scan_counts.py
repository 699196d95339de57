"""Scan counts of the public scan page (apps/provenance/scans.py).

* Counting a scan writes nothing to the store: the count is in memory until a flush, so the
  page does no disk write (no LMDB commit, no fsync) on its request path.
* A flush writes every count gathered since the last one in one batch; counts and places read
  the same before and after it, and `all` lists written and unwritten items alike.
* A crash before a flush loses exactly the scans since the last flush (the stated window); a
  node that stops cleanly flushes first and loses none.
* Places are bounded; a failed write keeps the counts for the next flush.
* Counting from several threads at once loses no scan.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from chain_helpers import make_consortium

from xinchain.apps.provenance.scans import ScanCounter, places_kept_max
from xinchain.execution.chain import ChainStore
from xinchain.storage import LmdbStore, Store, Table
from xinchain.types import ChainTip

EPC = "urn:epc:id:sgtin:0614141.107346.2017"


class CountingStore:
    """Counts atomic batches: each is a durable commit on LMDB."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.batches = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def atomic_batch(self) -> object:
        self.batches += 1
        return self.inner.atomic_batch()


def chain_over(store: object) -> ChainStore:
    genesis = make_consortium("ed25519-sha256").genesis
    return ChainStore(store, genesis, lambda: ChainTip(0, "", "", 0))  # type: ignore[arg-type]


@pytest.fixture
def lmdb(tmp_path: Path) -> LmdbStore:
    return LmdbStore(tmp_path / "data")


def test_counting_writes_nothing_until_a_flush(lmdb: LmdbStore) -> None:
    store = CountingStore(lmdb)
    counter = ScanCounter(chain_over(store))
    for index in range(100):
        record = counter.count(EPC, f"place-{index % 3}")
    assert store.batches == 0
    assert record["count"] == 100 and sorted(record["places"]) == ["place-0", "place-1", "place-2"]
    assert lmdb.get(Table.LOCAL, b"scan/" + EPC.encode()) is None
    assert counter.flush() == 1
    assert store.batches == 1
    assert counter.record(EPC) == record
    assert counter.flush() == 0 and store.batches == 1  # nothing new: no write


def test_a_crash_loses_only_the_scans_since_the_last_flush(tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = LmdbStore(path)
    counter = ScanCounter(chain_over(store))
    for _ in range(7):
        counter.count(EPC, "a")
    counter.flush()
    for _ in range(3):
        counter.count(EPC, "b")  # the window a crash loses
    store.close()  # the process dies here: no flush
    reopened = ScanCounter(chain_over(LmdbStore(path)))
    assert reopened.record(EPC)["count"] == 7
    assert reopened.record(EPC)["places"] == ["a"]


def test_all_lists_written_and_unwritten_items(lmdb: LmdbStore) -> None:
    counter = ScanCounter(chain_over(lmdb))
    counter.count(EPC, "a")
    counter.flush()
    counter.count(EPC, "b")
    counter.count(EPC + "9", "c")
    listed = dict(counter.all())
    assert listed[EPC]["count"] == 2 and listed[EPC + "9"]["count"] == 1


def test_places_are_bounded(lmdb: LmdbStore) -> None:
    counter = ScanCounter(chain_over(lmdb))
    for index in range(places_kept_max + 10):
        record = counter.count(EPC, f"city-{index}")
    assert len(record["places"]) == places_kept_max and record["count"] == places_kept_max + 10


def test_a_failed_write_keeps_the_counts_for_the_next_flush(lmdb: LmdbStore) -> None:
    class FailingOnce(CountingStore):
        def atomic_batch(self) -> object:
            self.batches += 1
            if self.batches == 1:
                raise OSError("disk full")
            return self.inner.atomic_batch()

    counter = ScanCounter(chain_over(FailingOnce(lmdb)))
    counter.count(EPC, "a")
    with pytest.raises(OSError):
        counter.flush()
    counter.count(EPC, "a")
    assert counter.flush() == 1
    assert ScanCounter(chain_over(lmdb)).record(EPC)["count"] == 2


def test_concurrent_counting_loses_no_scan(lmdb: LmdbStore) -> None:
    counter = ScanCounter(chain_over(lmdb))

    def scan() -> None:
        for _ in range(500):
            counter.count(EPC, "a")

    threads = [threading.Thread(target=scan) for _ in range(4)]
    flusher_done = threading.Event()

    def flush_while_scanning() -> None:
        while not flusher_done.is_set():
            counter.flush()

    flusher = threading.Thread(target=flush_while_scanning)
    flusher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flusher_done.set()
    flusher.join()
    counter.flush()
    assert ScanCounter(chain_over(lmdb)).record(EPC)["count"] == 2_000
