"""A deterministic simulation of a consortium: N consensus cores over a seeded fake network
and clock (STYLE.md §9, after TigerBeetle's VOPR).

Everything random comes from one `random.Random(seed)`; there is no wall clock and no I/O, so
a seed replays exactly. The network delays, drops, duplicates and reorders messages and
partitions the validators; honest validators crash and restart (keeping only what they had
fsynced: their SafetyRules state and committed blocks); up to f Byzantine validators
equivocate as proposer, vote twice, propose invalid blocks or withhold messages. After every
event the checkers run:

* agreement — no two honest nodes commit different blocks at one height;
* no honest double vote — no honest validator signs two different votes at one (height,
  round, kind);
* equal state — honest nodes that committed a height hold the same state hash there.

After the chaos phase the network heals (no partitions, no drops, every node up) and each
honest node must commit new blocks within a bound (liveness).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xinchain import codec
from xinchain.consensus.core import (
    Action,
    Broadcast,
    ConsensusCore,
    Decide,
    PeerBehind,
    ScheduleTimeout,
    SendTo,
    TimeoutKey,
    Timeouts,
)
from xinchain.consensus.messages import (
    PRECOMMIT,
    PREVOTE,
    CommitProof,
    Message,
    Proposal,
    Vote,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from xinchain.consensus.safety import MemorySafetyStore, SafetyRules
from xinchain.types import Block, BlockHeader, CommitCertificate

CHAIN_ID = "sim"
ZERO = "0" * 64
# Commit proofs sent to a peer that is behind, per request: enough to catch up in a few rounds
# of messages, small enough to keep one event cheap.
sync_blocks_per_request_max = 8
sync_request_interval_ms = 200


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeSigner:
    """Fast keyed-hash signatures: the simulator tests protocol logic, not Ed25519. A Byzantine
    node holds only its own secret, so it cannot forge an honest validator's signature."""

    def __init__(self, seed: int, count: int) -> None:
        self.secrets = [hashlib.sha256(f"{seed}/{i}".encode()).digest() for i in range(count)]

    def sign(self, validator: int, message: bytes) -> bytes:
        return hashlib.sha256(self.secrets[validator] + message).digest()

    def verify(self, validator: int, message: bytes, signature: bytes) -> bool:
        return validator < len(self.secrets) and self.sign(validator, message) == signature


class SimApp:
    """A deterministic application: a block's state hash chains its transactions' hashes."""

    def __init__(self) -> None:
        self.chain: list[tuple[Block, str, CommitCertificate]] = []
        self.states: list[str] = [ZERO]
        self._valid: dict[str, bool] = {}
        self.time_ms = 0
        self.proposal_counter = 0

    @property
    def tip_hash(self) -> str:
        return self.chain[-1][1] if self.chain else ZERO

    def expected_state(self, txs: tuple[bytes, ...]) -> str:
        return _h(codec.encode([self.states[-1], list(txs)]))

    def make_block(self, height: int, round_number: int, proposer: int, salt: int = 0) -> Block:
        self.proposal_counter += 1
        txs = (f"tx/{height}/{round_number}/{proposer}/{self.proposal_counter}/{salt}".encode(),)
        header = BlockHeader(
            chain_id=CHAIN_ID,
            genesis_hash=ZERO,
            height=height,
            round=round_number,
            parent_hash=self.tip_hash,
            tx_root=_h(codec.encode(list(txs))),
            result_root=ZERO,
            state_hash=self.expected_state(txs),
            validators_hash=ZERO,
            proposer=proposer,
            time_ms=self.time_ms,
            tx_count=len(txs),
        )
        return Block(header, txs)

    # BlockSource
    def propose_block(self, height: int, round_number: int, proposer: int) -> Block:
        return self.make_block(height, round_number, proposer)

    def block_hash(self, header: BlockHeader) -> str:
        return _h(header.encode())

    def validate_block(self, block: Block, block_hash: str) -> bool:
        known = self._valid.get(block_hash)
        if known is None:
            header = block.header
            known = (
                header.chain_id == CHAIN_ID
                and header.height == len(self.chain) + 1
                and header.parent_hash == self.tip_hash
                and header.tx_root == _h(codec.encode(list(block.txs)))
                and header.state_hash == self.expected_state(block.txs)
            )
            self._valid[block_hash] = known
        return known

    def commit(self, block: Block, block_hash: str, certificate: CommitCertificate) -> None:
        self.chain.append((block, block_hash, certificate))
        self.states.append(block.header.state_hash)
        self._valid.clear()


