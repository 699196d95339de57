"""Tests for `xinchain.consensus.safety`: the one suite for `SafetyRules` (STYLE.md §3).

Every scenario runs over both stores (`MemorySafetyStore` and `FileSafetyStore`) unless noted,
with fast keyed-hash signatures (the simulator's `FakeSigner`); the real suites where noted.

* First rule, monotonic (height, round, step): propose < prevote < precommit in a round, a later
  round and a later height are signed; a lower round, a lower step in the same round and a lower
  height are refused with `SafetyViolation`, and a refusal changes nothing.
* Second rule, no double vote: at the same (height, round, step) the same block (or nil) gets the
  identical stored signature bytes back — also with Ed25519 and with SM2, whose signatures are
  randomized; another block, nil after a block and a block after nil are refused, for proposals,
  prevotes and precommits. A repeated proposal of the same block with another valid_round is
  refused (the stored signature does not cover it).
* Third rule, the lock: after precommitting B in round r, prevoting C ≠ B in a later round is
  refused without a polka, with a polka from a round < r, with too few distinct signers (also
  with one signer repeated), with a forged signature, with votes for another block, another
  height, of another kind (precommits), or from mixed rounds; it is allowed with a valid polka
  from round r or later. Prevoting B again, or nil, needs no polka; the lock does not apply at
  the next height.
* Fourth rule, precommit on a polka: precommitting a block without evidence, with a proposal of
  another block or another height, with a polka for another block, too small, or of another
  round, is refused; a valid polka of the round is accepted and the signature verifies over the
  commit statement; a nil precommit needs no evidence.
* Persistence: every signature is saved before it is returned (a recording store sees the saved
  state carry exactly the returned signature; lock evidence is saved before the state that
  names it); a store whose save raises returns no signature and leaves the in-memory state
  unchanged. After a crash, a new `SafetyRules` over the same `FileSafetyStore` refuses what the
  first would have refused, returns the same stored signature for an identical request, restores
  the lock (refuses an unjustified prevote; `lock_evidence` gives back the proposal and polka at
  that height, None at another). `last_vote` rebuilds the last signed vote, which verifies;
  None before any vote or after a proposal.
* `FileSafetyStore`: a missing file loads as None; a save leaves no `.tmp` file, the state file
  is JSON of the state and the lock file is CBOR of the evidence; a stale `.tmp` left by a crash
  mid-write does not change what loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from hash_chain import HashChainSource as SimApp

from xinchain import codec
from xinchain.consensus.messages import (
    NO_ROUND,
    PRECOMMIT,
    PREVOTE,
    Proposal,
    Step,
    Vote,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from xinchain.consensus.safety import (
    LockEvidence,
    SafetyRules,
    SafetyState,
    SafetyStore,
    SafetyViolation,
)
from xinchain.crypto import SUITES
from xinchain.sim.network import FakeSigner
from xinchain.storage.safety import FileSafetyStore, MemorySafetyStore
from xinchain.types import Block, commit_statement

CHAIN_ID = "sim"  # SimApp builds blocks for this chain
VALIDATORS = 4  # quorum 3
SELF = 0  # the validator whose SafetyRules are under test
SIGNER = FakeSigner(seed=7, count=VALIDATORS)
HEIGHT = 5


def verify_vote(vote: Vote) -> bool:
    message = vote_signing_bytes(CHAIN_ID, vote.kind, vote.height, vote.round, vote.block_hash)
    return SIGNER.verify(vote.validator, message, vote.signature)


def sign_as_self(message: bytes) -> bytes:
    return SIGNER.sign(SELF, message)


def decoded(saved: bytes | None) -> SafetyState | None:
    """What a store holds, as SafetyRules reads it back."""
    return None if saved is None else SafetyState.decode(saved)


def make_rules(store: SafetyStore) -> SafetyRules:
    return SafetyRules(CHAIN_ID, VALIDATORS, store, sign_as_self, verify_vote)


@pytest.fixture(params=["memory", "file"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SafetyStore]:
    """Returns the same store's state on each call, as a restarted process would see it."""
    if request.param == "memory":
        memory = MemorySafetyStore()
        return lambda: memory
    path = tmp_path / "safety.json"
    return lambda: FileSafetyStore(path)


