"""`xinchain notary put` and `xinchain verify` against a real node.

Scenarios:

* 10,000 distinct files anchored by one `notary put` call:
  - one receipt file per document, exit 0;
  - all in one batch transaction of size 10,000, one leaf index each;
  - every receipt verifies offline in-process, and a sample with the `verify` command;
  - the node's lookup names sender org, height and transaction (for every 4th hash);
  - the node's own receipt for a hash verifies.
* One file: anchored with `anchor`, its receipt verifies with the command.
* `--as brand`: brand is the recorded sender; an org without a key in the home is refused.
* The same file anchored twice: two records, each with a receipt that verifies.
* Refusals that anchor nothing: two files with one name (exit 2), a missing file (exit 2),
  an API where nobody listens (exit 1, a message rather than a traceback).
* `verify` with a file other than the receipt's: exit 1, "hash mismatch".
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from receipts import verify_receipt

from xinchain.crypto import suite_named
from xinchain.receipt import load_receipt_json

if TYPE_CHECKING:
    from conftest import RunningNode

Cli = Callable[..., subprocess.CompletedProcess[str]]
batch_files = 10_000
lookup_stride = 4
DEFAULT_ORG = "platform"  # the first demo org, whose key `xinchain up` writes into the home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def write_documents(directory: Path, count: int, stem: str = "doc") -> list[Path]:
    """`count` small files whose contents no other test writes."""
    directory.mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex
    paths = []
    for index in range(count):
        path = directory / f"{stem}-{index:05d}.txt"
        path.write_text(f"{nonce} document {index}\n")
        paths.append(path)
    return paths


def notary_put(
    cli: Cli, node: RunningNode, files: list[Path], out: Path, *extra: object
) -> subprocess.CompletedProcess[str]:
    return cli(
        "notary", "put", *files, "--home", node.home, "--api", node.api, "--out", out, *extra
    )  # fmt: skip


def receipt_path(out: Path, document: Path) -> Path:
    return out / f"{document.name}.receipt.json"


def read_receipt(out: Path, document: Path) -> dict[str, Any]:
    return load_receipt_json(receipt_path(out, document).read_text(encoding="utf-8"))


def chain_hash(node: RunningNode, document: Path) -> str:
    """The chain's hash of a document, computed the way `notary put` does."""
    return suite_named(node.suite).hash(document.read_bytes()).hex()


def lookup(node: RunningNode, document_hash: str) -> httpx.Response:
    return httpx.get(f"{node.api}/v1/notary/{document_hash}", timeout=30)


# --- 10,000 files in one call ------------------------------------------------------------------


@dataclass(frozen=True)
class BigPut:
    documents: list[Path]
    out: Path
    completed: subprocess.CompletedProcess[str]
    receipts: list[dict[str, Any]]  # in document order; empty if the put failed


