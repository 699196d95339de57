"""Admission: `Application.check_tx`, the only signature check a transaction gets on a node.

Scenarios, each under both crypto suites (ed25519-sha256, sm2-sm3):

accepted
- a valid transaction is admitted; its id is the suite hash of the encoded body, and the
  admitted transaction re-encodes to the exact bytes that arrived
- admission writes nothing: the same transaction is admitted again until a block commits it
- the same call under another nonce is another transaction, admitted after the first commits
- the expiry window is inclusive at both ends: valid_until = next height, and
  valid_until = next height + tx_validity_blocks_max, are admitted

refused, each with its typed error, the field at fault and a message naming the problem
- replay: a transaction committed before -> ReplayedTransaction (tx_id)
- expired: valid_until below the next height -> ExpiredTransaction (valid_until)
- too far ahead: valid_until beyond tx_validity_blocks_max -> ValidTooFarAhead (valid_until)
- forged signature: a flipped signature byte; another key's signature over a member's public
  key; the member's signature over another body; a signature without the domain prefix
  -> InvalidTransaction (signature)
- a key registered to no member, or to another member -> Unauthorized (public_key)
- a sender org that is not a member -> Unauthorized (sender)
- another chain's id -> InvalidTransaction (chain_id)
- a contract that does not exist -> InvalidTransaction (contract)
- a transaction over tx_bytes_max -> InvalidTransaction naming both sizes
- bytes that are no canonical transaction -> DecodeError
"""

from __future__ import annotations

import pytest
from chain_helpers import (
    SUITE_NAMES,
    Chain,
    flip_last_byte,
    make_consortium,
    with_signature,
)

from xinchain import codec
from xinchain.crypto import PrivateKey
from xinchain.errors import (
    DecodeError,
    ExpiredTransaction,
    InvalidTransaction,
    ReplayedTransaction,
    Unauthorized,
    ValidTooFarAhead,
)
from xinchain.genesis import DEFAULT_PARAMS
from xinchain.types import Transaction, tx_bytes_max

WINDOW = DEFAULT_PARAMS["tx_validity_blocks_max"]
DIGEST = bytes(range(32))


@pytest.fixture(params=SUITE_NAMES)
def chain(request: pytest.FixtureRequest) -> Chain:
    return Chain(make_consortium(request.param, org_count=3))


def anchor(
    chain: Chain,
    sender: str = "org1",
    *,
    key: PrivateKey | None = None,
    valid_until: int | None = None,
    chain_id: str | None = None,
    nonce: int | None = None,
) -> Transaction:
    """A notary anchor from `sender`; every option defaults to what makes it valid."""
    return chain.sign(
        sender,
        "notary",
        "anchor",
        {"hash": DIGEST},
        key=key,
        valid_until=valid_until,
        chain_id=chain_id,
        nonce=nonce,
    )


def commit_empty_blocks(chain: Chain, count: int) -> None:
    for _ in range(count):
        chain.commit_checked([])


# --- accepted ----------------------------------------------------------------------------------


def test_valid_transaction_is_admitted_with_the_suite_hash_of_its_body_as_id(chain: Chain) -> None:
    tx = anchor(chain)

    checked = chain.app.check_tx(tx.encode())

    assert checked.tx_id == chain.suite.hash(tx.body.encode()).hex()
    assert checked.tx.body == tx.body
    assert checked.raw == tx.encode()


def test_admission_writes_nothing_so_an_uncommitted_transaction_is_admitted_again(
    chain: Chain,
) -> None:
    raw = anchor(chain).encode()
    first = chain.app.check_tx(raw)

    second = chain.app.check_tx(raw)

    assert second.tx_id == first.tx_id
    assert chain.app.tx_location(first.tx_id) is None


def test_same_call_under_another_nonce_is_admitted_after_the_first_commits(chain: Chain) -> None:
    valid_until = chain.next_height() + 10
    first = anchor(chain, nonce=1, valid_until=valid_until)
    chain.commit_txs([first])

    checked = chain.admit(anchor(chain, nonce=2, valid_until=valid_until))

    assert checked.tx_id != chain.app.tx_id(first)


