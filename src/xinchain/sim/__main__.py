"""Run many simulator seeds: `python -m xinchain.sim --seeds 100000 [--start 0] [--workers 2]`.

Prints each failing seed with the invariant it broke, and a summary line; exits 1 if any seed
failed. Replay one seed with `--start SEED --seeds 1 --trace`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from xinchain.sim.network import Simulation, Violation


def check_range(start: int, count: int) -> list[tuple[int, str]]:
    logging.disable(logging.WARNING)  # refusals the cores log are expected under attack
    failures = []
    for seed in range(start, start + count):
        try:
            Simulation(seed).run()
        except Violation as exc:
            failures.append((seed, str(exc)))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trace", action="store_true", help="print the fault schedule")
    args = parser.parse_args()
    began = time.monotonic()
    chunk = 250
    starts = range(args.start, args.start + args.seeds, chunk)
    failures: list[tuple[int, str]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            pool.submit(check_range, s, min(chunk, args.start + args.seeds - s)) for s in starts
        ]
        for future in futures:
            for seed, reason in future.result():
                failures.append((seed, reason))
                print(f"seed {seed} FAILED: {reason}", flush=True)
    if args.trace:
        simulation = Simulation(args.start)
        try:
            simulation.run()
        finally:
            print("\n".join(simulation.trace))
    elapsed = time.monotonic() - began
    print(
        f"{args.seeds - len(failures)} passed, {len(failures)} failed "
        f"(seeds {args.start}..{args.start + args.seeds - 1}, {elapsed:.1f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
