"""The notary contract: anchor document hashes, one at a time or as a batch.

Scenarios, each under both crypto suites (ed25519-sha256, sm2-sm3):

anchoring
- anchor of one hash answers the RFC 9162 root over that one digest, and size 1
- anchor_batch answers the root over all digests in order, and size = count
- a batch of one answers what a single anchor of that hash answers (one receipt shape)
- the batch root depends on the order of the digests
- a batch of exactly batch_hashes_max hashes is anchored

records (the derived index, read back by anchor_records)
- each hash gets a record naming height, tx_id, position, size, sender, time_ms
- every hash of a batch gets its own record with its position in the batch
- anchoring the same hash again, later and by another org, adds a second record
- the same hash twice in one batch gets two records, positions 0 and 1
- a hash anchored more often than a lookup lists: the first ones, in chain order, and "more"
- anchoring writes index entries only, no state: the state hash does not move

refused (recorded as failed, writing nothing)
- a batch over batch_hashes_max, an empty batch, hashes that are not a list
- one malformed digest in a batch refuses the whole batch, naming its position
- a digest of 31 or 33 bytes, or given as hex text
- missing or extra arguments
"""

from __future__ import annotations

from typing import Any

import pytest
from chain_helpers import SUITE_NAMES, Chain, CommittedBlock, make_consortium

from xinchain.apps.notary.contract import anchor_records, batch_hashes_max
from xinchain.merkle import MerkleTree
from xinchain.types import TxResult


@pytest.fixture(params=SUITE_NAMES)
def chain(request: pytest.FixtureRequest) -> Chain:
    return Chain(make_consortium(request.param, org_count=3))


def digest(number: int) -> bytes:
    return number.to_bytes(32, "big")


def records(chain: Chain, hash_bytes: bytes) -> list[dict[str, Any]]:
    found, more = anchor_records(chain.app.chain, hash_bytes)
    assert not more
    return found


def root_of(chain: Chain, digests: list[bytes]) -> str:
    return MerkleTree(chain.suite.hash, digests).root().hex()


def commit_batch(chain: Chain, hashes: list[bytes], sender: str = "org1") -> CommittedBlock:
    return chain.commit_txs([chain.sign(sender, "notary", "anchor_batch", {"hashes": hashes})])


def refused(chain: Chain, method: str, args: dict[str, Any]) -> TxResult:
    """Commit one notary call that the contract must refuse: failed, and wrote nothing."""
    block = chain.commit_txs([chain.sign("org1", "notary", method, args)])
    result = block.results[0]
    assert not result.ok, "the contract accepted the call"
    assert block.execution.writes == {}
    assert block.execution.indexed == []
    return result


# --- anchoring ---------------------------------------------------------------------------------


def test_anchor_answers_the_root_over_its_one_digest(chain: Chain) -> None:
    result = chain.call("org1", "notary", "anchor", {"hash": digest(1)})

    assert result.ok, result.error
    assert result.data == {"root": root_of(chain, [digest(1)]), "size": 1}


def test_anchor_batch_answers_the_root_over_all_digests_and_their_count(chain: Chain) -> None:
    digests = [digest(number) for number in range(1, 101)]

    result = commit_batch(chain, digests).results[0]

    assert result.ok, result.error
    assert result.data == {"root": root_of(chain, digests), "size": 100}


def test_batch_of_one_answers_what_a_single_anchor_answers(chain: Chain) -> None:
    single = chain.call("org1", "notary", "anchor", {"hash": digest(7)})

    batch = commit_batch(chain, [digest(7)]).results[0]

    assert batch.data == single.data


def test_batch_root_depends_on_the_order_of_the_digests(chain: Chain) -> None:
    forward = commit_batch(chain, [digest(1), digest(2)]).results[0]

    backward = commit_batch(chain, [digest(2), digest(1)]).results[0]

    assert forward.data["root"] != backward.data["root"]


def test_batch_of_exactly_the_most_hashes_is_anchored(chain: Chain) -> None:
    digests = [digest(number) for number in range(batch_hashes_max)]

    result = commit_batch(chain, digests).results[0]

    assert result.ok, result.error
    assert result.data["size"] == batch_hashes_max
    assert records(chain, digests[-1])[0]["position"] == batch_hashes_max - 1


# --- records -----------------------------------------------------------------------------------


def test_anchor_records_height_tx_position_size_sender_and_time(chain: Chain) -> None:
    chain.commit_checked([])  # so that the anchor lands at height 2

    block = chain.commit_txs([chain.sign("org2", "notary", "anchor", {"hash": digest(1)})])

    assert records(chain, digest(1)) == [
        {
            "height": 2,
            "tx_id": block.txs[0].tx_id,
            "position": 0,
            "size": 1,
            "sender": "org2",
            "time_ms": block.header.time_ms,
        }
    ]


def test_every_hash_of_a_batch_is_recorded_with_its_position(chain: Chain) -> None:
    digests = [digest(number) for number in (5, 3, 9)]

    block = commit_batch(chain, digests)

    for position, hash_bytes in enumerate(digests):
        (record,) = records(chain, hash_bytes)
        assert (record["position"], record["size"]) == (position, 3)
        assert record["tx_id"] == block.txs[0].tx_id