@pytest.fixture
def rules(store_factory: Callable[[], SafetyStore]) -> SafetyRules:
    return make_rules(store_factory())


# --- blocks, votes and evidence ------------------------------------------------------------------

_APP = SimApp()


def make_block(height: int = HEIGHT, round_number: int = 0, salt: int = 0) -> tuple[Block, str]:
    block = _APP.make_block(height, round_number, proposer=1, salt=salt)
    return block, _APP.block_hash(block.header)


BLOCK_B, HASH_B = make_block(salt=1)
BLOCK_C, HASH_C = make_block(salt=2)
BLOCK_D, HASH_D = make_block(salt=3)
NEXT_BLOCK, NEXT_HASH = make_block(height=HEIGHT + 1, salt=4)


def vote(
    validator: int,
    round_number: int,
    block_hash: str | None,
    *,
    kind: str = PREVOTE,
    height: int = HEIGHT,
) -> Vote:
    message = vote_signing_bytes(CHAIN_ID, kind, height, round_number, block_hash)
    return Vote(kind, height, round_number, block_hash, validator, SIGNER.sign(validator, message))


def polka(
    round_number: int,
    block_hash: str,
    validators: Sequence[int] = (1, 2, 3),
    *,
    kind: str = PREVOTE,
    height: int = HEIGHT,
) -> tuple[Vote, ...]:
    return tuple(
        vote(validator, round_number, block_hash, kind=kind, height=height)
        for validator in validators
    )


def proposal(round_number: int, block: Block, block_hash: str, *, height: int = HEIGHT) -> Proposal:
    message = proposal_signing_bytes(CHAIN_ID, height, round_number, NO_ROUND, block_hash)
    return Proposal(height, round_number, NO_ROUND, block, block_hash, 1, SIGNER.sign(1, message))


def evidence(
    round_number: int, block: Block = BLOCK_B, block_hash: str = HASH_B, *, height: int = HEIGHT
) -> LockEvidence:
    return LockEvidence(
        proposal(round_number, block, block_hash, height=height),
        polka(round_number, block_hash, height=height),
    )


def lock_on_b(rules: SafetyRules, round_number: int) -> bytes:
    """Prevote and precommit B in `round_number`: the validator is locked on B since then."""
    rules.sign_prevote(HEIGHT, round_number, HASH_B)
    return rules.sign_precommit(HEIGHT, round_number, HASH_B, evidence(round_number))


def vote_message(kind: str, round_number: int, block_hash: str | None) -> bytes:
    return vote_signing_bytes(CHAIN_ID, kind, HEIGHT, round_number, block_hash)


# --- first rule: monotonic (height, round, step) -------------------------------------------------


def test_propose_prevote_precommit_in_one_round_are_all_signed(rules: SafetyRules) -> None:
    rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B)
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0))
    assert (rules.state.height, rules.state.round, rules.state.step) == (HEIGHT, 0, Step.PRECOMMIT)


def test_a_later_round_is_signed_after_a_precommit(rules: SafetyRules) -> None:
    rules.sign_precommit(HEIGHT, 3, None)
    signature = rules.sign_prevote(HEIGHT, 4, None)
    assert SIGNER.verify(SELF, vote_message(PREVOTE, 4, None), signature)


def test_a_later_height_is_signed_after_a_later_round(rules: SafetyRules) -> None:
    rules.sign_precommit(HEIGHT, 7, None)
    rules.sign_prevote(HEIGHT + 1, 0, NEXT_HASH)
    assert (rules.state.height, rules.state.round, rules.state.step) == (
        HEIGHT + 1,
        0,
        Step.PREVOTE,
    )


def test_a_lower_round_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 2, None)
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 1, None)


def test_a_lower_round_proposal_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 2, None)
    with pytest.raises(SafetyViolation):
        rules.sign_proposal(HEIGHT, 1, NO_ROUND, HASH_B)


def test_a_prevote_after_a_precommit_in_the_same_round_is_refused(rules: SafetyRules) -> None:
    rules.sign_precommit(HEIGHT, 1, None)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 1, None)


def test_a_proposal_after_a_prevote_in_the_same_round_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 1, HASH_B)
    with pytest.raises(SafetyViolation):
        rules.sign_proposal(HEIGHT, 1, NO_ROUND, HASH_B)


def test_a_lower_height_is_refused_even_at_a_higher_round(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 0, None)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT - 1, 9, None)


