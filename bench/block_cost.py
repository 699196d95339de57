"""Block cost: CPU a document to execute and commit blocks of notary batches, in one process.

    .venv/bin/python bench/block_cost.py [--blocks 13] [--batches 80] [--batch 1000]
        [--every 10] [--checkout PATH]

Builds a one-org-per-validator chain in this process (tests/unit/chain_helpers.py) on an LMDB
store in a temporary directory, then for each block signs and admits `--batches`
`notary.anchor_batch` transactions of `--batch` random digests (untimed) and times, in CPU
seconds of this process, `execute_block` and `commit`. The first three blocks are warm-up.
What one validator spends a document, without consensus, the network or other processes: the
figure behind docs/performance.md's per-document costs; with `--every`, also per run of that
many blocks, to show how the cost grows with the chain's index. `--checkout` measures another
checkout's `src/` (a git worktree of an older commit, say) with the same script. Prints a JSON
summary line; never part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
warmup_blocks = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=13)
    parser.add_argument("--batches", type=int, default=80, help="transactions a block")
    parser.add_argument("--batch", type=int, default=1000, help="documents a transaction")
    parser.add_argument("--every", type=int, default=10, help="blocks a reported interval")
    parser.add_argument("--checkout", type=Path, default=REPO)
    args = parser.parse_args()
    if args.blocks <= warmup_blocks:
        parser.error(f"--blocks must be more than the {warmup_blocks} warm-up blocks")
    checkout = args.checkout.resolve()
    sys.path[:0] = [str(checkout / "src"), str(REPO / "tests" / "unit")]
    from chain_helpers import Chain, make_consortium

    import xinchain
    from xinchain.storage import LmdbStore

    execute_s = commit_s = 0.0
    documents = 0
    intervals: list[dict[str, float]] = []
    interval = [0.0, 0.0]
    with tempfile.TemporaryDirectory(prefix="xinchain-block-cost-") as temporary:
        store = LmdbStore(Path(temporary) / "data")
        chain = Chain(make_consortium("ed25519-sha256", org_count=3), store)
        for block in range(args.blocks):
            txs = [
                chain.admit(
                    chain.sign(
                        "org1",
                        "notary",
                        "anchor_batch",
                        {"hashes": [os.urandom(32) for _ in range(args.batch)]},
                    )
                )
                for _ in range(args.batches)
            ]
            started = time.process_time()
            request, _ = chain.prepare(txs)
            executed = time.process_time()
            chain.app.commit(request)
            committed = time.process_time()
            if block >= warmup_blocks:
                execute_s += executed - started
                commit_s += committed - executed
                documents += args.batches * args.batch
            interval[0] += executed - started
            interval[1] += committed - executed
            if (block + 1) % args.every == 0:
                count = args.every * args.batches * args.batch
                intervals.append(
                    {
                        "documents_before": (block + 1) * args.batches * args.batch - count,
                        "execute_us_per_document": round(interval[0] / count * 1e6, 2),
                        "commit_us_per_document": round(interval[1] / count * 1e6, 2),
                    }
                )
                interval = [0.0, 0.0]
        store.close()
    summary = {
        "bench": "block_cost",
        "source": str(Path(xinchain.__file__).parent),
        "documents_timed": documents,
        "execute_us_per_document": round(execute_s / documents * 1e6, 2),
        "commit_us_per_document": round(commit_s / documents * 1e6, 2),
        "intervals": intervals,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
