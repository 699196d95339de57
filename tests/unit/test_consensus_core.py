"""Tests for `xinchain.consensus.core.ConsensusCore`: deterministic scenarios on four validators
(f = 1, quorum 3), driven by a small in-test router that delivers `Broadcast` / `SendTo` actions
in FIFO order and fires a `ScheduleTimeout` key only when a test says so. Each validator has a
`SimApp` as its block source and a `MemorySafetyStore` (that also keeps every state it saved);
signatures are the simulator's fast keyed hashes. Validator 1 proposes round 0 of height 1,
validator 2 round 1, validator 3 round 2.

* All honest: round 0 decides the proposer's block at every node without any timeout; the
  `Decide` certificate names round 0 and holds at least 3 distinct precommits that verify for
  the certificate's round (and not for another round).
* Silent proposer: after the propose timeouts everyone prevotes nil, then precommits nil, moves
  to round 1 on the precommit timeout, and decides the round-1 proposer's block there.
* Bad proposals: an invalid block (wrong state hash) from the right proposer is prevoted nil
  (a valid one injected the same way is prevoted for, as a guard); a proposal from the wrong
  proposer, with a bad signature or another proposer's, with a block_hash that is not its
  block's, or signed for another valid_round is ignored and does not stop the genuine proposal
  from being accepted afterwards.
* Equivocating proposer: its second proposal in a round is ignored; for every split of the
  honest nodes between its two blocks, with and without the second block sent after the first,
  and with it voting for both: no two different blocks are decided, and some block is.
* Round skip: votes (or a proposal) of a later round from f+1 validators make a node start that
  round; from one validator (even with two messages), or with one signature forged (before or
  after the genuine vote), they do not. Forged prevotes do not count towards the 2f+1 prevotes
  that start the prevote timeout.
* Catching up: a node that missed a height decides from a `CommitProof`; a proof with two
  signatures, a signer repeated, a forged signature, a validator outside the set, a certificate
  of another round, another block, another height or an invalid block is refused, and the node
  then still decides from the genuine proof. A node at a later height answers an old vote with
  `PeerBehind`.
* Observer (self_index None, safety None): decides the same block and emits no message; a core
  with an index but no SafetyRules is refused.
* Restart (a new core over the same `MemorySafetyStore`): a validator resumes the round it last
  signed in and re-broadcasts the identical vote, so that the round still completes; a validator
  locked on a block restores its lock (valid round, proposal, polka), re-proposes the locked
  block with its valid round when it is the proposer (and, restarting again after that, sends
  the same proposal), and the others decide that block.
* `on_committed` before `Decide` raises `InvariantBroken`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest
from hash_chain import CHAIN_ID
from hash_chain import HashChainSource as SimApp

from xinchain.consensus.core import (
    Action,
    Broadcast,
    ConsensusCore,
    Decide,
    PeerBehind,
    ScheduleTimeout,
    SendTo,
    TimeoutKey,
)
from xinchain.consensus.messages import (
    NO_ROUND,
    PRECOMMIT,
    PREVOTE,
    CommitProof,
    Message,
    Proposal,
    Step,
    Vote,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from xinchain.consensus.safety import SafetyRules, SafetyState
from xinchain.errors import InvariantBroken
from xinchain.sim.network import FakeSigner
from xinchain.storage.safety import MemorySafetyStore
from xinchain.types import Block, CommitCertificate, ValidatorSignature, commit_statement

VALIDATORS = 4
QUORUM = 3
SIGNER = FakeSigner(seed=3, count=VALIDATORS)
OBSERVER = VALIDATORS  # router address of the observer, outside the validator set


def verify_vote(vote: Vote) -> bool:
    message = vote_signing_bytes(CHAIN_ID, vote.kind, vote.height, vote.round, vote.block_hash)
    return SIGNER.verify(vote.validator, message, vote.signature)


# --- the router ----------------------------------------------------------------------------------


class HistoryStore(MemorySafetyStore):
    """Keeps every state saved, so that a test can crash a node between two saves."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[SafetyState] = []

    def save(self, data: bytes) -> None:
        self.history.append(SafetyState.decode(data))
        super().save(data)