def test_a_refusal_changes_neither_memory_nor_store(
    rules: SafetyRules, store_factory: Callable[[], SafetyStore]
) -> None:
    rules.sign_prevote(HEIGHT, 2, HASH_B)
    before = rules.state
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 1, HASH_C)
    assert rules.state == before
    assert decoded(store_factory().load()) == before


# --- second rule: no double vote -----------------------------------------------------------------


def test_a_repeated_prevote_returns_the_stored_signature(rules: SafetyRules) -> None:
    first = rules.sign_prevote(HEIGHT, 0, HASH_B)
    assert rules.sign_prevote(HEIGHT, 0, HASH_B) == first


def test_a_repeated_nil_precommit_returns_the_stored_signature(rules: SafetyRules) -> None:
    first = rules.sign_precommit(HEIGHT, 0, None)
    assert rules.sign_precommit(HEIGHT, 0, None) == first


def test_a_repeated_block_precommit_returns_the_stored_signature(rules: SafetyRules) -> None:
    first = lock_on_b(rules, 0)
    assert rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0)) == first


def test_a_repeated_proposal_returns_the_stored_signature(rules: SafetyRules) -> None:
    first = rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B)
    assert rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B) == first


@pytest.mark.parametrize("suite_name", ["ed25519-sha256", "sm2-sm3"])
def test_a_repeated_prevote_returns_identical_bytes_with_a_real_suite(
    suite_name: str, store_factory: Callable[[], SafetyStore]
) -> None:
    suite = SUITES[suite_name]
    key = suite.generate_key()
    rules = SafetyRules(CHAIN_ID, VALIDATORS, store_factory(), key.sign, verify_vote)
    first = rules.sign_prevote(HEIGHT, 0, HASH_B)
    second = rules.sign_prevote(HEIGHT, 0, HASH_B)
    assert second == first
    assert suite.verify(key.public_bytes(), vote_message(PREVOTE, 0, HASH_B), first)


def test_sm2_signatures_are_randomized_so_the_stored_one_must_be_returned() -> None:
    """Guards the test above: with SM2, signing again would give other bytes."""
    key = SUITES["sm2-sm3"].generate_key()
    message = vote_message(PREVOTE, 0, HASH_B)
    assert key.sign(message) != key.sign(message)


def test_a_prevote_for_another_block_in_the_same_round_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 0, HASH_C)


def test_a_nil_prevote_after_a_block_prevote_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 0, None)


def test_a_block_prevote_after_a_nil_prevote_is_refused(rules: SafetyRules) -> None:
    rules.sign_prevote(HEIGHT, 0, None)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 0, HASH_B)


def test_a_block_precommit_after_a_nil_precommit_is_refused(rules: SafetyRules) -> None:
    rules.sign_precommit(HEIGHT, 0, None)
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0))


def test_a_nil_precommit_after_a_block_precommit_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 0)
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, None)


def test_a_precommit_for_another_block_in_the_same_round_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 0)
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_C, evidence(0, BLOCK_C, HASH_C))


def test_a_proposal_of_another_block_in_the_same_round_is_refused(rules: SafetyRules) -> None:
    rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B)
    with pytest.raises(SafetyViolation):
        rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_C)


def test_a_proposal_of_the_same_block_with_another_valid_round_is_refused(
    rules: SafetyRules,
) -> None:
    """Two different signed proposals in one round (CometBFT's privval refuses sign bytes that
    differ). Returning the stored signature instead would hand back one that does not verify
    for the proposal asked for."""
    rules.sign_proposal(HEIGHT, 2, 1, HASH_B)
    with pytest.raises(SafetyViolation):
        rules.sign_proposal(HEIGHT, 2, NO_ROUND, HASH_B)


# --- third rule: the lock ------------------------------------------------------------------------


def test_precommitting_a_block_locks_on_it(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    assert (rules.state.locked_round, rules.state.locked_hash) == (1, HASH_B)


def test_locked_prevote_for_another_block_without_polka_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C)


def test_locked_prevote_with_a_polka_from_before_the_lock_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(0, HASH_C))


def test_locked_prevote_with_two_signers_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_C, validators=(1, 2)))


def test_locked_prevote_with_a_signer_repeated_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_C, validators=(1, 2, 2, 1)))


