"""Tampered receipts from a real node are refused, in-process and by `xinchain verify`.

The receipts come from one `notary put` of 5 files (so every anchor path is non-empty) and a
second put that lands in another block.

Scenarios:

* Control: each untouched receipt verifies, in-process and with the command.
* Every leaf (each hex digit, each character of other text, integers ±1, bools negated) of
  every receipt of the batch: the mutated copy is refused with ReceiptInvalid; any mutation
  that is not is listed by name. A handful of them through the command: exit 1, "invalid:".
* Structure: any dict key or list element removed, an unknown key added, a leaf replaced by
  null; any top-level field spliced in from a receipt of another block.
* The file: any single byte changed, one byte more or less.
* The certificate: no signature, an unknown validator index, one validator twice, a member's
  signature in place of the validator's, and a receipt forged consistently up to the block hash.
* Not a receipt: not JSON, not UTF-8, not an object, a float, NaN or Infinity: exit 1.
* Pinning the chain: `--genesis-hash` of this chain passes, of another chain fails.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from receipts import verify_receipt

from xinchain.crypto import suite_named
from xinchain.errors import ReceiptInvalid
from xinchain.merkle import MerkleTree
from xinchain.node.home import Home
from xinchain.types import BlockHeader, TxResult, commit_statement

if TYPE_CHECKING:
    from conftest import RunningNode, Tamper

Cli = Callable[..., subprocess.CompletedProcess[str]]
batch_size = 5

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@dataclass(frozen=True)
class Anchored:
    documents: list[bytes]
    receipts: list[dict[str, Any]]


def anchor(cli: Cli, node: RunningNode, directory: Path, count: int) -> Anchored:
    directory.mkdir(parents=True)
    nonce = uuid.uuid4().hex
    paths = []
    for index in range(count):
        path = directory / f"tamper-{index}.txt"
        path.write_text(f"{nonce} tamper document {index}\n")
        paths.append(path)
    out = directory / "receipts"
    put = cli("notary", "put", *paths, "--home", node.home, "--api", node.api, "--out", out)
    assert put.returncode == 0, put.stdout + put.stderr
    receipts = [
        json.loads((out / f"{path.name}.receipt.json").read_text(encoding="utf-8"))
        for path in paths
    ]
    return Anchored([path.read_bytes() for path in paths], receipts)


@pytest.fixture(scope="module")
def batch(module_node: RunningNode, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Anchored:
    return anchor(cli, module_node, tmp_path_factory.mktemp("batch") / "files", batch_size)


@pytest.fixture(scope="module")
def other_block(
    module_node: RunningNode, cli: Cli, tmp_path_factory: pytest.TempPathFactory, batch: Anchored
) -> Anchored:
    return anchor(cli, module_node, tmp_path_factory.mktemp("other") / "files", batch_size)


def cli_verify(cli: Cli, tmp_path: Path, receipt_text: str | bytes, document: bytes) -> Any:
    receipt_file, document_file = tmp_path / "receipt.json", tmp_path / "document.bin"
    if isinstance(receipt_text, str):
        receipt_file.write_text(receipt_text, encoding="utf-8")
    else:
        receipt_file.write_bytes(receipt_text)
    document_file.write_bytes(document)
    return cli("verify", receipt_file, "--file", document_file)


def refusal(receipt: dict[str, Any], document: bytes) -> str:
    """The reason verification gives; fails the test if the receipt verifies."""
    with pytest.raises(ReceiptInvalid) as refused:
        verify_receipt(receipt, document)
    return refused.value.reason


# --- control -----------------------------------------------------------------------------------


def test_every_untouched_receipt_of_the_batch_verifies(batch: Anchored) -> None:
    for receipt, document in zip(batch.receipts, batch.documents, strict=True):
        assert len(receipt["anchor"]["path"]) >= 1
        verify_receipt(receipt, document)


def test_an_untouched_receipt_verifies_with_the_command(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    completed = cli_verify(cli, tmp_path, json.dumps(batch.receipts[0]), batch.documents[0])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith("valid: ")


# --- every leaf --------------------------------------------------------------------------------


@pytest.mark.parametrize("position", range(batch_size))
def test_every_single_leaf_mutation_of_a_receipt_is_refused(
    batch: Anchored, tamper: type[Tamper], position: int
) -> None:
    receipt, document = batch.receipts[position], batch.documents[position]
    verify_receipt(receipt, document)  # the mutations, not the original, must be what fails
    mutations = list(tamper.leaf_mutations(receipt))
    touched = {mutation.where.split(".")[0].split(" ")[0] for mutation in mutations}
    assert touched == set(receipt), "the walk must reach every top-level field"
    assert len(mutations) > 1_000
    gaps = tamper.unrefused(mutations, document)
    assert gaps == [], tamper.gap_report(gaps, len(mutations))


CLI_LEAVES: list[tuple[tuple[str | int, ...], object]] = [
    (("header", "height"), 1),
    (("header", "time_ms"), -1),
    (("anchor", "path", 0), "hex"),
    (("certificate", "signatures", 0, "signature"), "hex"),
    (("genesis", "orgs", 0, "name"), "text"),
    (("result", "sender"), "text"),
    (("result", "ok"), "negate"),
    (("document", "hash"), "hex"),
]


@pytest.mark.parametrize(
    ("path", "change"), CLI_LEAVES, ids=[".".join(map(str, path)) for path, _ in CLI_LEAVES]
)
def test_a_leaf_mutation_is_refused_by_the_command_with_exit_1(
    batch: Anchored,
    cli: Cli,
    tamper: type[Tamper],
    tmp_path: Path,
    path: tuple[str | int, ...],
    change: object,
) -> None:
    leaf: Any = batch.receipts[1]
    for part in path:
        leaf = leaf[part]
    if change == "hex":
        changed: object = leaf[:-1] + ("0" if leaf[-1] != "0" else "1")
    elif change == "text":
        changed = "x" + leaf[1:] if leaf[0] != "x" else "y" + leaf[1:]
    elif change == "negate":
        changed = not leaf
    else:
        changed = leaf + change
    receipt = tamper.replaced(batch.receipts[1], path, changed)
    completed = cli_verify(cli, tmp_path, json.dumps(receipt), batch.documents[1])
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert completed.stdout.startswith("invalid: "), completed.stdout + completed.stderr


# --- structure ---------------------------------------------------------------------------------


def containers(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every dict and list inside a JSON value, with its path."""
    found = [(path, value)]
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, dict | list):
            found.extend(containers(item, (*path, key)))
    return found