@dataclass
class Node:
    app: SimApp
    store: HistoryStore
    validator: bool
    core: ConsensusCore | None = None
    actions: list[Action] = field(default_factory=list)  # all it emitted, across restarts


class Network:
    """Delivers in FIFO order; nothing is dropped except to nodes that are down or absent.
    A validator index with no node is Byzantine or silent: the test speaks for it."""

    def __init__(self, running: Iterable[int] = range(VALIDATORS), observers: int = 0) -> None:
        self.nodes: dict[int, Node] = {
            index: Node(SimApp(), HistoryStore(), validator=True) for index in running
        }
        for offset in range(observers):
            self.nodes[OBSERVER + offset] = Node(SimApp(), HistoryStore(), validator=False)
        self.queue: list[tuple[int, int, Message]] = []  # (target, sender, message)
        self.timers: list[tuple[int, TimeoutKey]] = []
        self.decisions: dict[int, Decide] = {}

    def core(self, index: int) -> ConsensusCore:
        core = self.nodes[index].core
        assert core is not None
        return core

    def start(self) -> None:
        for index in self.nodes:
            self.boot(index)

    def add(self, index: int) -> None:
        self.nodes[index] = Node(SimApp(), HistoryStore(), validator=True)
        self.boot(index)

    def boot(self, index: int) -> list[Action]:
        """Start (or restart) a core; what survives a crash is the node's store and app."""
        node = self.nodes[index]
        safety = None
        if node.validator:

            def sign(message: bytes) -> bytes:
                return SIGNER.sign(index, message)

            safety = SafetyRules(CHAIN_ID, VALIDATORS, node.store, sign, verify_vote)
        node.core = ConsensusCore(
            chain_id=CHAIN_ID,
            validator_count=VALIDATORS,
            self_index=index if node.validator else None,
            safety=safety,
            source=node.app,
            verify=SIGNER.verify,
            height=len(node.app.chain) + 1,
        )
        actions = node.core.start()
        self.apply(index, actions)
        return actions

    def crash(self, index: int) -> None:
        """Everything in flight to or from the node and its timers are lost."""
        self.nodes[index].core = None
        self.queue = [entry for entry in self.queue if index not in entry[:2]]
        self.timers = [timer for timer in self.timers if timer[0] != index]

    def apply(self, index: int, actions: list[Action]) -> None:
        self.nodes[index].actions.extend(actions)
        for action in actions:
            if isinstance(action, Broadcast):
                self.send(index, action.message, [j for j in self.nodes if j != index])
            elif isinstance(action, SendTo):
                self.send(index, action.message, [action.peer])
            elif isinstance(action, ScheduleTimeout):
                self.timers.append((index, action.key))
            elif isinstance(action, Decide):
                self.decisions[index] = action

    def send(self, sender: int, message: Message, targets: Iterable[int]) -> None:
        self.queue.extend((target, sender, message) for target in targets if target in self.nodes)

    def deliver_all(self, targets: Iterable[int] | None = None) -> None:
        """Deliver until nothing is in flight (to `targets`, if given; the rest wait)."""
        wanted = set(self.nodes if targets is None else targets)
        while True:
            position = next((i for i, e in enumerate(self.queue) if e[0] in wanted), None)
            if position is None:
                return
            target, sender, message = self.queue.pop(position)
            core = self.nodes[target].core
            if core is not None:
                self.apply(target, core.on_message(sender, message))

    def fire(self, step: Step, round_number: int, nodes: Iterable[int] | None = None) -> int:
        """Fire the pending timeouts (height 1) of `step` in `round_number` that the cores
        scheduled; returns how many fired."""
        wanted = set(self.nodes if nodes is None else nodes)
        due = [
            (index, key)
            for index, key in self.timers
            if index in wanted and (key.step, key.round) == (step, round_number)
        ]
        for index, key in due:
            self.timers.remove((index, key))
            self.apply(index, self.core(index).on_timeout(key))
        return len(due)

    def gossip(self, nodes: Iterable[int]) -> None:
        """Let each node's gossip timer fire once it finds the node stalled: a timer set in an
        earlier round only re-arms itself for the current round, so fire that one too."""
        for index in nodes:
            for _ in range(2):
                pending = [key for i, key in self.timers if i == index and key.step == "gossip"]
                for key in pending:
                    self.timers.remove((index, key))
                    self.apply(index, self.core(index).on_timeout(key))
                if any(key.round == self.core(index).round for key in pending):
                    break

    def run(self, max_round: int) -> None:
        """Deliver everything, then fire pending timeouts one at a time (oldest first) up to
        `max_round`, until nothing is left to do."""
        while True:
            self.deliver_all()
            due = [
                (index, key)
                for index, key in self.timers
                if key.step != "gossip"
                and key.round <= max_round
                and self.nodes[index].core is not None
            ]
            if not due:
                return
            index, key = due[0]
            self.timers.remove((index, key))
            self.apply(index, self.core(index).on_timeout(key))

    def votes(self, index: int, kind: str, round_number: int) -> list[Vote]:
        """The votes node `index` signed and broadcast, of one kind and round."""
        return [
            action.message
            for action in self.nodes[index].actions
            if isinstance(action, Broadcast)
            and isinstance(action.message, Vote)
            and action.message.validator == index
            and (action.message.kind, action.message.round) == (kind, round_number)
        ]

    def proposals(self, index: int) -> list[Proposal]:
        return [
            action.message
            for action in self.nodes[index].actions
            if isinstance(action, Broadcast)
            and isinstance(action.message, Proposal)
            and action.message.proposer == index
        ]


