"""Copyright at a million works: registration and search latency on four validators.

    .venv/bin/python bench/photos/fetch.py   # once: bench/photos/set/ (~700 MB of packages)
    .venv/bin/python bench/copyright_million.py [--works N] [--validators 4] [--searches N]

Starts its own `xinchain up` (four validators by default) in a temporary home on free loopback
ports, stopped at the end (also on Ctrl-C), then (bench/README.md has the details):

    load      N works (1,000,000 by default) registered through consensus, 128 a transaction
              (as `xinchain copyright register` batches a catalogue), signed by the platform
              org and sent by client threads to every validator. Each work carries what a real
              registration carries: a SHA-256, a PDQ hash and 25 crop hashes, and 64 local
              features. The features are made from real ones: ORB points of the photo set's
              never-registered photos (and crops of them at several scales), each work taking
              64 of them at random with 8 of each descriptor's 256 bits changed, at random
              places in its frame. So the index holds descriptors distributed as real photos'
              are (edges, corners, plain patches), and no two works are alike. The hashes are
              random (PDQ bits of unrelated photos are near-independent).
    register  the photo set's registered photos (262), one after another on one connection to
              validator-0, on top of the million, three ways in turn: the gateway (the node
              hashes and describes the image, signs, answers on commit); the SDK with local
              features (the client describes the image); and the SDK without them, which is
              what a registration was before local features (the old method).
    search    copies of those photos (tests/support/copy_kinds.py: crop, banner, watermark,
              screenshot, turn, resize, JPEG, brightness, mirror, grey) and the never-
              registered photos, sent to validator-0's image search two ways: `by=hash` (PDQ
              only: the old method) and both methods (the default). The client's latency
              covers sending the image and reading the answer; the node's Server-Timing header
              splits its time into decoding and hashing the image, describing it, the PDQ
              lookup, finding feature candidates and verifying them. Also reported: whether
              each copy's work was found at a million works, and false matches.

Validator-0 builds its search index as the works commit (it starts on its first search, made
before the load). Reported too: the load's rate, the index's catch-up, memory of every node.
Prints a table and a JSON summary line, and writes the summary to
bench/results/copyright_million-<timestamp>.json. Never part of CI. The issue's goals:
registration p99 <= 1 s, search p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import platform
import queue
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# One way to start and stop `up`, name the commit, take a percentile and write a summary
# (the provenance and copyright-registration benches).
from consortium import Consortium
from copyright import percentile_ms, spread
from numpy.typing import NDArray
from PIL import Image
from provenance import _git_commit as git_commit
from provenance import interruptible, write_summary

from xinchain.apps.copyright import features as features_module
from xinchain.apps.copyright.contract import NAME
from xinchain.apps.copyright.perceptual import crop_hashes_count, work_hashes
from xinchain.client.sdk import Client, sign_transaction, validity_blocks
from xinchain.crypto import PrivateKey
from xinchain.genesis import Genesis
from xinchain.node.home import Home
from xinchain.types import Transaction

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PHOTOS = BENCH_DIR / "photos"
sys.path.insert(0, str(REPO / "tests" / "support"))
import copy_kinds  # noqa: E402  (a test helper: the path is set just above)

REGISTER = "/v1/copyright/images/register"
SEARCH = "/v1/copyright/images/search"
PLATFORM = "platform"
works_per_tx = 128
sellers = 200
points_per_work = features_module.registered_points_max
bits_changed = 8
frame = 512
# Crops of each pool photo, as fractions of its sides (1.0: the whole photo), for more points.
pool_crops = (1.0, 0.7, 0.5)
upload_side_max = 1600
upload_jpeg_quality = 92
request_timeout_s = 600.0
commit_timeout_s = 600.0
progress_interval_s = 30.0
goal_register_p99_ms = 1_000.0
goal_search_p99_ms = 100.0


# --- the photo set -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    name: str
    role: str
    data: bytes
    relation: str = ""  # "another frame": the same scene a moment later (not a copy)


def load_photos(directory: Path) -> list[Photo]:
    manifest = json.loads((PHOTOS / "manifest.json").read_text())
    photos = []
    for entry in manifest:
        path = directory / entry["name"]
        if not path.exists():
            raise SystemExit(f"{path} is missing: run bench/photos/fetch.py first")
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if max(image.size) > upload_side_max:
            image.thumbnail((upload_side_max, upload_side_max), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=upload_jpeg_quality)
        photos.append(
            Photo(entry["name"], entry["role"], out.getvalue(), entry.get("relation", ""))
        )
    return photos


def descriptor_pool(photos: list[Photo]) -> NDArray[np.uint8]:
    """Registered-style ORB descriptors of the never-registered photos and crops of them."""
    pool = []
    for photo in photos:
        with Image.open(io.BytesIO(photo.data)) as opened:
            image = opened.convert("RGB")
        for fraction in pool_crops:
            width, height = image.size
            crop = image.crop((0, 0, int(width * fraction), int(height * fraction)))
            found = features_module.registered_features(crop)
            if len(found):
                pool.append(found.descriptors)
    return np.concatenate(pool)


# --- the million works -------------------------------------------------------------------------


class Filler:
    """Works like real registrations, made fast: see the module's docstring."""

    def __init__(self, pool: NDArray[np.uint8], seed: int) -> None:
        self.pool = pool
        self.seed = seed
        self.header = struct.pack(">BHH", 1, frame, frame)

    def batch(self, first: int, count: int) -> list[dict[str, Any]]:
        chooser = np.random.default_rng((self.seed, first))
        rows = count * points_per_work
        descriptors = self.pool[chooser.integers(0, len(self.pool), rows)]
        bits = np.unpackbits(descriptors, axis=1)
        changed = chooser.integers(0, 256, (rows, bits_changed))
        bits[np.arange(rows)[:, None], changed] ^= 1
        descriptors = np.packbits(bits, axis=1)
        positions = chooser.integers(0, frame * features_module.position_scale, (rows, 2))
        points = np.concatenate(
            [positions.astype(">u2").view(np.uint8).reshape(rows, 4), descriptors], axis=1
        ).reshape(count, points_per_work * 36)
        digests = chooser.integers(0, 256, (count, 32 * (2 + crop_hashes_count)), dtype=np.uint8)
        works = []
        for i in range(count):
            number = first + i
            hashes = digests[i].tobytes()
            works.append(
                {
                    "sha256": hashes[:32].hex(),
                    "pdq": hashes[32:64].hex(),
                    "quality": 100,
                    "crops": [
                        hashes[64 + 32 * c : 96 + 32 * c].hex() for c in range(crop_hashes_count)
                    ],
                    "features": base64.b64encode(self.header + points[i].tobytes()).decode(),
                    "title": f"Catalogue photo {number} / 目录图 {number}",
                    "seller": f"seller-{number % sellers:03d}",
                }
            )
        return works