def test_locked_prevote_with_a_forged_signature_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    genuine = polka(1, HASH_C, validators=(1, 2))
    forged = Vote(PREVOTE, HEIGHT, 1, HASH_C, 3, SIGNER.sign(1, vote_message(PREVOTE, 1, HASH_C)))
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, (*genuine, forged))


def test_locked_prevote_with_a_validator_outside_the_set_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    genuine = polka(1, HASH_C, validators=(1, 2))
    outsider = Vote(PREVOTE, HEIGHT, 1, HASH_C, VALIDATORS, b"\x01" * 32)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, (*genuine, outsider))


def test_locked_prevote_with_a_polka_for_another_block_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_D))


def test_locked_prevote_with_a_polka_at_another_height_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_C, height=HEIGHT - 1))


def test_locked_prevote_with_precommits_as_polka_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_C, kind=PRECOMMIT))


def test_locked_prevote_with_a_polka_of_mixed_rounds_is_refused(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    mixed = (*polka(1, HASH_C, validators=(1, 2)), vote(3, 2, HASH_C))
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 3, HASH_C, mixed)


def test_locked_prevote_with_a_polka_from_the_lock_round_is_allowed(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    signature = rules.sign_prevote(HEIGHT, 2, HASH_C, polka(1, HASH_C))
    assert SIGNER.verify(SELF, vote_message(PREVOTE, 2, HASH_C), signature)


def test_locked_prevote_with_a_polka_from_after_the_lock_is_allowed(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    signature = rules.sign_prevote(HEIGHT, 3, HASH_C, polka(2, HASH_C))
    assert SIGNER.verify(SELF, vote_message(PREVOTE, 3, HASH_C), signature)


def test_locked_prevote_with_extra_bad_votes_beside_a_polka_is_allowed(
    rules: SafetyRules,
) -> None:
    """Counting is over votes that verify; junk beside a genuine polka does not hide it."""
    lock_on_b(rules, 1)
    junk = Vote(PREVOTE, HEIGHT, 2, HASH_C, 0, b"\x00" * 32)
    rules.sign_prevote(HEIGHT, 3, HASH_C, (*polka(2, HASH_C), junk))
    assert rules.state.block_hash == HASH_C


def test_locked_prevote_for_the_locked_block_needs_no_polka(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    signature = rules.sign_prevote(HEIGHT, 2, HASH_B)
    assert SIGNER.verify(SELF, vote_message(PREVOTE, 2, HASH_B), signature)


def test_locked_nil_prevote_needs_no_polka(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    signature = rules.sign_prevote(HEIGHT, 2, None)
    assert SIGNER.verify(SELF, vote_message(PREVOTE, 2, None), signature)


def test_the_lock_does_not_apply_at_the_next_height(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    rules.sign_prevote(HEIGHT + 1, 0, NEXT_HASH)
    assert (rules.state.locked_round, rules.state.locked_hash) == (NO_ROUND, None)


def test_a_nil_precommit_in_a_later_round_keeps_the_lock(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    rules.sign_precommit(HEIGHT, 2, None)
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 3, HASH_C)


def test_a_new_lock_in_a_later_round_replaces_the_old(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    rules.sign_prevote(HEIGHT, 2, HASH_C, polka(2, HASH_C))
    rules.sign_precommit(HEIGHT, 2, HASH_C, evidence(2, BLOCK_C, HASH_C))
    with pytest.raises(SafetyViolation):
        rules.sign_prevote(HEIGHT, 3, HASH_B, polka(1, HASH_B))


# --- fourth rule: precommit on a polka -----------------------------------------------------------


def test_a_block_precommit_without_evidence_is_refused(rules: SafetyRules) -> None:
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B)


def test_a_block_precommit_with_a_proposal_of_another_block_is_refused(
    rules: SafetyRules,
) -> None:
    mismatched = LockEvidence(proposal(0, BLOCK_C, HASH_C), polka(0, HASH_B))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, mismatched)


def test_a_block_precommit_with_a_polka_for_another_block_is_refused(
    rules: SafetyRules,
) -> None:
    mismatched = LockEvidence(proposal(0, BLOCK_B, HASH_B), polka(0, HASH_C))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, mismatched)


def test_a_block_precommit_with_evidence_for_another_block_is_refused(
    rules: SafetyRules,
) -> None:
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0, BLOCK_C, HASH_C))


def test_a_block_precommit_with_a_proposal_at_another_height_is_refused(
    rules: SafetyRules,
) -> None:
    other_height = LockEvidence(proposal(0, BLOCK_B, HASH_B, height=HEIGHT + 1), polka(0, HASH_B))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, other_height)