# --- messages a test signs itself (as a Byzantine validator) -------------------------------------


def signed_proposal(
    block: Block,
    *,
    round_number: int = 0,
    proposer: int = 1,
    valid_round: int = NO_ROUND,
    signed_valid_round: int | None = None,
) -> Proposal:
    block_hash = SimApp().block_hash(block.header)
    message = proposal_signing_bytes(
        CHAIN_ID,
        block.header.height,
        round_number,
        valid_round if signed_valid_round is None else signed_valid_round,
        block_hash,
    )
    return Proposal(
        block.header.height,
        round_number,
        valid_round,
        block,
        block_hash,
        proposer,
        SIGNER.sign(proposer, message),
    )


def signed_vote(
    validator: int, kind: str, round_number: int, block_hash: str | None, height: int = 1
) -> Vote:
    message = vote_signing_bytes(CHAIN_ID, kind, height, round_number, block_hash)
    return Vote(kind, height, round_number, block_hash, validator, SIGNER.sign(validator, message))


def block_at_height_1(proposer: int = 1, salt: int = 0) -> Block:
    return SimApp().make_block(1, 0, proposer, salt=salt)


def invalid_block() -> Block:
    block = block_at_height_1()
    return Block(replace(block.header, state_hash="ab" * 32), block.txs)


def verified_signers(certificate: CommitCertificate, round_number: int) -> set[int]:
    message = commit_statement(CHAIN_ID, certificate.height, round_number, certificate.block_hash)
    return {
        entry.validator
        for entry in certificate.signatures
        if SIGNER.verify(entry.validator, message, bytes.fromhex(entry.signature))
    }


def lone_core(index: int = 0) -> ConsensusCore:
    """A started validator core whose output the test reads directly."""
    network = Network(running=[index])
    network.start()
    return network.core(index)


# --- all honest ----------------------------------------------------------------------------------


@pytest.fixture
def honest_round() -> Network:
    network = Network()
    network.start()
    network.deliver_all()
    return network


def test_all_honest_every_node_decides_the_proposers_block(honest_round: Network) -> None:
    (proposal,) = honest_round.proposals(1)
    assert {i: d.block_hash for i, d in honest_round.decisions.items()} == {
        i: proposal.block_hash for i in range(VALIDATORS)
    }