def registration(
    genesis: Genesis, key: PrivateKey, works: list[dict[str, Any]], valid_until: int
) -> Transaction:
    """`copyright.register` of `works`, signed for the platform org."""
    return sign_transaction(
        genesis.suite,
        key,
        chain_id=genesis.chain_id,
        sender=PLATFORM,
        contract=NAME,
        method="register",
        args={"works": works},
        valid_until=valid_until,
    )


@dataclass
class LoadTally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    works: int = 0
    txs: int = 0
    tx_bytes: int = 0
    commit_s: list[float] = field(default_factory=list)
    failure: BaseException | None = None


def load(
    apis: list[str], genesis: Genesis, home: Home, filler: Filler, works: int, threads: int
) -> dict[str, Any]:
    key = home.org_key(genesis.suite, PLATFORM)
    tally = LoadTally()
    batches: queue.Queue[int] = queue.Queue()
    for first in range(0, works, works_per_tx):
        batches.put(first)
    with Client(apis[0]) as client:
        height = [int(client.status()["height"])]

    def worker(api: str) -> None:
        with Client(api, timeout_s=request_timeout_s) as client:
            while tally.failure is None:
                try:
                    first = batches.get_nowait()
                except queue.Empty:
                    return
                try:
                    batch = filler.batch(first, min(works_per_tx, works - first))
                    tx = registration(genesis, key, batch, height[0] + validity_blocks)
                    began = time.perf_counter()
                    answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
                    if not answer["result"]["ok"]:
                        raise RuntimeError(f"refused: {answer['result']['error']}")
                    with tally.lock:
                        tally.works += len(batch)
                        tally.txs += 1
                        tally.tx_bytes += len(tx.encode())
                        tally.commit_s.append(time.perf_counter() - began)
                        height[0] = max(height[0], int(answer["height"]))
                except BaseException as exc:
                    tally.failure = tally.failure or exc
                    return

    workers = [
        threading.Thread(target=worker, args=(apis[i % len(apis)],), daemon=True)
        for i in range(threads)
    ]
    began = last = time.monotonic()
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        time.sleep(1.0)
        if time.monotonic() - last >= progress_interval_s:
            last = time.monotonic()
            print(
                f"  load: {last - began:6.0f} s  {tally.works} works "
                f"({tally.works / (last - began):.0f}/s)  height {height[0]}",
                file=sys.stderr,
                flush=True,
            )
    if tally.failure is not None:
        raise tally.failure
    seconds = time.monotonic() - began
    return {
        "works": tally.works,
        "transactions": tally.txs,
        "seconds": round(seconds, 1),
        "works_per_s": round(tally.works / seconds, 1),
        "bytes_per_work": round(tally.tx_bytes / max(1, tally.works)),
        "commit_latency": spread(tally.commit_s),
        "height": height[0],
        "threads": threads,
    }


