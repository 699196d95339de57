"""Promo bench: promotions of N paid orders each on one consortium, anchored, closed and queried.

    .venv/bin/python bench/promo.py [--orders 50000,1000000] [--validators 4]

Issue 17's "done when": 1,000,000 orders in one promotion on 4 validators, anchored, closed
with no round escalation, every sampled rank receipt (at least 10,000) verified offline, and
the committed root equal to an independent sort of all orders; with the 50,000 figure from the
same run. Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at
the end, also on Ctrl-C), and then, for each promotion in turn (bench/README.md has the
details):

    brand       promo.open    a window long enough for anchoring at the rate measured so far
    platform    promo.order   N orders, 1,000 per transaction, from a few client threads
    (bench)                   provisional rank queries while the promotion is not closed
    brand       promo.close   once block time passes the window's end plus the 5-minute
                              grace, repeated until it commits the ranking's root

An order's payment time is taken when its transaction is built, less up to a second (as a
payment platform anchoring what was paid just now). Reported per promotion: anchoring
throughput (orders/s, tx/s), commit latency of an anchoring transaction (p50, p99), the
consensus round of every block of the anchoring and of the close, the close time (first close
submitted to the root committed) and its transactions and blocks, whether the committed root
equals the bench's own sort and Merkle tree of all orders, and the latency of
GET /v1/promos/{id}/rank/{order_no} and of its /receipt for a random sample of orders, each
answer checked against the bench's sort and each receipt verified offline.

Prints a table and a JSON summary line, and writes the summary to
bench/results/promo-<timestamp>.json. Never part of CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import os
import platform
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The provenance bench's consortium runner and helpers: one way to start and stop `up`.
from consortium import Consortium
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile
from provenance import interruptible, wait_for_height, write_summary

from xinchain.apps.promo.contract import (
    entry_digest,
    orders_per_tx_max,
    payment_skew_ms,
    ranking_entry,
    ranking_key,
    settle_per_block_max,
)
from xinchain.apps.promo.view import mask_order_number
from xinchain.apps.registry import RECEIPT_KINDS
from xinchain.client.sdk import ApiError, Client, sign_transaction, validity_blocks
from xinchain.errors import ReceiptInvalid
from xinchain.genesis import Genesis
from xinchain.merkle import MerkleTree
from xinchain.node.home import Home
from xinchain.receipt import verify_receipt

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent

PROMO_PREFIX = "bench-first-n"
MERCHANT = "brand"
PAYMENT = "platform"
SALT = "bench-salt"
winners = 1_000
# A payment is anchored up to this long after it was made (never more than the skew).
payment_delay_ms_max = 1_000
# One order in this many has a non-numeric order number (ranked after numeric ones of the
# same millisecond); the others are numbers of varying width, so that text order is not rank.
alphanumeric_one_in = 100
# How long one transaction may take to commit on a loaded 2-core machine.
commit_timeout_s = 900.0
progress_interval_s = 10.0
query_warmup_requests = 5
# The window of the first promotion, before any rate was measured, assumes this rate.
first_rate_orders_per_s = 5_000.0
# A window is this much longer than anchoring at the rate measured so far, plus a margin.
window_margin_factor = 2.0
window_margin_s = 20
# Close steps beyond those the contract needs (ceil(orders / settle_per_block_max)) before the
# bench gives up: a close that never commits its root is a bug to report.
close_steps_spare = 50
# Block time is polled this often while waiting for the grace period to end.
grace_poll_s = 0.5


# --- the workload ------------------------------------------------------------------------------


def order_numbers(count: int, seed: int) -> list[str]:
    """Order numbers in a shuffled arrival order (the ranking follows neither): numbers of
    varying width without leading zeros (so that "99" ranks before "100" of the same
    millisecond), and one in `alphanumeric_one_in` a text one."""
    numbers = [
        f"PX{index:08d}" if index % alphanumeric_one_in == 0 else str(10 ** (6 + index % 4) + index)
        for index in range(count)
    ]
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
    late: list[dict[str, Any]] = field(default_factory=list)
    built_after_window_end: int = 0
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
        promo: str,
        window: tuple[int, int],
        threads: int,
        seed: int,
    ) -> None:
        self.apis = apis
        self.genesis = genesis
        self.key = home.org_key(genesis.suite, PAYMENT)
        self.promo = promo
        self.starts_ms, self.ends_ms = window
        self.tally = Tally()
        self.failure: BaseException | None = None
        self._batches: queue.Queue[list[str]] = queue.Queue()
        self._seed = seed
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"client-{i}", daemon=True)
            for i in range(threads)
        ]
        # Transactions are valid for `validity_blocks` past the latest height seen committed.
        self.tip = 0

    def run(self, numbers: list[str]) -> None:
        with Client(self.apis[0]) as client:
            self.tip = int(client.status()["height"])
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
                left_s = (self.ends_ms - time.time() * 1000) / 1000
                print(
                    f"  {last - began:6.0f} s  {self.tally.txs} txs  {self.tally.orders:,} "
                    f"orders  height {self.tip}  window ends in {left_s:,.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        if self.failure is not None:
            raise self.failure

    def _paid_ms(self, chooser: random.Random) -> int:
        """Within the last `payment_delay_ms_max` of the window so far."""
        now = int(time.time() * 1000)
        if now >= self.ends_ms:
            with self.tally.lock:
                self.tally.built_after_window_end += 1
        latest = min(now, self.ends_ms - 1)
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
            args={"promo": self.promo, "orders": orders},
            valid_until=self.tip + validity_blocks,
        )
        raw_size = len(tx.encode())
        signed = time.perf_counter()
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        committed = time.perf_counter()
        result = answer["result"]
        if not result["ok"]:
            raise ApiError(400, {"error": {"code": "refused", "reason": result["error"]}})
        late = {entry["order_no"] for entry in result["data"].get("late", [])}
        with self.tally.lock:
            tally = self.tally
            tally.first_submit = min(tally.first_submit or signed, signed)
            tally.last_commit = max(tally.last_commit, committed)
            tally.txs += 1
            tally.orders += len(orders) - len(late)
            tally.tx_bytes += raw_size
            tally.sign_s += signed - began
            tally.commit_latencies_s.append(committed - signed)
            tally.heights.append(int(answer["height"]))
            tally.anchored.extend(order for order in orders if order["order_no"] not in late)
            tally.late.extend(order for order in orders if order["order_no"] in late)
            self.tip = max(self.tip, int(answer["height"]))


# --- the independent ranking -------------------------------------------------------------------


@dataclass
class Expected:
    """The bench's own ranking of every anchored order and the root of its RFC 9162 tree."""

    promo: str
    ordered: list[dict[str, Any]]
    ranks: dict[str, int]
    digests: list[bytes]
    root: str
    seconds: float

    def entry(self, order_no: str) -> dict[str, Any]:
        rank = self.ranks[order_no]
        return ranking_entry(self.promo, rank, self.ordered[rank - 1])


