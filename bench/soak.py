"""Soak: 4 validators under a steady load for hours; does anything grow without bound?

    .venv/bin/python bench/soak.py [--minutes 120] [--rate 800] [--validators 4]

Runs `xinchain up --validators 4` (no observer) and offers `--rate` signed notary anchors a
second (half the sustained rate: four validators and this load generator, which signs each
anchor live, saturate 2 cores near 1,600 a second), spread over the validators'
transaction streams, each signed just before it is sent. Every minute it samples, per node:
RSS and open file descriptors (from /proc), and for the chain: committed transactions, disk
bytes per committed transaction (validator-0's ledger), and the p50/p99 latency from send to
commit notification over that minute. Results go to bench/results/soak-<time>.json (one
sample a line, then a summary) and a plot .png beside it.

The summary compares the last quarter of the run with the second (the first warms caches and
maps): RSS, open files and p99 each with their ratio, and disk per transaction. A ratio near
1 means flat; a steady climb shows as a ratio well above 1. Never part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from baselines import directory_bytes
from consortium import Consortium
from xinchain_driver import SIGNER, _Stream

from xinchain.client.sdk import sign_transaction
from xinchain.node.home import Home

RESULTS = Path(__file__).resolve().parent / "results"
sample_every_s = 60.0
# A transaction is valid for this many blocks past the height when it is signed.
validity_blocks = 500
# Sends per second are spread over this many ticks.
ticks_per_s = 20


def node_pids(home: Path) -> dict[str, int]:
    pids = {}
    for pid_path in sorted((home / "nodes").glob("*/node.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[pid_path.parent.name] = int(pid_path.read_text().strip())
    return pids


def memory_mb(pid: int) -> dict[str, float]:
    """A process's resident memory in MiB: `rss` in all, `anon` (its heap: Python objects,
    buffers) and `file` (mapped file pages, mostly the LMDB ledger; they grow with the ledger
    and the kernel reclaims them under pressure, so only `anon` can show a leak)."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    found = {name: 0.0 for name in fields.values()}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name = fields.get(line.split(":", 1)[0] + ":")
        if name:
            found[name] = round(int(line.split()[1]) / 1024, 1)
    return found


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    """Signs and sends `rate` anchors a second; records each one's send-to-commit latency."""

    def __init__(self, home: Path, apis: list[str], rate: int) -> None:
        self.home = Home(home)
        self.genesis = self.home.genesis()
        self.key = self.home.org_key(self.genesis.suite, SIGNER)
        self.apis = apis
        self.rate = rate
        self.latencies_ms: list[float] = []
        self.sent = 0
        self.committed = 0
        self.failed = 0
        self.height = 0
        self._streams: list[_Stream] = []

    async def run(self, seconds: float) -> None:
        for api in self.apis:
            url = api.replace("http://", "ws://") + "/v1/stream"
            connection = await websockets.connect(url, max_size=1 << 26, compression=None)
            self._streams.append(_Stream(connection))
        async with httpx.AsyncClient(timeout=10) as client:
            self.height = (await client.get(self.apis[0] + "/v1/status")).json()["height"]
            started = time.monotonic()
            tick = 0
            per_tick = self.rate / ticks_per_s
            due = 0.0
            while time.monotonic() - started < seconds:
                tick += 1
                if tick % ticks_per_s == 0:
                    answer = await client.get(self.apis[0] + "/v1/status")
                    self.height = answer.json()["height"]
                due += per_tick
                while due >= 1:
                    due -= 1
                    self._send()
                await asyncio.sleep(max(0.0, started + tick / ticks_per_s - time.monotonic()))
        for stream in self._streams:
            await stream.close()

    def _send(self) -> None:
        index = self.sent
        self.sent += 1
        digest = hashlib.sha256(f"soak {index} {time.time_ns()}".encode()).digest()
        tx = sign_transaction(
            self.genesis.suite,
            self.key,
            chain_id=self.genesis.chain_id,
            sender=SIGNER,
            contract="notary",
            method="anchor",
            args={"hash": digest},
            valid_until=self.height + validity_blocks,
        )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sent_at = time.perf_counter()

        def done(finished: asyncio.Future[None]) -> None:
            if finished.exception() is None:
                self.committed += 1
                self.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
            else:
                self.failed += 1

        future.add_done_callback(done)
        stream = self._streams[index % len(self._streams)]
        stream.submit(tx.encode(), self.genesis.suite.hash(tx.body.encode()), future)


