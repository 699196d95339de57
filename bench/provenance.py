"""Provenance bench: import N items with 5 journey steps each, then time the scan page.

    .venv/bin/python bench/provenance.py [--items N] [--validators 1|4]

Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at the end,
also on Ctrl-C), registers one product as the brand, and records for every item the journey
of the demo (bench/README.md has the details):

    brand       commissioning  ObjectEvent ADD, one per case, naming the case's items
    brand       packing        AggregationEvent ADD, items into a case (SSCC) of 24
    forwarder   shipping       ObjectEvent on the case
    customs     customs clear. ObjectEvent on the case, with a customs declaration number
    warehouse   receiving      ObjectEvent on the case

Events on a case apply to the items in it, so each item's journey has 5 steps while the chain
holds 5 event records per case: both counts are reported. Events are built as EPCIS 2.0 JSON
and converted with `epcis.to_chain_event`, batched up to 1,000 events per transaction (fewer
when a transaction would pass its byte limit), each signed by the org that records it, and
submitted by a few client threads. Cases go in lots: a lot's shipping starts once its packing
is committed, and so on, as in a real supply chain.

Then GET /01/{gtin}/21/{serial} for a random sample of items, one after another, and check that
every page shows the 5 steps. Prints a table and a JSON summary line, and writes the summary to
bench/results/provenance-<timestamp>.json. Never part of CI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from consortium import Consortium

from xinchain import codec
from xinchain.apps.provenance.contract import events_per_tx_max
from xinchain.apps.provenance.demo import FACTORY, HANGZHOU_CUSTOMS, HANGZHOU_WAREHOUSE, ROTTERDAM
from xinchain.apps.provenance.epcis import (
    CUSTOMS_CLEARANCE_STEP,
    CUSTOMS_DECLARATION_TYPE,
    to_chain_event,
    validate_event,
)
from xinchain.apps.provenance.gs1 import Sgtin, check_digit
from xinchain.apps.provenance.page import STEP_LABELS
from xinchain.client.sdk import ApiError, Client, sign_transaction, validity_blocks
from xinchain.genesis import Genesis
from xinchain.node.home import Home
from xinchain.types import tx_bytes_max

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent

# The bench's product: the demo brand's company prefix, another item reference than the demo's.
COMPANY_PREFIX = "8712345"
ITEM_REFERENCE = "054321"  # indicator digit 0, then item reference 54321
ITEMS_PER_CASE = 24
# Cases whose journeys move together: one lot's brand events take two transactions.
lot_cases_default = 250
# Bytes of encoded events per transaction: the transaction limit less room for its envelope.
tx_event_bytes_max = tx_bytes_max - 32 * 1024
STEPS = ("commissioning", "packing", "shipping", CUSTOMS_CLEARANCE_STEP, "receiving")
# (org, bizSteps it records): the stages of a lot, each started once the previous committed.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("brand", ("commissioning", "packing")),
    ("forwarder", ("shipping",)),
    ("customs", (CUSTOMS_CLEARANCE_STEP,)),
    ("warehouse", ("receiving",)),
)
START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
CHINA = dt.timezone(dt.timedelta(hours=8))
# How long one transaction may take to commit on a loaded 2-core machine.
commit_timeout_s = 900.0
progress_interval_s = 10.0
scan_goal_p99_ms = 200.0
scan_warmup_requests = 5
_STEP_ITEM = re.compile(r"<li class='step' data-step='([^']*)'><h2>([^<]*)</h2>")


# --- the workload ------------------------------------------------------------------------------


def product_gtin() -> str:
    body = ITEM_REFERENCE[0] + COMPANY_PREFIX + ITEM_REFERENCE[1:]
    return body + check_digit(body)


def item(index: int) -> Sgtin:
    return Sgtin(COMPANY_PREFIX, ITEM_REFERENCE, f"{index + 1:08d}")


def case_epc(case: int) -> str:
    return f"urn:epc:id:sscc:{COMPANY_PREFIX}.1{case:09d}"


def declaration(case: int) -> str:
    return f"urn:xinchain:customs-declaration:29242026{case:010d}"


def _time(moment: dt.datetime) -> tuple[str, str]:
    text = moment.isoformat(timespec="seconds")
    return text, text[-6:]


def epcis_event(step: str, case: int, items: list[str]) -> dict[str, Any]:
    """The EPCIS 2.0 JSON of one step of one case (times spread so every case differs)."""
    start = START + dt.timedelta(seconds=30 * case)
    event: dict[str, Any] = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": step}
    if step == "commissioning":
        moment, place = start, FACTORY
        event.update(action="ADD", epcList=items, disposition="active")
    elif step == "packing":
        moment, place = start + dt.timedelta(hours=2), FACTORY
        event.update(
            type="AggregationEvent",
            action="ADD",
            parentID=case_epc(case),
            childEPCs=items,
            disposition="container_closed",
        )
    elif step == "shipping":
        moment, place = start + dt.timedelta(days=1), ROTTERDAM
        event.update(epcList=[case_epc(case)], disposition="in_transit")
    elif step == CUSTOMS_CLEARANCE_STEP:
        moment, place = (start + dt.timedelta(days=7)).astimezone(CHINA), HANGZHOU_CUSTOMS
        event.update(
            epcList=[case_epc(case)],
            bizTransactionList=[
                {"type": CUSTOMS_DECLARATION_TYPE, "bizTransaction": declaration(case)}
            ],
        )
    elif step == "receiving":
        moment = (start + dt.timedelta(days=7, hours=4)).astimezone(CHINA)
        place = HANGZHOU_WAREHOUSE
        event.update(epcList=[case_epc(case)], disposition="in_progress")
    else:
        raise ValueError(step)
    event["eventTime"], event["eventTimeZoneOffset"] = _time(moment)
    event["readPoint"] = {"id": place}
    event["bizLocation"] = {"id": place}
    return event


def case_items(case: int, items: int) -> list[str]:
    first = case * ITEMS_PER_CASE
    return [item(index).uri for index in range(first, min(first + ITEMS_PER_CASE, items))]


@dataclass
class Batch:
    org: str
    events: list[dict[str, Any]]
    item_steps: int


def stage_batches(
    org: str, steps: tuple[str, ...], cases: range, items: int
) -> tuple[list[Batch], float]:
    """The transactions' worth of events `org` records for `cases`, and the seconds spent
    building them. A case's events stay in one transaction (packing needs its commissioning)."""
    began = time.perf_counter()
    batches: list[Batch] = []
    current: list[dict[str, Any]] = []
    size = item_steps = 0
    for case in cases:
        epcs = case_items(case, items)
        group = [to_chain_event(epcis_event(step, case, epcs)) for step in steps]
        group_size = sum(len(codec.encode(event)) for event in group)
        full = len(current) + len(group) > events_per_tx_max
        if current and (full or size + group_size > tx_event_bytes_max):
            batches.append(Batch(org, current, item_steps))
            current, size, item_steps = [], 0, 0
        current.extend(group)
        size += group_size
        item_steps += len(steps) * len(epcs)
    if current:
        batches.append(Batch(org, current, item_steps))
    return batches, time.perf_counter() - began