def expected_ranking(promo: str, anchored: list[dict[str, Any]], hasher: Any) -> Expected:
    """Payment time, then order number (numeric ones as numbers, before text ones): the
    contract's `ranking_key`, applied to the orders as the bench built them."""
    began = time.perf_counter()
    ordered = sorted(anchored, key=ranking_key)
    ranks = {order["order_no"]: rank for rank, order in enumerate(ordered, start=1)}
    digests = [
        entry_digest(hasher, ranking_entry(promo, rank, order))
        for rank, order in enumerate(ordered, start=1)
    ]
    root = MerkleTree(hasher, digests).root().hex()
    return Expected(promo, ordered, ranks, digests, root, time.perf_counter() - began)


# --- consensus rounds --------------------------------------------------------------------------


def block_rounds(api: str, heights: list[int]) -> dict[int, int]:
    """The round each block committed in, from its commit certificate (GET /v1/blocks/{h})."""
    rounds: dict[int, int] = {}
    with Client(api, timeout_s=60.0) as client:
        for height in sorted(set(heights)):
            certificate = client.get_json(f"/v1/blocks/{height}")["certificate"]
            rounds[height] = -1 if certificate is None else int(certificate["round"])
    return rounds


def rounds_summary(rounds: dict[int, int]) -> dict[str, Any]:
    counted = Counter(rounds.values())
    return {
        "blocks": len(rounds),
        "max_round": max(rounds.values(), default=0),
        "by_round": {str(number): counted[number] for number in sorted(counted)},
        "escalated_heights": [height for height, number in sorted(rounds.items()) if number][:20],
    }


# --- closing -----------------------------------------------------------------------------------


def wait_for_grace(client: Client, opens_ms: int) -> float:
    """Wait until the tip's block time reaches the window's end plus the skew; seconds waited."""
    began = time.perf_counter()
    while int(client.status()["time_ms"]) < opens_ms:
        time.sleep(grace_poll_s)
    return time.perf_counter() - began