def memory_sample(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    memory = {name: memory_mb(pid) for name, pid in pids.items()}
    return {
        f"{kind}_mb": {name: figures[kind] for name, figures in memory.items()}
        for kind in ("rss", "anon", "file")
    }


async def sample_forever(
    consortium: Consortium, load: Load, samples: list[dict[str, Any]], out: Any
) -> None:
    started = time.monotonic()
    while True:
        await asyncio.sleep(sample_every_s)
        latencies, load.latencies_ms = load.latencies_ms, []
        pids = node_pids(consortium.home)
        data = directory_bytes(consortium.home / "nodes" / "validator-0" / "data")
        sample = {
            "minute": round((time.monotonic() - started) / 60, 2),
            "sent": load.sent,
            "committed": load.committed,
            "failed": load.failed,
            "height": load.height,
            **memory_sample(pids),
            "open_files": {name: open_files(pid) for name, pid in pids.items()},
            "disk_bytes_per_tx": round(data / max(load.committed, 1), 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": (
                round(statistics.quantiles(latencies, n=100)[98], 1)
                if len(latencies) > 100
                else None
            ),
            "rate": round(len(latencies) / sample_every_s, 1),
        }
        samples.append(sample)
        out.write(json.dumps(sample) + "\n")
        out.flush()
        print(json.dumps(sample), flush=True)


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    quarter = max(1, len(samples) // 4)
    early, late = samples[quarter : 2 * quarter] or samples[:1], samples[-quarter:]

    def mean(rows: list[dict[str, Any]], pick: Any) -> float:
        values = [pick(row) for row in rows if pick(row) is not None]
        return statistics.fmean(values) if values else 0.0

    def ratio(pick: Any) -> float:
        before = mean(early, pick)
        return round(mean(late, pick) / before, 3) if before else 0.0

    def max_rss(row: dict[str, Any]) -> float:
        return max(row["rss_mb"].values())

    def max_anon(row: dict[str, Any]) -> float | None:
        return max(row["anon_mb"].values()) if row.get("anon_mb") else None

    def max_files(row: dict[str, Any]) -> float:
        return max(row["open_files"].values())

    return {
        "bench": "soak",
        "samples": len(samples),
        "committed": samples[-1]["committed"] if samples else 0,
        "failed": samples[-1]["failed"] if samples else 0,
        "rss_mb_late": round(mean(late, max_rss), 1),
        "rss_ratio_late_to_early": ratio(max_rss),
        "anon_mb_late": round(mean(late, max_anon), 1),
        "anon_ratio_late_to_early": ratio(max_anon),
        "open_files_late": round(mean(late, max_files), 1),
        "open_files_ratio_late_to_early": ratio(max_files),
        "p99_ms_late": round(mean(late, lambda row: row["p99_ms"]), 1),
        "p99_ratio_late_to_early": ratio(lambda row: row["p99_ms"]),
        "disk_bytes_per_tx_late": round(mean(late, lambda row: row["disk_bytes_per_tx"]), 1),
        "rate_late": round(mean(late, lambda row: row["rate"]), 1),
    }


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [row["minute"] for row in samples]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for name in samples[0]["rss_mb"]:
        if any(row.get("anon_mb") for row in samples):
            anon = [(row.get("anon_mb") or {}).get(name) for row in samples]
            file = [(row.get("file_mb") or {}).get(name) for row in samples]
            axes[0][0].plot(minutes, anon, label=f"{name} heap")
            axes[0][0].plot(minutes, file, linestyle="--", label=f"{name} mapped ledger")
        else:
            axes[0][0].plot(minutes, [row["rss_mb"].get(name) for row in samples], label=name)
        axes[0][1].plot(minutes, [row["open_files"].get(name) for row in samples], label=name)
    axes[0][0].set_title("resident memory (MiB)")
    axes[0][1].set_title("open files")
    axes[1][0].plot(minutes, [row["p99_ms"] for row in samples], label="p99")
    axes[1][0].plot(minutes, [row["p50_ms"] for row in samples], label="p50")
    axes[1][0].set_title("latency, send to commit (ms)")
    axes[1][1].plot(minutes, [row["disk_bytes_per_tx"] for row in samples])
    axes[1][1].set_title("ledger bytes per committed transaction")
    for axis in axes.flat:
        axis.legend(fontsize=7) if axis.get_legend_handles_labels()[0] else None
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


async def soak(minutes: float, rate: int, validators: int) -> int:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    json_path = RESULTS / f"soak-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="xinchain-soak-") as workdir:
        consortium = Consortium(Path(workdir) / "home", validators, observer=False)
        consortium.start()
        try:
            load = Load(consortium.home, consortium.validator_apis, rate)
            samples: list[dict[str, Any]] = []
            with json_path.open("w") as out:
                sampler = asyncio.create_task(sample_forever(consortium, load, samples, out))
                await load.run(minutes * 60)
                await asyncio.sleep(5)  # the last commits arrive
                sampler.cancel()
                result = summary(samples)
                out.write(json.dumps(result) + "\n")
        finally:
            consortium.stop()
    if samples:
        plot(samples, json_path.with_suffix(".png"))
    print(json.dumps(result), flush=True)
    return 0


def watch(home: Path, out: Path, minutes: float) -> int:
    """Sample the memory of the nodes of a consortium that is already running under `home`
    every minute into `out` (JSON lines), for a soak started before a figure was sampled."""
    started = time.monotonic()
    with out.open("a") as sink:
        while time.monotonic() - started < minutes * 60:
            time.sleep(sample_every_s)
            pids = node_pids(home)
            if not pids:
                break
            with contextlib.suppress(OSError):
                row = {"at": time.time(), **memory_sample(pids)}
                sink.write(json.dumps(row) + "\n")
                sink.flush()
    return 0


def replot(result: Path, memory: Path | None) -> int:
    """Summarise and plot a soak's results again, taking the heap and mapped-file figures from
    a `--watch` file (by sample order from the end) when the run did not sample them."""
    samples = [json.loads(line) for line in result.read_text().splitlines()]
    samples = [row for row in samples if "minute" in row]
    if memory is not None:
        watched = [json.loads(line) for line in memory.read_text().splitlines() if line.strip()]
        offset = len(samples) - len(watched)
        for index, row in enumerate(watched):
            if 0 <= index + offset < len(samples):
                target = samples[index + offset]
                target["anon_mb"], target["file_mb"] = row["anon_mb"], row["file_mb"]
    result_summary = summary(samples)
    plot(samples, result.with_suffix(".png"))
    print(json.dumps(result_summary), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--rate", type=int, default=800)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--watch", type=Path, metavar="HOME", help="sample a running soak's memory")
    parser.add_argument("--out", type=Path, help="with --watch: the JSON-lines file to append to")
    parser.add_argument("--replot", type=Path, metavar="RESULT", help="summarise and plot again")
    parser.add_argument("--memory", type=Path, help="with --replot: a --watch file to merge")
    args = parser.parse_args()
    if args.watch:
        return watch(args.watch, args.out or Path("soak-memory.jsonl"), args.minutes)
    if args.replot:
        return replot(args.replot, args.memory)
    return asyncio.run(soak(args.minutes, args.rate, args.validators))


if __name__ == "__main__":
    sys.exit(main())