def test_a_block_precommit_with_too_small_a_polka_is_refused(rules: SafetyRules) -> None:
    small = LockEvidence(proposal(0, BLOCK_B, HASH_B), polka(0, HASH_B, validators=(1, 2)))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, small)


def test_a_block_precommit_with_a_polka_of_an_earlier_round_is_refused(
    rules: SafetyRules,
) -> None:
    earlier = LockEvidence(proposal(0, BLOCK_B, HASH_B), polka(0, HASH_B))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 1, HASH_B, earlier)


def test_a_block_precommit_with_a_polka_of_a_later_round_is_refused(rules: SafetyRules) -> None:
    later = LockEvidence(proposal(0, BLOCK_B, HASH_B), polka(2, HASH_B))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 1, HASH_B, later)


def test_a_block_precommit_with_forged_prevotes_is_refused(rules: SafetyRules) -> None:
    forged = tuple(replace(v, signature=b"\x00" * 32) for v in polka(0, HASH_B))
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B, LockEvidence(proposal(0, BLOCK_B, HASH_B), forged))


def test_a_block_precommit_with_a_polka_of_its_round_is_signed(rules: SafetyRules) -> None:
    signature = rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0))
    assert SIGNER.verify(SELF, commit_statement(CHAIN_ID, HEIGHT, 0, HASH_B), signature)


def test_a_nil_precommit_needs_no_evidence(rules: SafetyRules) -> None:
    signature = rules.sign_precommit(HEIGHT, 0, None)
    assert SIGNER.verify(SELF, commit_statement(CHAIN_ID, HEIGHT, 0, None), signature)


def test_a_refused_precommit_does_not_lock(rules: SafetyRules) -> None:
    with pytest.raises(SafetyViolation):
        rules.sign_precommit(HEIGHT, 0, HASH_B)
    assert (rules.state.locked_round, rules.state.locked_hash) == (NO_ROUND, None)


# --- persistence: saved before signed ------------------------------------------------------------


class RecordingStore(MemorySafetyStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object]] = []

    def save(self, data: bytes) -> None:
        self.calls.append(("save", SafetyState.decode(data)))
        super().save(data)

    def save_lock(self, data: bytes) -> None:
        self.calls.append(("save_lock", LockEvidence.decode(data)))
        super().save_lock(data)