# --- the import --------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    txs: int = 0
    events: int = 0
    item_steps: int = 0
    tx_bytes: int = 0
    build_s: float = 0.0
    sign_s: float = 0.0
    commit_latencies_s: list[float] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    lots_done: int = 0


class Importer:
    """Runs every lot through its stages on a pool of client threads."""

    def __init__(
        self,
        home: Home,
        apis: list[str],
        genesis: Genesis,
        items: int,
        lot_cases: int,
        threads: int,
    ) -> None:
        self.home = home
        self.apis = apis
        self.genesis = genesis
        self.items = items
        self.cases = math.ceil(items / ITEMS_PER_CASE)
        self.lots = [
            range(start, min(start + lot_cases, self.cases))
            for start in range(0, self.cases, lot_cases)
        ]
        self.keys = {org: home.org_key(genesis.suite, org) for org, _ in STAGES}
        self.tally = Tally()
        self.height = 0  # latest height seen committed: sets valid_until
        self.failure: BaseException | None = None
        self.done = threading.Event()
        self._local = threading.local()
        self._clients: list[Client] = []
        self._pending: dict[tuple[int, int], int] = {}
        # Work in priority order: later stages first, then earlier lots, so that lots flow
        # through the supply chain instead of every brand transaction going first.
        self._work: queue.PriorityQueue[tuple[tuple[int, int, int], Any, tuple[Any, ...]]] = (
            queue.PriorityQueue()
        )
        self._sequence = 0
        self._threads = [
            threading.Thread(target=self._worker, name=f"client-{i}", daemon=True)
            for i in range(threads)
        ]

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            with self.tally.lock:
                api = self.apis[len(self._clients) % len(self.apis)]
                client = Client(api, timeout_s=120.0)
                self._clients.append(client)
            self._local.client = client
        return client

    def run(self) -> None:
        with Client(self.apis[0]) as client:
            self.height = int(client.status()["height"])
        for lot in range(len(self.lots)):
            self._schedule(self._stage, lot, 0)
        for thread in self._threads:
            thread.start()

    def wait(self) -> None:
        last = time.monotonic()
        began = last
        while not self.done.wait(0.5):
            if time.monotonic() - last >= progress_interval_s:
                last = time.monotonic()
                tally = self.tally
                rate = tally.events / (last - began)
                print(
                    f"  {last - began:6.0f} s  {tally.txs} txs  {tally.events} events "
                    f"({rate:.0f}/s)  {tally.lots_done}/{len(self.lots)} lots",
                    file=sys.stderr,
                    flush=True,
                )
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self.done.set()
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()

    def _schedule(self, task: Any, lot: int, stage: int, *args: Any) -> None:
        with self.tally.lock:
            self._sequence += 1
            priority = (-stage, lot, self._sequence)
        self._work.put((priority, task, (lot, stage, *args)))

    def _worker(self) -> None:
        while not self.done.is_set():
            try:
                _, task, args = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                task(*args)
            except BaseException as exc:
                self.failure = self.failure or exc
                self.done.set()

    def _stage(self, lot: int, stage: int) -> None:
        org, steps = STAGES[stage]
        batches, build_s = stage_batches(org, steps, self.lots[lot], self.items)
        with self.tally.lock:
            self.tally.build_s += build_s
            self._pending[(lot, stage)] = len(batches)
        for batch in batches:
            self._schedule(self._transaction, lot, stage, batch)

    def _transaction(self, lot: int, stage: int, batch: Batch) -> None:
        began = time.perf_counter()
        tx = sign_transaction(
            self.genesis.suite,
            self.keys[batch.org],
            chain_id=self.genesis.chain_id,
            sender=batch.org,
            contract="provenance",
            method="record_events",
            args={"events": batch.events},
            valid_until=self.height + validity_blocks,
        )
        raw_size = len(tx.encode())
        signed = time.perf_counter()
        client = self._client()
        answer = client.wait_committed(client.submit(tx), timeout_s=commit_timeout_s)
        if not answer["result"]["ok"]:
            raise ApiError(400, {"error": {"code": "refused", "reason": answer["result"]["error"]}})
        committed = time.perf_counter()
        with self.tally.lock:
            tally = self.tally
            tally.sign_s += signed - began
            tally.txs += 1
            tally.events += len(batch.events)
            tally.item_steps += batch.item_steps
            tally.tx_bytes += raw_size
            tally.commit_latencies_s.append(committed - signed)
            tally.heights.append(int(answer["height"]))
            self.height = max(self.height, int(answer["height"]))
            self._pending[(lot, stage)] -= 1
            stage_done = self._pending[(lot, stage)] == 0
            if stage_done and stage == len(STAGES) - 1:
                tally.lots_done += 1
                if tally.lots_done == len(self.lots):
                    self.done.set()
        if stage_done and stage + 1 < len(STAGES):
            self._schedule(self._stage, lot, stage + 1)


