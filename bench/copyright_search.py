"""Copyright search bench: the PDQ near-duplicate index against a numpy linear scan.

    .venv/bin/python bench/copyright_search.py [--hashes N] [--queries N] [--seed N]

In one process, no node (bench/README.md has the details):

    build     `PdqIndex.add_many` of N random 256-bit hashes, less the appended works; a
              work has 1 + crop_hashes_count hashes (its PDQ hash and its crops')
    append    --appends works, one `PdqIndex.add` each, as a node registers them
    query     --queries searches of 8 related hashes (as a search for an image's 8 dihedral
              variants) and --queries of 1 hash, within r = 31, each answered by the index
              and by a linear scan over every stored hash; both answers must be identical

Near-duplicates are planted at known distances (0 to 40) from half of the queries, so those
have true matches on both sides of r. Reported: build time, memory (RSS), append latency,
index and linear-scan query latency (p50, p99, mean) and their ratio, and whether every answer
agreed. Prints a table and a JSON summary line, and writes the summary to
bench/results/copyright_search-<timestamp>.json. Never part of CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The provenance bench's helpers: one way to name the commit and take a percentile.
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile

from xinchain.apps.copyright import index as index_module
from xinchain.apps.copyright.index import PdqIndex
from xinchain.apps.copyright.perceptual import crop_hashes_count, match_distance_max

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent

# A registered work carries its PDQ hash and its 16 crop hashes.
hashes_per_work = 1 + crop_hashes_count
# A search for an image looks for its 8 dihedral variants.
variants_per_query = 8
# Distances of planted near-duplicates from a query variant: inside, at and beyond r = 31.
planted_distances = (0, 1, 5, 12, 20, 30, 31, 32, 33, 40)
planted_per_query = 3
# Works appended one at a time after the bulk load: a fresh tail, a few seals and merges.
appends_default = 1_000
# Rows the linear scan compares at a time (bounds its scratch memory).
scan_block_rows = 1 << 18


# --- the workload ------------------------------------------------------------------------------


def dihedral_like(base: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Eight related hashes from one (an 8 by 32 array of bytes), shaped like PDQ's dihedral
    hashes: PDQ's bits are 16 by 16 DCT coefficients, and a mirror image negates the odd columns
    (or rows), a transpose swaps rows and columns, so each variant here is a transpose and/or
    the inversion of odd rows and/or odd columns of the base's 16 by 16 bit grid."""
    grid = np.unpackbits(base).reshape(16, 16)
    odd = np.zeros((16, 16), dtype=np.uint8)
    odd_rows, odd_columns = odd.copy(), odd.copy()
    odd_rows[1::2, :] = 1
    odd_columns[:, 1::2] = 1
    variants = []
    for transposed in (False, True):
        source = grid.T if transposed else grid
        for flip in (odd, odd_rows, odd_columns, odd_rows ^ odd_columns):
            variants.append(np.packbits((source ^ flip).ravel()))
    return np.stack(variants)


def flip_bits(
    value: NDArray[np.uint8], bits: int, chooser: np.random.Generator
) -> NDArray[np.uint8]:
    unpacked = np.unpackbits(value)
    unpacked[chooser.choice(unpacked.size, size=bits, replace=False)] ^= 1
    return np.packbits(unpacked)


