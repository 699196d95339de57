"""The throughput bench's xinchain-only phases (bench/throughput.py runs them after the sweeps).

* `batched_notarization`: documents a second when each transaction anchors `batch` documents
  (`notary.anchor_batch`, each document with its own receipt), pushed through the stream as
  fast as the chain takes them.
* `long_run`: `count` signed single anchors (1,000,000 by default) through a 4-validator
  network, then each validator's resident memory and the bytes on disk a transaction.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from baselines import directory_bytes
from provenance import Consortium
from stream_capacity import push, sign_all, window_documents

# Transactions signed and pushed at a time in the long run: bounds the bench's own memory.
long_run_chunk = 100_000


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _node_pids(home: Path) -> dict[str, int]:
    pids = {}
    for pid_path in sorted((home / "nodes").glob("*/node.pid")):
        pids[pid_path.parent.name] = int(pid_path.read_text().strip())
    return pids


def batched_notarization(validators: int, transactions: int, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xinchain-batched-") as temporary:
        consortium = Consortium(Path(temporary) / "home", validators, observer=False)
        try:
            consortium.start()
            apis = consortium.validator_apis
            txs = sign_all(consortium.home, apis[0], transactions, batch)
            result = asyncio.run(push(apis, txs, 4, max(4, window_documents // batch)))
        finally:
            consortium.stop()
    documents = result["committed"] * batch
    return {
        "validators": validators,
        "batch": batch,
        "transactions": result["committed"],
        "documents": documents,
        "seconds": result["seconds"],
        "documents_per_s": round(documents / result["seconds"]),
        "refused": result["refused"],
    }


def long_run(validators: int, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xinchain-long-run-") as temporary:
        consortium = Consortium(Path(temporary) / "home", validators, observer=False)
        try:
            consortium.start()
            apis = consortium.validator_apis
            pids = _node_pids(consortium.home)
            rss_before = {name: _rss_bytes(pid) for name, pid in pids.items()}
            data_before = directory_bytes(consortium.home / "nodes" / "validator-0" / "data")
            committed = 0
            started = time.perf_counter()
            while committed < count:
                chunk = min(long_run_chunk, count - committed)
                txs = sign_all(consortium.home, apis[0], chunk)
                result = asyncio.run(push(apis, txs, 500))
                committed += result["committed"]
                del txs
                gc.collect()
                print(f"  long run: {committed:,} of {count:,} committed", flush=True)
            elapsed = time.perf_counter() - started
            rss_after = {name: _rss_bytes(pid) for name, pid in pids.items()}
            data_after = directory_bytes(consortium.home / "nodes" / "validator-0" / "data")
        finally:
            consortium.stop()
    return {
        "validators": validators,
        "transactions": committed,
        "seconds": round(elapsed, 1),
        "tx_per_s_including_signing": round(committed / elapsed),
        "rss_mb_before": {name: round(value / 2**20, 1) for name, value in rss_before.items()},
        "rss_mb_after": {name: round(value / 2**20, 1) for name, value in rss_after.items()},
        "data_mb": round(data_after / 2**20, 1),
        "disk_bytes_per_tx": round((data_after - data_before) / max(1, committed)),
    }
