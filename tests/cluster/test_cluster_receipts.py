"""Notary receipts from a real 4-validator network (`xinchain up --validators 4`).

Scenarios:

* `notary put` of three files through validator-1's API writes receipts whose certificates
  carry at least 3 (the quorum of 4) signatures from distinct genesis validators.
* `xinchain verify` accepts each of those receipts offline: it runs inside a fresh network
  namespace with no interface up (`unshare --net`) when the machine allows one.
* The same receipt with its signatures cut to 2 is refused by `xinchain verify`: exit 1 and
  "too few validator signatures" (while the uncut copy of that receipt verifies).
* A `notary put` sent to the observer (a non-voting node) is gossiped to the validators and
  committed: every validator reports the transaction committed at the receipt's height, in
  a block whose listed transactions include it.
* `/v1/notary/{hash}` gives the same answer on all 5 nodes for every anchored file, and 404
  on all 5 for a hash nobody anchored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import NODES, OBSERVER, VALIDATORS, XINCHAIN, Cluster
from receipts import verify_receipt

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# A put waits for its commit: a few seconds, with a wide margin for a loaded 2-core box.
cli_timeout_s = 60.0
# How long every node gets to reach the height of a committed transaction.
follow_timeout_s = 30.0
# How long a validator is asked to wait for a gossiped transaction to commit.
commit_wait_ms = 20_000
QUORUM_OF_FOUR = 3


@dataclass(frozen=True)
class Put:
    documents: list[Path]
    receipts: dict[Path, dict[str, Any]]  # document → its receipt
    receipt_paths: dict[Path, Path]


@cache
def offline_prefix() -> tuple[str, ...]:
    """`unshare --net` when this machine lets us run a command without any network."""
    try:
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ("unshare", "--net") if probe.returncode == 0 else ()


def run_cli(*args: object, offline: bool = False) -> subprocess.CompletedProcess[str]:
    command = [str(XINCHAIN), *(str(arg) for arg in args)]
    if offline:
        command = [*offline_prefix(), *command]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=cli_timeout_s,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


def notary_put(cluster: Cluster, via: str, directory: Path, count: int) -> Put:
    directory.mkdir(parents=True)
    documents = []
    for index in range(count):
        document = directory / f"{via}-document-{index}.txt"
        document.write_bytes(f"cluster receipt {index} sent through {via}\n".encode() * 50)
        documents.append(document)
    out = directory / "receipts"
    put = run_cli(
        "notary", "put", *documents, "--home", cluster.home, "--api", cluster.api(via), "--out", out
    )
    assert put.returncode == 0, f"put through {via}: {put.stdout}\n{put.stderr}"
    paths = {document: out / f"{document.name}.receipt.json" for document in documents}
    receipts = {document: json.loads(path.read_text()) for document, path in paths.items()}
    return Put(documents, receipts, paths)


@pytest.fixture(scope="module")
def put_via_validator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Put:
    return notary_put(cluster, "validator-1", tmp_path_factory.mktemp("put") / "files", 3)


@pytest.fixture(scope="module")
def put_via_observer(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Put:
    assert cluster.status(OBSERVER)["validator_index"] is None, "the observer must not vote"
    return notary_put(cluster, OBSERVER, tmp_path_factory.mktemp("put") / "files", 1)


def test_receipts_carry_a_quorum_of_distinct_validator_signatures(
    put_via_validator: Put,
) -> None:
    for document, receipt in put_via_validator.receipts.items():
        signers = [entry["validator"] for entry in receipt["certificate"]["signatures"]]
        assert len(set(signers)) == len(signers), f"{document.name}: repeated signer {signers}"
        assert len(signers) >= QUORUM_OF_FOUR, f"{document.name}: signers {signers}"
        assert set(signers) <= set(range(len(VALIDATORS))), f"{document.name}: {signers}"
        assert len(receipt["genesis"]["validators"]) == len(VALIDATORS)


def test_xinchain_verify_accepts_every_receipt_offline(
    cluster: Cluster, put_via_validator: Put
) -> None:
    genesis_hash = cluster.status("validator-0")["genesis_hash"]
    for document, receipt_path in put_via_validator.receipt_paths.items():
        verify = run_cli(
            "verify", receipt_path, "--file", document, "--genesis-hash", genesis_hash, offline=True
        )
        assert verify.returncode == 0, f"{document.name}: {verify.stdout}{verify.stderr}"
        assert verify.stdout.startswith(f"valid: {document.name}"), verify.stdout


def test_xinchain_verify_refuses_a_receipt_cut_to_two_signatures(
    put_via_validator: Put, tmp_path: Path
) -> None:
    document = put_via_validator.documents[0]
    receipt = copy.deepcopy(put_via_validator.receipts[document])
    receipt["certificate"]["signatures"] = receipt["certificate"]["signatures"][:2]
    cut = tmp_path / "cut.receipt.json"
    cut.write_text(json.dumps(receipt))
    uncut = run_cli("verify", put_via_validator.receipt_paths[document], "--file", document)
    assert uncut.returncode == 0, f"the uncut receipt must verify: {uncut.stdout}{uncut.stderr}"

    verify = run_cli("verify", cut, "--file", document, offline=True)

    assert verify.returncode == 1, f"{verify.stdout}{verify.stderr}"
    assert verify.stdout.startswith("invalid:"), verify.stdout
    assert "too few validator signatures" in verify.stdout, verify.stdout


def test_a_put_sent_to_the_observer_is_committed_by_the_validators(
    cluster: Cluster, put_via_observer: Put
) -> None:
    receipt = put_via_observer.receipts[put_via_observer.documents[0]]
    tx_id = receipt["result"]["tx_id"]
    height = receipt["header"]["height"]
    for name in VALIDATORS:
        response = cluster.get(name, f"/v1/transactions/{tx_id}?wait_ms={commit_wait_ms}")
        assert response.status_code == 200, f"{name}: {response.text}"
        answer = response.json()
        assert answer["status"] == "committed", f"{name}: {answer}"
        assert answer["height"] == height, f"{name}: {answer}, receipt says height {height}"
        block = cluster.get(name, f"/v1/blocks/{height}").json()
        assert tx_id in block["tx_ids"], f"{name} block {height}: {block['tx_ids']}"


def test_notary_lookup_answers_the_same_on_every_node(
    cluster: Cluster, put_via_validator: Put, put_via_observer: Put
) -> None:
    puts = [put_via_validator, put_via_observer]
    highest = max(r["header"]["height"] for put in puts for r in put.receipts.values())
    cluster.wait_for_height(NODES, highest, follow_timeout_s)
    for put in puts:
        for document in put.documents:
            document_hash = hashlib.sha256(document.read_bytes()).hexdigest()
            answers = {}
            for name in NODES:
                response = cluster.get(name, f"/v1/notary/{document_hash}")
                assert response.status_code == 200, f"{name} {document.name}: {response.text}"
                answers[name] = response.json()
            assert answers[OBSERVER]["records"], f"{document.name}: no record"
            differing = {name for name, answer in answers.items() if answer != answers[OBSERVER]}
            assert not differing, f"{document.name}: {json.dumps(answers, indent=1)}"


def test_notary_lookup_of_a_hash_nobody_anchored_is_404_on_every_node(cluster: Cluster) -> None:
    never_anchored = hashlib.sha256(b"no member of the consortium anchored this").hexdigest()
    for name in NODES:
        response = cluster.get(name, f"/v1/notary/{never_anchored}")
        assert response.status_code == 404, f"{name}: {response.status_code} {response.text}"
        assert response.json()["error"]["field"] == "hash", f"{name}: {response.text}"


def test_certificate_signatures_out_of_order_are_refused_and_a_surplus_one_may_go(
    put_via_validator: Put, tmp_path: Path
) -> None:
    """docs/receipts.md: entries in ascending validator order; a signature beyond the quorum
    may be removed and the receipt proves the same (what "changing any value" leaves open)."""
    document = put_via_validator.documents[0]
    receipt = put_via_validator.receipts[document]
    signatures = receipt["certificate"]["signatures"]
    assert [entry["validator"] for entry in signatures] == sorted(
        entry["validator"] for entry in signatures
    )
    reordered = copy.deepcopy(receipt)
    reordered["certificate"]["signatures"] = signatures[::-1]
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps(reordered))
    verify = run_cli("verify", path, "--file", document)
    assert verify.returncode == 1 and "out of order" in verify.stdout, verify.stdout
    if len(signatures) > QUORUM_OF_FOUR:
        trimmed = copy.deepcopy(receipt)
        trimmed["certificate"]["signatures"] = signatures[:QUORUM_OF_FOUR]
        path.write_text(json.dumps(trimmed))
        verify = run_cli("verify", path, "--file", document)
        assert verify.returncode == 0, verify.stdout


def test_the_docs_verifier_agrees_on_every_change_to_a_four_validator_receipt(
    put_via_validator: Put,
) -> None:
    import docs_verifier
    from receipt_mutations import forgeries, text_mutations, value_mutations

    from xinchain.errors import XinchainError
    from xinchain.receipt import load_receipt_json

    document = put_via_validator.documents[0]
    receipt = put_via_validator.receipts[document]
    data = document.read_bytes()

    def mine(text: bytes) -> bool:
        try:
            verify_receipt(load_receipt_json(text), data)
        except XinchainError:
            return False
        return True

    def theirs(text: bytes) -> bool:
        try:
            docs_verifier.verify(text, data)
        except docs_verifier.Refused:
            return False
        return True

    cases = [(name, json.dumps(value).encode()) for name, value in value_mutations(receipt)]
    edits = list(text_mutations(json.dumps(receipt, indent=1).encode()))
    assert len(edits) == 15, [name for name, _ in edits]  # every edit found its place
    cases += edits
    cases += [(name, json.dumps(value).encode()) for name, value in forgeries(receipt)]
    disagreements = [name for name, text in cases if mine(text) != theirs(text)]
    assert not disagreements, disagreements
    surplus = len(receipt["certificate"]["signatures"]) > QUORUM_OF_FOUR
    accepted = [name for name, text in cases if mine(text)]
    # Only dropping a surplus signature may leave the receipt valid.
    assert all("signatures: last item removed" in name for name in accepted) and (
        surplus or not accepted
    ), accepted