class Workload:
    """Stored hashes (row i belongs to work i // hashes_per_work) and queries with planted
    near-duplicates."""

    def __init__(self, hashes: int, queries: int, appends: int, seed: int) -> None:
        chooser = np.random.default_rng(seed)
        self.works = np.arange(hashes, dtype=np.int64) // hashes_per_work
        self.hashes = chooser.integers(0, 256, size=(hashes, 32), dtype=np.uint8)
        # Whole works: the bulk load ends where the appended works begin.
        self.bulk_rows = max(0, hashes // hashes_per_work - appends) * hashes_per_work
        bases = chooser.integers(0, 256, size=(queries, 32), dtype=np.uint8)
        self.queries = np.stack([dihedral_like(base) for base in bases])  # (queries, 8, 32)
        self.planted: list[tuple[int, int, int]] = []  # (query, row, distance)
        for query in range(0, queries, 2):
            for _ in range(planted_per_query):
                row = int(chooser.integers(hashes))
                variant = int(chooser.integers(variants_per_query))
                distance = int(chooser.choice(planted_distances))
                near = flip_bits(self.queries[query, variant], distance, chooser)
                self.hashes[row] = near
                self.planted.append((query, row, distance))


# --- the linear scan (baseline) ----------------------------------------------------------------


class LinearScan:
    """Every stored hash compared with every query hash: numpy over four contiguous arrays of
    uint64 words (one per quarter of the hash), the fastest plain-numpy layout for a scan."""

    def __init__(self, works: NDArray[np.int64], hashes: NDArray[np.uint8]) -> None:
        self.works = works
        self.columns = np.ascontiguousarray(hashes.view(np.uint64).T)  # (4, rows)

    def search(
        self, queries: NDArray[np.uint8], distance_max: int, limit: int
    ) -> list[tuple[int, int]]:
        query_words = queries.view(np.uint64)  # (queries, 4)
        nearest: dict[int, int] = {}
        rows = self.columns.shape[1]
        for start in range(0, rows, scan_block_rows):
            block = self.columns[:, start : start + scan_block_rows]
            least = np.full(block.shape[1], 257, dtype=np.uint16)
            for words in query_words:
                distance = np.bitwise_count(block[0] ^ words[0]).astype(np.uint16)
                for column in range(1, 4):
                    distance += np.bitwise_count(block[column] ^ words[column])
                np.minimum(least, distance, out=least)
            for row in np.flatnonzero(least <= distance_max).tolist():
                work = int(self.works[start + row])
                nearest[work] = min(nearest.get(work, 257), int(least[row]))
        ranked = sorted(nearest.items(), key=lambda item: (item[1], item[0]))
        return ranked[:limit]


# --- measuring ---------------------------------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process (MB)."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    current = int(fields["VmRSS"].split()[0]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return round(current, 1), round(peak, 1)


def latency_summary(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(times_ms, 50),
        "p99_ms": percentile(times_ms, 99),
        "max_ms": round(max(times_ms), 2),
        "mean_ms": round(statistics.fmean(times_ms), 3),
    }


def timed_searches(
    search: Any, query_sets: list[NDArray[np.uint8]], distance_max: int, limit: int
) -> tuple[list[list[tuple[int, int]]], list[float]]:
    answers, times_ms = [], []
    for queries in query_sets:
        began = time.perf_counter()
        answers.append(search(queries, distance_max, limit))
        times_ms.append((time.perf_counter() - began) * 1000)
    return answers, times_ms


def compare(
    name: str,
    query_sets: list[NDArray[np.uint8]],
    index: PdqIndex,
    scan: LinearScan,
    distance_max: int,
    limit: int,
) -> dict[str, Any]:
    def index_search(queries: NDArray[np.uint8], r: int, cap: int) -> list[tuple[int, int]]:
        return index.search([bytes(row) for row in queries], r, cap)

    print(f"{name}: {len(query_sets):,} searches, index then scan", file=sys.stderr, flush=True)
    found, index_ms = timed_searches(index_search, query_sets, distance_max, limit)
    expected, scan_ms = timed_searches(scan.search, query_sets, distance_max, limit)
    differ = [i for i, (got, want) in enumerate(zip(found, expected, strict=True)) if got != want]
    index_summary, scan_summary = latency_summary(index_ms), latency_summary(scan_ms)
    return {
        "searches": len(query_sets),
        "hashes_per_search": int(query_sets[0].shape[0]),
        "with_matches": sum(1 for answer in expected if answer),
        "matches": sum(len(answer) for answer in expected),
        "index": index_summary,
        "scan": scan_summary,
        "speedup_p50": round(scan_summary["p50_ms"] / index_summary["p50_ms"], 1),
        "speedup_mean": round(scan_summary["mean_ms"] / index_summary["mean_ms"], 1),
        "differing_answers": len(differ),
        "differing_examples": [
            {"query": i, "index": found[i][:5], "scan": expected[i][:5]} for i in differ[:3]
        ],
    }


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    distance_max = match_distance_max
    rss_start, _ = rss_mb()
    print(f"generating {args.hashes:,} hashes, {args.queries:,} queries", file=sys.stderr)
    workload = Workload(args.hashes, args.queries, args.appends, args.seed)
    rss_data, _ = rss_mb()

    print(f"bulk load of {workload.bulk_rows:,} hashes", file=sys.stderr, flush=True)
    index = PdqIndex()
    began = time.perf_counter()
    index.add_many(workload.works[: workload.bulk_rows], workload.hashes[: workload.bulk_rows])
    build_s = time.perf_counter() - began
    rss_built, peak_built = rss_mb()

    append_ms = []
    for start in range(workload.bulk_rows, args.hashes, hashes_per_work):
        rows = workload.hashes[start : start + hashes_per_work]
        began = time.perf_counter()
        index.add(int(workload.works[start]), [bytes(row) for row in rows])
        append_ms.append((time.perf_counter() - began) * 1000)
    snapshot = index._snapshot()
    rss_index, peak_index = rss_mb()

    scan = LinearScan(workload.works, workload.hashes)
    limit = int(workload.works[-1]) + 1  # every matching work: the answers compare in full
    dihedral = compare("8-hash queries", list(workload.queries), index, scan, distance_max, limit)
    single = compare(
        "1-hash queries", [q[:1] for q in workload.queries], index, scan, distance_max, limit
    )
    _, peak_end = rss_mb()
    return {
        "bench": "copyright_search",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "seed": args.seed,
        "distance_max": distance_max,
        "hashes": args.hashes,
        "works": int(workload.works[-1]) + 1,
        "hashes_per_work": hashes_per_work,
        "planted": len(workload.planted),
        "index": {
            "chunks": index_module.chunk_count,
            "chunk_bits": index_module.chunk_bits,
            "fresh_rows_max": index_module.fresh_rows_max,
            "segments": [segment.size for segment in snapshot.segments],
            "fresh_rows": snapshot.count - snapshot.sealed_end,
        },
        "build": {
            "hashes": workload.bulk_rows,
            "seconds": round(build_s, 2),
            "hashes_per_s": round(workload.bulk_rows / build_s) if build_s else None,
        },
        "append": {"works": len(append_ms), **latency_summary(append_ms)} if append_ms else {},
        "memory_mb": {
            "rss_start": rss_start,
            "rss_with_data": rss_data,
            "rss_after_build": rss_built,
            "rss_after_appends": rss_index,
            "index": round(rss_index - rss_data, 1),
            "index_bytes_per_hash": round((rss_index - rss_data) * 1024 * 1024 / args.hashes, 1),
            "peak_after_build": peak_built,
            "peak_after_appends": peak_index,
            "peak_end": peak_end,
        },
        "dihedral_queries": dihedral,
        "single_queries": single,
    }


def report(summary: dict[str, Any]) -> str:
    build, append, memory = summary["build"], summary["append"], summary["memory_mb"]
    rows = [
        (
            "stored hashes",
            f"{summary['hashes']:,} ({summary['works']:,} works of {summary['hashes_per_work']})",
        ),
        ("planted near-duplicates", f"{summary['planted']:,} at distances 0..40"),
        ("distance_max", f"{summary['distance_max']}"),
        (
            "segments / fresh rows",
            f"{summary['index']['segments']} / {summary['index']['fresh_rows']}",
        ),
        ("bulk build", f"{build['hashes']:,} hashes in {build['seconds']} s"),
    ]
    if append:
        rows.append(
            (
                "append (one work)",
                f"{append['works']:,} works: p50 {append['p50_ms']} ms, p99 {append['p99_ms']} "
                f"ms, max {append['max_ms']} ms",
            )
        )
    rows += [
        (
            "index memory (RSS)",
            f"{memory['index']:,} MB ({memory['index_bytes_per_hash']} bytes a hash); "
            f"peak {memory['peak_end']:,} MB",
        ),
    ]
    for name, key in (("8-hash", "dihedral_queries"), ("1-hash", "single_queries")):
        part = summary[key]
        index, scan = part["index"], part["scan"]
        rows += [
            (
                f"{name} searches",
                f"{part['searches']:,} ({part['with_matches']:,} with matches, "
                f"{part['matches']:,} works found)",
            ),
            (
                "  index p50/p99/mean",
                f"{index['p50_ms']} / {index['p99_ms']} / {index['mean_ms']} ms",
            ),
            ("  scan p50/p99/mean", f"{scan['p50_ms']} / {scan['p99_ms']} / {scan['mean_ms']} ms"),
            ("  speed-up p50/mean", f"{part['speedup_p50']} / {part['speedup_mean']} times"),
            ("  differing answers", f"{part['differing_answers']}"),
        ]
    width = max(len(name) for name, _ in rows)
    lines = [f"copyright search bench ({summary['commit']}, {summary['timestamp']})"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    for key in ("dihedral_queries", "single_queries"):
        lines += [f"  ! {example}" for example in summary[key]["differing_examples"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hashes", type=int, default=1_000_000, help="stored hashes (default 1,000,000)"
    )
    parser.add_argument(
        "--queries", type=int, default=2_000, help="searches of each kind (default 2,000)"
    )
    parser.add_argument(
        "--appends",
        type=int,
        default=appends_default,
        help=f"works added one at a time after the bulk load (default {appends_default:,})",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of hashes and queries")
    args = parser.parse_args()
    if args.hashes < hashes_per_work or args.queries < 1 or args.appends < 0:
        parser.error(f"--hashes at least {hashes_per_work}, --queries positive, --appends ≥ 0")
    summary = run(args)
    print(report(summary))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS_DIR / f"copyright_search-{stamp}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    print(f"written {path.relative_to(REPO)}")
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    differing = summary["dihedral_queries"]["differing_answers"]
    return 0 if differing + summary["single_queries"]["differing_answers"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
