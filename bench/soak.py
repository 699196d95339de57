"""Soak: 4 validators under a steady load for hours; does anything grow without bound?

    .venv/bin/python bench/soak.py [--minutes 120] [--rate 1800] [--validators 4]

Runs `xinchain up --validators 4` (no observer) and offers `--rate` signed notary anchors a
second (half the sustained rate docs/performance.md measured), spread over the validators'
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


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


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
            "rss_mb": {name: round(rss_bytes(pid) / 2**20, 1) for name, pid in pids.items()},
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

    def max_files(row: dict[str, Any]) -> float:
        return max(row["open_files"].values())

    return {
        "bench": "soak",
        "samples": len(samples),
        "committed": samples[-1]["committed"] if samples else 0,
        "failed": samples[-1]["failed"] if samples else 0,
        "rss_mb_late": round(mean(late, max_rss), 1),
        "rss_ratio_late_to_early": ratio(max_rss),
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
        axes[0][0].plot(minutes, [row["rss_mb"].get(name) for row in samples], label=name)
        axes[0][1].plot(minutes, [row["open_files"].get(name) for row in samples], label=name)
    axes[0][0].set_title("RSS (MiB)")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--rate", type=int, default=1800)
    parser.add_argument("--validators", type=int, default=4)
    args = parser.parse_args()
    return asyncio.run(soak(args.minutes, args.rate, args.validators))


if __name__ == "__main__":
    sys.exit(main())
