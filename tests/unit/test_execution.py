"""Execution and commit: `Application.execute_block`, `make_header`, `commit` and the queries.

Scenarios, each under both crypto suites (ed25519-sha256, sm2-sm3):

failed transactions
- a contract refusal (notary.anchor of a 31-byte hash) is recorded as ok=False with the error
  and writes nothing
- a call to a method the contract lacks is recorded as ok=False naming the method
- a failed transaction between two successful ones leaves only their writes
- the second copy of a transaction inside one block is recorded as failed; the first stands
- the tx index of a transaction repeated inside one block points at the copy that ran
- a transaction committed in an earlier block and proposed again is recorded as failed
- a transaction that expired between admission and execution is recorded as failed

writes and the state hash
- execute_block writes nothing: state and tip change only at commit
- the state hash changes with the writes, and differs for different writes
- two independent Applications (memory and LMDB) fed the same blocks agree on every header,
  block hash and state hash (determinism)

header and roots
- tx_root and result_root are the RFC 9162 roots over the encoded transactions and results,
  and the header carries them with the execution's state hash
- the first block's parent is the genesis hash; the next block's parent is its block hash
- an empty block has the root of the empty tree

commit
- after commit, block, results, certificate, tx index, state and tip are all readable
- a commit that raises half-way leaves nothing behind (memory and LMDB)
- an LMDB-backed Application reopened on the same directory has the same tip and data,
  still refuses replays, and extends the chain
- an Application refuses a data directory of another genesis, or of another storage schema
  (StorageCorrupted)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from app_contracts import APP_CONTRACTS
from chain_helpers import (
    SUITE_NAMES,
    Chain,
    CommittedBlock,
    Consortium,
    make_consortium,
)

from xinchain.apps.notary.contract import anchor_records
from xinchain.errors import ReplayedTransaction, StorageCorrupted
from xinchain.execution.app import Application
from xinchain.merkle import MerkleTree
from xinchain.storage import LmdbStore, MemoryStore, Store, Table
from xinchain.types import ExecuteBlockResponse, Transaction, commit_statement

StoreFactory = Callable[[], Store]


@pytest.fixture(params=SUITE_NAMES)
def consortium(request: pytest.FixtureRequest) -> Consortium:
    return make_consortium(request.param, org_count=3)


@pytest.fixture
def chain(consortium: Consortium) -> Chain:
    return Chain(consortium)


@pytest.fixture
def lmdb_stores(tmp_path: Path) -> Iterator[Callable[[Path], LmdbStore]]:
    """Opens LMDB stores under tmp_path and closes whichever are still open at teardown."""
    opened: list[LmdbStore] = []

    def open_store(path: Path) -> LmdbStore:
        store = LmdbStore(path)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture(params=["memory", "lmdb"])
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, lmdb_stores: Callable[[Path], LmdbStore]
) -> StoreFactory:
    if request.param == "memory":
        return MemoryStore
    return lambda: lmdb_stores(tmp_path / "data")


def digest(number: int) -> bytes:
    return number.to_bytes(32, "big")


def anchor(chain: Chain, number: int, sender: str = "org1") -> Transaction:
    return chain.sign(sender, "notary", "anchor", {"hash": digest(number)})


def anchored(app: Application, number: int) -> list[dict[str, Any]]:
    """The notary records of digest(number), from the derived index."""
    return anchor_records(app.chain, digest(number))[0]


def indexed_digests(execution: ExecuteBlockResponse) -> set[bytes]:
    prefix = b"notary/h/"
    return {key[len(prefix) :][:32] for key, _ in execution.indexed if key.startswith(prefix)}


# --- failed transactions -----------------------------------------------------------------------


def test_contract_refusal_is_recorded_as_failed_and_writes_nothing(chain: Chain) -> None:
    short = b"\x07" * 31
    checked = chain.admit(chain.sign("org1", "notary", "anchor", {"hash": short}))

    execution = chain.execute([checked])

    result = execution.results[0]
    assert (result.ok, result.data, result.tx_id) == (False, {}, checked.tx_id)
    assert "32-byte digest" in result.error
    assert execution.writes == {}


def test_call_to_an_unknown_method_is_recorded_as_failed_naming_the_method(chain: Chain) -> None:
    # Admission refuses it (test_admission.py); a proposer that skipped admission still only
    # gets a failed result into its block.
    checked = chain.app.verify_tx(
        chain.sign("org1", "notary", "erase", {"hash": digest(1)}).encode()
    )

    execution = chain.execute([checked])

    result = execution.results[0]
    assert not result.ok
    assert "'erase'" in result.error
    assert "anchor" in result.error
    assert execution.writes == {}


def test_failed_transaction_between_successful_ones_leaves_only_their_writes(chain: Chain) -> None:
    first = chain.admit(anchor(chain, 1))
    failing = chain.admit(chain.sign("org1", "notary", "anchor", {"hash": b"\x02" * 33}))
    last = chain.admit(anchor(chain, 3))

    execution = chain.execute([first, failing, last])

    assert [result.ok for result in execution.results] == [True, False, True]
    assert indexed_digests(execution) == {digest(1), digest(3)}


def test_second_copy_of_a_transaction_in_one_block_is_recorded_as_failed(chain: Chain) -> None:
    checked = chain.admit(anchor(chain, 1))

    block = chain.commit_checked([checked, checked])

    first, second = block.results
    assert first.ok
    assert not second.ok
    assert "twice" in second.error
    assert len(anchored(chain.app, 1)) == 1


def test_tx_index_of_a_transaction_repeated_in_one_block_points_at_the_copy_that_ran(
    chain: Chain,
) -> None:
    checked = chain.admit(anchor(chain, 1))

    block = chain.commit_checked([checked, checked])

    height, index = chain.app.tx_location(checked.tx_id) or (None, None)
    assert height == block.height
    assert block.results[0].ok
    assert index == 0, "the index names the failed duplicate instead of the executed copy"


def test_transaction_committed_before_and_proposed_again_is_recorded_as_failed(
    chain: Chain,
) -> None:
    checked = chain.admit(anchor(chain, 1))
    chain.commit_checked([checked])

    execution = chain.execute([checked])

    assert not execution.results[0].ok
    assert "already accepted" in execution.results[0].error
    assert execution.writes == {}


def test_transaction_that_expired_after_admission_is_recorded_as_failed(chain: Chain) -> None:
    late = chain.admit(chain.sign("org1", "notary", "anchor", {"hash": digest(1)}, valid_until=1))
    chain.commit_checked([])

    execution = chain.execute([late])

    assert not execution.results[0].ok
    assert "valid until height 1" in execution.results[0].error
    assert execution.writes == {}


# --- writes and the state hash -----------------------------------------------------------------


def test_execute_block_writes_nothing_until_commit(chain: Chain) -> None:
    checked = chain.admit(anchor(chain, 1))
    tip = chain.app.tip()
    commit_request, _ = chain.prepare([checked])

    assert anchored(chain.app, 1) == []
    assert chain.app.tip() == tip
    chain.app.commit(commit_request)
    assert len(anchored(chain.app, 1)) == 1


def test_state_hash_changes_with_the_writes(chain: Chain) -> None:
    before = chain.app.tip().state_hash

    block = chain.commit_txs([anchor(chain, 1)])

    assert block.header.state_hash != before
    assert chain.app.tip().state_hash == block.header.state_hash


def test_different_writes_give_different_state_hashes(consortium: Consortium) -> None:
    one, other = Chain(consortium), Chain(consortium)

    first = one.execute(
        [one.admit(one.sign("org2", "governance", "propose", {"action": _set_window(50)}))]
    )
    second = other.execute(
        [other.admit(other.sign("org2", "governance", "propose", {"action": _set_window(60)}))]
    )

    assert first.state_hash != second.state_hash


def test_two_applications_fed_the_same_blocks_agree_on_every_hash(
    consortium: Consortium, tmp_path: Path, lmdb_stores: Callable[[Path], LmdbStore]
) -> None:
    leader = Chain(consortium)
    follower = Chain(consortium, lmdb_stores(tmp_path / "follower"))
    blocks = [
        [anchor(leader, 1), anchor(leader, 2, sender="org2")],
        [
            leader.sign("org0", "notary", "anchor_batch", {"hashes": [digest(3), digest(4)]}),
            leader.sign("org1", "notary", "anchor", {"hash": b"short"}),
            leader.sign("org2", "governance", "propose", {"action": _set_window(50)}),
        ],
        [anchor(leader, 1, sender="org0")],
    ]

    for txs in blocks:
        led = leader.commit_txs(txs)
        followed = follower.commit_checked([follower.app.check_tx(tx.encode()) for tx in txs])

        assert followed.header == led.header
        assert followed.block_hash == led.block_hash
        assert followed.results == led.results
    assert follower.app.tip() == leader.app.tip()


def _set_window(blocks: int) -> dict[str, object]:
    return {"kind": "set_param", "name": "tx_validity_blocks_max", "value": blocks}


# --- header and roots --------------------------------------------------------------------------


def test_header_carries_the_rfc9162_roots_of_transactions_and_results(chain: Chain) -> None:
    txs = [
        anchor(chain, 1),
        chain.sign("org1", "notary", "anchor", {"hash": b"x"}),
        anchor(chain, 2),
    ]

    block = chain.commit_txs(txs)

    hasher = chain.suite.hash
    tx_leaves = [tx.encode() for tx in txs]
    result_leaves = [result.encode() for result in block.results]
    assert block.header.tx_root == MerkleTree(hasher, tx_leaves).root().hex()
    assert block.header.result_root == MerkleTree(hasher, result_leaves).root().hex()
    assert block.header.tx_root == block.execution.tx_root
    assert block.header.result_root == block.execution.result_root
    assert block.header.state_hash == block.execution.state_hash
    assert block.header.tx_count == 3


def test_header_names_chain_genesis_validators_height_and_time(chain: Chain) -> None:
    block = chain.commit_txs([anchor(chain, 1)])

    header = block.header
    genesis = chain.consortium.genesis
    assert header.chain_id == genesis.chain_id
    assert header.genesis_hash == genesis.hash_hex()
    assert header.validators_hash == genesis.validators_hash_hex()
    assert (header.height, header.round, header.proposer) == (1, 0, 0)
    assert header.time_ms == genesis.time_ms + 1_000
    assert block.block_hash == chain.suite.hash(header.encode()).hex()


def test_first_block_extends_genesis_and_the_next_extends_the_first(chain: Chain) -> None:
    first = chain.commit_txs([anchor(chain, 1)])
    second = chain.commit_txs([anchor(chain, 2)])

    assert first.header.parent_hash == chain.consortium.genesis.hash_hex()
    assert second.header.parent_hash == first.block_hash


def test_empty_block_has_the_roots_of_the_empty_tree(chain: Chain) -> None:
    block = chain.commit_checked([])

    empty_root = chain.suite.hash(b"").hex()
    assert (block.header.tx_root, block.header.result_root) == (empty_root, empty_root)
    assert block.header.tx_count == 0


# --- commit ------------------------------------------------------------------------------------


def assert_block_readable(app: Application, block: CommittedBlock) -> None:
    height = block.height
    stored = app.block(height)
    assert stored is not None
    assert stored.header == block.header
    assert stored.txs == tuple(checked.raw for checked in block.txs)
    assert tuple(app.results(height)) == block.results
    assert app.certificate(height) == block.certificate
    for index, checked in enumerate(block.txs):
        assert app.tx_location(checked.tx_id) == (height, index)


def test_commit_makes_block_results_certificate_index_state_and_tip_readable(
    chain: Chain,
) -> None:
    block = chain.commit_txs([anchor(chain, 1), anchor(chain, 2, sender="org2")])

    assert_block_readable(chain.app, block)
    assert [record["sender"] for record in anchored(chain.app, 2)] == ["org2"]
    tip = chain.app.tip()
    assert (tip.height, tip.block_hash) == (1, block.block_hash)
    assert (tip.state_hash, tip.time_ms) == (block.header.state_hash, block.header.time_ms)


def test_stored_certificate_verifies_under_the_validator_key(chain: Chain) -> None:
    block = chain.commit_txs([anchor(chain, 1)])

    certificate = chain.app.certificate(block.height)

    assert certificate is not None
    (signature,) = certificate.signatures
    statement = commit_statement(block.header.chain_id, block.height, 0, block.block_hash)
    public_key = bytes.fromhex(chain.consortium.genesis.validators[0].public_key)
    assert chain.suite.verify(public_key, statement, bytes.fromhex(signature.signature))


def test_commit_that_raises_half_way_leaves_nothing_behind(
    consortium: Consortium, store_factory: StoreFactory
) -> None:
    chain = Chain(consortium, store_factory())
    checked = chain.admit(anchor(chain, 1))
    commit_request, _ = chain.prepare([checked])
    tip = chain.app.tip()
    # The tx index is written after block, results and certificate; a bad id fails there.
    broken = dataclasses.replace(commit_request, tx_ids=("not hex",))

    with pytest.raises(ValueError):
        chain.app.commit(broken)

    assert chain.app.tip() == tip
    assert chain.app.block(1) is None
    assert chain.app.results(1) == []
    assert chain.app.certificate(1) is None
    assert anchored(chain.app, 1) == []


def test_lmdb_application_reopened_on_its_directory_keeps_tip_and_data(
    consortium: Consortium, tmp_path: Path
) -> None:
    path = tmp_path / "data"
    store = LmdbStore(path)
    chain = Chain(consortium, store)
    replayed = anchor(chain, 1)
    blocks = [chain.commit_txs([replayed]), chain.commit_txs([anchor(chain, 2)])]
    tip = chain.app.tip()
    store.close()

    reopened_store = LmdbStore(path)
    try:
        reopened = Chain(consortium, reopened_store)

        assert reopened.app.tip() == tip
        for block in blocks:
            assert_block_readable(reopened.app, block)
        assert anchored(reopened.app, 2)[0]["height"] == 2
        with pytest.raises(ReplayedTransaction):
            reopened.app.check_tx(replayed.encode())
        third = reopened.commit_txs([anchor(reopened, 3)])
        assert third.header.parent_hash == tip.block_hash
    finally:
        reopened_store.close()


def test_application_refuses_a_data_directory_of_another_genesis(
    consortium: Consortium, tmp_path: Path, lmdb_stores: Callable[[Path], LmdbStore]
) -> None:
    path = tmp_path / "data"
    first_store = lmdb_stores(path)
    Chain(consortium, first_store).commit_txs([])
    first_store.close()
    stranger = make_consortium(consortium.genesis.suite_name, org_count=3)

    with pytest.raises(StorageCorrupted) as refused:
        Application(lmdb_stores(path), stranger.genesis, APP_CONTRACTS)

    assert consortium.genesis.hash_hex() in str(refused.value)
    assert stranger.genesis.hash_hex() in str(refused.value)


def test_application_refuses_a_data_directory_of_another_storage_schema(
    consortium: Consortium, tmp_path: Path, lmdb_stores: Callable[[Path], LmdbStore]
) -> None:
    path = tmp_path / "data"
    old_store = lmdb_stores(path)
    old = Chain(consortium, old_store)
    old.commit_txs([anchor(old, 1)])
    with old_store.atomic_batch() as batch:
        batch.put(Table.META, b"schema_version", b"1")
    old_store.close()

    with pytest.raises(StorageCorrupted) as refused:
        Application(lmdb_stores(path), consortium.genesis, APP_CONTRACTS)

    assert "storage schema 1, expected 2" in str(refused.value)
    assert "empty data directory" in str(refused.value)