def at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def test_removing_any_key_or_list_element_is_refused(batch: Anchored, tamper: type[Tamper]) -> None:
    receipt, document = batch.receipts[2], batch.documents[2]
    gaps = []
    for path, container in containers(receipt):
        for key in list(container.keys() if isinstance(container, dict) else range(len(container))):
            mutated = copy.deepcopy(receipt)
            del at(mutated, path)[key]
            where = f"{tamper.path_text((*path, key))} removed"
            gaps += tamper.unrefused([tamper.Mutation(where, mutated)], document)
    assert gaps == [], "\n".join(gaps)


def test_an_unknown_key_added_to_any_object_is_refused(
    batch: Anchored, tamper: type[Tamper]
) -> None:
    receipt, document = batch.receipts[2], batch.documents[2]
    gaps = []
    for path, container in containers(receipt):
        if isinstance(container, dict):
            mutated = tamper.replaced(receipt, (*path, "unexpected"), 0)
            where = f"{tamper.path_text(path) or 'receipt'} with an unknown key"
            gaps += tamper.unrefused([tamper.Mutation(where, mutated)], document)
    assert gaps == [], "\n".join(gaps)


def test_any_leaf_replaced_by_null_is_refused_with_receipt_invalid(
    batch: Anchored, tamper: type[Tamper]
) -> None:
    receipt, document = batch.receipts[2], batch.documents[2]
    mutations = [
        tamper.Mutation(f"{tamper.path_text(path)} null", tamper.replaced(receipt, path, None))
        for path, _ in tamper.leaf_paths(receipt)
    ]
    gaps = tamper.unrefused(mutations, document)
    assert gaps == [], "\n".join(gaps)


