"""The main flows on a chain created with `--suite sm2-sm3` (SM2 signatures, SM3 hashes).

Scenarios:

* A batch put: every receipt verifies in-process and with the command; receipts say "sm3",
  the genesis names sm2-sm3, the document hash is the file's SM3 digest (computed here
  independently of xinchain) and keys are 65-byte uncompressed SM2 points.
* Tampering: every single-leaf mutation of a receipt is refused; a file changed by one byte is
  refused by the command; a receipt relabelled as the ed25519-sha256 suite is refused.
* kill -9 and restart: receipts returned before the kill name blocks the restarted chain holds,
  and a new put lands above the old tip; a put whose node is killed 0-100 ms after it starts
  sending its transaction leaves all or none of its hashes recorded (all, and every receipt,
  if it exited 0; no receipt if it did not).
"""

from __future__ import annotations

import json
import random
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from receipts import verify_receipt

from xinchain.errors import ReceiptInvalid

if TYPE_CHECKING:
    from conftest import InterruptedPut, RunningNode, Tamper

Cli = Callable[..., subprocess.CompletedProcess[str]]
SUITE = "sm2-sm3"
batch_size = 5
interrupted_batch_size = 1_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
on_sm2 = pytest.mark.parametrize("module_node", [SUITE], indirect=True)
fresh_sm2 = pytest.mark.parametrize("node", [SUITE], indirect=True)


def sm3(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


@dataclass(frozen=True)
class Anchored:
    paths: list[Path]
    out: Path
    receipts: list[dict[str, Any]]


def write_documents(directory: Path, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex
    paths = []
    for index in range(count):
        path = directory / f"sm2-{index:05d}.txt"
        path.write_text(f"{nonce} sm2 document {index}\n")
        paths.append(path)
    return paths


def put(cli: Cli, node: RunningNode, directory: Path, count: int) -> Anchored:
    paths = write_documents(directory / "files", count)
    out = directory / "receipts"
    completed = cli("notary", "put", *paths, "--home", node.home, "--api", node.api, "--out", out)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    receipts = [
        json.loads((out / f"{path.name}.receipt.json").read_text(encoding="utf-8"))
        for path in paths
    ]
    return Anchored(paths, out, receipts)


@pytest.fixture(scope="module")
def batch(module_node: RunningNode, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Anchored:
    assert module_node.suite == SUITE
    return put(cli, module_node, tmp_path_factory.mktemp("sm2-batch"), batch_size)


def block_hash_at(node: RunningNode, height: int) -> str | None:
    response = httpx.get(f"{node.api}/v1/blocks/{height}", timeout=30)
    return str(response.json()["hash"]) if response.status_code == 200 else None


def ready_height(node: RunningNode) -> int:
    return int(node.ready_line.split(" height ")[1].split(",")[0])


# --- a batch -----------------------------------------------------------------------------------


@on_sm2
def test_every_receipt_of_an_sm2_batch_verifies_in_process(batch: Anchored) -> None:
    for path, receipt in zip(batch.paths, batch.receipts, strict=True):
        verified = verify_receipt(receipt, path.read_bytes())
        assert verified.document_hash == sm3(path.read_bytes())


@on_sm2
def test_an_sm2_receipt_verifies_with_the_command(batch: Anchored, cli: Cli) -> None:
    path = batch.paths[3]
    completed = cli("verify", batch.out / f"{path.name}.receipt.json", "--file", path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith(f"valid: {path.name} ({sm3(path.read_bytes())})")


@on_sm2
def test_sm2_receipts_name_sm3_and_carry_sm2_keys(batch: Anchored) -> None:
    for path, receipt in zip(batch.paths, batch.receipts, strict=True):
        assert receipt["document"] == {"algorithm": "sm3", "hash": sm3(path.read_bytes())}
        assert receipt["genesis"]["suite"] == SUITE
        keys = [key for org in receipt["genesis"]["orgs"] for key in org["keys"]]
        keys += [validator["public_key"] for validator in receipt["genesis"]["validators"]]
        assert all(len(key) == 130 and key.startswith("04") for key in keys), keys


# --- tampering ---------------------------------------------------------------------------------


@on_sm2
def test_every_single_leaf_mutation_of_an_sm2_receipt_is_refused(
    batch: Anchored, tamper: type[Tamper]
) -> None:
    receipt, document = batch.receipts[2], batch.paths[2].read_bytes()
    verify_receipt(receipt, document)
    mutations = list(tamper.leaf_mutations(receipt))
    assert len(mutations) > 1_000
    gaps = tamper.unrefused(mutations, document)
    assert gaps == [], tamper.gap_report(gaps, len(mutations))


@on_sm2
def test_a_file_changed_by_one_byte_is_refused_by_the_command(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    changed = bytearray(batch.paths[0].read_bytes())
    changed[0] ^= 0x01
    document = tmp_path / batch.paths[0].name
    document.write_bytes(bytes(changed))
    completed = cli("verify", batch.out / f"{document.name}.receipt.json", "--file", document)
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: hash mismatch"), completed.stdout


@on_sm2
def test_an_sm2_receipt_relabelled_as_the_ed25519_suite_is_refused(batch: Anchored) -> None:
    receipt = batch.receipts[0]
    relabelled = {
        **receipt,
        "genesis": {**receipt["genesis"], "suite": "ed25519-sha256"},
        "document": {**receipt["document"], "algorithm": "sha256"},
    }
    with pytest.raises(ReceiptInvalid):
        verify_receipt(relabelled, batch.paths[0].read_bytes())


# --- kill -9 and restart -----------------------------------------------------------------------


@fresh_sm2
def test_after_kill9_and_restart_receipts_still_name_the_chains_blocks(
    node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    before = put(cli, node, tmp_path / "before", batch_size)
    old_tip = httpx.get(f"{node.api}/v1/status", timeout=30).json()["height"]
    node.kill9()
    node.start()
    assert ready_height(node) >= old_tip
    for path, receipt in zip(before.paths, before.receipts, strict=True):
        verify_receipt(receipt, path.read_bytes())
        certificate = receipt["certificate"]
        assert block_hash_at(node, certificate["height"]) == certificate["block_hash"]


@fresh_sm2
def test_after_kill9_and_restart_a_put_lands_above_the_old_tip(
    node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    put(cli, node, tmp_path / "before", batch_size)
    old_tip = httpx.get(f"{node.api}/v1/status", timeout=30).json()["height"]
    node.kill9()
    node.start()
    after = put(cli, node, tmp_path / "after", batch_size)
    assert all(receipt["header"]["height"] > old_tip for receipt in after.receipts)
    for path, receipt in zip(after.paths, after.receipts, strict=True):
        verify_receipt(receipt, path.read_bytes())


@fresh_sm2
def test_a_put_interrupted_by_kill9_leaves_all_or_none_of_its_hashes(
    node: RunningNode, tmp_path: Path, interrupted_put: Callable[..., InterruptedPut]
) -> None:
    delay_s = random.uniform(0.0, 0.1)
    paths = write_documents(tmp_path / "files", interrupted_batch_size)
    result = interrupted_put(node, paths, tmp_path / "receipts", delay_s)
    outcome = f"kill {delay_s * 1000:.0f} ms after the POST: {result}"
    assert all(result.recorded) or not any(result.recorded), outcome
    if result.returncode == 0:
        assert all(result.recorded) and result.receipts_written == len(paths), outcome
    else:
        assert result.receipts_written == 0, outcome
