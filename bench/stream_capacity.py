"""Stream capacity: how fast a chain commits signed notary transactions pushed as fast as it
takes them.

    .venv/bin/python bench/stream_capacity.py [--validators 1|4] [--count 40000]
        [--message-txs 500] [--profile]

Starts `xinchain up` in a temporary home, signs `--count` notary anchors ahead (untimed), then
pushes them through one `/v1/stream` connection per validator in messages of
`--message-txs`, keeping at most `window` transactions unacknowledged, and times from the first
send to the last commit notification. No latency figure: this is the ceiling the throughput
bench (bench/throughput.py) approaches, and the number docs/performance.md tracks change by
change. `--profile` samples the first node with py-spy and prints where its time went.
Prints a JSON summary line; never part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from consortium import Consortium

from xinchain import codec
from xinchain.client.sdk import sign_transaction
from xinchain.node.home import Home

# Sent but not yet committed, at most: enough to fill blocks while the previous one commits, few
# enough that a block stays quick to execute. Single anchors: 20,000 transactions. Batches:
# 80,000 documents (80 batches of 1,000 take each validator about 0.15 s of CPU; a block may
# hold up to 16 MB, 450 such batches).
window_txs = 20_000
window_documents = 80_000
SPY = Path(sys.executable).parent / "py-spy"


def sign_all(home: Path, api: str, count: int, batch: int = 1) -> list[bytes]:
    """`count` signed notary transactions: single anchors, or batches of `batch` hashes."""
    consortium = Home(home)
    genesis = consortium.genesis()
    key = consortium.org_key(genesis.suite, "platform")
    height = int(httpx.get(f"{api}/v1/status").json()["height"])

    def call() -> tuple[str, dict[str, Any]]:
        digests = [hashlib.sha256(os.urandom(200)).digest() for _ in range(batch)]
        if batch == 1:
            return "anchor", {"hash": digests[0]}
        return "anchor_batch", {"hashes": digests}

    signed = []
    for _ in range(count):
        method, args = call()
        signed.append(
            sign_transaction(
                genesis.suite,
                key,
                chain_id=genesis.chain_id,
                sender="platform",
                contract="notary",
                method=method,
                args=args,
                valid_until=height + 90_000,
            ).encode()
        )
    return signed


async def push(
    apis: list[str], txs: list[bytes], message_txs: int, in_flight: int = window_txs
) -> dict[str, Any]:
    connections = [
        await websockets.connect(
            api.replace("http://", "ws://") + "/v1/stream", max_size=1 << 26, compression=None
        )
        for api in apis
    ]
    committed = 0
    refused: collections.Counter[str] = collections.Counter()
    sent = 0
    done = asyncio.Event()

    async def read(connection: Any) -> None:
        nonlocal committed
        async for message in connection:
            value = codec.decode(message)
            if value["type"] == "admitted":
                for answer in value.get("results", []):
                    if not isinstance(answer, bytes):
                        refused[answer.get("code", "?")] += 1
            else:
                committed += len(value["txs"])
            if committed + sum(refused.values()) >= len(txs):
                done.set()

    readers = [asyncio.create_task(read(connection)) for connection in connections]
    started = time.perf_counter()
    for start in range(0, len(txs), message_txs):
        while sent - committed - sum(refused.values()) > in_flight:
            await asyncio.sleep(0.002)
        connection = connections[(start // message_txs) % len(connections)]
        await connection.send(codec.encode(txs[start : start + message_txs]))
        sent += len(txs[start : start + message_txs])
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    for reader in readers:
        reader.cancel()
    return {
        "committed": committed,
        "refused": dict(refused),
        "seconds": round(elapsed, 3),
        "tx_per_s": round(committed / elapsed),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", type=int, default=1)
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--message-txs", type=int, default=500)
    parser.add_argument(
        "--batch", type=int, default=1, help="documents a transaction anchors (anchor_batch)"
    )
    parser.add_argument(
        "--window",
        type=int,
        help=f"documents sent but not committed, at most (default {window_txs:,} single "
        f"anchors, {window_documents:,} documents in batches)",
    )
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xinchain-capacity-") as temporary:
        consortium = Consortium(Path(temporary) / "home", args.validators, observer=False)
        try:
            consortium.start()
            apis = consortium.validator_apis
            txs = sign_all(consortium.home, apis[0], args.count, args.batch)
            spy = None
            if args.profile:
                pid = int((consortium.home / "nodes" / "validator-0" / "node.pid").read_text())
                profile = Path(temporary) / "profile.txt"
                command = [str(SPY), "record", "-p", str(pid), "-o", str(profile), "-f", "raw"]
                spy = subprocess.Popen(
                    [*command, "-r", "200", "--nonblocking"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            documents = args.window or (window_txs if args.batch == 1 else window_documents)
            in_flight = max(args.message_txs, documents // args.batch)
            summary = asyncio.run(push(apis, txs, args.message_txs, in_flight))
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
                print_profile(Path(temporary) / "profile.txt")
        finally:
            consortium.stop()
    summary.update(
        bench="stream_capacity",
        validators=args.validators,
        count=args.count,
        batch=args.batch,
        documents_per_s=round(summary["committed"] * args.batch / summary["seconds"]),
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


def print_profile(path: Path) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            if "xinchain/" in frame:
                inclusive[frame] += samples
    print(f"{total} samples; own time:")
    for frame, samples in own.most_common(20):
        print(f"  {100 * samples / total:5.1f}%  {frame[:120]}")
    print("inclusive, xinchain frames:")
    for frame, samples in inclusive.most_common(30):
        print(f"  {100 * samples / total:5.1f}%  {frame[:120]}")


if __name__ == "__main__":
    sys.exit(main())