def test_any_top_level_field_from_a_receipt_of_another_block_is_refused(
    batch: Anchored, other_block: Anchored
) -> None:
    receipt, document, donor = batch.receipts[2], batch.documents[2], other_block.receipts[2]
    assert receipt["header"]["height"] != donor["header"]["height"]
    spliced = [field for field in receipt if receipt[field] != donor[field]]
    assert {"document", "anchor", "result", "header", "certificate"} <= set(spliced)
    accepted = []
    for field in spliced:
        try:
            verify_receipt({**receipt, field: donor[field]}, document)
        except ReceiptInvalid:
            continue
        accepted.append(field)
    assert accepted == []


# --- the file ----------------------------------------------------------------------------------


def test_changing_any_single_byte_of_the_file_is_refused_as_a_hash_mismatch(
    batch: Anchored,
) -> None:
    receipt, document = batch.receipts[0], batch.documents[0]
    accepted = []
    for position in range(len(document)):
        for flip in (0x01, 0x80, 0xFF):
            changed = bytearray(document)
            changed[position] ^= flip
            try:
                verify_receipt(receipt, bytes(changed))
            except ReceiptInvalid as exc:
                if not exc.reason.startswith("hash mismatch"):
                    accepted.append(f"byte {position} ^ {flip:#x}: {exc.reason}")
                continue
            accepted.append(f"byte {position} ^ {flip:#x}: still verifies")
    assert accepted == []


@pytest.mark.parametrize(
    "change",
    [lambda d: d + b"\n", lambda d: d[:-1], lambda d: b""],
    ids=["longer", "shorter", "empty"],
)
def test_a_file_longer_shorter_or_empty_is_refused_as_a_hash_mismatch(
    batch: Anchored, change: Callable[[bytes], bytes]
) -> None:
    reason = refusal(batch.receipts[0], change(batch.documents[0]))
    assert reason.startswith("hash mismatch")


