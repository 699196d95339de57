"""A thousand kill -9s: a random validator of 4, at a random moment, under load; nothing lost.

    .venv/bin/python long/kill9.py [--kills 1000] [--seed 1] [--delay-max 3]

Runs `xinchain up --validators 4 --no-restart` (with the regulator's observer) through the
cluster tests' harness. Client threads sign and submit notary anchors to random live nodes
all along and record every transaction a node reported committed, with its height. Each
round kills one random validator with SIGKILL after a random 0-3 s (so kills land while it
proposes, votes, commits or syncs), starts it again at once with `xinchain node`, and waits
until its API answers; one validator at most is down at a time (f = 1).

At the end every node must reach the same height; each recorded transaction must be
committed, at its recorded height, on every node; and every node must hold the same blocks,
each with its commit certificate. Prints a line a round and a JSON summary (also written to
bench/results/kill9-<time>.json). Exits 1 on any loss or mismatch. Never part of CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "cluster"), str(REPO / "tests" / "support")]

import httpx  # noqa: E402
from cluster_harness import NODES, VALIDATORS, Cluster, free_port_base  # noqa: E402

from xinchain.client.member import Member  # noqa: E402
from xinchain.client.sdk import Client  # noqa: E402
from xinchain.node.home import Home  # noqa: E402

RESULTS = REPO / "bench" / "results"
clients = 4
kill_delay_s_max = 3.0
catch_up_timeout_s = 300.0


class Recorder:
    """Client threads: submit anchors to random live nodes, keep what was reported committed."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        home = Home(cluster.home)
        genesis = home.genesis()
        self.member = Member(genesis, "platform", home.org_key(genesis.suite, "platform"))
        self.committed: dict[str, int] = {}  # tx id → height
        self.unknown = 0  # submissions whose fate the client never learnt (node killed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.threads = [
            threading.Thread(target=self._run, args=(index,), daemon=True)
            for index in range(clients)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, index: int) -> None:
        count = 0
        while not self.stop.is_set():
            node = self.random.choice(NODES)
            count += 1
            digest = hashlib.sha256(f"kill9 {index} {count} {time.time_ns()}".encode()).digest()
            try:
                with Client(self.cluster.api(node), timeout_s=30) as client:
                    tx_id = client.submit_call(self.member, "notary", "anchor", {"hash": digest})
                    answer = client.wait_committed(tx_id, timeout_s=30)
            except (httpx.HTTPError, TimeoutError, OSError):
                with self.lock:
                    self.unknown += 1
                time.sleep(0.2)
                continue
            except Exception:  # a refusal (e.g. expired while a node was down): not committed
                continue
            if answer.get("status") == "committed":
                with self.lock:
                    self.committed[tx_id] = int(answer["height"])


def check_everything(cluster: Cluster, recorder: Recorder) -> dict[str, Any]:
    tips = cluster.heights(NODES)
    top = max(h for h in tips.values() if h is not None)
    cluster.wait_for_height(NODES, top, catch_up_timeout_s)
    reference = cluster.block_hashes(VALIDATORS[0], top)
    mismatched = [name for name in NODES if cluster.block_hashes(name, top) != reference]
    lost: list[str] = []
    moved: list[str] = []
    for tx_id, height in recorder.committed.items():
        for name in NODES:
            answer = cluster.get(name, f"/v1/transactions/{tx_id}").json()
            if answer.get("status") != "committed":
                lost.append(f"{tx_id} on {name}")
            elif answer.get("height") != height:
                moved.append(f"{tx_id} on {name}: {answer.get('height')} != {height}")
    return {"height": top, "mismatched_nodes": mismatched, "lost": lost, "moved": moved}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--delay-max", type=float, default=kill_delay_s_max, help="seconds before a kill, at most"
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the consortium is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(143))
    chooser = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xinchain-kill9-") as workdir:
        cluster = Cluster(Path(workdir) / "home", free_port_base())
        recorder: Recorder | None = None
        try:
            cluster.start()
            cluster.wait_for_height(NODES, 2, 60)
            recorder = Recorder(cluster, args.seed)
            recorder.start()
            for round_number in range(1, args.kills + 1):
                victim = chooser.choice(VALIDATORS)
                time.sleep(chooser.uniform(0, args.delay_max))
                pid = cluster.pid(victim)
                assert pid is not None, f"{victim} is not running"
                height = cluster.height(victim)
                os.kill(pid, signal.SIGKILL)
                process = cluster.restarted.pop(victim, None)
                if process is not None:
                    process.wait(30)
                while cluster.height(victim) is not None:
                    time.sleep(0.05)
                cluster.restart(victim)
                print(
                    f"round {round_number}: killed {victim} at height {height}; "
                    f"{len(recorder.committed)} committed, {recorder.unknown} unknown",
                    flush=True,
                )
            recorder.finish()
            verdict = check_everything(cluster, recorder)
        finally:
            if recorder is not None:
                recorder.stop.set()
            cluster.stop()
    result = {
        "bench": "kill9",
        "kills": args.kills,
        "seed": args.seed,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "committed_recorded": len(recorder.committed),
        "submissions_unknown": recorder.unknown,
        "height": verdict["height"],
        "lost": len(verdict["lost"]),
        "moved": len(verdict["moved"]),
        "mismatched_nodes": verdict["mismatched_nodes"],
        "examples": (verdict["lost"] + verdict["moved"])[:10],
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS / f"kill9-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)
    ok = not verdict["lost"] and not verdict["moved"] and not verdict["mismatched_nodes"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