def test_all_honest_decide_in_round_0_without_a_timeout(honest_round: Network) -> None:
    assert {d.certificate.round for d in honest_round.decisions.values()} == {0}
    assert all(honest_round.core(i).round == 0 for i in range(VALIDATORS))


def test_all_honest_certificate_holds_a_quorum_of_valid_precommits(
    honest_round: Network,
) -> None:
    for decision in honest_round.decisions.values():
        certificate = decision.certificate
        assert (certificate.height, certificate.block_hash) == (1, decision.block_hash)
        assert len(verified_signers(certificate, certificate.round)) >= QUORUM


def test_all_honest_certificate_does_not_verify_for_another_round(
    honest_round: Network,
) -> None:
    certificate = honest_round.decisions[0].certificate
    assert verified_signers(certificate, certificate.round + 1) == set()


# --- silent proposer -----------------------------------------------------------------------------


@pytest.fixture
def silent_proposer() -> Network:
    """Validator 1, round 0's proposer, never speaks."""
    network = Network(running=[0, 2, 3])
    network.start()
    network.deliver_all()
    return network


def test_silent_proposer_nobody_votes_before_the_propose_timeout(
    silent_proposer: Network,
) -> None:
    assert all(silent_proposer.votes(i, PREVOTE, 0) == [] for i in (0, 2, 3))


def test_silent_proposer_everyone_prevotes_nil_on_the_propose_timeout(
    silent_proposer: Network,
) -> None:
    assert silent_proposer.fire(Step.PROPOSE, 0) == 3
    assert {i: [v.block_hash for v in silent_proposer.votes(i, PREVOTE, 0)] for i in (0, 2, 3)} == {
        i: [None] for i in (0, 2, 3)
    }


def test_silent_proposer_everyone_precommits_nil_on_a_nil_polka(silent_proposer: Network) -> None:
    silent_proposer.fire(Step.PROPOSE, 0)
    silent_proposer.deliver_all()
    assert {
        i: [v.block_hash for v in silent_proposer.votes(i, PRECOMMIT, 0)] for i in (0, 2, 3)
    } == {i: [None] for i in (0, 2, 3)}


def test_silent_proposer_precommit_timeout_starts_round_1(silent_proposer: Network) -> None:
    silent_proposer.fire(Step.PROPOSE, 0)
    silent_proposer.deliver_all()
    assert silent_proposer.fire(Step.PRECOMMIT, 0) == 3
    assert [silent_proposer.core(i).round for i in (0, 2, 3)] == [1, 1, 1]
    assert [p.round for p in silent_proposer.proposals(2)] == [1]


def test_silent_proposer_round_1_decides_its_proposers_block(silent_proposer: Network) -> None:
    silent_proposer.fire(Step.PROPOSE, 0)
    silent_proposer.deliver_all()
    silent_proposer.fire(Step.PRECOMMIT, 0)
    silent_proposer.deliver_all()
    (proposal,) = silent_proposer.proposals(2)
    assert {
        i: (d.block_hash, d.certificate.round) for i, d in silent_proposer.decisions.items()
    } == {i: (proposal.block_hash, 1) for i in (0, 2, 3)}


# --- bad proposals -------------------------------------------------------------------------------


@pytest.fixture
def without_proposer() -> Network:
    """Validators 0, 2, 3 running; the test speaks for validator 1, round 0's proposer."""
    network = Network(running=[0, 2, 3])
    network.start()
    return network


def test_a_valid_injected_proposal_is_prevoted(without_proposer: Network) -> None:
    proposal = signed_proposal(block_at_height_1())
    without_proposer.send(1, proposal, [0, 2, 3])
    without_proposer.deliver_all()
    assert [v.block_hash for v in without_proposer.votes(0, PREVOTE, 0)] == [proposal.block_hash]


def test_an_invalid_block_is_prevoted_nil(without_proposer: Network) -> None:
    without_proposer.send(1, signed_proposal(invalid_block()), [0, 2, 3])
    without_proposer.deliver_all()
    assert {
        i: [v.block_hash for v in without_proposer.votes(i, PREVOTE, 0)] for i in (0, 2, 3)
    } == {i: [None] for i in (0, 2, 3)}


