"""Copyright bench: registration latency, one photo after another, through the gateway and the SDK.

    .venv/bin/python bench/copyright.py [--count N] [--validators 1|4]

Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at the end,
also on Ctrl-C), draws distinct product photos with tests/support/image_set.py, and then
(bench/README.md has the details):

    gateway   POST /v1/copyright/images/register with the photo and the gateway token: the node
              hashes it, signs for its org (the platform, vouching for a seller), and answers
              once the block is committed, with the work's receipt
    sdk       the client hashes the photo (perceptual.work_hashes), signs with the platform's
              org key, POST /v1/transactions, then GET /v1/transactions/{id}?wait_ms=...

N registrations of each, one after another on one connection to validator-0; the latency of
each is the client's, from the first byte sent to the answer read. Each registration's block
header then splits it: from sending to the block's proposal (its time stamp), and from the
proposal to the answer. Then, if asked, a few concurrent-client throughput figures.

Prints a table and a JSON summary line, and writes the summary to
bench/results/copyright-<timestamp>.json. Never part of CI. The issue's goal: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The provenance bench's consortium runner and helpers: one way to start and stop `up`.
from consortium import Consortium
from provenance import _git_commit as git_commit
from provenance import interruptible, write_summary

from xinchain.apps.copyright.contract import NAME
from xinchain.apps.copyright.perceptual import WorkHashes, work_hashes
from xinchain.client.sdk import Client, sign_transaction, validity_blocks
from xinchain.errors import XinchainError
from xinchain.genesis import Genesis
from xinchain.node.home import Home

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
from image_set import generate_photo  # noqa: E402  (a test helper: the path is set just above)

REGISTER = "/v1/copyright/images/register"
PLATFORM = "platform"  # validator-0's org in the demo consortium, with the platform role
# Sellers the platform vouches for, in turn: registrations name one, as a marketplace's would.
sellers = 50
goal_p99_ms = 1_000.0
# Registrations of each variant before timing starts (connections, the node's search index).
warmup_registrations = 3
# How long one registration may take before the bench gives up on it.
request_timeout_s = 120.0
# The SDK asks the node to hold its GET this long for the commit (the route's cap is larger).
wait_ms = 30_000
progress_interval_s = 10.0


# --- the workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    index: int
    data: bytes


def draw_photos(first: int, count: int, seed: int) -> list[Photo]:
    return [Photo(i, generate_photo(i, seed).data) for i in range(first, first + count)]


def seller_of(index: int) -> str:
    return f"seller-{index % sellers:03d}"


def title_of(index: int) -> str:
    return f"Product photo {index} / 商品图 {index}"


def register_args(hashes: WorkHashes, index: int) -> dict[str, Any]:
    return {"works": [hashes.work_args(title_of(index), seller_of(index))]}


@dataclass
class Registration:
    """One registration as the client saw it."""

    index: int
    sent_ms: int  # wall clock, to compare with the block's time stamp
    latency_s: float
    height: int
    hash_s: float = 0.0  # the SDK's client-side hashing
    submit_s: float = 0.0  # the SDK's POST /v1/transactions
    commit_s: float = 0.0  # the SDK's wait for the commit, after the submission


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: list[Registration] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Gateway:
    """Registers through the node's gateway: the image goes to the node."""

    name = "gateway"

    def __init__(self, api: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=api,
            timeout=request_timeout_s,
            headers={"Authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        self.http.close()

    def register(self, photo: Photo, prepared: WorkHashes | None = None) -> Registration:
        sent_ms = int(time.time() * 1000)
        began = time.perf_counter()
        response = self.http.post(
            REGISTER,
            params={"title": title_of(photo.index), "seller": seller_of(photo.index)},
            content=photo.data,
            headers={"Content-Type": "image/jpeg"},
        )
        latency = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"photo {photo.index}: HTTP {response.status_code} {response.text}")
        answer = response.json()
        return Registration(photo.index, sent_ms, latency, int(answer["height"]))


class Sdk:
    """Registers as an SDK client: hashes here, signs with the org key, submits, waits."""

    name = "sdk"

    def __init__(self, api: str, genesis: Genesis, home: Home) -> None:
        self.client = Client(api, timeout_s=request_timeout_s)
        self.genesis = genesis
        self.key = home.org_key(genesis.suite, PLATFORM)
        self.valid_until = int(self.client.status()["height"]) + validity_blocks

    def close(self) -> None:
        self.client.close()

    def register(self, photo: Photo, prepared: WorkHashes | None = None) -> Registration:
        sent_ms = int(time.time() * 1000)
        began = time.perf_counter()
        hashes = prepared if prepared is not None else work_hashes(photo.data)
        hashed = time.perf_counter()
        tx = sign_transaction(
            self.genesis.suite,
            self.key,
            chain_id=self.genesis.chain_id,
            sender=PLATFORM,
            contract=NAME,
            method="register",
            args=register_args(hashes, photo.index),
            valid_until=self.valid_until,
        )
        tx_id = self.client.submit(tx)
        submitted = time.perf_counter()
        answer = self.client.transaction(tx_id, wait_ms=wait_ms)
        while answer["status"] != "committed":
            answer = self.client.transaction(tx_id, wait_ms=wait_ms)
        committed = time.perf_counter()
        if not answer["result"]["ok"]:
            raise RuntimeError(f"photo {photo.index}: refused: {answer['result']['error']}")
        height = int(answer["height"])
        self.valid_until = max(self.valid_until, height + validity_blocks // 2)
        return Registration(
            photo.index,
            sent_ms,
            committed - began,
            height,
            hash_s=hashed - began,
            submit_s=submitted - hashed,
            commit_s=committed - submitted,
        )


Registrar = Gateway | Sdk


# --- measuring ---------------------------------------------------------------------------------


def one_after_another(registrar: Registrar, photos: list[Photo], label: str) -> Tally:
    tally = Tally()
    began = last = time.monotonic()
    for photo in photos:
        try:
            tally.done.append(registrar.register(photo))
        except (RuntimeError, XinchainError, httpx.HTTPError) as exc:
            tally.errors.append(str(exc)[:300])
        if time.monotonic() - last >= progress_interval_s:
            last = time.monotonic()
            print(
                f"  {label}: {last - began:5.0f} s  {len(tally.done)}/{len(photos)}",
                file=sys.stderr,
                flush=True,
            )
    return tally


def concurrently(
    make: Callable[[], Registrar],
    photos: list[Photo],
    clients: int,
    prepared: dict[int, WorkHashes] | None = None,
) -> tuple[Tally, float]:
    """`clients` threads, each with its own connection, taking photos from one queue."""
    tally = Tally()
    work: queue.Queue[Photo] = queue.Queue()
    for photo in photos:
        work.put(photo)
    registrars = [make() for _ in range(clients)]

    def worker(registrar: Registrar) -> None:
        while True:
            try:
                photo = work.get_nowait()
            except queue.Empty:
                return
            try:
                done = registrar.register(photo, (prepared or {}).get(photo.index))
            except (RuntimeError, XinchainError, httpx.HTTPError) as exc:
                with tally.lock:
                    tally.errors.append(str(exc)[:300])
                continue
            with tally.lock:
                tally.done.append(done)

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in registrars]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    for registrar in registrars:
        registrar.close()
    return tally, seconds


def percentile_ms(values_s: list[float], percent: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values_s)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 1)


