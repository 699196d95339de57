"""Identity bench: 10,000 merchants registered, issued a credential and verified, on a real
consortium, with a plain Ed25519 verification timed in the same run for the ratio.

    .venv/bin/python bench/identity.py [--merchants 10000] [--validators 4]

Starts its own `xinchain up` in a temporary home on free loopback ports (stopped at the end,
also on Ctrl-C), then:

    platform    identity.did_create  one DID per merchant (signed calls, several client
                                     threads), waited for until all are committed; it issues
                                     with its own DID, which its node registered
    (members)   governance           authorise platform to issue MerchantCredential
    platform    status_publish       an empty revocation list
    (bench)                          issue a MerchantCredential to every merchant (in process,
                                     eddsa-jcs-2022), timed
    brand's node POST /v1/identity/verify   every credential, timed (what platform B's node
                                     does with a presentation's credentials), each answer
                                     checked: verified, the right subject
    (bench)                          in process: the same verification against a snapshot of
                                     the chain's records, and a bare Ed25519 verification

Prints a table and a JSON summary line, and writes bench/results/identity-<timestamp>.json.
Never part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nacl.signing
from consortium import Consortium
from provenance import _git_commit as git_commit
from provenance import _percentile as percentile
from provenance import interruptible, write_summary

from xinchain.apps.identity import status
from xinchain.apps.identity.contract import did_of
from xinchain.apps.identity.credentials import DidRecord, Trust, issue, verify_credential
from xinchain.apps.identity.dataintegrity import SigningKey
from xinchain.apps.identity.multiformats import ED25519_PUB, multikey_encode
from xinchain.client.sdk import Client, Member
from xinchain.contracts.governance import approvals_needed
from xinchain.node.home import Home

BRAND = 1  # validator index: validators are platform, brand, customs, bank in turn
CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    {
        "MerchantCredential": "https://xinchain.example/ns#MerchantCredential",
        "shopName": "https://schema.org/name",
    },
]


def keypair(index: int) -> tuple[bytes, str]:
    seed = index.to_bytes(4, "big") * 8
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    return seed, multikey_encode(ED25519_PUB, public)


def document(did: str, multikey: str) -> dict[str, Any]:
    method = f"{did}#key-1"
    return {
        "id": did,
        "verificationMethod": [
            {"id": method, "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}
        ],
        "authentication": [method],
        "assertionMethod": [method],
        "capabilityInvocation": [method],
    }


def submit_all(
    api: str, member: Member, calls: list[tuple[str, str, dict[str, Any]]], threads: int
) -> list[str]:
    ids: list[str] = [""] * len(calls)
    lock = threading.Lock()
    cursor = [0]

    def work() -> None:
        with Client(api, timeout_s=60.0) as client:
            tip = int(client.status()["height"])
            while True:
                with lock:
                    index = cursor[0]
                    cursor[0] += 1
                if index >= len(calls):
                    return
                contract, method, args = calls[index]
                ids[index] = client.submit(
                    member.transaction(contract, method, args, tip=tip, validity=5_000)
                )

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return ids


def wait_all(api: str, tx_ids: list[str]) -> list[dict[str, Any]]:
    with Client(api, timeout_s=120.0) as client:
        return [client.wait_committed(tx_id, 600.0) for tx_id in tx_ids]


def govern(api: str, home: Home, action: dict[str, Any]) -> None:
    with Client(api) as client:
        genesis = client.genesis()
        orgs = [o.id for o in genesis.orgs if home.org_key_path(o.id).exists()]
        answer = client.member_call(
            Member(genesis, orgs[0], home.org_key(genesis.suite, orgs[0])),
            "governance",
            "propose",
            {"action": action},
        )
        for org in orgs[1 : approvals_needed(len(genesis.orgs))]:
            member = Member(genesis, org, home.org_key(genesis.suite, org))
            answer = client.member_call(
                member, "governance", "approve", {"proposal": answer["proposal"]}
            )
        if not answer["executed"]:
            raise RuntimeError(f"governance did not execute: {answer}")


def wait_for_org_did(api: str, wallet_path: Path, did: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        if wallet_path.exists():
            resolved = httpx.get(f"{api}/v1/identity/dids/{did}", timeout=30).json()
            if resolved["didDocument"] is not None:
                return dict(json.loads(wallet_path.read_text()))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{did} was never registered")
        time.sleep(0.5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-identity-"))
    consortium = Consortium(workdir / "home", args.validators)
    try:
        consortium.start()
        home = Home(consortium.home)
        genesis = home.genesis()
        api = consortium.validator_apis[0]
        verifier_api = consortium.validator_apis[BRAND]
        platform_member = Member(genesis, "platform", home.org_key(genesis.suite, "platform"))
        # The issuer is platform's own DID, which its node registers (keys in HOME/dids).
        issuer_did = did_of(genesis.chain_id, "platform")
        wallet = wait_for_org_did(api, consortium.home / "dids" / "platform.json", issuer_did)
        key = SigningKey.from_multibase(wallet["keys"][wallet["current"]], wallet["current"])
        issuer_document = httpx.get(f"{api}/v1/identity/dids/{issuer_did}", timeout=30).json()[
            "didDocument"
        ]
        merchants = []
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for index in range(1, args.merchants + 1):
            seed, multikey = keypair(index)
            identifier = f"merchant-{index:06d}"
            did = did_of(genesis.chain_id, identifier)
            merchants.append((did, seed))
            calls.append(
                ("identity", "did_create", {"id": identifier, "document": document(did, multikey)})
            )
        started = time.perf_counter()
        tx_ids = submit_all(api, platform_member, calls, args.threads)
        committed = wait_all(api, tx_ids)
        register_s = time.perf_counter() - started
        refused = [c for c in committed if not c["result"]["ok"]]
        govern(
            api,
            home,
            {
                "kind": "set_config",
                "contract": "identity",
                "key": "issuers",
                "value": {"MerchantCredential": ["platform"]},
            },
        )
        with Client(api) as client:
            client.member_call(
                platform_member,
                "identity",
                "status_publish",
                {
                    "list": "revoked",
                    "purpose": "revocation",
                    "encoded": status.encode(status.empty()),
                    "previous": 0,
                },
            )
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        issued = []
        issue_times = []
        for index, (did, _) in enumerate(merchants):
            credential = {
                "@context": CONTEXT,
                "type": ["VerifiableCredential", "MerchantCredential"],
                "issuer": issuer_did,
                "credentialSubject": {"id": did, "shopName": f"Shop {index}"},
                "credentialStatus": {
                    "type": "BitstringStatusListEntry",
                    "statusPurpose": "revocation",
                    "statusListIndex": str(index),
                    "statusListCredential": status.status_url(issuer_did, "revoked"),
                },
            }
            t0 = time.perf_counter()
            issued.append(issue(credential, key, created))
            issue_times.append(1000 * (time.perf_counter() - t0))
        rest_times = []
        wrong = 0
        with httpx.Client(base_url=verifier_api, timeout=30.0) as http:
            for credential in issued:
                t0 = time.perf_counter()
                answer = http.post(
                    "/v1/identity/verify", json={"verifiableCredential": credential}
                ).json()
                rest_times.append(1000 * (time.perf_counter() - t0))
                if (
                    not answer.get("verified")
                    or answer["credential"]["subject"]["id"]
                    != credential["credentialSubject"]["id"]
                ):
                    wrong += 1
        # In process: the same checks against a snapshot of what the chain holds.
        documents = {issuer_did: issuer_document}
        documents.update(
            {did: document(did, keypair(i + 1)[1]) for i, (did, _) in enumerate(merchants)}
        )
        encoded = status.encode(status.empty())
        trust = Trust(
            resolve_xin=lambda did: (
                DidRecord(documents[did], "platform") if did in documents else None
            ),
            issuers={"MerchantCredential": ["platform"]},
            status_list=lambda org, name: ("revocation", encoded),
        )
        local_times = []
        for credential in issued[: args.local_samples]:
            t0 = time.perf_counter()
            verify_credential(credential, trust)
            local_times.append(1000 * (time.perf_counter() - t0))
        signer = nacl.signing.SigningKey(bytes(32))
        message = os.urandom(64)
        signed = signer.sign(message)
        verify_key = signer.verify_key
        t0 = time.perf_counter()
        for _ in range(args.local_samples):
            verify_key.verify(signed)
        ed25519_ms = 1000 * (time.perf_counter() - t0) / args.local_samples
        local_p50 = percentile(local_times, 50)
        return {
            "bench": "identity",
            "commit": git_commit(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "validators": args.validators,
            "merchants": args.merchants,
            "register": {
                "dids": len(calls),
                "refused": len(refused),
                "seconds": round(register_s, 1),
                "per_s": round(len(calls) / register_s, 1),
            },
            "issue_ms": {"p50": percentile(issue_times, 50), "p99": percentile(issue_times, 99)},
            "verify_rest_ms": {
                "p50": percentile(rest_times, 50),
                "p99": percentile(rest_times, 99),
                "refused_or_wrong": wrong,
            },
            "verify_local_ms": {
                "p50": local_p50,
                "p99": percentile(local_times, 99),
                "samples": len(local_times),
            },
            "ed25519_verify_ms": round(ed25519_ms, 4),
            "ratio_local_to_ed25519": round(local_p50 / ed25519_ms, 1) if ed25519_ms else None,
        }
    finally:
        consortium.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(summary: dict[str, Any]) -> str:
    r, rest, local = summary["register"], summary["verify_rest_ms"], summary["verify_local_ms"]
    issued = summary["issue_ms"]
    lines = [
        f"identity bench at {summary['commit']}: {summary['validators']} validators, "
        f"{summary['merchants']} merchants",
        f"registered {r['dids']} DIDs in {r['seconds']} s ({r['per_s']}/s), {r['refused']} refused",
        f"issue a credential: p50 {issued['p50']} ms, p99 {issued['p99']} ms",
        f"verify over REST (brand's node): p50 {rest['p50']} ms, p99 {rest['p99']} ms, "
        f"{rest['refused_or_wrong']} refused or wrong",
        f"verify in process: p50 {local['p50']} ms, p99 {local['p99']} ms "
        f"({local['samples']} samples)",
        f"bare Ed25519 verify: {summary['ed25519_verify_ms']} ms; credential/Ed25519: "
        f"{summary['ratio_local_to_ed25519']}x",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--merchants", type=int, default=10_000)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--local-samples", type=int, default=2_000)
    args = parser.parse_args()
    with interruptible():
        summary = run(args)
    print(report(summary))
    write_summary("identity", summary)
    failed = summary["register"]["refused"] or summary["verify_rest_ms"]["refused_or_wrong"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