def test_an_invalid_block_is_never_decided(without_proposer: Network) -> None:
    without_proposer.send(1, signed_proposal(invalid_block()), [0, 2, 3])
    without_proposer.run(max_round=1)
    (proposal,) = without_proposer.proposals(2)
    assert {d.block_hash for d in without_proposer.decisions.values()} == {proposal.block_hash}


BAD_PROPOSALS = {
    "wrong proposer": lambda: signed_proposal(block_at_height_1(proposer=2), proposer=2),
    "bad signature": lambda: replace(signed_proposal(block_at_height_1()), signature=b"\x07" * 32),
    "another proposer's signature": lambda: replace(
        signed_proposal(block_at_height_1()),
        signature=signed_proposal(block_at_height_1(), proposer=2).signature,
    ),
    "a block_hash not of its block": lambda: replace(
        signed_proposal(block_at_height_1(salt=3)), block=block_at_height_1(salt=4)
    ),
    "signed for another valid_round": lambda: signed_proposal(
        block_at_height_1(), signed_valid_round=0
    ),
}


@pytest.mark.parametrize("bad", BAD_PROPOSALS)
def test_a_bad_proposal_is_ignored(bad: str) -> None:
    core = lone_core()
    proposal = BAD_PROPOSALS[bad]()
    assert core.on_message(1, proposal) == []
    assert core.proposals == {}


@pytest.mark.parametrize("bad", BAD_PROPOSALS)
def test_a_bad_proposal_does_not_block_the_genuine_one(bad: str) -> None:
    core = lone_core()
    core.on_message(1, BAD_PROPOSALS[bad]())
    genuine = signed_proposal(block_at_height_1(salt=9))
    actions = core.on_message(1, genuine)
    assert [a.message for a in actions if isinstance(a, Broadcast)] == [
        signed_vote(0, PREVOTE, 0, genuine.block_hash)
    ]


# --- equivocating proposer -----------------------------------------------------------------------


def test_a_second_proposal_in_a_round_is_ignored() -> None:
    core = lone_core()
    first = signed_proposal(block_at_height_1(salt=1))
    core.on_message(1, first)
    assert core.on_message(1, signed_proposal(block_at_height_1(salt=2))) == []
    assert core.proposals == {0: first}


SPLITS = [
    (first, second)
    for size in range(4)
    for first in itertools.combinations((0, 2, 3), size)
    for second in [tuple(i for i in (0, 2, 3) if i not in first)]
]


@pytest.mark.parametrize("send_both", [False, True], ids=["one each", "both"])
@pytest.mark.parametrize(("gets_a", "gets_b"), SPLITS)
def test_an_equivocating_proposer_cannot_get_two_blocks_decided(
    gets_a: tuple[int, ...], gets_b: tuple[int, ...], send_both: bool
) -> None:
    network = Network(running=[0, 2, 3])
    network.start()
    block_a, block_b = block_at_height_1(salt=1), block_at_height_1(salt=2)
    proposal_a, proposal_b = signed_proposal(block_a), signed_proposal(block_b)
    network.send(1, proposal_a, gets_a)
    network.send(1, proposal_b, gets_b)
    if send_both:
        network.send(1, proposal_b, gets_a)
        network.send(1, proposal_a, gets_b)
    for kind in (PREVOTE, PRECOMMIT):  # the equivocator also votes for both, to everyone
        for proposal in (proposal_a, proposal_b):
            network.send(1, signed_vote(1, kind, 0, proposal.block_hash), (0, 2, 3))
    network.run(max_round=3)
    decided = {d.block_hash for d in network.decisions.values()}
    assert len(decided) == 1


# --- skipping to a later round -------------------------------------------------------------------


def test_f_plus_one_validators_in_a_later_round_make_a_node_skip_to_it() -> None:
    core = lone_core()
    core.on_message(2, signed_vote(2, PREVOTE, 3, None))
    actions = core.on_message(3, signed_vote(3, PRECOMMIT, 3, None))
    assert core.round == 3
    assert ScheduleTimeout(TimeoutKey(1, 3, Step.PROPOSE), 2_500) in actions