@dataclass
class SimConfig:
    validators: int = 4
    byzantine: int = 1
    chaos_ms: int = 20_000  # faulty network, crashes and partitions until then
    heal_deadline_ms: int = 60_000  # after healing, every honest node must commit within this
    heal_commits: int = 2  # new blocks each honest node must commit after healing
    drop_probability: float = 0.1
    duplicate_probability: float = 0.05
    delay_ms_max: int = 400
    partitions: bool = True
    crashes: bool = True
    safety_factory: Callable[..., SafetyRules] = SafetyRules
    timeouts: Timeouts = field(
        default_factory=lambda: Timeouts(
            propose_ms=600,
            propose_delta_ms=200,
            prevote_ms=300,
            prevote_delta_ms=100,
            precommit_ms=300,
            precommit_delta_ms=100,
            gossip_ms=500,
            round_growth_max=20,
        )
    )


class Violation(AssertionError):
    pass


@dataclass
class SimNode:
    index: int
    byzantine: bool
    strategy: str
    safety_store: MemorySafetyStore
    app: SimApp
    core: ConsensusCore | None = None
    epoch: int = 0  # bumped on crash: events of an earlier life are ignored
    last_sync_request_ms: int = -(10**9)
    up: bool = True


class Simulation:
    def __init__(self, seed: int, config: SimConfig | None = None) -> None:
        self.seed = seed
        self.config = config or SimConfig()
        self.random = random.Random(seed)
        self.now = 0
        self.signer = FakeSigner(seed, self.config.validators)
        self._queue: list[tuple[int, int, Any]] = []
        self._sequence = 0
        strategies = (
            "equivocate",
            "double_vote",
            "invalid_block",
            "withhold",
            "mixed",
            "lock_attack",
        )
        byzantine = set(self.random.sample(range(self.config.validators), self.config.byzantine))
        self.nodes = [
            SimNode(
                index=i,
                byzantine=i in byzantine,
                strategy=self.random.choice(strategies) if i in byzantine else "honest",
                safety_store=MemorySafetyStore(),
                app=SimApp(),
            )
            for i in range(self.config.validators)
        ]
        self.partition: list[set[int]] | None = None
        # A fault aimed at locks: a node that has just committed loses its links for a while,
        # so that the others must finish the height without learning of its commit.
        self.isolate_on_decide = self.random.random() < 0.5
        self.isolated: dict[int, int] = {}  # node → isolated until (ms)
        self.attack_targets: set[tuple[int, int]] = set()  # (height, node) a lock attack favours
        self.committed: dict[int, tuple[str, str]] = {}  # height → (block hash, state hash)
        self.honest_votes: dict[tuple[int, str, int, int], str | None] = {}
        self.events = 0
        self.trace: list[str] = []

    # --- running -------------------------------------------------------------------------------

    def run(self) -> None:
        for node in self.nodes:
            self._boot(node)
        self._schedule_chaos()
        heal_at = self.config.chaos_ms
        self._push(heal_at, ("heal",))
        heights_at_heal: dict[int, int] = {}
        deadline = heal_at + self.config.heal_deadline_ms
        while self._queue:
            time_ms, _, event = heapq.heappop(self._queue)
            if time_ms > deadline:
                break
            self.now = time_ms
            self._dispatch(event)
            self.events += 1
            if event[0] == "heal":
                heights_at_heal = {n.index: len(n.app.chain) for n in self._honest()}
            if heights_at_heal and self._all_progressed(heights_at_heal):
                return
        behind = {n.index: (heights_at_heal.get(n.index), len(n.app.chain)) for n in self._honest()}
        raise Violation(
            f"liveness: honest nodes did not each commit {self.config.heal_commits} new blocks "
            f"within {self.config.heal_deadline_ms} ms of healing (at heal, now): {behind}"
        )

    def _all_progressed(self, at_heal: dict[int, int]) -> bool:
        return all(
            len(node.app.chain) >= at_heal[node.index] + self.config.heal_commits
            for node in self._honest()
        )

    def _honest(self) -> list[SimNode]:
        return [node for node in self.nodes if not node.byzantine]

    def _push(self, time_ms: int, event: tuple[Any, ...]) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time_ms, self._sequence, event))

    # --- node lifecycle ------------------------------------------------------------------------

    def _boot(self, node: SimNode) -> None:
        index = node.index

        def sign(message: bytes) -> bytes:
            return self.signer.sign(index, message)

        def verify_vote(vote: Vote) -> bool:
            return self.signer.verify(
                vote.validator,
                vote_signing_bytes(CHAIN_ID, vote.kind, vote.height, vote.round, vote.block_hash),
                vote.signature,
            )

        safety = self.config.safety_factory(
            CHAIN_ID, self.config.validators, node.safety_store, sign, verify_vote
        )
        node.core = ConsensusCore(
            chain_id=CHAIN_ID,
            validator_count=self.config.validators,
            self_index=index,
            safety=safety,
            source=node.app,
            verify=self.signer.verify,
            height=len(node.app.chain) + 1,
            timeouts=self.config.timeouts,
        )
        node.up = True
        node.app.time_ms = self.now
        self._apply(node, node.core.start())

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.epoch += 1
        node.core = None  # everything not fsynced is gone; safety_store and app.chain remain
        self.trace.append(f"{self.now}: crash {node.index}")

    def _schedule_chaos(self) -> None:
        config = self.config
        if config.partitions:
            for _ in range(self.random.randint(0, 3)):
                start = self.random.randint(0, config.chaos_ms - 1)
                self._push(start, ("partition", self.random.randint(1, 4_000)))
        if config.crashes:
            for _ in range(self.random.randint(0, 2)):
                node = self.random.choice(self._honest())
                start = self.random.randint(0, config.chaos_ms - 1)
                self._push(start, ("crash", node.index, self.random.randint(100, 5_000)))

    # --- events --------------------------------------------------------------------------------

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "deliver":
            _, target, epoch, sender, message = event
            node = self.nodes[target]
            if node.up and node.epoch == epoch and node.core is not None:
                node.app.time_ms = self.now
                self._ask_for_blocks_if_behind(node, sender, message)
                self._apply(node, node.core.on_message(sender, message))
        elif kind == "timeout":
            _, target, epoch, key = event
            node = self.nodes[target]
            if node.up and node.epoch == epoch and node.core is not None:
                node.app.time_ms = self.now
                self._apply(node, node.core.on_timeout(key))
        elif kind == "sync":
            _, server, client, first = event
            if self.nodes[server].up:
                self._serve_sync(self.nodes[server], PeerBehind(client, first))
        elif kind == "partition":
            nodes = list(range(self.config.validators))
            self.random.shuffle(nodes)
            cut = self.random.randint(1, len(nodes) - 1)
            self.partition = [set(nodes[:cut]), set(nodes[cut:])]
            self._push(self.now + event[1], ("unpartition",))
            self.trace.append(f"{self.now}: partition {self.partition}")
        elif kind == "unpartition":
            self.partition = None
        elif kind == "crash":
            node = self.nodes[event[1]]
            if node.up and self.now < self.config.chaos_ms:
                self._crash(node)
                self._push(self.now + event[2], ("restart", node.index))
        elif kind == "restart":
            node = self.nodes[event[1]]
            if not node.up:
                self.trace.append(f"{self.now}: restart {node.index}")
                self._boot(node)
        elif kind == "heal":
            self.partition = None
            self.trace.append(f"{self.now}: heal")
            for node in self.nodes:
                if not node.up:
                    self._boot(node)

    def _apply(self, node: SimNode, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                self._record_vote(node, action.message)
                for peer in range(self.config.validators):
                    if peer != node.index:
                        self._send(node, peer, action.message)
            elif isinstance(action, SendTo):
                self._send(node, action.peer, action.message)
            elif isinstance(action, ScheduleTimeout):
                self._push(
                    self.now + action.delay_ms, ("timeout", node.index, node.epoch, action.key)
                )
            elif isinstance(action, Decide):
                self._decide(node, action)
            elif isinstance(action, PeerBehind):
                self._serve_sync(node, action)

    def _decide(self, node: SimNode, action: Decide) -> None:
        height = action.block.header.height
        first_to_decide = not node.byzantine and height not in self.committed
        chaos = self.now < self.config.chaos_ms
        if first_to_decide and chaos and (height, node.index) in self.attack_targets:
            # the lock attack's accomplice in the network: cut off the one it let commit
            self.isolated[node.index] = self.now + self.random.randint(1_000, 3_000)
        elif first_to_decide and chaos and self.isolate_on_decide and self.random.random() < 0.3:
            self.isolated[node.index] = self.now + self.random.randint(300, 2_500)
        node.app.commit(action.block, action.block_hash, action.certificate)
        if not node.byzantine:
            expected = self.committed.setdefault(
                height, (action.block_hash, action.block.header.state_hash)
            )
            if expected[0] != action.block_hash:
                raise Violation(
                    f"agreement: node {node.index} committed {action.block_hash} at height "
                    f"{height}, another honest node committed {expected[0]}"
                )
            if expected[1] != node.app.states[-1]:
                raise Violation(f"state: node {node.index} diverged at height {height}")
        assert node.core is not None
        delay = self.random.randint(0, 50)
        self._apply(node, node.core.on_committed(height, delay))

    def _ask_for_blocks_if_behind(self, node: SimNode, sender: int, message: Message) -> None:
        """A message from a later height: ask its sender for the blocks in between, as the
        node's status exchange does (at most every `sync_request_interval_ms`)."""
        assert node.core is not None
        if isinstance(message, CommitProof) or message.height <= node.core.height:
            return
        if self.now - node.last_sync_request_ms < sync_request_interval_ms:
            return
        node.last_sync_request_ms = self.now
        self._push(self.now + 1, ("sync", sender, node.index, node.core.height))

    def _serve_sync(self, node: SimNode, action: PeerBehind) -> None:
        first = action.height
        last = min(len(node.app.chain), first + sync_blocks_per_request_max - 1)
        for height in range(first, last + 1):
            block, _, certificate = node.app.chain[height - 1]
            self._send(node, action.peer, CommitProof(block, certificate))

    def _record_vote(self, node: SimNode, message: Message) -> None:
        if node.byzantine or not isinstance(message, Vote) or message.validator != node.index:
            return  # forwarded votes are their signers' business
        key = (node.index, message.kind, message.height, message.round)
        previous = self.honest_votes.setdefault(key, message.block_hash)
        if previous != message.block_hash:
            raise Violation(
                f"double vote: honest validator {node.index} signed {message.kind} for {previous} "
                f"and {message.block_hash} at height {message.height} round {message.round}"
            )

    # --- the network ---------------------------------------------------------------------------

    def _send(self, node: SimNode, peer: int, message: Message) -> None:
        for variant in self._byzantine_variants(node, peer, message):
            self._transmit(node.index, peer, variant)

    def _transmit(self, sender: int, peer: int, message: Message) -> None:
        config = self.config
        chaos = self.now < config.chaos_ms
        if self.partition is not None and not any(
            sender in side and peer in side for side in self.partition
        ):
            return
        if self.isolated.get(sender, -1) > self.now or self.isolated.get(peer, -1) > self.now:
            return
        if chaos and self.random.random() < config.drop_probability:
            return
        copies = 2 if chaos and self.random.random() < config.duplicate_probability else 1
        target = self.nodes[peer]
        for _ in range(copies):
            delay = self.random.randint(1, config.delay_ms_max if chaos else 50)
            self._push(self.now + delay, ("deliver", peer, target.epoch, sender, message))

    def _byzantine_variants(self, node: SimNode, peer: int, message: Message) -> list[Message]:
        """What a Byzantine sender sends `peer` in place of `message`."""
        if not node.byzantine:
            return [message]
        own = (isinstance(message, Proposal) and message.proposer == node.index) or (
            isinstance(message, Vote) and message.validator == node.index
        )
        strategy = node.strategy
        if not own:
            return [] if strategy == "withhold" else [message]
        if strategy == "mixed":
            strategy = self.random.choice(
                ("equivocate", "double_vote", "invalid_block", "withhold")
            )
        if strategy == "withhold":
            return [] if self.random.random() < 0.7 else [message]
        if strategy == "lock_attack":
            return self._lock_attack(node, message, peer)
        if isinstance(message, Proposal) and strategy in ("equivocate", "invalid_block"):
            return [self._other_proposal(node, message, peer, valid=strategy == "equivocate")]
        if isinstance(message, Vote) and strategy in ("double_vote", "equivocate"):
            return [self._other_vote(node, message)]
        return [message]

    def _other_proposal(
        self, node: SimNode, proposal: Proposal, peer: int, valid: bool
    ) -> Proposal:
        block = node.app.make_block(proposal.height, proposal.round, node.index, salt=peer)
        if not valid:
            header = block.header
            block = Block(
                BlockHeader(**{**header.__dict__, "state_hash": _h(b"wrong" + bytes([peer]))}),
                block.txs,
            )
        block_hash = node.app.block_hash(block.header)
        message = proposal_signing_bytes(
            CHAIN_ID, proposal.height, proposal.round, proposal.valid_round, block_hash
        )
        return Proposal(
            proposal.height,
            proposal.round,
            proposal.valid_round,
            block,
            block_hash,
            node.index,
            self.signer.sign(node.index, message),
        )

    def _lock_attack(self, node: SimNode, message: Message, peer: int) -> list[Message]:
        """An attack on locks, at each height where this node proposes in round 0.

        It offers its block to two peers (A and C) and withholds it from the proposer of
        round 1 (D), which therefore (unless gossip brings the block in time) prevotes nil. It
        prevotes the block to A and C, so both see a polka and lock, and precommits it to A
        only, so A alone commits. If A's links then fail, C (locked) and D must decide round 1
        on D's new block: with locks kept C refuses it, without them the two commit a block
        that conflicts with A's. The network is the attacker's accomplice: A's links fail as
        soon as it commits (the adversary of the BFT model schedules messages). Every other
        message is honest."""
        n = self.config.validators
        height, round_number = message_position(message)
        if height is None or height % n != node.index or round_number != 0:
            return [message]
        next_proposer = (height + 1) % n
        first, second = [i for i in range(n) if i not in (node.index, next_proposer)][:2]
        if isinstance(message, Proposal):
            return [] if peer == next_proposer else [message]
        if not isinstance(message, Vote) or message.block_hash is None:
            return [message]
        chosen = {first, second} if message.kind == PREVOTE else {first}
        if message.kind == PRECOMMIT:
            self.attack_targets.add((height, first))
        block_hash = message.block_hash if peer in chosen else None
        signed = vote_signing_bytes(CHAIN_ID, message.kind, height, round_number, block_hash)
        vote = Vote(
            message.kind,
            height,
            round_number,
            block_hash,
            node.index,
            self.signer.sign(node.index, signed),
        )
        return [vote]

    def _other_vote(self, node: SimNode, vote: Vote) -> Vote:
        assert node.core is not None
        candidates: list[str | None] = [None, vote.block_hash]
        candidates.extend(p.block_hash for p in node.core.proposals.values())
        block_hash = self.random.choice(candidates)
        kind = (
            vote.kind
            if self.random.random() < 0.8
            else (PRECOMMIT if vote.kind == PREVOTE else PREVOTE)
        )
        message = vote_signing_bytes(CHAIN_ID, kind, vote.height, vote.round, block_hash)
        return Vote(
            kind,
            vote.height,
            vote.round,
            block_hash,
            node.index,
            self.signer.sign(node.index, message),
        )


def message_position(message: Message) -> tuple[int | None, int]:
    if isinstance(message, Proposal | Vote):
        return message.height, message.round
    return None, 0


def run_seed(seed: int, config: SimConfig | None = None) -> Simulation:
    """Run one seed; raises `Violation` naming the broken invariant."""
    simulation = Simulation(seed, config)
    simulation.run()
    return simulation


__all__ = ["SimConfig", "Simulation", "TimeoutKey", "Violation", "run_seed"]