class FailingStore(MemorySafetyStore):
    """The disk fails on `failing` ("save" or "save_lock") once `broken` is set."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing
        self.broken = False

    def save(self, data: bytes) -> None:
        if self.broken and self.failing == "save":
            raise OSError("disk full")
        super().save(data)

    def save_lock(self, data: bytes) -> None:
        if self.broken and self.failing == "save_lock":
            raise OSError("disk full")
        super().save_lock(data)


SIGNINGS: dict[str, Callable[[SafetyRules], bytes]] = {
    "proposal": lambda rules: rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B),
    "prevote": lambda rules: rules.sign_prevote(HEIGHT, 0, HASH_B),
    "nil precommit": lambda rules: rules.sign_precommit(HEIGHT, 0, None),
    "block precommit": lambda rules: rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0)),
}
STEP_OF = {
    "proposal": Step.PROPOSE,
    "prevote": Step.PREVOTE,
    "nil precommit": Step.PRECOMMIT,
    "block precommit": Step.PRECOMMIT,
}


@pytest.mark.parametrize("signing", SIGNINGS)
def test_each_signature_is_saved_before_it_is_returned(signing: str) -> None:
    store = RecordingStore()
    signature = SIGNINGS[signing](make_rules(store))
    saves = [state for call, state in store.calls if call == "save"]
    assert len(saves) == 1
    saved = saves[0]
    assert isinstance(saved, SafetyState)
    assert (saved.height, saved.round, saved.step) == (HEIGHT, 0, STEP_OF[signing])
    assert saved.signature == signature.hex()


def test_a_repeated_request_saves_nothing_new() -> None:
    store = RecordingStore()
    rules = make_rules(store)
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    assert [call for call, _ in store.calls] == ["save"]


def test_lock_evidence_is_saved_before_the_state_that_names_it() -> None:
    store = RecordingStore()
    make_rules(store).sign_precommit(HEIGHT, 0, HASH_B, evidence(0))
    assert [call for call, _ in store.calls] == ["save_lock", "save"]
    assert store.calls[0][1] == evidence(0)


def test_a_nil_precommit_saves_no_lock_evidence() -> None:
    store = RecordingStore()
    make_rules(store).sign_precommit(HEIGHT, 0, None)
    assert [call for call, _ in store.calls] == ["save"]


@pytest.mark.parametrize("signing", SIGNINGS)
def test_a_failing_save_returns_no_signature_and_keeps_the_state(signing: str) -> None:
    store = FailingStore("save")
    rules = make_rules(store)
    rules.sign_prevote(HEIGHT - 1, 0, None)
    before = rules.state
    store.broken = True
    with pytest.raises(OSError):
        SIGNINGS[signing](rules)
    assert rules.state == before


def test_a_failing_lock_save_returns_no_signature_and_keeps_the_state() -> None:
    store = FailingStore("save_lock")
    rules = make_rules(store)
    rules.sign_prevote(HEIGHT, 0, HASH_B)
    before = rules.state
    store.broken = True
    with pytest.raises(OSError):
        rules.sign_precommit(HEIGHT, 0, HASH_B, evidence(0))
    assert rules.state == before
    assert decoded(store.load()) == before


def test_after_a_failed_save_the_same_request_signs_once_the_disk_recovers() -> None:
    store = FailingStore("save")
    rules = make_rules(store)
    store.broken = True
    with pytest.raises(OSError):
        rules.sign_prevote(HEIGHT, 0, HASH_B)
    store.broken = False
    signature = rules.sign_prevote(HEIGHT, 0, HASH_B)
    assert decoded(store.load()) == rules.state
    assert rules.state.signature == signature.hex()


# --- persistence: restart over the same FileSafetyStore ------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "safety.json"


def test_after_a_crash_a_lower_step_is_still_refused(path: Path) -> None:
    make_rules(FileSafetyStore(path)).sign_precommit(HEIGHT, 2, None)
    restarted = make_rules(FileSafetyStore(path))
    with pytest.raises(SafetyViolation):
        restarted.sign_prevote(HEIGHT, 2, None)


def test_after_a_crash_another_block_in_the_same_step_is_still_refused(path: Path) -> None:
    make_rules(FileSafetyStore(path)).sign_prevote(HEIGHT, 2, HASH_B)
    restarted = make_rules(FileSafetyStore(path))
    with pytest.raises(SafetyViolation):
        restarted.sign_prevote(HEIGHT, 2, HASH_C)


@pytest.mark.parametrize("suite_name", ["ed25519-sha256", "sm2-sm3"])
def test_after_a_crash_an_identical_request_gets_the_stored_signature(
    path: Path, suite_name: str
) -> None:
    key = SUITES[suite_name].generate_key()
    first = SafetyRules(CHAIN_ID, VALIDATORS, FileSafetyStore(path), key.sign, verify_vote)
    signature = first.sign_prevote(HEIGHT, 2, HASH_B)
    restarted = SafetyRules(CHAIN_ID, VALIDATORS, FileSafetyStore(path), key.sign, verify_vote)
    assert restarted.sign_prevote(HEIGHT, 2, HASH_B) == signature


def test_after_a_crash_the_lock_still_refuses_an_unjustified_prevote(path: Path) -> None:
    lock_on_b(make_rules(FileSafetyStore(path)), 1)
    restarted = make_rules(FileSafetyStore(path))
    with pytest.raises(SafetyViolation):
        restarted.sign_prevote(HEIGHT, 2, HASH_C)


def test_after_a_crash_the_lock_evidence_is_restored(path: Path) -> None:
    lock_on_b(make_rules(FileSafetyStore(path)), 1)
    restarted = make_rules(FileSafetyStore(path))
    restored = restarted.lock_evidence(HEIGHT)
    assert restored == evidence(1)


def test_lock_evidence_is_none_at_another_height(path: Path) -> None:
    lock_on_b(make_rules(FileSafetyStore(path)), 1)
    restarted = make_rules(FileSafetyStore(path))
    assert restarted.lock_evidence(HEIGHT + 1) is None


def test_lock_evidence_is_none_after_moving_to_the_next_height(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    rules.sign_prevote(HEIGHT + 1, 0, None)
    assert rules.lock_evidence(HEIGHT + 1) is None


def test_lock_evidence_is_none_without_a_lock(rules: SafetyRules) -> None:
    rules.sign_precommit(HEIGHT, 0, None)
    assert rules.lock_evidence(HEIGHT) is None


def test_lock_evidence_follows_a_new_lock(rules: SafetyRules) -> None:
    lock_on_b(rules, 1)
    rules.sign_prevote(HEIGHT, 2, HASH_C, polka(2, HASH_C))
    rules.sign_precommit(HEIGHT, 2, HASH_C, evidence(2, BLOCK_C, HASH_C))
    assert rules.lock_evidence(HEIGHT) == evidence(2, BLOCK_C, HASH_C)


# --- last_vote -----------------------------------------------------------------------------------


def test_last_vote_is_none_before_any_vote(rules: SafetyRules) -> None:
    assert rules.last_vote(SELF) is None


def test_last_vote_is_none_after_a_proposal(rules: SafetyRules) -> None:
    rules.sign_proposal(HEIGHT, 0, NO_ROUND, HASH_B)
    assert rules.last_vote(SELF) is None


def test_last_vote_rebuilds_the_last_prevote(rules: SafetyRules) -> None:
    signature = rules.sign_prevote(HEIGHT, 3, HASH_B)
    assert rules.last_vote(SELF) == Vote(PREVOTE, HEIGHT, 3, HASH_B, SELF, signature)


def test_last_vote_rebuilds_the_last_precommit(rules: SafetyRules) -> None:
    signature = lock_on_b(rules, 3)
    assert rules.last_vote(SELF) == Vote(PRECOMMIT, HEIGHT, 3, HASH_B, SELF, signature)


def test_last_vote_after_a_crash_verifies(path: Path) -> None:
    make_rules(FileSafetyStore(path)).sign_precommit(HEIGHT, 4, None)
    last = make_rules(FileSafetyStore(path)).last_vote(SELF)
    assert last is not None
    assert (last.kind, last.height, last.round, last.block_hash) == (PRECOMMIT, HEIGHT, 4, None)
    assert verify_vote(last)


# --- FileSafetyStore -----------------------------------------------------------------------------


def test_a_missing_file_loads_as_nothing(path: Path) -> None:
    store = FileSafetyStore(path)
    assert (store.load(), store.load_lock()) == (None, None)


def test_a_save_leaves_no_temporary_file(path: Path) -> None:
    lock_on_b(make_rules(FileSafetyStore(path)), 0)
    assert sorted(entry.name for entry in path.parent.iterdir()) == [
        "safety.json",
        "safety.lock",
    ]


def test_the_state_file_is_json_of_the_state(path: Path) -> None:
    rules = make_rules(FileSafetyStore(path))
    rules.sign_prevote(HEIGHT, 1, HASH_B)
    assert json.loads(path.read_text()) == asdict(rules.state)


def test_the_lock_file_is_cbor_of_the_evidence(path: Path) -> None:
    lock_on_b(make_rules(FileSafetyStore(path)), 0)
    value = codec.decode(path.with_suffix(".lock").read_bytes())
    assert value == {
        "proposal": evidence(0).proposal.to_value(),
        "polka": [v.to_value() for v in evidence(0).polka],
    }


def test_a_stale_temporary_file_does_not_change_what_loads(path: Path) -> None:
    rules = make_rules(FileSafetyStore(path))
    rules.sign_prevote(HEIGHT, 1, HASH_B)
    path.with_name(path.name + ".tmp").write_bytes(b'{"height": 99')  # a crash mid-write
    assert decoded(FileSafetyStore(path).load()) == rules.state


def test_a_save_over_a_stale_temporary_file_replaces_the_state(path: Path) -> None:
    path.with_name(path.name + ".tmp").write_bytes(b"garbage")
    rules = make_rules(FileSafetyStore(path))
    rules.sign_prevote(HEIGHT, 1, HASH_B)
    assert decoded(FileSafetyStore(path).load()) == rules.state
    assert not path.with_name(path.name + ".tmp").exists()
