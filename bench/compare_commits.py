"""Run the stream capacity bench against several commits of src/, taking turns.

    .venv/bin/python bench/compare_commits.py COMMIT... [--validators 1] [--count 40000]
        [--repeat 3]

The commits take turns: each round runs every commit once, so a machine that slows down
during the run weighs on all alike. Each commit's src/ is checked out into a temporary git
worktree and put first on PYTHONPATH, so the nodes `xinchain up` starts run that commit's
code; the bench itself (bench/stream_capacity.py, bench/provenance.py) is this checkout's.
The commits must have the transaction stream (/v1/stream). Prints one line per run and a
JSON summary: the median tx/s per commit, which docs/performance.md quotes change by change.
Never part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def run_once(source: Path, validators: int, count: int) -> int:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    command = [
        sys.executable,
        str(BENCH / "stream_capacity.py"),
        "--validators",
        str(validators),
        "--count",
        str(count),
    ]
    output = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=True, timeout=900
    ).stdout
    return int(json.loads(output.strip().splitlines()[-1])["tx_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--validators", type=int, default=1)
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[int]] = {commit: [] for commit in args.commits}
    with tempfile.TemporaryDirectory(prefix="xinchain-commits-") as temporary:
        trees = {commit: Path(temporary) / commit for commit in args.commits}
        try:
            for commit, tree in trees.items():
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
                    check=True,
                    capture_output=True,
                )
            # Round by round, every commit once a round: a machine that slows down or speeds
            # up during the run weighs on every commit alike.
            for _ in range(args.repeat):
                for commit, tree in trees.items():
                    runs[commit].append(run_once(tree / "src", args.validators, args.count))
                    print(f"{commit}: {runs[commit][-1]} tx/s", flush=True)
        finally:
            for tree in trees.values():
                if tree.exists():
                    subprocess.run(
                        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                        check=False,
                        capture_output=True,
                    )
    results = {
        commit: {"runs": values, "median_tx_per_s": statistics.median(values)}
        for commit, values in runs.items()
    }
    summary = {"bench": "compare_commits", "validators": args.validators, "commits": results}
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