def test_a_later_round_proposal_counts_as_one_of_f_plus_one() -> None:
    core = lone_core()
    core.on_message(2, signed_vote(2, PREVOTE, 2, None))
    block = SimApp().make_block(1, 2, 3)
    core.on_message(3, signed_proposal(block, round_number=2, proposer=3))
    assert core.round == 2


def test_one_validator_in_a_later_round_does_not_make_a_node_skip() -> None:
    core = lone_core()
    core.on_message(2, signed_vote(2, PREVOTE, 3, None))
    core.on_message(2, signed_vote(2, PRECOMMIT, 3, None))
    assert core.round == 0


def test_a_forged_later_round_vote_does_not_count_towards_a_skip() -> None:
    core = lone_core()
    core.on_message(2, signed_vote(2, PREVOTE, 3, None))
    forged = replace(signed_vote(2, PREVOTE, 3, None), validator=3)
    core.on_message(3, forged)
    assert core.round == 0


def test_a_forged_later_round_vote_does_not_count_towards_a_later_skip() -> None:
    """The forged vote arrives first; the genuine one then makes the core re-evaluate."""
    core = lone_core()
    core.on_message(3, replace(signed_vote(2, PREVOTE, 3, None), validator=3))
    core.on_message(2, signed_vote(2, PREVOTE, 3, None))
    assert core.round == 0


def test_forged_prevotes_do_not_start_the_prevote_timeout() -> None:
    """2f+1 prevotes of any kind start it (line 34); here only two of the four verify."""
    core = lone_core()
    core.on_message(1, signed_proposal(block_at_height_1()))  # core 0 prevotes it
    for validator in (2, 3):
        core.on_message(validator, Vote(PREVOTE, 1, 0, None, validator, b"\x01" * 32))
    actions = core.on_message(1, signed_vote(1, PREVOTE, 0, None))
    assert [a for a in actions if isinstance(a, ScheduleTimeout)] == []


# --- catching up with a CommitProof --------------------------------------------------------------


@pytest.fixture
def behind() -> tuple[Network, Decide]:
    """Validators 0, 1, 2 decide height 1 while validator 3 is away; then 3 starts."""
    network = Network(running=[0, 1, 2])
    network.start()
    network.deliver_all()
    decision = network.decisions[0]
    network.add(3)
    return network, decision


def proof_of(decision: Decide, **changes: object) -> CommitProof:
    return CommitProof(decision.block, replace(decision.certificate, **changes))  # type: ignore[arg-type]


def test_a_node_behind_decides_from_a_commit_proof(behind: tuple[Network, Decide]) -> None:
    network, decision = behind
    actions = network.core(3).on_message(0, proof_of(decision))
    assert actions == [Decide(decision.block, decision.block_hash, decision.certificate)]
    assert network.core(3).step == Step.DECIDED


def _signatures(decision: Decide) -> tuple[ValidatorSignature, ...]:
    return decision.certificate.signatures


BAD_CERTIFICATES = {
    "two signatures": lambda d: proof_of(d, signatures=_signatures(d)[:2]),
    "a signer repeated": lambda d: proof_of(d, signatures=(*_signatures(d)[:2], _signatures(d)[0])),
    "a forged signature": lambda d: proof_of(
        d,
        signatures=(
            *_signatures(d)[:2],
            replace(_signatures(d)[2], signature=_signatures(d)[0].signature),
        ),
    ),
    "a validator outside the set": lambda d: proof_of(
        d,
        signatures=(
            *_signatures(d)[:2],
            replace(_signatures(d)[2], validator=VALIDATORS),
        ),
    ),
    "another round": lambda d: proof_of(d, round=d.certificate.round + 1),
    "another block": lambda d: proof_of(d, block_hash="cd" * 32),
    "another height": lambda d: proof_of(d, height=2),
}