def close_promotion(
    client: Client, genesis: Genesis, home: Home, promo: str, orders: int
) -> dict[str, Any]:
    """Close repeatedly, one transaction at a time (each settles up to `settle_per_block_max`
    orders; one a block is all that helps), until the answer holds the root. The close time is
    the first close's submission to the commit of the one that answered the root."""
    key = home.org_key(genesis.suite, MERCHANT)
    steps: list[dict[str, Any]] = []
    began = 0.0
    refused_early = 0
    steps_max = math.ceil(orders / settle_per_block_max) + close_steps_spare
    while True:
        tx = sign_transaction(
            genesis.suite,
            key,
            chain_id=genesis.chain_id,
            sender=MERCHANT,
            contract="promo",
            method="close",
            args={"promo": promo},
            valid_until=int(client.status()["height"]) + validity_blocks,
        )
        submitted = time.perf_counter()
        began = began or submitted
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        committed = time.perf_counter()
        result = answer["result"]
        if not result["ok"]:
            # Block time short of the grace (a proposer's clock behind ours): not a step.
            if not steps and "close from" in result["error"] and refused_early < 20:
                refused_early += 1
                began = 0.0
                time.sleep(1.0)
                continue
            raise ApiError(400, {"error": {"code": "refused", "reason": result["error"]}})
        data = result["data"]
        steps.append(
            {
                "height": int(answer["height"]),
                "tx_id": answer["tx_id"],
                "seconds": round(committed - submitted, 3),
                "ranked": int(data.get("ranked", data.get("size", 0))),
            }
        )
        print(
            f"  close step {len(steps)}: height {answer['height']}, "
            f"{steps[-1]['ranked']:,} of {orders:,} ranked, {committed - submitted:.2f} s",
            file=sys.stderr,
            flush=True,
        )
        if "root" in data:
            return {
                "seconds": round(committed - began, 3),
                "transactions": len(steps),
                "heights": [step["height"] for step in steps],
                "steps": steps,
                "refused_before_grace": refused_early,
                "root": data["root"],
                "size": int(data["size"]),
                "tx_id": answer["tx_id"],
            }
        if len(steps) >= steps_max:
            raise RuntimeError(
                f"close of {promo} did not commit a root after {len(steps)} transactions: "
                f"last answer {data}, last heights {[s['height'] for s in steps[-5:]]}"
            )


# --- queries -----------------------------------------------------------------------------------