def test_valid_until_equal_to_the_next_height_is_admitted(chain: Chain) -> None:
    commit_empty_blocks(chain, 2)

    checked = chain.admit(anchor(chain, valid_until=3))

    assert checked.tx.body.valid_until == chain.next_height() == 3


def test_valid_until_at_the_far_end_of_the_window_is_admitted(chain: Chain) -> None:
    far_end = chain.next_height() + WINDOW

    checked = chain.admit(anchor(chain, valid_until=far_end))

    assert checked.tx.body.valid_until == far_end


# --- refused: replay and expiry ----------------------------------------------------------------


def test_committed_transaction_is_refused_as_replayed(chain: Chain) -> None:
    tx = anchor(chain)
    tx_id = chain.commit_txs([tx]).txs[0].tx_id

    with pytest.raises(ReplayedTransaction) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "tx_id"
    assert tx_id in refused.value.reason


def test_replay_is_refused_even_when_the_committed_call_failed(chain: Chain) -> None:
    failing = chain.sign("org1", "notary", "anchor", {"hash": b"\x00" * 31})
    block = chain.commit_txs([failing])
    assert not block.results[0].ok

    with pytest.raises(ReplayedTransaction):
        chain.app.check_tx(failing.encode())


def test_valid_until_below_the_next_height_is_refused_as_expired(chain: Chain) -> None:
    tx = anchor(chain, valid_until=2)
    commit_empty_blocks(chain, 2)  # the next block is 3

    with pytest.raises(ExpiredTransaction) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "valid_until"
    assert "valid until height 2" in refused.value.reason
    assert "next block is 3" in refused.value.reason


def test_valid_until_beyond_the_window_is_refused_as_too_far_ahead(chain: Chain) -> None:
    too_far = chain.next_height() + WINDOW + 1
    tx = anchor(chain, valid_until=too_far)

    with pytest.raises(ValidTooFarAhead) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "valid_until"
    assert str(too_far) in refused.value.reason
    assert str(WINDOW) in refused.value.reason


# --- refused: signatures -----------------------------------------------------------------------


def test_signature_with_a_flipped_byte_is_refused(chain: Chain) -> None:
    tx = anchor(chain)
    forged = with_signature(tx, flip_last_byte(tx.signature))

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(forged.encode())

    assert refused.value.field == "signature"
    assert chain.suite.name in refused.value.reason


def test_signature_of_another_key_under_a_members_public_key_is_refused(chain: Chain) -> None:
    tx = anchor(chain)  # names org1's registered public key
    intruder = chain.suite.generate_key()
    forged = with_signature(tx, intruder.sign(tx.body.signing_message()))

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(forged.encode())

    assert refused.value.field == "signature"


def test_members_signature_over_another_body_is_refused(chain: Chain) -> None:
    signed = anchor(chain, nonce=1)
    other = anchor(chain, nonce=2)
    forged = with_signature(other, signed.signature)

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(forged.encode())

    assert refused.value.field == "signature"


def test_signature_without_the_transaction_domain_prefix_is_refused(chain: Chain) -> None:
    tx = anchor(chain)
    undomained = chain.consortium.key("org1").sign(tx.body.encode())
    forged = with_signature(tx, undomained)

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(forged.encode())

    assert refused.value.field == "signature"


# --- refused: membership -----------------------------------------------------------------------


def test_key_registered_to_no_member_is_refused(chain: Chain) -> None:
    outsider = chain.suite.generate_key()
    tx = anchor(chain, key=outsider)  # correctly signed, claiming to be org1

    with pytest.raises(Unauthorized) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "public_key"
    assert outsider.public_bytes().hex()[:16] in refused.value.reason
    assert "'org1'" in refused.value.reason


def test_key_registered_to_another_member_is_refused(chain: Chain) -> None:
    tx = anchor(chain, sender="org1", key=chain.consortium.key("org2"))

    with pytest.raises(Unauthorized) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "public_key"
    assert "'org1'" in refused.value.reason


def test_sender_that_is_not_a_member_is_refused(chain: Chain) -> None:
    tx = anchor(chain, sender="org9", key=chain.consortium.key("org1"))

    with pytest.raises(Unauthorized) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "sender"
    assert "'org9'" in refused.value.reason


