"""Private data bench: what a private part costs, against plain public transactions in the same
run on the same consortium.

    .venv/bin/python bench/private.py [--ops 3000] [--clients 32] [--validators 4]

Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at the end,
also on Ctrl-C), defines the collection `bench` = {brand, bank} with the regulator reading (so
each record is sealed to three orgs), and then, each with `--clients` client threads until
`--ops` writes committed:

    public      notary.anchor of a fresh 32-byte hash, signed by the client as brand, submitted
                to brand's node and waited for until committed (the baseline: a transaction with
                no private part)
    private     PUT /v1/private/bench/records/<key> on brand's gateway: a ~200-byte value sealed
                with HPKE to bank, brand and the regulator, the envelope kept (synced), the
                hashes committed, answered once committed

Reported: writes/s and commit latency (p50, p99) of each and their ratio; how long after its
write's answer bank's node serves the record (100 writes one at a time: the envelope pushed by
brand's node, or fetched from it, and opened); and in process, the cost of sealing a record
for three orgs and of opening it, beside an Ed25519 signature. Prints a table and a JSON
summary line, and writes the summary to bench/results/private-<timestamp>.json. Never part of
CI.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from consortium import Consortium
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile
from provenance import interruptible, write_summary

from xinchain.client.sdk import Client, Member
from xinchain.crypto import suite_named
from xinchain.node.home import Home
from xinchain.private.crypto import (
    EncryptionKey,
    Keyring,
    Recipient,
    open_envelope,
    private_record,
    seal,
)

BRAND, BANK = 1, 3  # validator indexes: validators are platform, brand, customs, bank in turn
value_filler = "x" * 120
dissemination_samples = 100


def value_of(index: int) -> dict[str, Any]:
    return {"order": f"PO-{index:08d}", "amount_cny": 1000 + index, "note": value_filler}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.next = 0

    def take(self, total: int) -> int | None:
        with self.lock:
            if self.next >= total:
                return None
            self.next += 1
            return self.next - 1


def run_clients(work: Any, total: int, clients: int) -> dict[str, Any]:
    tally = Tally()

    def loop() -> None:
        while (index := tally.take(total)) is not None:
            started = time.perf_counter()
            try:
                work(index)
            except Exception as exc:  # counted and reported, never hidden
                with tally.lock:
                    tally.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            with tally.lock:
                tally.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = [1000 * value for value in tally.latencies]
    return {
        "writes": len(tally.latencies),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:3],
        "seconds": round(elapsed, 2),
        "writes_per_s": round(len(tally.latencies) / elapsed, 1),
        "latency_ms_p50": percentile(latencies, 50) if latencies else None,
        "latency_ms_p99": percentile(latencies, 99) if latencies else None,
    }


class PublicWrites:
    """notary.anchor signed by the client as brand; waits for the commit."""

    def __init__(self, api: str, member: Member) -> None:
        self.api = api
        self.member = member
        self.local = threading.local()

    def __call__(self, index: int) -> None:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = Client(self.api, timeout_s=120.0)
        answer = client.member_call(self.member, "notary", "anchor", {"hash": os.urandom(32)})
        assert answer["height"] > 0


class PrivateWrites:
    """PUT on brand's gateway; answered once committed."""

    def __init__(self, api: str, token: str, run: str) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}
        self.run = run
        self.local = threading.local()

    def __call__(self, index: int) -> None:
        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = httpx.Client(base_url=self.api, timeout=120.0)
        response = http.put(
            f"/v1/private/bench/records/{self.run}-{index}",
            json={"value": value_of(index)},
            headers=self.headers,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")


def dissemination(
    brand_api: str, brand_token: str, bank_api: str, bank_token: str, run: str
) -> dict[str, Any]:
    """How long after a write's answer bank's node serves the record (its envelope pushed by
    brand's node or fetched from it, and opened): one write at a time on a quiet consortium."""
    writer = {"Authorization": f"Bearer {brand_token}"}
    reader = {"Authorization": f"Bearer {bank_token}"}
    delays: list[float] = []
    missing = 0
    with httpx.Client(timeout=30.0) as http:
        for index in range(dissemination_samples):
            path = f"/v1/private/bench/records/{run}-d{index}"
            answer = http.put(brand_api + path, json={"value": value_of(index)}, headers=writer)
            answer.raise_for_status()
            written = time.perf_counter()
            deadline = time.monotonic() + 30.0
            while True:
                response = http.get(bank_api + path, headers=reader)
                if response.status_code == 200:
                    delays.append(1000 * (time.perf_counter() - written))
                    break
                if time.monotonic() > deadline:
                    missing += 1
                    break
                time.sleep(0.002)
    return {
        "sampled": dissemination_samples,
        "missing_after_30s": missing,
        "served_by_bank_ms_p50": percentile(delays, 50) if delays else None,
        "served_by_bank_ms_p99": percentile(delays, 99) if delays else None,
    }


def in_process(repeat: int = 2000) -> dict[str, Any]:
    keys = [EncryptionKey.generate() for _ in range(3)]
    recipients = [
        Recipient(org, k.kid, k.public) for org, k in zip(("a", "b", "c"), keys, strict=True)
    ]
    ring = Keyring(Path(tempfile.mkdtemp(prefix="xinchain-bench-keys-")))
    ring.add(keys[1])
    record = private_record("bench", "k", value_of(1), "a")
    started = time.perf_counter()
    for _ in range(repeat):
        envelope = seal("bench-chain", record, recipients)
    sealed_us = 1e6 * (time.perf_counter() - started) / repeat
    started = time.perf_counter()
    for _ in range(repeat):
        open_envelope(envelope, ring)
    opened_us = 1e6 * (time.perf_counter() - started) / repeat
    suite = suite_named("ed25519-sha256")
    signer = suite.generate_key()
    started = time.perf_counter()
    for _ in range(repeat):
        signer.sign(b"x" * 200)
    sign_us = 1e6 * (time.perf_counter() - started) / repeat
    shutil.rmtree(ring.directory, ignore_errors=True)
    return {
        "seal_3_recipients_us": round(sealed_us, 1),
        "open_us": round(opened_us, 1),
        "ed25519_sign_us": round(sign_us, 1),
        "envelope_bytes": len(envelope),
        "value_bytes": len(str(value_of(1))),
    }


def define_collection(home: Path, api_node: str) -> None:
    command = [
        sys.executable, "-m", "xinchain", "private", "define", "bench", "--members", "brand,bank",
        "--home", str(home), "--node", api_node,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not define the collection: {done.stdout}{done.stderr}")


def wait_for_keys(api: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api, timeout=10.0) as http:
        while True:
            found = http.get("/v1/private/collections").json()["collections"]
            record = next((c for c in found if c["name"] == "bench"), None)
            if record is not None and all(record["keys"].values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"encryption keys not registered: {record}")
            time.sleep(0.5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-private-"))
    consortium = Consortium(workdir / "home", args.validators)
    try:
        consortium.start()
        home = Home(consortium.home)
        genesis = home.genesis()
        brand_api = consortium.validator_apis[BRAND]
        bank_api = consortium.validator_apis[BANK]
        define_collection(consortium.home, genesis.validators[BRAND].name)
        wait_for_keys(brand_api)
        member = Member(genesis, "brand", home.org_key(genesis.suite, "brand"))
        brand_token = home.gateway_token(genesis.validators[BRAND].name)
        bank_token = home.gateway_token(genesis.validators[BANK].name)
        run_id = f"r{int(time.time())}"
        # A short warm-up of each, so that neither pays for first connections and imports.
        run_clients(PublicWrites(brand_api, member), 50, args.clients)
        run_clients(PrivateWrites(brand_api, brand_token, run_id + "w"), 50, args.clients)
        public = run_clients(PublicWrites(brand_api, member), args.ops, args.clients)
        writes = PrivateWrites(brand_api, brand_token, run_id)
        private = run_clients(writes, args.ops, args.clients)
        spread = dissemination(brand_api, brand_token, bank_api, bank_token, run_id)
        return {
            "bench": "private",
            "commit": git_commit(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "validators": args.validators,
            "clients": args.clients,
            "ops": args.ops,
            "public": public,
            "private": private,
            "private_to_public_ratio": (
                round(private["writes_per_s"] / public["writes_per_s"], 3)
                if public["writes_per_s"]
                else None
            ),
            "dissemination": spread,
            "in_process": in_process(),
        }
    finally:
        consortium.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(summary: dict[str, Any]) -> str:
    public, private = summary["public"], summary["private"]
    lines = [
        f"private data bench at {summary['commit']}: {summary['validators']} validators, "
        f"{summary['clients']} clients, {summary['ops']} writes each",
        "",
        "| writes | writes/s | commit p50 | commit p99 | errors |",
        "|---|---|---|---|---|",
    ]
    for name, row in (("public (notary.anchor)", public), ("private (sealed to 3 orgs)", private)):
        lines.append(
            f"| {name} | {row['writes_per_s']} | {row['latency_ms_p50']} ms | "
            f"{row['latency_ms_p99']} ms | {row['errors']} |"
        )
    spread, local = summary["dissemination"], summary["in_process"]
    lines += [
        "",
        f"private/public throughput: {summary['private_to_public_ratio']}",
        f"served by bank after the write's answer: p50 {spread['served_by_bank_ms_p50']} ms, "
        f"p99 {spread['served_by_bank_ms_p99']} ms ({spread['sampled']} sampled, "
        f"{spread['missing_after_30s']} missing)",
        f"in process: seal for 3 orgs {local['seal_3_recipients_us']} us, open "
        f"{local['open_us']} us, Ed25519 sign {local['ed25519_sign_us']} us; envelope "
        f"{local['envelope_bytes']} bytes for a {local['value_bytes']}-byte value",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--validators", type=int, default=4)
    args = parser.parse_args()
    with interruptible():
        summary = run(args)
    print(report(summary))
    write_summary("private", summary)
    failed = summary["public"]["errors"] or summary["private"]["errors"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
