"""Merchant onboarding across platforms on a real consortium (`xinchain up --validators 4`,
five processes), through the CLI a platform's operator runs:

- platform A's node registers A's DID, A registers a merchant's DID, governance authorises A for
  MerchantCredential, A issues one to the merchant with its own DID (with a status list entry)
- the merchant presents it to platform B (B's challenge and domain); brand's node (B's side)
  verifies it from the chain alone: accepted
- refused, with the reason: the wrong challenge; the same presentation once A revoked the
  credential, from the block that committed the revocation; a credential of a deactivated
  issuer DID
- the merchant rotates its key: a presentation signed with the new key is accepted
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import XINCHAIN, Cluster, free_port_base

pytestmark = pytest.mark.slow
B_NODE = "validator-1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("identity") / "home", free_port_base())
    try:
        running.start()
        yield running
    finally:
        running.stop()


def cli(cluster: Cluster, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(XINCHAIN), *args, "--home", str(cluster.home)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def wait_for_org_did(cluster: Cluster, org: str) -> None:
    deadline = time.monotonic() + 60
    while not (cluster.home / "dids" / f"{org}.json").exists() or (
        cli(cluster, "did", "show", _org_did(cluster, org), ok=False).returncode != 0
    ):
        assert time.monotonic() < deadline, f"{org}'s DID was never registered"
        time.sleep(0.5)


def _org_did(cluster: Cluster, org: str) -> str:
    chain_id = json.loads((cluster.home / "genesis.json").read_text())["chain_id"]
    return f"did:xin:{chain_id}:{org}"


def verify(cluster: Cluster, path: Path, *extra: str) -> dict[str, Any]:
    done = cli(cluster, "vc", "verify", str(path), "--node", B_NODE, *extra, ok=False)
    answer = json.loads(done.stdout)
    assert (done.returncode == 0) == answer["verified"], done.stdout
    return dict(answer)


def test_a_merchant_onboards_at_platform_b_and_is_refused_once_revoked(
    cluster: Cluster, tmp_path: Path
) -> None:
    wait_for_org_did(cluster, "platform")  # platform's node registers it; the org issues with it
    cli(
        cluster,
        "did",
        "create",
        "merchant-1",
        "--as",
        "platform",
        "--service",
        "https://shop.example/m1",
    )
    merchant = json.loads((cluster.home / "dids" / "merchant-1.json").read_text())["did"]
    cli(cluster, "vc", "authorise", "--type", "MerchantCredential", "--orgs", "platform")
    cli(cluster, "vc", "revoke", "--index", "0", "--restore", "--as", "platform")  # the list
    credential = tmp_path / "merchant.vc.json"
    claims = json.dumps({"shopName": "Hangzhou Formula Store"})
    cli(
        cluster, "vc", "issue", "--issuer", "platform", "--subject", merchant,
        "--type", "MerchantCredential", "--claims", claims, "--index", "5",
        "--out", str(credential),
    )  # fmt: skip
    presentation = tmp_path / "merchant.vp.json"
    binding = ("--challenge", "b-7731", "--domain", "platform-b.example")
    cli(
        cluster,
        "vc",
        "present",
        "--holder",
        "merchant-1",
        *binding,
        str(credential),
        "--out",
        str(presentation),
    )
    accepted = verify(cluster, presentation, *binding)
    assert accepted["credentials"][0]["subject"]["shopName"] == "Hangzhou Formula Store"
    wrong = verify(cluster, presentation, "--challenge", "b-0000", "--domain", "platform-b.example")
    assert "challenge" in wrong["reason"]
    revoked = json.loads(cli(cluster, "vc", "revoke", "--index", "5", "--as", "platform").stdout)
    refused = verify(cluster, presentation, *binding)
    assert refused["reason"] == "the credential is revoked (list revocation, index 5)"
    assert refused["height"] >= revoked["height"]
    cli(cluster, "did", "rotate", "merchant-1")
    other = tmp_path / "other.vc.json"
    cli(
        cluster, "vc", "issue", "--issuer", "platform", "--subject", merchant,
        "--type", "MerchantCredential", "--claims", claims, "--index", "6", "--out", str(other),
    )  # fmt: skip
    again = tmp_path / "again.vp.json"
    cli(
        cluster,
        "vc",
        "present",
        "--holder",
        "merchant-1",
        *binding,
        str(other),
        "--out",
        str(again),
    )
    assert verify(cluster, again, *binding)["verified"]
    cli(cluster, "did", "deactivate", "platform")
    gone = verify(cluster, other)
    assert "deactivated" in gone["reason"]