def check_workload() -> None:
    """Every kind of event the bench records passes the EPCIS 2.0 schema (fail early)."""
    epcs = case_items(0, ITEMS_PER_CASE)
    for step in STEPS:
        validate_event(epcis_event(step, 0, epcs))


# --- the scan page -----------------------------------------------------------------------------


def wait_for_height(api: str, height: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    with Client(api) as client:
        while int(client.status()["height"]) < height:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{api} did not reach height {height}")
            time.sleep(0.2)


def page_steps(html: str) -> list[tuple[str, str]]:
    return _STEP_ITEM.findall(html)


def measure_scans(api: str, items: int, samples: int, seed: int) -> dict[str, Any]:
    chooser = random.Random(seed)
    chosen = chooser.sample(range(items), min(samples, items))
    expected = [(step, STEP_LABELS[step][0]) for step in STEPS]
    times_ms: list[float] = []
    failures: list[str] = []
    headers = {"Accept-Language": "en"}
    with httpx.Client(base_url=api, timeout=30.0, headers=headers) as http:
        sampled = set(chosen)
        warmup = [i for i in range(items) if i not in sampled][:scan_warmup_requests]
        for index in warmup:
            http.get(item(index).digital_link_path)
        for index in chosen:
            path = item(index).digital_link_path
            began = time.perf_counter()
            response = http.get(path)
            times_ms.append((time.perf_counter() - began) * 1000)
            found = page_steps(response.text) if response.status_code == 200 else []
            if sorted(found) != sorted(expected):
                failures.append(f"{path}: HTTP {response.status_code}, steps {found}")
    return {
        "samples": len(chosen),
        "warmup_requests": len(warmup),
        "p50_ms": _percentile(times_ms, 50),
        "p90_ms": _percentile(times_ms, 90),
        "p99_ms": _percentile(times_ms, 99),
        "max_ms": round(max(times_ms), 2),
        "mean_ms": round(statistics.fmean(times_ms), 2),
        "errors": len(failures),
        "error_examples": failures[:5],
        "goal_p99_ms": scan_goal_p99_ms,
        "goal_met": _percentile(times_ms, 99) < scan_goal_p99_ms and not failures,
    }


def _percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


# --- the run -----------------------------------------------------------------------------------


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT (also when started in the background, where it comes ignored) and SIGTERM unwind
    the bench like Ctrl-C, so that the consortium is always stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-"))
    consortium = Consortium(workdir / "home", args.validators)
    importer: Importer | None = None
    try:
        check_workload()
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
        with Client(apis[0]) as client:
            genesis = client.genesis()
            client.call(
                genesis,
                home.org_key(genesis.suite, "brand"),
                sender="brand",
                contract="provenance",
                method="register_product",
                args={
                    "gtin": product_gtin(),
                    "name": "Goat milk infant formula 400 g / 羊奶婴儿配方奶粉 400克",
                    "origin": "Zwolle, the Netherlands / 荷兰 兹沃勒",
                    "company_prefix_digits": len(COMPANY_PREFIX),
                },
            )
            start_height = int(client.status()["height"])
        importer = Importer(home, apis, genesis, args.items, args.lot_cases, args.threads)
        print(
            f"importing {args.items} items in {importer.cases} cases, {len(importer.lots)} "
            f"lot(s), {args.threads} client threads",
            file=sys.stderr,
            flush=True,
        )
        began = time.perf_counter()
        importer.run()
        importer.wait()
        import_s = time.perf_counter() - began
        tally = importer.tally
        last_height = max(tally.heights)
        wait_for_height(apis[0], last_height)
        print("measuring the scan page", file=sys.stderr, flush=True)
        scan = measure_scans(apis[0], args.items, args.scan_samples, args.seed)
        latencies = tally.commit_latencies_s
        return {
            "bench": "provenance",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _git_commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "validators": args.validators,
            "nodes": consortium.nodes,
            "client_threads": args.threads,
            "items": args.items,
            "items_per_case": ITEMS_PER_CASE,
            "cases": importer.cases,
            "lots": len(importer.lots),
            "steps_per_item": len(STEPS),
            "import": {
                "seconds": round(import_s, 2),
                "transactions": tally.txs,
                "event_records": tally.events,
                "item_steps": tally.item_steps,
                "events_per_s": round(tally.events / import_s, 1),
                "item_steps_per_s": round(tally.item_steps / import_s, 1),
                "items_per_s": round(args.items / import_s, 1),
                "tx_per_s": round(tally.txs / import_s, 2),
                "tx_bytes_mean": round(tally.tx_bytes / tally.txs),
                "events_per_tx_mean": round(tally.events / tally.txs, 1),
                "blocks": last_height - start_height,
                "commit_latency_p50_s": round(_percentile(latencies, 50), 2),
                "commit_latency_max_s": round(max(latencies), 2),
                "client_build_s": round(tally.build_s, 2),
                "client_sign_s": round(tally.sign_s, 2),
            },
            "scan": scan,
            "validator0_data_mb": round(consortium.data_bytes() / 1e6, 1),
        }
    finally:
        if importer is not None:
            importer.close()
        print("stopping xinchain up", file=sys.stderr, flush=True)
        consortium.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(summary: dict[str, Any]) -> str:
    imp, scan = summary["import"], summary["scan"]
    rows = [
        ("items", f"{summary['items']:,} ({summary['cases']:,} cases of {ITEMS_PER_CASE})"),
        ("validators", f"{summary['validators']} ({summary['nodes']} nodes)"),
        ("event records", f"{imp['event_records']:,}"),
        ("item steps", f"{imp['item_steps']:,} ({summary['steps_per_item']} per item)"),
        ("transactions", f"{imp['transactions']:,} (mean {imp['events_per_tx_mean']} events)"),
        ("blocks", f"{imp['blocks']:,}"),
        ("import time", f"{imp['seconds']:,.1f} s"),
        ("events/s", f"{imp['events_per_s']:,.1f}"),
        ("item steps/s", f"{imp['item_steps_per_s']:,.1f}"),
        ("items/s", f"{imp['items_per_s']:,.1f}"),
        ("tx/s", f"{imp['tx_per_s']:,.2f}"),
        ("commit p50/max", f"{imp['commit_latency_p50_s']} s / {imp['commit_latency_max_s']} s"),
        ("client build+sign", f"{imp['client_build_s']} s + {imp['client_sign_s']} s"),
        ("scan samples", f"{scan['samples']:,} (+{scan['warmup_requests']} warm-up)"),
        ("scan p50", f"{scan['p50_ms']} ms"),
        ("scan p90", f"{scan['p90_ms']} ms"),
        ("scan p99", f"{scan['p99_ms']} ms (goal < {scan['goal_p99_ms']:.0f} ms)"),
        ("scan max", f"{scan['max_ms']} ms"),
        ("scan errors", f"{scan['errors']}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"provenance bench ({summary['commit']}, {summary['timestamp']})"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  ! {example}" for example in scan["error_examples"]]
    return "\n".join(lines)


def write_summary(bench: str, summary: dict[str, Any]) -> Path:
    """Write `summary` to bench/results/<bench>-<UTC timestamp>.json, say where, and print it
    as the last line (the JSON summary line every bench ends with)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{bench}-{stamp}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    print(f"written {path.relative_to(REPO)}")
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="items (default 100,000)")
    parser.add_argument("--validators", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--lot-cases",
        type=int,
        default=lot_cases_default,
        help=f"cases moving through the stages together (default {lot_cases_default})",
    )
    parser.add_argument("--scan-samples", type=int, default=1_000, help="scan pages timed")
    parser.add_argument("--seed", type=int, default=1, help="seed of the scan sample")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    if args.items < 1 or args.validators < 1 or args.threads < 1 or args.lot_cases < 1:
        parser.error("--items, --validators, --threads and --lot-cases must be positive")
    try:
        with interruptible():
            summary = run(args)
    except KeyboardInterrupt:
        print("interrupted; the consortium is stopped", file=sys.stderr)
        return 130
    print(report(summary))
    write_summary("provenance", summary)
    return 0 if summary["scan"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