# --- refused: shape ----------------------------------------------------------------------------


def test_transaction_for_another_chain_is_refused(chain: Chain) -> None:
    tx = anchor(chain, chain_id="other-chain")

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "chain_id"
    assert "'other-chain'" in refused.value.reason
    assert "'test-chain'" in refused.value.reason


def test_transaction_to_an_unknown_contract_is_refused(chain: Chain) -> None:
    tx = chain.sign("org1", "lottery", "draw", {})

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "contract"
    assert "'lottery'" in refused.value.reason
    assert "notary" in refused.value.reason


def test_transaction_to_an_unknown_method_is_refused(chain: Chain) -> None:
    tx = chain.sign("org1", "governance", "add_org", {"org": "org9"})

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "method"
    assert "'add_org'" in refused.value.reason and "'propose'" in refused.value.reason


@pytest.mark.parametrize(
    ("contract", "method", "needed"),
    [
        ("promo", "order", "['payment']"),
        ("promo", "open", "['merchant']"),
        ("provenance", "register_product", "['brand']"),
        ("provenance", "flag", "['platform', 'regulator']"),
    ],
)
def test_a_call_the_senders_roles_forbid_is_refused_before_any_block(
    chain: Chain, contract: str, method: str, needed: str
) -> None:
    tx = chain.sign("org1", contract, method, {})  # org1 holds the role "member" only

    with pytest.raises(Unauthorized) as refused:
        chain.app.check_tx(tx.encode())

    assert refused.value.field == "sender"
    assert f"needs one of {needed}" in refused.value.reason


def test_a_call_forbidden_since_admission_fails_in_its_block(chain: Chain) -> None:
    # Execution checks the roles again: a block holding a forbidden call (from a proposer
    # that skipped admission) records it as failed and writes nothing.
    tx = chain.sign("org1", "promo", "order", {"promo": "p", "orders": []})
    checked = chain.app.verify_tx(tx.encode())

    execution = chain.execute([checked])

    assert not execution.results[0].ok
    assert "needs one of ['payment']" in execution.results[0].error
    assert execution.writes == {}


def test_transaction_over_the_size_limit_is_refused(chain: Chain) -> None:
    hashes = [index.to_bytes(32, "big") for index in range(tx_bytes_max // 32)]
    raw = chain.sign("org1", "notary", "anchor_batch", {"hashes": hashes}).encode()
    assert len(raw) > tx_bytes_max

    with pytest.raises(InvalidTransaction) as refused:
        chain.app.check_tx(raw)

    assert f"{len(raw)} bytes" in refused.value.reason
    assert str(tx_bytes_max) in refused.value.reason


def _not_canonical(chain: Chain) -> bytes:
    # A valid transaction followed by one stray byte.
    return anchor(chain).encode() + b"\x00"


def _missing_signature(chain: Chain) -> bytes:
    return codec.encode({"body": anchor(chain).body.to_value()})


def _body_without_nonce(chain: Chain) -> bytes:
    tx = anchor(chain)
    body = tx.body.to_value()
    del body["nonce"]
    return codec.encode({"body": body, "signature": tx.signature})


def _negative_valid_until(chain: Chain) -> bytes:
    tx = anchor(chain)
    return codec.encode({"body": {**tx.body.to_value(), "valid_until": -1}, "signature": b"s"})


MALFORMED = {
    "empty": lambda chain: b"",
    "not_cbor": lambda chain: b"\xff\xfe\xfd",
    "truncated": lambda chain: anchor(chain).encode()[:-5],
    "trailing_byte": _not_canonical,
    "a_list": lambda chain: codec.encode([1, 2, 3]),
    "missing_signature": _missing_signature,
    "body_without_nonce": _body_without_nonce,
    "negative_valid_until": _negative_valid_until,
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_bytes_that_are_no_canonical_transaction_are_refused(chain: Chain, shape: str) -> None:
    raw = MALFORMED[shape](chain)

    with pytest.raises(DecodeError):
        chain.app.check_tx(raw)
