"""Promo bench: anchor N paid orders of one promotion, close it, then time rank queries.

    .venv/bin/python bench/promo.py [--orders N] [--validators 1|4]

Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at the end,
also on Ctrl-C), and then (bench/README.md has the details):

    brand       promo.open    a promotion whose window ends --window-s after it opens
    platform    promo.order   N orders, 1,000 per transaction, from a few client threads
    brand       promo.close   once the window has ended: the chain ranks and commits

An order's payment time is taken when its transaction is built, less up to a second (as a
payment platform anchoring what was paid just now), so every transaction is within the
contract's payment skew of its block. Reported: anchoring throughput (orders/s, tx/s), commit
latency of an anchoring transaction (p50, p99), the close time (submit to committed), and the
latency of GET /v1/promos/{id}/rank/{order_no} and of its /receipt for a random sample of
orders, each answer checked against an independent sort and each receipt verified offline.

Prints a table and a JSON summary line, and writes the summary to
bench/results/promo-<timestamp>.json. Never part of CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The provenance bench's consortium runner and helpers: one way to start and stop `up`.
from consortium import Consortium
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile
from provenance import interruptible, wait_for_height, write_summary

from xinchain.apps.promo.contract import orders_per_tx_max
from xinchain.apps.registry import RECEIPT_KINDS
from xinchain.client.sdk import ApiError, Client, sign_transaction, validity_blocks
from xinchain.errors import ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.node.home import Home
from xinchain.receipt import verify_receipt

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent

PROMO = "bench-first-n"
MERCHANT = "brand"
PAYMENT = "platform"
SALT = "bench-salt"
winners = 1_000
# A payment is anchored up to this long after it was made (never more than the skew).
payment_delay_ms_max = 1_000
# How long one transaction may take to commit on a loaded 2-core machine.
commit_timeout_s = 900.0
progress_interval_s = 10.0
query_warmup_requests = 5


# --- the workload ------------------------------------------------------------------------------


def order_numbers(count: int, seed: int) -> list[str]:
    """Order numbers of one width (so that text order is number order), in a shuffled arrival
    order: the ranking follows neither."""
    numbers = [f"2026{index:010d}" for index in range(count)]
    random.Random(seed).shuffle(numbers)
    return numbers


def paid_order(order_no: str, paid_ms: int) -> dict[str, Any]:
    account = f"u{order_no[-6:]}"
    return {
        "order_no": order_no,
        "paid_ms": paid_ms,
        "buyer_hash": hashlib.sha256(f"{SALT}:{account}".encode()).hexdigest(),
        "buyer_mask": account[:1] + "***" + account[-1:],
    }


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    txs: int = 0
    orders: int = 0
    tx_bytes: int = 0
    sign_s: float = 0.0
    commit_latencies_s: list[float] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    anchored: list[dict[str, Any]] = field(default_factory=list)
    first_submit: float = 0.0
    last_commit: float = 0.0


class Anchorer:
    """Client threads, each with its own connection to one validator's API, taking batches of
    order numbers from one queue: build (payment time = now), sign, submit, wait for commit."""

    def __init__(
        self,
        apis: list[str],
        genesis: Genesis,
        home: Home,
        window: tuple[int, int],
        threads: int,
        seed: int,
    ) -> None:
        self.apis = apis
        self.genesis = genesis
        self.key = home.org_key(genesis.suite, PAYMENT)
        self.starts_ms, self.ends_ms = window
        self.tally = Tally()
        self.failure: BaseException | None = None
        self._batches: queue.Queue[list[str]] = queue.Queue()
        self._seed = seed
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"client-{i}", daemon=True)
            for i in range(threads)
        ]
        self.valid_until = 0

    def run(self, numbers: list[str]) -> None:
        with Client(self.apis[0]) as client:
            self.valid_until = int(client.status()["height"]) + validity_blocks
        for start in range(0, len(numbers), orders_per_tx_max):
            self._batches.put(numbers[start : start + orders_per_tx_max])
        began = time.monotonic()
        for thread in self._threads:
            thread.start()
        last = began
        while any(thread.is_alive() for thread in self._threads):
            time.sleep(0.2)
            if time.monotonic() - last >= progress_interval_s:
                last = time.monotonic()
                print(
                    f"  {last - began:6.0f} s  {self.tally.txs} txs  {self.tally.orders} orders",
                    file=sys.stderr,
                    flush=True,
                )
        if self.failure is not None:
            raise self.failure

    def _paid_ms(self, chooser: random.Random) -> int:
        """Within the last `payment_delay_ms_max` of the window so far."""
        latest = min(int(time.time() * 1000), self.ends_ms - 1)
        return chooser.randint(max(self.starts_ms, latest - payment_delay_ms_max), latest)

    def _worker(self, index: int) -> None:
        chooser = random.Random(self._seed * 1_000 + index)
        try:
            with Client(self.apis[index % len(self.apis)], timeout_s=120.0) as client:
                while self.failure is None:
                    try:
                        batch = self._batches.get_nowait()
                    except queue.Empty:
                        return
                    self._anchor(client, chooser, batch)
        except BaseException as exc:
            self.failure = self.failure or exc

    def _anchor(self, client: Client, chooser: random.Random, batch: list[str]) -> None:
        began = time.perf_counter()
        orders = [paid_order(number, self._paid_ms(chooser)) for number in batch]
        tx = sign_transaction(
            self.genesis.suite,
            self.key,
            chain_id=self.genesis.chain_id,
            sender=PAYMENT,
            contract="promo",
            method="order",
            args={"promo": PROMO, "orders": orders},
            valid_until=self.valid_until,
        )
        raw_size = len(tx.encode())
        signed = time.perf_counter()
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        committed = time.perf_counter()
        if not answer["result"]["ok"]:
            raise ApiError(400, {"error": {"code": "refused", "reason": answer["result"]["error"]}})
        with self.tally.lock:
            tally = self.tally
            tally.first_submit = tally.first_submit or signed
            tally.last_commit = max(tally.last_commit, committed)
            tally.txs += 1
            tally.orders += len(orders)
            tally.tx_bytes += raw_size
            tally.sign_s += signed - began
            tally.commit_latencies_s.append(committed - signed)
            tally.heights.append(int(answer["height"]))
            tally.anchored.extend(orders)


# --- closing and querying ----------------------------------------------------------------------


def close_promotion(client: Client, genesis: Genesis, home: Home) -> tuple[dict[str, Any], float]:
    """The close transaction's answer and its time from submission to commit."""
    height = int(client.status()["height"])
    tx = sign_transaction(
        genesis.suite,
        home.org_key(genesis.suite, MERCHANT),
        chain_id=genesis.chain_id,
        sender=MERCHANT,
        contract="promo",
        method="close",
        args={"promo": PROMO},
        valid_until=height + validity_blocks,
    )
    began = time.perf_counter()
    answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
    close_s = time.perf_counter() - began
    if not answer["result"]["ok"]:
        raise ApiError(400, {"error": {"code": "refused", "reason": answer["result"]["error"]}})
    return answer, close_s