def test_the_command_refuses_a_file_with_one_byte_changed(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    changed = bytearray(batch.documents[0])
    changed[len(changed) // 2] ^= 0x20
    completed = cli_verify(cli, tmp_path, json.dumps(batch.receipts[0]), bytes(changed))
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: hash mismatch"), completed.stdout


# --- the certificate ---------------------------------------------------------------------------


def with_signatures(receipt: dict[str, Any], signatures: list[dict[str, Any]]) -> dict[str, Any]:
    return {**receipt, "certificate": {**receipt["certificate"], "signatures": signatures}}


def test_a_receipt_without_signatures_is_refused_by_the_command(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    receipt = with_signatures(batch.receipts[0], [])
    completed = cli_verify(cli, tmp_path, json.dumps(receipt), batch.documents[0])
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: too few validator signatures"), completed.stdout


@pytest.mark.parametrize("validator", [1, 6, 2**32])
def test_a_signature_from_an_unknown_validator_index_is_refused_by_the_command(
    batch: Anchored, cli: Cli, tmp_path: Path, validator: int
) -> None:
    [signature] = batch.receipts[0]["certificate"]["signatures"]
    receipt = with_signatures(batch.receipts[0], [{**signature, "validator": validator}])
    completed = cli_verify(cli, tmp_path, json.dumps(receipt), batch.documents[0])
    assert completed.returncode == 1
    assert completed.stdout.startswith(f"invalid: unknown validator {validator}"), completed.stdout


def test_one_validator_signing_twice_is_refused_by_the_command(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    [signature] = batch.receipts[0]["certificate"]["signatures"]
    receipt = with_signatures(batch.receipts[0], [signature, dict(signature)])
    completed = cli_verify(cli, tmp_path, json.dumps(receipt), batch.documents[0])
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: validator 0 signs twice"), completed.stdout


def test_a_member_org_signing_in_place_of_the_validator_is_refused(
    batch: Anchored, module_node: RunningNode
) -> None:
    receipt = batch.receipts[0]
    suite = suite_named(module_node.suite)
    member_key = Home(module_node.home).org_key(suite, receipt["genesis"]["validators"][0]["org"])
    certificate = receipt["certificate"]
    statement = commit_statement(
        receipt["genesis"]["chain_id"],
        certificate["height"],
        certificate["round"],
        certificate["block_hash"],
    )
    forged = [{"validator": 0, "signature": member_key.sign(statement).hex()}]
    reason = refusal(with_signatures(receipt, forged), batch.documents[0])
    assert reason.startswith("bad validator signature from validator 0")


def test_a_receipt_forged_consistently_up_to_the_block_hash_fails_at_the_signature(
    batch: Anchored, module_node: RunningNode
) -> None:
    """A never-anchored document, with proofs, result, header and block hash all recomputed."""
    suite = suite_named(module_node.suite)
    receipt = batch.receipts[0]
    document = b"a contract nobody ever anchored\n"
    digest = suite.hash(document)
    result = TxResult.from_value(receipt["result"])
    forged_result = TxResult(
        result.tx_id,
        True,
        result.sender,
        "notary",
        "anchor",
        {"root": MerkleTree(suite.hash, [digest]).root().hex(), "size": 1},
        "",
    )
    header = BlockHeader.from_value(
        {
            **receipt["header"],
            "tx_count": 1,
            "result_root": MerkleTree(suite.hash, [forged_result.encode()]).root().hex(),
        }
    )
    forged = {
        **receipt,
        "document": {"algorithm": suite.hash_name, "hash": digest.hex()},
        "anchor": {"index": 0, "size": 1, "path": []},
        "result": forged_result.to_value(),
        "result_proof": {"index": 0, "size": 1, "path": []},
        "header": header.to_value(),
        "certificate": {**receipt["certificate"], "block_hash": suite.hash(header.encode()).hex()},
    }
    reason = refusal(forged, document)
    assert reason.startswith("bad validator signature"), reason


# --- not a receipt -----------------------------------------------------------------------------


NOT_RECEIPTS: dict[str, str | bytes] = {
    "empty": "",
    "not-json": "this is not a receipt",
    "truncated": '{"format": "xinchain-receipt/1", ',
    "not-utf8": b"\xff\xfe{}",
    "array": "[]",
    "string": '"receipt"',
}


@pytest.mark.parametrize("text", NOT_RECEIPTS.values(), ids=NOT_RECEIPTS.keys())
def test_a_receipt_that_is_not_a_json_object_is_refused_with_exit_1(
    batch: Anchored, cli: Cli, tmp_path: Path, text: str | bytes
) -> None:
    completed = cli_verify(cli, tmp_path, text, batch.documents[0])
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert completed.stdout.startswith("invalid: "), completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("literal", ["1.0", "1e0", "NaN", "Infinity", "-Infinity"])
def test_a_receipt_with_a_non_integer_number_is_refused_with_exit_1(
    batch: Anchored, cli: Cli, tmp_path: Path, literal: str
) -> None:
    receipt = batch.receipts[0]
    text = json.dumps({**receipt, "header": {**receipt["header"], "round": "@@"}})
    text = text.replace('"@@"', literal)
    completed = cli_verify(cli, tmp_path, text, batch.documents[0])
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert completed.stdout.startswith(
        "invalid: malformed receipt: numbers in a receipt are integers"
    ), completed.stdout


# --- pinning the chain -------------------------------------------------------------------------


def test_the_command_accepts_the_receipt_pinned_to_its_own_genesis_hash(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    genesis_hash = batch.receipts[0]["header"]["genesis_hash"]
    receipt_file, document_file = tmp_path / "receipt.json", tmp_path / "document.bin"
    receipt_file.write_text(json.dumps(batch.receipts[0]))
    document_file.write_bytes(batch.documents[0])
    completed = cli("verify", receipt_file, "--file", document_file, "--genesis-hash", genesis_hash)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"(genesis {genesis_hash})" in completed.stdout


def test_the_command_refuses_the_receipt_pinned_to_another_genesis_hash(
    batch: Anchored, cli: Cli, tmp_path: Path
) -> None:
    genesis_hash = batch.receipts[0]["header"]["genesis_hash"]
    other = ("0" if genesis_hash[0] != "0" else "1") + genesis_hash[1:]
    receipt_file, document_file = tmp_path / "receipt.json", tmp_path / "document.bin"
    receipt_file.write_text(json.dumps(batch.receipts[0]))
    document_file.write_bytes(batch.documents[0])
    completed = cli("verify", receipt_file, "--file", document_file, "--genesis-hash", other)
    assert completed.returncode == 1
    assert completed.stdout.startswith("invalid: receipt belongs to the chain with genesis"), (
        completed.stdout
    )