def test_anchoring_a_hash_again_adds_a_record(chain: Chain) -> None:
    first = chain.commit_txs([chain.sign("org1", "notary", "anchor", {"hash": digest(1)})])

    second = commit_batch(chain, [digest(2), digest(1)], sender="org2")

    assert second.results[0].ok, second.results[0].error
    old, new = records(chain, digest(1))
    assert (old["height"], old["sender"], old["tx_id"]) == (1, "org1", first.txs[0].tx_id)
    assert (new["height"], new["sender"], new["tx_id"]) == (2, "org2", second.txs[0].tx_id)
    assert (new["position"], new["size"]) == (1, 2)


def test_same_hash_twice_in_one_batch_gets_two_records(chain: Chain) -> None:
    commit_batch(chain, [digest(1), digest(1)])

    positions = [record["position"] for record in records(chain, digest(1))]

    assert positions == [0, 1]


def test_lookup_lists_the_first_records_in_chain_order_and_says_there_are_more(
    chain: Chain,
) -> None:
    commit_batch(chain, [digest(1)] * 5)
    commit_batch(chain, [digest(1)], sender="org2")

    first, more = anchor_records(chain.app.chain, digest(1), limit=3)
    every, rest = anchor_records(chain.app.chain, digest(1), limit=6)

    assert [(r["height"], r["position"]) for r in first] == [(1, 0), (1, 1), (1, 2)]
    assert more
    assert [(r["height"], r["position"]) for r in every][-1] == (2, 0)
    assert not rest


def test_anchoring_writes_index_entries_and_no_state(chain: Chain) -> None:
    before = chain.app.tip().state_hash

    block = commit_batch(chain, [digest(1), digest(2)])

    assert block.execution.writes == {}
    assert len(block.execution.indexed) == 3  # the transaction's entry and one a hash
    assert block.header.state_hash != before  # the chain of state hashes still moves on
    assert records(chain, digest(2))[0]["position"] == 1


# --- refused -----------------------------------------------------------------------------------


def test_batch_over_the_most_hashes_is_refused(chain: Chain) -> None:
    hashes = [digest(number) for number in range(batch_hashes_max + 1)]

    result = refused(chain, "anchor_batch", {"hashes": hashes})

    assert f"1 to {batch_hashes_max} hashes" in result.error
    assert "args.hashes" in result.error


@pytest.mark.parametrize(
    "hashes", [[], b"\x01" * 32, {"0": b"\x01" * 32}], ids=["empty", "bytes", "map"]
)
def test_batch_that_is_no_list_of_hashes_is_refused(chain: Chain, hashes: object) -> None:
    result = refused(chain, "anchor_batch", {"hashes": hashes})

    assert f"1 to {batch_hashes_max} hashes" in result.error


def test_one_malformed_digest_refuses_the_whole_batch_naming_its_position(chain: Chain) -> None:
    hashes = [digest(1), digest(2), b"\x03" * 31, digest(4)]

    result = refused(chain, "anchor_batch", {"hashes": hashes})

    assert "args.hashes[2]" in result.error
    assert "32-byte digest" in result.error
    assert records(chain, digest(1)) == []


@pytest.mark.parametrize(
    "value",
    [b"\x01" * 31, b"\x01" * 33, b"", ("01" * 32), 1],
    ids=["31_bytes", "33_bytes", "empty", "hex_text", "integer"],
)
def test_anchor_of_anything_but_a_32_byte_digest_is_refused(chain: Chain, value: object) -> None:
    result = refused(chain, "anchor", {"hash": value})

    assert "args.hash" in result.error
    assert "32-byte digest" in result.error


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("anchor", {}),
        ("anchor", {"hash": digest(1), "note": "invoice"}),
        ("anchor", {"hashes": [digest(1)]}),
        ("anchor_batch", {"hash": digest(1)}),
    ],
    ids=["anchor_none", "anchor_extra", "anchor_wrong", "batch_wrong"],
)
def test_missing_or_extra_arguments_are_refused(
    chain: Chain, method: str, args: dict[str, Any]
) -> None:
    result = refused(chain, method, args)

    assert "expected arguments" in result.error


@pytest.mark.parametrize("size", [1, 23, 24, 255, 256, batch_hashes_max])
def test_the_written_out_index_record_is_the_canonical_encoding(size: int) -> None:
    from xinchain import codec
    from xinchain.apps.notary.contract import anchored_encoding
    from xinchain.contracts.base import CallContext
    from xinchain.crypto import suite_named
    from xinchain.execution.state import Overlay

    context = CallContext(
        suite=suite_named("ed25519-sha256"),
        chain_id="c",
        tx_id="ab" * 32,
        tx_index=0,
        sender="org-with-a-longer-name",
        sender_roles=frozenset(),
        height=size * 1_000,
        time_ms=1_700_000_000_000 + size,
        state=Overlay(MemoryState()),
    )

    record = {
        "tx_id": context.tx_id,
        "sender": context.sender,
        "size": size,
        "time_ms": context.time_ms,
    }
    assert anchored_encoding(context, size) == codec.encode(record)


class MemoryState:
    def get(self, key: bytes) -> bytes | None:
        return None