def timed_get(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    response = http.get(path)
    return response, (time.perf_counter() - began) * 1000


def _run_threads(work: Any, chosen: list[str], threads: int) -> dict[str, Any]:
    """`work` over `chosen` split among `threads` threads: the sample, threads and wall time
    every query summary starts with."""
    chunks = [chosen[i::threads] for i in range(threads)]
    failures: list[BaseException] = []

    def runner(chunk: list[str]) -> None:
        try:
            work(chunk)
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    began = time.perf_counter()
    running = [threading.Thread(target=runner, args=(chunk,)) for chunk in chunks]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    if failures:
        raise failures[0]
    wall_s = time.perf_counter() - began
    return {"samples": len(chosen), "threads": threads, "wall_s": round(wall_s, 2)}


def sample_numbers(expected: Expected, samples: int, seed: int) -> tuple[list[str], list[str]]:
    """A random sample of order numbers, and a few others for warming up."""
    chooser = random.Random(seed)
    numbers = [order["order_no"] for order in expected.ordered]
    chosen = chooser.sample(numbers, min(samples, len(numbers)))
    sampled = set(chosen)
    others = chooser.sample(numbers, min(len(numbers), 1_000))
    return chosen, [number for number in others if number not in sampled][:query_warmup_requests]


def measure_provisional(
    api: str, expected: Expected, samples: int, seed: int, threads: int
) -> dict[str, Any]:
    """GET /rank/{no} for a random sample while the promotion is not closed: the rank is
    provisional (settled orders, then the unsettled ones in key order) and, every order being
    anchored, must already equal the bench's sort."""
    chosen, warmup = sample_numbers(expected, samples, seed)
    promo = expected.promo
    rank_ms: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    base = f"/v1/promos/{promo}/rank"
    with httpx.Client(base_url=api, timeout=300.0) as http:
        _, first_rank_ms = timed_get(http, f"{base}/{warmup[0]}")
        for number in warmup[1:]:
            http.get(f"{base}/{number}")
        record = http.get(f"/v1/promos/{promo}").json()

    def work(chunk: list[str]) -> None:
        with httpx.Client(base_url=api, timeout=60.0) as http:
            for number in chunk:
                response, elapsed = timed_get(http, f"{base}/{number}")
                body = response.json() if response.status_code == 200 else {}
                problem = ""
                if body.get("rank") != expected.ranks[number] or body.get("final") is not False:
                    problem = (
                        f"provisional rank of {number}: HTTP {response.status_code} "
                        f"{str(body)[:200]}, expected rank {expected.ranks[number]}, not final"
                    )
                with lock:
                    rank_ms.append(elapsed)
                    if problem:
                        failures.append(problem)

    timing = _run_threads(work, chosen, threads)
    return {
        **timing,
        "settled_at_query": int(record.get("ranked", 0)),
        "orders_at_query": int(record.get("orders", 0)),
        "first_rank_ms": round(first_rank_ms, 2),
        **latencies("rank", rank_ms),
        "errors": len(failures),
        "error_examples": failures[:5],
    }


def latencies(name: str, values: list[float]) -> dict[str, float]:
    """p50, p99, max and mean of request times in ms, named `<name>_p50_ms` and so on."""
    return {
        f"{name}_p50_ms": percentile(values, 50),
        f"{name}_p99_ms": percentile(values, 99),
        f"{name}_max_ms": round(max(values), 2),
        f"{name}_mean_ms": round(statistics.fmean(values), 2),
    }


# The public page's rows a page (xinchain.apps.promo.page) and ranking API entries a request.
page_rows = 200
api_page_entries = 100
_ROW_RANK = re.compile(r"<tr class='[a-z]*'><td>([0-9]+)")


def measure_pages(api: str, expected: Expected, samples: int, seed: int) -> dict[str, Any]:
    """GET the public ranking page (/promo/{id}?page=N) and the ranking API (offset, limit)
    at random places of the final ranking: each page must list the ranks it should, each API
    page the bench's masked order numbers at their ranks."""
    chooser = random.Random(seed)
    size = len(expected.ordered)
    pages = -(-size // page_rows)
    page_ms: list[float] = []
    api_ms: list[float] = []
    failures: list[str] = []
    with httpx.Client(base_url=api, timeout=60.0) as http:
        for _ in range(samples):
            number = chooser.randrange(1, pages + 1)
            response, elapsed = timed_get(http, f"/promo/{expected.promo}?page={number}")
            page_ms.append(elapsed)
            ranks = [int(rank) for rank in _ROW_RANK.findall(response.text)]
            first = (number - 1) * page_rows + 1
            if ranks != list(range(first, min(first + page_rows, size + 1))):
                failures.append(f"page {number}: HTTP {response.status_code}, ranks {ranks[:3]}…")
            offset = chooser.randrange(size)
            path = f"/v1/promos/{expected.promo}/ranking?offset={offset}&limit={api_page_entries}"
            response, elapsed = timed_get(http, path)
            api_ms.append(elapsed)
            entries = response.json().get("entries", []) if response.status_code == 200 else []
            wanted = expected.ordered[offset : offset + api_page_entries]
            shown = [(entry["rank"], entry["order_no"]) for entry in entries]
            if shown != [
                (offset + i + 1, mask_order_number(order["order_no"]))
                for i, order in enumerate(wanted)
            ]:
                failures.append(f"ranking API at offset {offset}: HTTP {response.status_code}")
    return {
        "samples": samples,
        **latencies("page", page_ms),
        **latencies("api_page", api_ms),
        "errors": len(failures),
        "error_examples": failures[:5],
    }


def measure_queries(
    api: str, expected: Expected, samples: int, seed: int, genesis_hash: str, threads: int
) -> dict[str, Any]:
    """GET /rank/{no} then /rank/{no}/receipt for a random sample; the first of each (which
    builds the node's cached block roots and tree) apart. Each rank must be the bench's; each
    receipt must verify offline and carry the bench's entry, digest, position and root."""
    chosen, warmup = sample_numbers(expected, samples, seed)
    promo = expected.promo
    size = len(expected.ordered)
    rank_ms: list[float] = []
    receipt_ms: list[float] = []
    verify_ms: list[float] = []
    failures: list[str] = []
    verified = [0]
    lock = threading.Lock()
    base = f"/v1/promos/{promo}/rank"
    with httpx.Client(base_url=api, timeout=300.0) as http:
        _, first_rank_ms = timed_get(http, f"{base}/{warmup[0]}")
        _, first_receipt_ms = timed_get(http, f"{base}/{warmup[0]}/receipt")
        for number in warmup[1:]:
            http.get(f"{base}/{number}")
            http.get(f"{base}/{number}/receipt")

    def check(number: str, response: httpx.Response) -> float:
        began = time.perf_counter()
        receipt = response.json()
        verify_receipt(receipt, None, kinds=RECEIPT_KINDS, expected_genesis_hash=genesis_hash)
        spent = (time.perf_counter() - began) * 1000
        rank = expected.ranks[number]
        if receipt["entry"] != expected.entry(number):
            raise ReceiptInvalid(f"carries {receipt['entry']}, expected {expected.entry(number)}")
        if receipt["document"]["hash"] != expected.digests[rank - 1].hex():
            raise ReceiptInvalid("its digest is not the bench's digest of the entry")
        if (receipt["anchor"]["index"], receipt["anchor"]["size"]) != (rank - 1, size):
            raise ReceiptInvalid(f"proves position {receipt['anchor']} of another tree")
        if receipt["result"]["data"].get("root") != expected.root:
            raise ReceiptInvalid(f"proves root {receipt['result']['data'].get('root')}")
        return spent

    def work(chunk: list[str]) -> None:
        with httpx.Client(base_url=api, timeout=60.0) as http:
            for number in chunk:
                problems: list[str] = []
                response, rank_elapsed = timed_get(http, f"{base}/{number}")
                body = response.json() if response.status_code == 200 else {}
                if body.get("rank") != expected.ranks[number] or body.get("final") is not True:
                    problems.append(
                        f"rank of {number}: HTTP {response.status_code} {str(body)[:200]}, "
                        f"expected {expected.ranks[number]} (final)"
                    )
                response, receipt_elapsed = timed_get(http, f"{base}/{number}/receipt")
                spent = None
                try:
                    spent = check(number, response)
                except (ReceiptInvalid, KeyError, TypeError, ValueError) as exc:
                    problems.append(
                        f"receipt of {number}: HTTP {response.status_code}, {exc!r}"[:400]
                    )
                with lock:
                    rank_ms.append(rank_elapsed)
                    receipt_ms.append(receipt_elapsed)
                    if spent is not None:
                        verify_ms.append(spent)
                        verified[0] += 1
                    failures.extend(problems)

    timing = _run_threads(work, chosen, threads)
    return {
        **timing,
        "warmup_requests": len(warmup),
        "first_rank_ms": round(first_rank_ms, 2),
        "first_receipt_ms": round(first_receipt_ms, 2),
        **latencies("rank", rank_ms),
        **latencies("receipt", receipt_ms),
        "receipts_verified": verified[0],
        "offline_verify_p50_ms": percentile(verify_ms, 50) if verify_ms else None,
        "errors": len(failures),
        "error_examples": failures[:5],
    }


# --- one promotion -----------------------------------------------------------------------------


def window_seconds(orders: int, rate: float, given: int | None) -> int:
    """The window: as given, or anchoring at `rate` with a margin."""
    if given is not None:
        return given
    return math.ceil(orders / rate * window_margin_factor) + window_margin_s


def run_promotion(
    args: argparse.Namespace,
    consortium: Consortium,
    genesis: Genesis,
    home: Home,
    index: int,
    orders: int,
    window_s: int,
    rank_samples: int,
) -> dict[str, Any]:
    promo = f"{PROMO_PREFIX}-{index + 1}-{orders}"
    apis = consortium.validator_apis
    seed = args.seed * 100 + index

    def say(text: str) -> None:
        print(f"[{promo}] {text}", file=sys.stderr, flush=True)

    with Client(apis[0], timeout_s=120.0) as client:
        opened_ms = int(time.time() * 1000)
        window = (opened_ms, opened_ms + window_s * 1000)
        client.call(
            genesis,
            home.org_key(genesis.suite, MERCHANT),
            sender=MERCHANT,
            contract="promo",
            method="open",
            args={
                "promo": promo,
                "title": f"Singles' Day: the first {winners:,} to pay / 双十一前{winners}名",
                "gift": "Travel-size tin / 旅行装小罐",
                "starts_ms": window[0],
                "ends_ms": window[1],
                "winners": winners,
            },
        )
        start_height = int(client.status()["height"])
        anchorer = Anchorer(apis, genesis, home, promo, window, args.threads, seed)
        say(
            f"anchoring {orders:,} orders, {orders_per_tx_max} per transaction, "
            f"{args.threads} client threads; window {window_s} s"
        )
        anchorer.run(order_numbers(orders, seed))
        tally = anchorer.tally
        anchor_s = tally.last_commit - tally.first_submit
        last_anchor_height = max(tally.heights)
        anchored_before_end_s = (window[1] - time.time() * 1000) / 1000
        say(
            f"anchored in {anchor_s:.1f} s ({tally.orders / anchor_s:,.0f} orders/s); "
            f"window ends in {anchored_before_end_s:.1f} s"
        )
        wait_for_height(apis[0], last_anchor_height)
        record_anchored = client.get_json(f"/v1/promos/{promo}")

        say(f"provisional rank queries ({args.provisional_samples} samples)")
        expected_for_provisional = expected_ranking(promo, tally.anchored, genesis.suite.hash)
        provisional = measure_provisional(
            apis[0],
            expected_for_provisional,
            args.provisional_samples,
            seed + 7,
            args.query_threads,
        )
        provisional["seconds_before_window_end"] = round((window[1] - time.time() * 1000) / 1000, 1)
        expected = expected_for_provisional
        say(f"independent sort and tree: {expected.seconds:.1f} s, root {expected.root[:16]}…")

        opens_ms = window[1] + payment_skew_ms
        say(f"waiting {(opens_ms - time.time() * 1000) / 1000:,.0f} s for the window and grace")
        grace_wait_s = wait_for_grace(client, opens_ms)
        record_before_close = client.get_json(f"/v1/promos/{promo}")
        say(
            f"closing: {record_before_close['ranked']:,} of {record_before_close['orders']:,} "
            "settled while anchoring"
        )
        close = close_promotion(client, genesis, home, promo, tally.orders)
        say(f"closed in {close['seconds']} s, {close['transactions']} close transactions")
        wait_for_height(apis[0], close["heights"][-1])
        record = client.get_json(f"/v1/promos/{promo}")

    anchor_rounds = block_rounds(apis[0], list(range(start_height + 1, last_anchor_height + 1)))
    close_rounds = block_rounds(apis[0], close["heights"])
    close["blocks"] = len(set(close["heights"]))
    close["rounds"] = rounds_summary(close_rounds)
    close["waited_for_grace_s"] = round(grace_wait_s, 2)
    close["settled_before_close"] = int(record_before_close["ranked"])
    close["root_matches_independent_sort"] = close["root"] == expected.root
    close["record_root_matches"] = record.get("root") == expected.root
    del close["steps"][10:-5]  # keep the first and last steps only

    say(f"rank and receipt queries ({rank_samples:,} samples)")
    queries = measure_queries(
        apis[0], expected, rank_samples, seed + 13, genesis.hash_hex(), args.query_threads
    )
    say(f"ranking pages ({args.page_samples} of each kind)")
    pages = measure_pages(apis[0], expected, args.page_samples, seed + 17)
    commit_s = tally.commit_latencies_s
    return {
        "promo": promo,
        "orders": orders,
        "late": len(tally.late),
        "late_in_record": int(record.get("late", 0)),
        "orders_in_record": int(record.get("orders", 0)),
        "closed_in_record": bool(record.get("closed")),
        "distinct_paid_ms": len({order["paid_ms"] for order in tally.anchored}),
        "window_s": window_s,
        "orders_built_after_window_end": tally.built_after_window_end,
        "anchor": {
            "seconds": round(anchor_s, 2),
            "transactions": tally.txs,
            "orders_per_s": round(tally.orders / anchor_s, 1),
            "tx_per_s": round(tally.txs / anchor_s, 2),
            "orders_per_tx_mean": round(tally.orders / tally.txs, 1),
            "tx_bytes_mean": round(tally.tx_bytes / tally.txs),
            "blocks": last_anchor_height - start_height,
            "blocks_with_orders": len(set(tally.heights)),
            "rounds": rounds_summary(anchor_rounds),
            "settled_while_anchoring": int(record_anchored.get("ranked", 0)),
            "commit_latency_p50_s": round(percentile(commit_s, 50), 3),
            "commit_latency_p99_s": round(percentile(commit_s, 99), 3),
            "commit_latency_max_s": round(max(commit_s), 3),
            "client_build_sign_s": round(tally.sign_s, 2),
        },
        "independent": {"root": expected.root, "sort_and_tree_s": round(expected.seconds, 2)},
        "close": close,
        "provisional_queries": provisional,
        "queries": queries,
        "pages": pages,
    }


# --- the run -----------------------------------------------------------------------------------


def src_changes() -> str:
    """`git diff --stat HEAD -- src` in one line: what of the working tree the run measured."""
    try:
        found = subprocess.run(
            ["git", "-C", str(REPO), "diff", "--shortstat", "HEAD", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        )
        diff = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--", "src"],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not found.stdout.strip():
        return "clean"
    return f"{found.stdout.strip()} (diff sha256 {hashlib.sha256(diff.stdout).hexdigest()[:12]})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-promo-"))
    consortium = Consortium(workdir / "home", args.validators)
    src = src_changes()
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
        with Client(consortium.validator_apis[0], timeout_s=120.0) as client:
            genesis = client.genesis()
        promotions: list[dict[str, Any]] = []
        failure = ""
        rate = args.first_rate
        for index, orders in enumerate(args.orders):
            given = args.window_s[index] if index < len(args.window_s) else None
            samples = args.rank_samples[min(index, len(args.rank_samples) - 1)]
            try:
                result = run_promotion(
                    args,
                    consortium,
                    genesis,
                    home,
                    index,
                    orders,
                    window_seconds(orders, rate, given),
                    samples,
                )
            except Exception:  # reported with the nodes' output, the home kept
                failure = traceback.format_exc()
                print(failure, file=sys.stderr)
                print(f"xinchain up, last lines:\n{consortium.tail(60)}", file=sys.stderr)
                args.keep = True
                break
            promotions.append(result)
            rate = result["anchor"]["orders_per_s"]
        return {
            "failure": failure,
            "bench": "promo",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "src_working_tree": src,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "validators": args.validators,
            "nodes": consortium.nodes,
            "client_threads": args.threads,
            "query_threads": args.query_threads,
            "winners": winners,
            "payment_skew_ms": payment_skew_ms,
            "settle_per_block_max": settle_per_block_max,
            "promotions": promotions,
            "validator0_data_mb": round(consortium.data_bytes() / 1e6, 1),
        }
    finally:
        print("stopping xinchain up", file=sys.stderr, flush=True)
        consortium.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def errors(summary: dict[str, Any]) -> list[str]:
    """What makes the run fail issue 17's "done when" (and the exit status 1)."""
    found: list[str] = []
    if summary["failure"]:
        found.append("failed: " + summary["failure"].strip().splitlines()[-1])
    for promo in summary["promotions"]:
        name, close = promo["promo"], promo["close"]
        if promo["late"] or promo["late_in_record"]:
            found.append(f"{name}: {promo['late']} orders late to rank")
        if promo["orders_built_after_window_end"]:
            found.append(f"{name}: {promo['orders_built_after_window_end']} built after window")
        if not close["root_matches_independent_sort"] or not close["record_root_matches"]:
            found.append(f"{name}: committed root {close['root']} is not the bench's")
        if close["size"] != promo["orders"] or promo["orders_in_record"] != promo["orders"]:
            found.append(f"{name}: {close['size']} ranked of {promo['orders']}")
        if not promo["closed_in_record"]:
            found.append(f"{name}: not closed")
        for phase in ("anchor", "close"):
            if promo[phase]["rounds"]["max_round"] != 0:
                found.append(f"{name}: {phase} rounds {promo[phase]['rounds']['by_round']}")
        for kind in ("provisional_queries", "queries", "pages"):
            found += [f"{name}: {example}" for example in promo[kind]["error_examples"]]
            if promo[kind]["errors"] > len(promo[kind]["error_examples"]):
                found.append(f"{name}: {promo[kind]['errors']} {kind} errors in all")
        queries = promo["queries"]
        if queries["receipts_verified"] != queries["samples"]:
            found.append(f"{name}: {queries['receipts_verified']} of {queries['samples']} verified")
    return found


def report(summary: dict[str, Any]) -> str:
    names = [f"{promo['orders']:,} orders" for promo in summary["promotions"]]

    def row(name: str, value: Any) -> tuple[str, list[str]]:
        return name, [value(promo) for promo in summary["promotions"]]

    def ms(prefix: str, kind: str = "queries") -> Any:
        return lambda p: f"{p[kind][prefix + '_p50_ms']} / {p[kind][prefix + '_p99_ms']} ms"

    rows = [
        row("promotion", lambda p: p["promo"]),
        row("window", lambda p: f"{p['window_s']:,} s"),
        row("distinct paid ms", lambda p: f"{p['distinct_paid_ms']:,}"),
        row("late / after window", lambda p: f"{p['late']} / {p['orders_built_after_window_end']}"),
        row(
            "transactions",
            lambda p: f"{p['anchor']['transactions']:,} (mean {p['anchor']['orders_per_tx_mean']})",
        ),
        row(
            "blocks (with orders)",
            lambda p: f"{p['anchor']['blocks']:,} ({p['anchor']['blocks_with_orders']:,})",
        ),
        row("anchoring time", lambda p: f"{p['anchor']['seconds']:,.2f} s"),
        row("orders/s", lambda p: f"{p['anchor']['orders_per_s']:,.1f}"),
        row("tx/s", lambda p: f"{p['anchor']['tx_per_s']:,.2f}"),
        row(
            "commit p50/p99/max",
            lambda p: (
                f"{p['anchor']['commit_latency_p50_s']} / "
                f"{p['anchor']['commit_latency_p99_s']} / {p['anchor']['commit_latency_max_s']} s"
            ),
        ),
        row("anchor max round", lambda p: f"{p['anchor']['rounds']['max_round']}"),
        row("settled while anchoring", lambda p: f"{p['anchor']['settled_while_anchoring']:,}"),
        row("provisional rank p50/p99", ms("rank", "provisional_queries")),
        row(
            "provisional first/samples",
            lambda p: (
                f"{p['provisional_queries']['first_rank_ms']:,} ms / "
                f"{p['provisional_queries']['samples']:,}"
            ),
        ),
        row("grace wait", lambda p: f"{p['close']['waited_for_grace_s']:,} s"),
        row("settled before close", lambda p: f"{p['close']['settled_before_close']:,}"),
        row("close (1st submit→root)", lambda p: f"{p['close']['seconds']:,} s"),
        row(
            "close txs / blocks",
            lambda p: f"{p['close']['transactions']} / {p['close']['blocks']}",
        ),
        row("close max round", lambda p: f"{p['close']['rounds']['max_round']}"),
        row("root = own sort", lambda p: f"{p['close']['root_matches_independent_sort']}"),
        row("own sort+tree", lambda p: f"{p['independent']['sort_and_tree_s']} s"),
        row(
            "first rank / receipt",
            lambda p: f"{p['queries']['first_rank_ms']} / {p['queries']['first_receipt_ms']} ms",
        ),
        row("rank samples", lambda p: f"{p['queries']['samples']:,}"),
        row("rank p50/p99", ms("rank")),
        row("receipt p50/p99", ms("receipt")),
        row("ranking page p50/p99", ms("page", "pages")),
        row("ranking API page p50/p99", ms("api_page", "pages")),
        row("receipts verified", lambda p: f"{p['queries']['receipts_verified']:,}"),
        row("errors", lambda p: f"{p['queries']['errors'] + p['provisional_queries']['errors']}"),
    ]
    width = max(len(name) for name, _ in rows)
    columns = [
        max(len(names[i]), *(len(values[i]) for _, values in rows)) for i in range(len(names))
    ]
    lines = [
        f"promo bench ({summary['commit']}, src {summary['src_working_tree']}, "
        f"{summary['timestamp']})",
        f"  {summary['validators']} validators ({summary['nodes']} nodes), "
        f"{summary['client_threads']} client threads, {summary['query_threads']} query threads",
        "  "
        + " " * width
        + "  "
        + "  ".join(n.rjust(c) for n, c in zip(names, columns, strict=True)),
    ]
    lines += [
        f"  {name:<{width}}  " + "  ".join(v.rjust(c) for v, c in zip(values, columns, strict=True))
        for name, values in rows
    ]
    lines += [f"  ! {problem}" for problem in summary["errors"]]
    return "\n".join(lines)


def _counts(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--orders",
        type=_counts,
        default=[50_000, 1_000_000],
        help="orders of each promotion, in turn (default 50000,1000000)",
    )
    parser.add_argument("--validators", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--window-s",
        type=_counts,
        default=[],
        help="each promotion's window in seconds (default: anchoring at the rate measured so "
        f"far times {window_margin_factor} + {window_margin_s} s)",
    )
    parser.add_argument(
        "--first-rate",
        type=float,
        default=first_rate_orders_per_s,
        help=f"orders/s the first window assumes (default {first_rate_orders_per_s:,.0f})",
    )
    parser.add_argument(
        "--rank-samples",
        type=_counts,
        default=[2_000, 10_000],
        help="rank and receipt queries of each promotion (the last repeats; default 2000,10000)",
    )
    parser.add_argument(
        "--provisional-samples", type=int, default=500, help="rank queries before close"
    )
    parser.add_argument(
        "--page-samples", type=int, default=300, help="ranking pages and API pages fetched"
    )
    parser.add_argument("--query-threads", type=int, default=1, help="query client threads")
    parser.add_argument("--seed", type=int, default=1, help="seed of order numbers and sample")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    if min(args.validators, args.threads, args.provisional_samples, args.query_threads) < 1:
        parser.error("--validators, --threads, --provisional-samples, --query-threads: positive")
    if args.first_rate <= 0:
        parser.error("--first-rate: positive")
    try:
        with interruptible():
            summary = run(args)
    except KeyboardInterrupt:
        print("interrupted; the consortium is stopped", file=sys.stderr)
        return 130
    summary["errors"] = errors(summary)
    print(report(summary))
    write_summary("promo", summary)
    return 0 if not summary["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