def spread(values_s: list[float]) -> dict[str, float]:
    if not values_s:
        return {}
    return {
        "p50_ms": percentile_ms(values_s, 50),
        "p90_ms": percentile_ms(values_s, 90),
        "p99_ms": percentile_ms(values_s, 99),
        "max_ms": round(max(values_s) * 1000, 1),
        "mean_ms": round(statistics.fmean(values_s) * 1000, 1),
    }


def block_headers(api: str, heights: set[int]) -> dict[int, dict[str, Any]]:
    with httpx.Client(base_url=api, timeout=60.0) as http:
        return {h: http.get(f"/v1/blocks/{h}").json()["header"] for h in sorted(heights)}


def summarize(tally: Tally, headers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Latency spread, and where it went: before the block's proposal, and after it."""
    done = tally.done
    latencies = [r.latency_s for r in done]
    to_proposal = [(headers[r.height]["time_ms"] - r.sent_ms) / 1000 for r in done]
    after_proposal = [r.latency_s - t for r, t in zip(done, to_proposal, strict=True)]
    rounds = [headers[h]["round"] for h in {r.height for r in done}]
    per_block = [headers[h]["tx_count"] for h in {r.height for r in done}]
    summary: dict[str, Any] = {
        "registrations": len(done),
        "errors": len(tally.errors),
        "error_examples": tally.errors[:5],
        "latency": spread(latencies),
        "over_goal": sum(latency * 1000 > goal_p99_ms for latency in latencies),
        "goal_met": bool(latencies) and percentile_ms(latencies, 99) <= goal_p99_ms,
        "send_to_proposal": spread(to_proposal),
        "proposal_to_answer": spread(after_proposal),
        "blocks": len(rounds),
        "blocks_past_round_0": sum(r > 0 for r in rounds),
        "txs_per_block_mean": round(statistics.fmean(per_block), 2) if per_block else 0,
    }
    if done and done[0].hash_s:
        summary["client_hash"] = spread([r.hash_s for r in done])
        summary["submit"] = spread([r.submit_s for r in done])
        summary["submit_to_commit"] = spread([r.commit_s for r in done])
    return summary


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-copyright-"))
    consortium = Consortium(workdir / "home", args.validators)
    levels = [int(level) for level in args.concurrency.split(",") if level.strip()]
    concurrent_photos = args.concurrent_count * len(levels)
    try:
        print(
            f"drawing {2 * (args.count + warmup_registrations + concurrent_photos)} photos",
            file=sys.stderr,
            flush=True,
        )
        began = time.perf_counter()
        photos = draw_photos(0, 2 * (args.count + warmup_registrations), args.seed)
        extra = draw_photos(len(photos), 2 * concurrent_photos, args.seed)
        draw_s = time.perf_counter() - began
        print(f"drawn in {draw_s:.0f} s", file=sys.stderr, flush=True)
        gateway_photos, sdk_photos = photos[::2], photos[1::2]
        print(
            f"starting xinchain up: {args.validators} validator(s), API port "
            f"{consortium.base_port}, home {consortium.home}",
            file=sys.stderr,
            flush=True,
        )
        consortium.start()
        home = Home(consortium.home)
        api = consortium.validator_apis[0]
        with Client(api) as client:
            genesis = client.genesis()
        token = home.gateway_token(genesis.validators[0].name)
        results: dict[str, Any] = {}
        makers: list[Callable[[], Registrar]] = [
            lambda: Gateway(api, token),
            lambda: Sdk(api, genesis, home),
        ]
        for make_registrar in makers:
            registrar = make_registrar()  # the SDK's valid_until counts from now
            chosen = gateway_photos if registrar.name == "gateway" else sdk_photos
            print(f"{registrar.name}: {args.count} registrations", file=sys.stderr, flush=True)
            one_after_another(registrar, chosen[:warmup_registrations], f"{registrar.name} warm-up")
            tally = one_after_another(registrar, chosen[warmup_registrations:], registrar.name)
            registrar.close()
            headers = block_headers(api, {r.height for r in tally.done})
            results[registrar.name] = summarize(tally, headers)
        concurrent = []
        for level_index, clients in enumerate(levels):
            start = 2 * level_index * args.concurrent_count
            for offset, kind in enumerate(("gateway", "sdk")):
                batch = extra[start + offset : start + 2 * args.concurrent_count : 2]
                prepared = None
                if kind == "sdk":  # hashed ahead: the clients' CPUs are not this machine's
                    prepared = {photo.index: work_hashes(photo.data) for photo in batch}

                def make(kind: str = kind) -> Registrar:
                    return Gateway(api, token) if kind == "gateway" else Sdk(api, genesis, home)

                print(f"{kind}: {clients} concurrent clients", file=sys.stderr, flush=True)
                tally, seconds = concurrently(make, batch, clients, prepared)
                latencies = [r.latency_s for r in tally.done]
                concurrent.append(
                    {
                        "variant": kind,
                        "clients": clients,
                        "registrations": len(tally.done),
                        "errors": len(tally.errors),
                        "seconds": round(seconds, 2),
                        "per_s": round(len(tally.done) / seconds, 1),
                        "latency": spread(latencies),
                        "txs_per_block_mean": round(
                            len(tally.done) / max(1, len({r.height for r in tally.done})), 2
                        ),
                    }
                )
        return {
            "bench": "copyright",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "validators": args.validators,
            "nodes": consortium.nodes,
            "count": args.count,
            "photo_bytes_mean": round(statistics.fmean(len(p.data) for p in photos)),
            "goal_p99_ms": goal_p99_ms,
            "gateway": results["gateway"],
            "sdk": results["sdk"],
            "concurrent": concurrent,
        }
    finally:
        print("stopping xinchain up", file=sys.stderr, flush=True)
        consortium.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _latency(spread: dict[str, float]) -> str:
    if not spread:
        return "-"
    return f"{spread['p50_ms']:.0f} / {spread['p99_ms']:.0f} / {spread['max_ms']:.0f} ms"


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"copyright bench ({summary['commit']}, {summary['timestamp']}): "
        f"{summary['count']:,} registrations each, one after another, "
        f"{summary['validators']} validator(s) ({summary['nodes']} nodes)",
        f"  {'':<22}  {'gateway':>24}  {'sdk':>24}",
    ]
    gateway, sdk = summary["gateway"], summary["sdk"]

    def row(name: str, key: str) -> None:
        left = _latency(gateway.get(key, {}))
        right = _latency(sdk.get(key, {}))
        lines.append(f"  {name:<22}  {left:>24}  {right:>24}")

    row("latency p50/p99/max", "latency")
    row("  send to proposal", "send_to_proposal")
    row("  proposal to answer", "proposal_to_answer")
    row("  client hashing", "client_hash")
    row("  submit", "submit")
    row("  submit to commit", "submit_to_commit")
    for name, key in (
        ("over 1 s", "over_goal"),
        ("blocks past round 0", "blocks_past_round_0"),
        ("errors", "errors"),
        ("p99 <= 1 s", "goal_met"),
    ):
        lines.append(f"  {name:<22}  {gateway[key]!s:>24}  {sdk[key]!s:>24}")
    for level in summary["concurrent"]:
        lines.append(
            f"  {level['variant']:>7} x {level['clients']:<3} clients: "
            f"{level['per_s']:6.1f} registrations/s, latency {_latency(level['latency'])}, "
            f"{level['txs_per_block_mean']} txs/block, {level['errors']} errors"
        )
    for variant in ("gateway", "sdk"):
        lines += [f"  ! {variant}: {example}" for example in summary[variant]["error_examples"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000, help="registrations of each variant")
    parser.add_argument("--validators", type=int, default=4, help="validators: 1 or 4 (default 4)")
    parser.add_argument(
        "--concurrency",
        default="4,16",
        help="concurrent-client levels, comma-separated (default 4,16; empty: none)",
    )
    parser.add_argument(
        "--concurrent-count", type=int, default=200, help="registrations per level and variant"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the photos")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    if args.count < 1 or args.validators not in (1, 4) or args.concurrent_count < 1:
        parser.error("--count and --concurrent-count: positive; --validators: 1 or 4")
    try:
        with interruptible():
            summary = run(args)
    except KeyboardInterrupt:
        print("interrupted; the consortium is stopped", file=sys.stderr)
        return 130
    print(report(summary))
    write_summary("copyright", summary)
    errors = summary["gateway"]["errors"] + summary["sdk"]["errors"]
    errors += sum(level["errors"] for level in summary["concurrent"])
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