@pytest.mark.parametrize("bad", BAD_CERTIFICATES)
def test_a_bad_commit_proof_is_refused(behind: tuple[Network, Decide], bad: str) -> None:
    network, decision = behind
    assert len(decision.certificate.signatures) == QUORUM  # the cuts above leave too few
    assert network.core(3).on_message(0, BAD_CERTIFICATES[bad](decision)) == []
    assert network.core(3).step != Step.DECIDED


@pytest.mark.parametrize("bad", BAD_CERTIFICATES)
def test_after_a_bad_commit_proof_the_genuine_one_decides(
    behind: tuple[Network, Decide], bad: str
) -> None:
    network, decision = behind
    network.core(3).on_message(0, BAD_CERTIFICATES[bad](decision))
    actions = network.core(3).on_message(0, proof_of(decision))
    assert [a.block_hash for a in actions if isinstance(a, Decide)] == [decision.block_hash]


def test_a_commit_proof_of_an_invalid_block_is_refused(behind: tuple[Network, Decide]) -> None:
    network, _ = behind
    block = invalid_block()
    block_hash = SimApp().block_hash(block.header)
    statement = commit_statement(CHAIN_ID, 1, 0, block_hash)
    signatures = tuple(ValidatorSignature(i, SIGNER.sign(i, statement).hex()) for i in range(3))
    proof = CommitProof(block, CommitCertificate(1, 0, block_hash, signatures))
    assert network.core(3).on_message(0, proof) == []


def test_a_commit_proof_for_a_later_height_is_ignored(behind: tuple[Network, Decide]) -> None:
    network, decision = behind
    later = SimApp().make_block(2, 0, 2)
    proof = CommitProof(later, replace(decision.certificate, height=2))
    assert network.core(3).on_message(0, proof) == []


def test_a_node_at_a_later_height_answers_an_old_vote_with_peer_behind(
    behind: tuple[Network, Decide],
) -> None:
    network, decision = behind
    network.nodes[0].app.commit(decision.block, decision.block_hash, decision.certificate)
    network.core(0).on_committed(1, 0)
    old_vote = signed_vote(3, PREVOTE, 0, None)
    assert network.core(0).on_message(3, old_vote) == [PeerBehind(3, 1)]


# --- observer ------------------------------------------------------------------------------------


@pytest.fixture
def observed() -> Network:
    network = Network(observers=1)
    network.start()
    network.deliver_all()
    return network


def test_an_observer_decides_the_validators_block(observed: Network) -> None:
    assert observed.decisions[OBSERVER].block_hash == observed.decisions[0].block_hash


def test_an_observer_emits_no_message(observed: Network) -> None:
    emitted = [a for a in observed.nodes[OBSERVER].actions if isinstance(a, Broadcast | SendTo)]
    assert emitted == []


def test_a_core_with_an_index_but_no_safety_rules_is_refused() -> None:
    with pytest.raises(InvariantBroken):
        ConsensusCore(
            chain_id=CHAIN_ID,
            validator_count=VALIDATORS,
            self_index=0,
            safety=None,
            source=SimApp(),
            verify=SIGNER.verify,
            height=1,
        )


# --- restart mid-round ---------------------------------------------------------------------------


@pytest.fixture
def crashed_after_prevote() -> tuple[Network, Vote]:
    """Validator 1 is silent; round 0 fails; in round 1 validator 3 prevotes validator 2's
    block and crashes before its prevote leaves."""
    network = Network(running=[0, 2, 3])
    network.start()
    network.fire(Step.PROPOSE, 0)
    network.deliver_all()
    network.fire(Step.PRECOMMIT, 0)
    network.deliver_all(targets=[3])
    (prevote,) = network.votes(3, PREVOTE, 1)
    network.crash(3)
    return network, prevote


def test_a_restarted_validator_resumes_the_round_it_last_signed_in(
    crashed_after_prevote: tuple[Network, Vote],
) -> None:
    network, _ = crashed_after_prevote
    network.boot(3)
    assert network.core(3).round == 1