# --- registration ------------------------------------------------------------------------------


def register_all(
    api: str, token: str, genesis: Genesis, home: Home, photos: list[Photo]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The registered photos, in three rounds (see the module's docstring). Each photo is
    registered as itself in the first round; later rounds register it with one byte appended
    after the JPEG's end (another file, the same picture), so each is a new work."""
    key = home.org_key(genesis.suite, PLATFORM)
    client = Client(api, timeout_s=request_timeout_s)
    gateway = httpx.Client(
        base_url=api, timeout=request_timeout_s, headers={"Authorization": f"Bearer {token}"}
    )
    valid_until = [int(client.status()["height"]) + validity_blocks]
    numbers: dict[str, str] = {}
    results: dict[str, Any] = {}

    def sdk(data: bytes, title: str, with_features: bool) -> float:
        began = time.perf_counter()
        hashes = work_hashes(data)
        args = hashes.work_args(title, "seller-bench")
        if not with_features:
            args.pop("features", None)
        tx = registration(genesis, key, [args], valid_until[0])
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        if not answer["result"]["ok"]:
            raise RuntimeError(f"refused: {answer['result']['error']}")
        valid_until[0] = max(valid_until[0], int(answer["height"]) + validity_blocks // 2)
        return time.perf_counter() - began

    def through_gateway(data: bytes, title: str) -> float:
        began = time.perf_counter()
        response = gateway.post(
            REGISTER,
            params={"title": title, "seller": "seller-bench"},
            content=data,
            headers={"Content-Type": "image/jpeg"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        return time.perf_counter() - began

    rounds = [
        ("gateway", lambda data, title: through_gateway(data, title)),
        ("sdk_with_features", lambda data, title: sdk(data, title, True)),
        ("sdk_hashes_only", lambda data, title: sdk(data, title, False)),
    ]
    try:
        for suffix, (name, register) in enumerate(rounds):
            latencies = []
            began = time.monotonic()
            for photo in photos:
                data = photo.data + bytes([suffix]) * suffix
                latencies.append(register(data, photo.name))
                if suffix == 0:
                    numbers[photo.name] = str(work_hashes(data).sha256.hex())
            results[name] = {
                "registrations": len(latencies),
                "seconds": round(time.monotonic() - began, 1),
                **spread(latencies),
                "goal_met": percentile_ms(latencies, 99) <= goal_register_p99_ms,
            }
            print(f"  register {name}: {results[name]}", file=sys.stderr, flush=True)
    finally:
        client.close()
        gateway.close()
    return results, numbers


# --- search ------------------------------------------------------------------------------------


def timing(header: str) -> dict[str, float]:
    """Server-Timing: `name;dur=12.3, ...` as {name: milliseconds}."""
    found = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        if rest.startswith("dur="):
            found[name] = float(rest[4:])
    return found


def search_all(
    api: str, photos: list[Photo], shas: dict[str, str], seed: int, limit: int | None
) -> dict[str, Any]:
    chooser = random.Random(seed)
    queries: list[tuple[str, str | None, bytes]] = []  # kind, expected work, image
    for number, photo in enumerate(p for p in photos if p.name in shas):
        with Image.open(io.BytesIO(photo.data)) as opened:
            image = opened.convert("RGB")
        for kind in copy_kinds.KINDS:
            copy = copy_kinds.make(image, kind, number)
            out = io.BytesIO()
            copy.save(out, "JPEG", quality=upload_jpeg_quality)
            queries.append((kind, shas[photo.name], out.getvalue()))
    queries.extend(
        (p.relation or "never registered", None, p.data) for p in photos if p.role == "negative"
    )
    chooser.shuffle(queries)
    if limit is not None:
        queries = queries[:limit]
    by_method: dict[str, Any] = {}
    with httpx.Client(base_url=api, timeout=request_timeout_s) as http:
        http.post(SEARCH, content=queries[0][2])  # a connection, the route's first use
        for method, params in (("hash (old)", {"by": "hash"}), ("hash and features", {})):
            latencies: list[float] = []
            phases: dict[str, list[float]] = {}
            kinds: dict[str, list[int]] = {}
            false_matches = 0
            other_frames_matched = 0
            began = time.monotonic()
            for kind, expected, data in queries:
                sent = time.perf_counter()
                response = http.post(SEARCH, params=params, content=data)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    raise RuntimeError(f"search: HTTP {response.status_code} {response.text}")
                for name, ms in timing(response.headers.get("server-timing", "")).items():
                    phases.setdefault(name, []).append(ms / 1000)
                found = {m["work"]["sha256"] for m in response.json()["matches"]}
                if kind == "another frame":
                    other_frames_matched += bool(found)
                elif expected is None:
                    false_matches += bool(found)
                else:
                    kinds.setdefault(kind, []).append(expected in found)
            by_method[method] = {
                "searches": len(latencies),
                "seconds": round(time.monotonic() - began, 1),
                "latency": spread(latencies),
                "goal_met": percentile_ms(latencies, 99) <= goal_search_p99_ms,
                "server_timing": {name: spread(values) for name, values in phases.items()},
                "recall": {
                    kind: round(100 * sum(hits) / len(hits), 1) for kind, hits in kinds.items()
                },
                "false_matches": false_matches,
                "negatives": sum(1 for kind, _, _ in queries if kind == "never registered"),
                # Another frame of a registered scene (a video's next frame, a stereo pair's
                # other eye): matching it is no false match of a different photo.
                "other_frames_matched": other_frames_matched,
                "other_frames": sum(1 for kind, _, _ in queries if kind == "another frame"),
            }
            print(f"  search {method}: {by_method[method]}", file=sys.stderr, flush=True)
    return by_method


# --- helpers -----------------------------------------------------------------------------------


def node_memory_mb(home: Path) -> dict[str, float]:
    """Resident memory of every node of the home, by its node.pid."""
    found = {}
    for pid_path in sorted((home / "nodes").glob("*/node.pid")):
        try:
            pid = int(pid_path.read_text().strip())
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                found[pid_path.parent.name] = round(int(line.split()[1]) / 1024, 1)
    return found


def wait_indexed(api: str, works: int) -> float:
    """Seconds until the node's search index holds `works` works (its status route)."""
    began = time.monotonic()
    last = began
    with httpx.Client(base_url=api, timeout=request_timeout_s) as http:
        while True:
            indexed = int(http.get("/v1/copyright/index").json()["indexed"])
            if indexed >= works:
                return time.monotonic() - began
            if time.monotonic() - last >= progress_interval_s:
                last = time.monotonic()
                print(f"  index: {indexed} of {works} works", file=sys.stderr, flush=True)
            time.sleep(1.0)


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    photos = load_photos(Path(args.photos))
    registered = [p for p in photos if p.role == "registered"][: args.registrations]
    negatives = [p for p in photos if p.role == "negative"]
    print(f"describing {len(negatives)} never-registered photos for the pool", file=sys.stderr)
    pool = descriptor_pool(negatives)
    filler = Filler(pool, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-copyright-million-"))
    consortium = Consortium(workdir / "home", args.validators, observer=False)
    summary: dict[str, Any] = {
        "bench": "copyright_million",
        "commit": git_commit(),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "validators": args.validators,
        "pool_descriptors": len(pool),
    }
    try:
        consortium.start()
        home = Home(consortium.home)
        apis = consortium.validator_apis
        with Client(apis[0]) as client:
            genesis = client.genesis()
        token = home.gateway_token("validator-0")
        # Validator-0's first search starts its index, which then follows the load.
        httpx.post(f"{apis[0]}{SEARCH}", content=registered[0].data, timeout=60.0)
        print(f"loading {args.works} works", file=sys.stderr, flush=True)
        summary["load"] = load(apis, genesis, home, filler, args.works, args.threads)
        began = time.monotonic()
        summary["index_catch_up_after_load_s"] = round(wait_indexed(apis[0], args.works), 1)
        summary["memory_mb_after_load"] = node_memory_mb(consortium.home)
        summary["ledger_bytes_validator_0"] = consortium.data_bytes()
        print(f"  index caught up in {time.monotonic() - began:.0f} s", file=sys.stderr)
        summary["register"], shas = register_all(apis[0], token, genesis, home, registered)
        summary["search"] = search_all(apis[0], photos, shas, args.seed, args.searches)
        summary["memory_mb_end"] = node_memory_mb(consortium.home)
    finally:
        consortium.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return summary


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"copyright at {summary['load']['works']:,} works on {summary['validators']} validators"
        f" ({summary['commit']})",
        f"  load: {summary['load']['works_per_s']:.0f} works/s, "
        f"{summary['load']['bytes_per_work']} bytes a work; index caught up "
        f"{summary['index_catch_up_after_load_s']} s after the load",
        "  registration          p50 ms   p99 ms   max ms",
    ]
    for name, figures in summary["register"].items():
        lines.append(
            f"  {name:20s} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} "
            f"{figures['max_ms']:8.1f}"
        )
    lines.append("  search                p50 ms   p99 ms   max ms   false matches")
    for name, figures in summary["search"].items():
        latency = figures["latency"]
        lines.append(
            f"  {name:20s} {latency['p50_ms']:8.1f} {latency['p99_ms']:8.1f} "
            f"{latency['max_ms']:8.1f}   {figures['false_matches']}/{figures['negatives']}"
        )
        for phase, spread_ms in figures["server_timing"].items():
            lines.append(
                f"    node {phase:15s} {spread_ms['p50_ms']:8.1f} {spread_ms['p99_ms']:8.1f}"
            )
        lines.append(f"    recall % {figures['recall']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="load client threads")
    parser.add_argument("--registrations", type=int, default=None, help="photos registered")
    parser.add_argument("--searches", type=int, default=None, help="at most this many searches")
    parser.add_argument("--photos", default=str(PHOTOS / "set"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the consortium's home")
    args = parser.parse_args()
    with interruptible():
        summary = run(args)
    print(report(summary))
    write_summary("copyright_million", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