@pytest.fixture(scope="module")
def big_put(module_node: RunningNode, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> BigPut:
    root = tmp_path_factory.mktemp("big")
    documents = write_documents(root / "files", batch_files)
    out = root / "receipts"
    # Relative names keep the command line short: 10,000 arguments of a dozen characters.
    names = [path.name for path in documents]
    completed = cli(
        "notary", "put", *names, "--home", module_node.home, "--api", module_node.api,
        "--out", out, cwd=root / "files",
    )  # fmt: skip
    receipts = []
    if completed.returncode == 0:
        receipts = [read_receipt(out, document) for document in documents]
    return BigPut(documents, out, completed, receipts)


def test_one_put_call_writes_a_receipt_for_each_of_10000_files(big_put: BigPut) -> None:
    assert big_put.completed.returncode == 0, big_put.completed.stderr[-3000:]
    written = sorted(path.name for path in big_put.out.iterdir())
    assert written == sorted(f"{path.name}.receipt.json" for path in big_put.documents)
    assert f"anchored {batch_files} file(s) in 1 transaction(s)" in big_put.completed.stdout


def test_the_10000_files_are_one_batch_transaction_with_one_leaf_each(big_put: BigPut) -> None:
    assert len(big_put.receipts) == batch_files
    tx_ids = {receipt["result"]["tx_id"] for receipt in big_put.receipts}
    methods = {receipt["result"]["method"] for receipt in big_put.receipts}
    sizes = {receipt["anchor"]["size"] for receipt in big_put.receipts}
    indexes = sorted(receipt["anchor"]["index"] for receipt in big_put.receipts)
    assert (len(tx_ids), methods, sizes) == (1, {"anchor_batch"}, {batch_files})
    assert indexes == list(range(batch_files))


def test_every_one_of_the_10000_receipts_verifies_offline(big_put: BigPut) -> None:
    assert len(big_put.receipts) == batch_files
    failures = []
    for document, receipt in zip(big_put.documents, big_put.receipts, strict=True):
        try:
            verified = verify_receipt(receipt, document.read_bytes())
        except Exception as exc:
            failures.append(f"{document.name}: {exc!r}")
            continue
        if verified.sender != DEFAULT_ORG:
            failures.append(f"{document.name}: sender {verified.sender}")
    assert failures == [], f"{len(failures)} receipts fail, first: {failures[:5]}"


@pytest.mark.parametrize("index", [0, 1, 4_096, batch_files // 2 + 7, batch_files - 1])
def test_a_sample_of_the_10000_receipts_verifies_with_the_command(
    big_put: BigPut, cli: Cli, index: int
) -> None:
    document = big_put.documents[index]
    completed = cli("verify", receipt_path(big_put.out, document), "--file", document)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith(f"valid: {document.name} ")
    assert f"anchored by {DEFAULT_ORG} " in completed.stdout


def test_the_node_names_sender_height_and_transaction_of_the_anchored_hashes(
    module_node: RunningNode, big_put: BigPut
) -> None:
    assert len(big_put.receipts) == batch_files
    # Every 4th hash and the last (a lookup costs ~1.4 ms here; all 10,000 would take 14 s).
    sample = [*big_put.receipts[::lookup_stride], big_put.receipts[-1]]
    mismatches = []
    with httpx.Client(base_url=module_node.api, timeout=30) as http:
        for receipt in sample:
            document_hash = receipt["document"]["hash"]
            response = http.get(f"/v1/notary/{document_hash}")
            expected = {
                "sender": DEFAULT_ORG,
                "height": receipt["header"]["height"],
                "tx_id": receipt["result"]["tx_id"],
                "position": receipt["anchor"]["index"],
                "size": batch_files,
            }
            records = response.json().get("records") if response.status_code == 200 else None
            if records is None or len(records) != 1:
                mismatches.append((document_hash, response.status_code, response.text[:300]))
                continue
            found = {key: records[0].get(key) for key in expected}
            if found != expected:
                mismatches.append((document_hash, expected, found))
    assert mismatches == [], f"{len(mismatches)} lookups differ, first: {mismatches[:3]}"


@pytest.mark.parametrize("index", [0, 2_500, batch_files - 1])
def test_the_receipt_the_node_serves_for_an_anchored_hash_verifies(
    module_node: RunningNode, big_put: BigPut, index: int
) -> None:
    document = big_put.documents[index]
    document_hash = big_put.receipts[index]["document"]["hash"]
    response = httpx.get(f"{module_node.api}/v1/notary/{document_hash}/receipt", timeout=30)
    assert response.status_code == 200, response.text
    served = response.json()
    verified = verify_receipt(served, document.read_bytes())
    assert (verified.document_hash, verified.sender) == (document_hash, DEFAULT_ORG)
    assert served == big_put.receipts[index]


# --- one file, and choosing the sender ----------------------------------------------------------


def test_a_single_file_is_anchored_alone_and_its_receipt_verifies(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [document] = write_documents(tmp_path / "files", 1)
    put = notary_put(cli, module_node, [document], tmp_path / "out")
    assert put.returncode == 0, put.stderr
    receipt = read_receipt(tmp_path / "out", document)
    assert (receipt["result"]["method"], receipt["anchor"]["size"]) == ("anchor", 1)
    verified = cli("verify", receipt_path(tmp_path / "out", document), "--file", document)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"valid: {document.name} ")


def test_put_as_brand_records_brand_as_the_sender(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    documents = write_documents(tmp_path / "files", 3)
    put = notary_put(cli, module_node, documents, tmp_path / "out", "--as", "brand")
    assert put.returncode == 0, put.stderr
    for document in documents:
        receipt = read_receipt(tmp_path / "out", document)
        [record] = lookup(module_node, receipt["document"]["hash"]).json()["records"]
        assert record["sender"] == "brand"
        assert verify_receipt(receipt, document.read_bytes()).sender == "brand"
    verified = cli("verify", receipt_path(tmp_path / "out", documents[0]), "--file", documents[0])
    assert "anchored by brand " in verified.stdout


def test_put_as_an_org_whose_key_the_home_lacks_exits_2_and_anchors_nothing(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [document] = write_documents(tmp_path / "files", 1)
    put = notary_put(cli, module_node, [document], tmp_path / "out", "--as", "no-such-org")
    assert put.returncode == 2, put.stdout + put.stderr
    assert "no key file" in put.stderr
    document_hash = chain_hash(module_node, document)
    assert lookup(module_node, document_hash).status_code == 404


def test_the_same_file_anchored_twice_has_two_records_each_with_a_receipt(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [document] = write_documents(tmp_path / "files", 1)
    for out in ("first", "second"):
        put = notary_put(cli, module_node, [document], tmp_path / out)
        assert put.returncode == 0, put.stderr
    document_hash = read_receipt(tmp_path / "first", document)["document"]["hash"]
    records = lookup(module_node, document_hash).json()["records"]
    assert len({record["tx_id"] for record in records}) == 2
    for record in (0, 1):
        response = httpx.get(
            f"{module_node.api}/v1/notary/{document_hash}/receipt",
            params={"record": record},
            timeout=30,
        )
        served = response.json()
        assert served["result"]["tx_id"] == records[record]["tx_id"]
        verify_receipt(served, document.read_bytes())


# --- refusals -----------------------------------------------------------------------------------


def test_two_files_with_one_name_are_refused_with_exit_2_and_nothing_is_anchored(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [first] = write_documents(tmp_path / "a", 1, stem="same")
    [second] = write_documents(tmp_path / "b", 1, stem="same")
    assert first.name == second.name and first.read_bytes() != second.read_bytes()
    put = notary_put(cli, module_node, [first, second], tmp_path / "out")
    assert put.returncode == 2, put.stdout + put.stderr
    assert "share a name" in put.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    for document in (first, second):
        assert lookup(module_node, chain_hash(module_node, document)).status_code == 404


def test_a_missing_file_is_refused_with_exit_2_and_nothing_is_anchored(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [present] = write_documents(tmp_path / "files", 1)
    put = notary_put(cli, module_node, [present, tmp_path / "absent.txt"], tmp_path / "out")
    assert put.returncode == 2, put.stdout + put.stderr
    assert "absent.txt is not a readable file" in put.stderr
    assert lookup(module_node, chain_hash(module_node, present)).status_code == 404


def test_put_against_an_api_where_nobody_listens_exits_1_with_a_message_not_a_traceback(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    [document] = write_documents(tmp_path / "files", 1)
    # A bound socket that never listens: connecting to its port is refused for certain.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{bound.getsockname()[1]}"
        put = cli(
            "notary", "put", document, "--home", module_node.home, "--api", api,
            "--out", tmp_path / "out",
        )  # fmt: skip
    assert put.returncode == 1, put.stdout + put.stderr
    assert put.stderr.startswith("error:"), put.stderr[-300:]
    assert "Traceback" not in put.stderr


def test_verify_with_another_file_fails_with_exit_1_and_hash_mismatch(
    module_node: RunningNode, cli: Cli, tmp_path: Path
) -> None:
    anchored, other = write_documents(tmp_path / "files", 2)
    put = notary_put(cli, module_node, [anchored], tmp_path / "out")
    assert put.returncode == 0, put.stderr
    completed = cli("verify", receipt_path(tmp_path / "out", anchored), "--file", other)
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: hash mismatch"), completed.stdout