def test_a_restarted_validator_rebroadcasts_its_identical_last_vote(
    crashed_after_prevote: tuple[Network, Vote],
) -> None:
    network, prevote = crashed_after_prevote
    actions = network.boot(3)
    assert [a.message for a in actions if isinstance(a, Broadcast)] == [prevote]


def test_after_a_restart_the_round_still_completes(
    crashed_after_prevote: tuple[Network, Vote],
) -> None:
    network, prevote = crashed_after_prevote
    network.boot(3)
    network.deliver_all()
    network.gossip([2])  # the restarted node lost the proposal it voted for
    network.deliver_all()
    assert {i: (d.block_hash, d.certificate.round) for i, d in network.decisions.items()} == {
        i: (prevote.block_hash, 1) for i in (0, 2, 3)
    }


# --- restart while locked ------------------------------------------------------------------------


@pytest.fixture
def locked_restart() -> tuple[Network, Proposal]:
    """Byzantine validator 1 proposes B to 2 and 3 only and prevotes it to 2 only: 2 sees a
    polka and locks on B (precommits it); 0 and 3 precommit nil. Validator 2 — the proposer of
    round 1 — crashes and restarts, still in round 0."""
    network = Network(running=[0, 2, 3])
    network.start()
    proposal = signed_proposal(block_at_height_1(salt=5))
    network.send(1, proposal, [2, 3])
    network.send(1, signed_vote(1, PREVOTE, 0, proposal.block_hash), [2])
    network.deliver_all()
    network.fire(Step.PROPOSE, 0)
    network.deliver_all()
    network.fire(Step.PREVOTE, 0)
    network.deliver_all()
    assert [v.block_hash for v in network.votes(2, PRECOMMIT, 0)] == [proposal.block_hash]
    network.crash(2)
    network.boot(2)
    return network, proposal


def test_a_restarted_locked_validator_restores_its_lock(
    locked_restart: tuple[Network, Proposal],
) -> None:
    network, proposal = locked_restart
    core = network.core(2)
    assert (core.valid_round, core.valid_hash, core.proposals.get(0)) == (
        0,
        proposal.block_hash,
        proposal,
    )


def test_a_restarted_locked_validator_reproposes_the_locked_block(
    locked_restart: tuple[Network, Proposal],
) -> None:
    network, proposal = locked_restart
    network.gossip([0])  # the precommits it lost, so that its timer starts
    network.deliver_all()
    network.fire(Step.PRECOMMIT, 0)
    reproposal = network.proposals(2)[-1]
    assert (reproposal.round, reproposal.valid_round, reproposal.block_hash) == (
        1,
        0,
        proposal.block_hash,
    )


def test_a_locked_proposer_restarting_after_it_proposed_sends_the_same_proposal(
    locked_restart: tuple[Network, Proposal],
) -> None:
    """Crashed after the proposal was saved and before its prevote was: the restarted core
    proposes again, and gets back exactly the proposal it had signed (valid round included)."""
    network, _ = locked_restart
    network.gossip([0])
    network.deliver_all()
    network.fire(Step.PRECOMMIT, 0)
    reproposal = network.proposals(2)[-1]
    store = network.nodes[2].store
    network.crash(2)
    store.saved = next(s for s in reversed(store.history) if s.step == Step.PROPOSE).encode()
    actions = network.boot(2)
    assert reproposal in [a.message for a in actions if isinstance(a, Broadcast)]


def test_the_others_decide_the_block_a_restarted_validator_was_locked_on(
    locked_restart: tuple[Network, Proposal],
) -> None:
    network, proposal = locked_restart
    network.gossip([0])
    network.deliver_all()
    network.fire(Step.PRECOMMIT, 0)
    network.deliver_all()
    network.gossip([2])  # the polka of round 0, kept with the lock
    network.deliver_all()
    assert {i: d.block_hash for i, d in network.decisions.items()} == {
        i: proposal.block_hash for i in (0, 2, 3)
    }


# --- commit order --------------------------------------------------------------------------------


def test_on_committed_before_decide_raises() -> None:
    core = lone_core()
    with pytest.raises(InvariantBroken):
        core.on_committed(1, 0)