def expected_ranks(anchored: list[dict[str, Any]]) -> dict[str, int]:
    """The bench's own ranking: payment time, then order number."""
    ordered = sorted(anchored, key=lambda order: (order["paid_ms"], order["order_no"]))
    return {order["order_no"]: rank for rank, order in enumerate(ordered, start=1)}


def timed_get(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    response = http.get(path)
    return response, (time.perf_counter() - began) * 1000


def measure_queries(
    api: str, ranks: dict[str, int], samples: int, seed: int, genesis_hash: str
) -> dict[str, Any]:
    """GET /rank/{no} then /rank/{no}/receipt for a random sample, one after another on one
    connection; the first of each (which builds the node's cached ranking and tree) apart."""
    chooser = random.Random(seed)
    numbers = sorted(ranks)
    chosen = chooser.sample(numbers, min(samples, len(numbers)))
    sampled = set(chosen)
    warmup = [number for number in numbers if number not in sampled][:query_warmup_requests]
    rank_ms: list[float] = []
    receipt_ms: list[float] = []
    failures: list[str] = []
    with httpx.Client(base_url=api, timeout=60.0) as http:
        base = f"/v1/promos/{PROMO}/rank"
        _, first_rank_ms = timed_get(http, f"{base}/{warmup[0]}")
        _, first_receipt_ms = timed_get(http, f"{base}/{warmup[0]}/receipt")
        for number in warmup[1:]:
            http.get(f"{base}/{number}")
            http.get(f"{base}/{number}/receipt")
        for number in chosen:
            response, elapsed = timed_get(http, f"{base}/{number}")
            rank_ms.append(elapsed)
            rank = response.json().get("rank") if response.status_code == 200 else None
            if rank != ranks[number]:
                failures.append(f"rank of {number}: {rank}, expected {ranks[number]}")
            response, elapsed = timed_get(http, f"{base}/{number}/receipt")
            receipt_ms.append(elapsed)
            try:
                receipt = response.json()
                verify_receipt(
                    receipt, None, kinds=RECEIPT_KINDS, expected_genesis_hash=genesis_hash
                )
                if receipt["entry"]["rank"] != ranks[number]:
                    raise ReceiptInvalid(f"proves rank {receipt['entry']['rank']}")
            except (ReceiptInvalid, KeyError, ValueError) as exc:
                failures.append(f"receipt of {number}: HTTP {response.status_code}, {exc}")
    return {
        "samples": len(chosen),
        "warmup_requests": len(warmup),
        "first_rank_ms": round(first_rank_ms, 2),
        "first_receipt_ms": round(first_receipt_ms, 2),
        "rank_p50_ms": percentile(rank_ms, 50),
        "rank_p99_ms": percentile(rank_ms, 99),
        "rank_max_ms": round(max(rank_ms), 2),
        "rank_mean_ms": round(statistics.fmean(rank_ms), 2),
        "receipt_p50_ms": percentile(receipt_ms, 50),
        "receipt_p99_ms": percentile(receipt_ms, 99),
        "receipt_max_ms": round(max(receipt_ms), 2),
        "errors": len(failures),
        "error_examples": failures[:5],
    }


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-promo-"))
    consortium = Consortium(workdir / "home", args.validators)
    try:
        print(
            f"starting xinchain up: {args.validators} validator(s), API port "
            f"{consortium.base_port}, home {consortium.home}",
            file=sys.stderr,
            flush=True,
        )
        started = time.perf_counter()
        consortium.start()
        print(f"ready in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        home = Home(consortium.home)
        apis = consortium.validator_apis
        with Client(apis[0], timeout_s=120.0) as client:
            genesis = client.genesis()
            opened_ms = int(time.time() * 1000)
            window = (opened_ms, opened_ms + args.window_s * 1000)
            client.call(
                genesis,
                home.org_key(genesis.suite, MERCHANT),
                sender=MERCHANT,
                contract="promo",
                method="open",
                args={
                    "promo": PROMO,
                    "title": "Singles' Day: the first 1,000 to pay / 双十一前1000名",
                    "gift": "Travel-size tin / 旅行装小罐",
                    "starts_ms": window[0],
                    "ends_ms": window[1],
                    "winners": winners,
                },
            )
            start_height = int(client.status()["height"])
            anchorer = Anchorer(apis, genesis, home, window, args.threads, args.seed)
            print(
                f"anchoring {args.orders} orders, {orders_per_tx_max} per transaction, "
                f"{args.threads} client threads",
                file=sys.stderr,
                flush=True,
            )
            anchorer.run(order_numbers(args.orders, args.seed))
            tally = anchorer.tally
            anchor_s = tally.last_commit - tally.first_submit
            wait_s = max(0.0, (window[1] - time.time() * 1000) / 1000)
            print(f"waiting {wait_s:.1f} s for the window to end", file=sys.stderr, flush=True)
            while int(time.time() * 1000) <= window[1]:
                time.sleep(0.05)
            print("closing", file=sys.stderr, flush=True)
            close, close_s = close_promotion(client, genesis, home)
        wait_for_height(apis[0], int(close["height"]))
        print("measuring rank queries", file=sys.stderr, flush=True)
        queries = measure_queries(
            apis[0],
            expected_ranks(tally.anchored),
            args.rank_samples,
            args.seed,
            genesis.hash_hex(),
        )
        latencies = tally.commit_latencies_s
        paid_times = {order["paid_ms"] for order in tally.anchored}
        return {
            "bench": "promo",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "validators": args.validators,
            "nodes": consortium.nodes,
            "client_threads": args.threads,
            "orders": args.orders,
            "winners": winners,
            "distinct_paid_ms": len(paid_times),
            "anchor": {
                "seconds": round(anchor_s, 2),
                "transactions": tally.txs,
                "orders_per_s": round(tally.orders / anchor_s, 1),
                "tx_per_s": round(tally.txs / anchor_s, 2),
                "orders_per_tx_mean": round(tally.orders / tally.txs, 1),
                "tx_bytes_mean": round(tally.tx_bytes / tally.txs),
                "blocks": max(tally.heights) - start_height,
                "commit_latency_p50_s": round(percentile(latencies, 50), 3),
                "commit_latency_p99_s": round(percentile(latencies, 99), 3),
                "commit_latency_max_s": round(max(latencies), 3),
                "client_build_sign_s": round(tally.sign_s, 2),
            },
            "close": {
                "seconds": round(close_s, 3),
                "height": int(close["height"]),
                "size": close["result"]["data"]["size"],
                "root": close["result"]["data"]["root"],
                "waited_for_window_end_s": round(wait_s, 2),
            },
            "queries": queries,
            "validator0_data_mb": round(consortium.data_bytes() / 1e6, 1),
        }
    finally:
        print("stopping xinchain up", file=sys.stderr, flush=True)
        consortium.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(summary: dict[str, Any]) -> str:
    anchor, close, queries = summary["anchor"], summary["close"], summary["queries"]
    rows = [
        ("orders", f"{summary['orders']:,} ({summary['distinct_paid_ms']:,} distinct paid ms)"),
        ("validators", f"{summary['validators']} ({summary['nodes']} nodes)"),
        ("client threads", f"{summary['client_threads']}"),
        ("transactions", f"{anchor['transactions']:,} (mean {anchor['orders_per_tx_mean']})"),
        ("blocks", f"{anchor['blocks']:,}"),
        ("anchoring time", f"{anchor['seconds']:,.2f} s"),
        ("orders/s", f"{anchor['orders_per_s']:,.1f}"),
        ("tx/s", f"{anchor['tx_per_s']:,.2f}"),
        (
            "commit p50/p99/max",
            f"{anchor['commit_latency_p50_s']} s / {anchor['commit_latency_p99_s']} s / "
            f"{anchor['commit_latency_max_s']} s",
        ),
        ("client build+sign", f"{anchor['client_build_sign_s']} s"),
        ("close (submit→commit)", f"{close['seconds']} s ({close['size']:,} orders ranked)"),
        ("first rank query", f"{queries['first_rank_ms']} ms (builds the cached ranking)"),
        ("first receipt", f"{queries['first_receipt_ms']} ms (builds the cached tree)"),
        ("rank samples", f"{queries['samples']:,} (+{queries['warmup_requests']} warm-up)"),
        ("rank p50/p99", f"{queries['rank_p50_ms']} ms / {queries['rank_p99_ms']} ms"),
        ("receipt p50/p99", f"{queries['receipt_p50_ms']} ms / {queries['receipt_p99_ms']} ms"),
        ("errors", f"{queries['errors']}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"promo bench ({summary['commit']}, {summary['timestamp']})"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  ! {example}" for example in queries["error_examples"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="orders (default 50,000)")
    parser.add_argument("--validators", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--window-s",
        type=int,
        default=10,
        help="the window ends this long after the promotion opens (default 10 s)",
    )
    parser.add_argument("--rank-samples", type=int, default=1_000, help="rank queries timed")
    parser.add_argument("--seed", type=int, default=1, help="seed of order numbers and sample")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    if min(args.orders, args.validators, args.threads, args.window_s, args.rank_samples) < 1:
        parser.error("--orders, --validators, --threads, --window-s, --rank-samples: positive")
    try:
        with interruptible():
            summary = run(args)
    except KeyboardInterrupt:
        print("interrupted; the consortium is stopped", file=sys.stderr)
        return 130
    print(report(summary))
    write_summary("promo", summary)
    return 0 if summary["queries"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
