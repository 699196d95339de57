"""A deterministic simulation of a consortium: N validators over a seeded fake network and
clock (STYLE.md §9, after TigerBeetle's VOPR).

Each simulated validator runs what a node runs: the consensus core with SafetyRules, the
ledger source (proposals built from the mempool, proposals validated by re-executing them),
the application (admission, execution, commit) on the in-memory store, the mempool, and the
sans-IO rules of consensus/sync.py for pacing heights, block sync (height announcements, sync
requests, serving blocks, holding proofs) and transaction gossip. Only the network, the clock,
signatures of votes (a keyed hash, see FakeSigner) and the clients are simulated (sim/ledger.py).

Everything random comes from one `random.Random(seed)`; there is no wall clock and no I/O, so
a seed replays exactly. Clients submit transactions to random validators, which gossip them.
The network delays, drops, duplicates and reorders messages and partitions the validators;
honest validators crash and restart (keeping only what they had fsynced: their SafetyRules
state and their store of committed blocks); up to f Byzantine validators equivocate as
proposer, vote twice, propose invalid blocks or withhold messages. After every event the
checkers run:

* agreement — no two honest nodes commit different blocks at one height;
* no honest double vote — no honest validator signs two different votes at one (height,
  round, kind);
* equal state — honest nodes that committed a height hold the same state there (the whole
  state table, hashed).

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
    Step,
    Vote,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from xinchain.consensus.safety import SafetyRules
from xinchain.consensus.sync import BlockSync, Pacer, Status, SyncConfig, SyncRequest, TxGossip
from xinchain.errors import XinchainError
from xinchain.execution.app import Application, system_contracts
from xinchain.mempool import Mempool
from xinchain.node.ledger_source import LedgerSource
from xinchain.sim.ledger import CHAIN_ID, SimClient, Tally
from xinchain.storage import MemoryStore, Table
from xinchain.storage.safety import MemorySafetyStore
from xinchain.types import Block, BlockHeader, ExecuteBlockRequest


@dataclass(frozen=True)
class TxBatch:
    """Transactions one validator gossips to another."""

    txs: tuple[bytes, ...]


NetworkMessage = Message | Status | SyncRequest | TxBatch


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
    sync_factory: Callable[[SyncConfig], BlockSync[int, CommitProof]] = BlockSync
    # The node's rules, with the simulator's faster clock (its timeouts are shorter too).
    sync: SyncConfig = field(
        default_factory=lambda: SyncConfig(
            status_interval_ms=300,
            request_interval_ms=200,
            blocks_per_request=8,
            proofs_buffered_max=256,
        )
    )
    busy_block_interval_ms: int = 50
    idle_block_interval_ms: int = 250
    gossip_txs_per_frame: int = 8
    gossip_flush_ms: int = 20
    transactions: int = 40  # client transactions over the run, each to a random validator
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
    """One validator. `safety_store` and `store` are what survives a crash (fsynced on a real
    node); everything else is made again when it boots."""

    index: int
    byzantine: bool
    strategy: str
    safety_store: MemorySafetyStore
    store: MemoryStore
    app: Application
    mempool: Mempool = field(default_factory=Mempool)
    source: LedgerSource | None = None
    sync: BlockSync[int, CommitProof] = field(default_factory=BlockSync)
    pacer: Pacer = field(default_factory=lambda: Pacer(busy_ms=0, idle_ms=0))
    gossip: TxGossip = field(default_factory=lambda: TxGossip(per_frame=1, flush_ms=0))
    core: ConsensusCore | None = None
    epoch: int = 0  # bumped on crash: events of an earlier life are ignored
    up: bool = True

    @property
    def height(self) -> int:
        """The committed height."""
        return self.app.tip().height


class Simulation:
    def __init__(self, seed: int, config: SimConfig | None = None) -> None:
        self.seed = seed
        self.config = config or SimConfig()
        self.random = random.Random(seed)
        self.now = 0
        self.signer = FakeSigner(seed, self.config.validators)
        self.client = SimClient(seed, self.config.validators)
        self.contracts = [Tally()]
        system_contracts(self.contracts)  # refuses a clash early, as a node does
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
                store=(store := MemoryStore()),
                app=Application(store, self.client.genesis, self.contracts),
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
        self._schedule_clients()
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
                heights_at_heal = {n.index: n.height for n in self._honest()}
            if heights_at_heal and self._all_progressed(heights_at_heal):
                return
        behind = {n.index: (heights_at_heal.get(n.index), n.height) for n in self._honest()}
        raise Violation(
            f"liveness: honest nodes did not each commit {self.config.heal_commits} new blocks "
            f"within {self.config.heal_deadline_ms} ms of healing (at heal, now): {behind}"
        )

    def _all_progressed(self, at_heal: dict[int, int]) -> bool:
        return all(
            node.height >= at_heal[node.index] + self.config.heal_commits for node in self._honest()
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
        config = self.config
        # What a node builds when it starts: the application over its store, an empty
        # mempool, the ledger source, and the sans-IO pacing, sync and gossip rules.
        node.app = Application(node.store, self.client.genesis, self.contracts)
        node.mempool = Mempool()
        node.source = LedgerSource(node.app, node.mempool, lambda: self.now)
        node.sync = config.sync_factory(config.sync)
        node.pacer = Pacer(
            busy_ms=config.busy_block_interval_ms, idle_ms=config.idle_block_interval_ms
        )
        node.gossip = TxGossip(
            per_frame=config.gossip_txs_per_frame, flush_ms=config.gossip_flush_ms
        )
        node.core = ConsensusCore(
            chain_id=CHAIN_ID,
            validator_count=config.validators,
            self_index=index,
            safety=safety,
            source=node.source,
            verify=self.signer.verify,
            height=node.height + 1,
            timeouts=config.timeouts,
        )
        node.up = True
        self._apply(node, node.core.start())
        self._broadcast(node, Status(node.height))  # as a node does when its peers connect
        first = self.now + self.random.randint(1, config.sync.status_interval_ms)
        self._push(first, ("announce", node.index, node.epoch))

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.epoch += 1
        node.core = None  # everything not fsynced is gone; safety_store and store remain
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

    def _schedule_clients(self) -> None:
        """Client transactions, each to a random validator at a random time of the run."""
        end = self.config.chaos_ms + self.config.heal_deadline_ms // 2
        for _ in range(self.config.transactions):
            target = self.random.randrange(self.config.validators)
            self._push(self.random.randint(0, end), ("submit", target))

    # --- events --------------------------------------------------------------------------------

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind in ("deliver", "timeout", "announce", "flush"):
            node = self.nodes[event[1]]
            if not (node.up and node.epoch == event[2] and node.core is not None):
                return  # addressed to a node that is down, or to an earlier life of it
            if kind == "deliver":
                self._deliver(node, event[3], event[4])
            elif kind == "timeout":
                self._apply(node, node.core.on_timeout(event[3]))
            elif kind == "announce":
                self._broadcast(node, Status(node.height))
                self._push(self.now + self.config.sync.status_interval_ms, event)
            else:
                self._flush_gossip(node)
        elif kind == "submit":
            node = self.nodes[event[1]]
            if node.up and node.core is not None:
                self._admit(node, self.client.transaction(self.random, node.height), gossip=True)
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
                self._serve_sync(node, action.peer, action.height)

    def _deliver(self, node: SimNode, sender: int, message: NetworkMessage) -> None:
        """A message from a peer, handled as the consensus driver handles a frame."""
        assert node.core is not None
        if isinstance(message, Status):
            request = node.sync.on_status(sender, message.height, node.height, self.now)
            if request is not None:
                self._send(node, sender, request)
        elif isinstance(message, SyncRequest):
            self._serve_sync(node, sender, message.first)
        elif isinstance(message, TxBatch):
            for raw in message.txs:
                self._admit(node, raw, gossip=False)
        elif isinstance(message, CommitProof):
            height = message.block.header.height
            if height == node.core.height:
                self._apply(node, node.core.on_message(None, message))
            else:
                node.sync.hold(height, message, node.core.height)
        else:
            self._apply(node, node.core.on_message(sender, message))

    def _admit(self, node: SimNode, raw: bytes, gossip: bool) -> None:
        """Admission, then what the driver does for an admitted transaction: start a waiting
        height early, and gossip it."""
        assert node.core is not None
        try:
            admitted = node.mempool.add(node.app.check_tx(raw))
        except XinchainError:
            return  # expired, replayed or a full mempool: refused, as on a node
        if not admitted:
            return
        core = node.core
        wait = node.pacer.on_transaction(core.height, core.step == Step.NEW_HEIGHT, self.now)
        if wait is not None:
            key = TimeoutKey(core.height, 0, Step.NEW_HEIGHT)
            self._push(self.now + wait, ("timeout", node.index, node.epoch, key))
        if gossip:
            flush_at = node.gossip.add(raw, self.now)
            if node.gossip.full():
                self._flush_gossip(node)
            elif flush_at is not None:
                self._push(flush_at, ("flush", node.index, node.epoch))

    def _flush_gossip(self, node: SimNode) -> None:
        frame = node.gossip.take()
        if frame:
            self._broadcast(node, TxBatch(tuple(frame)))

    def _broadcast(self, node: SimNode, message: NetworkMessage) -> None:
        for peer in range(self.config.validators):
            if peer != node.index:
                self._send(node, peer, message)

    def _decide(self, node: SimNode, action: Decide) -> None:
        height = action.block.header.height
        first_to_decide = not node.byzantine and height not in self.committed
        chaos = self.now < self.config.chaos_ms
        if first_to_decide and chaos and (height, node.index) in self.attack_targets:
            # the lock attack's accomplice in the network: cut off the one it let commit
            self.isolated[node.index] = self.now + self.random.randint(1_000, 3_000)
        elif first_to_decide and chaos and self.isolate_on_decide and self.random.random() < 0.3:
            self.isolated[node.index] = self.now + self.random.randint(300, 2_500)
        assert node.core is not None and node.source is not None
        node.source.commit(action.block, action.block_hash, action.certificate)
        if not node.byzantine:
            expected = self.committed.setdefault(height, (action.block_hash, _state_of(node)))
            if expected[0] != action.block_hash:
                raise Violation(
                    f"agreement: node {node.index} committed {action.block_hash} at height "
                    f"{height}, another honest node committed {expected[0]}"
                )
            if expected[1] != _state_of(node):
                raise Violation(f"state: node {node.index} diverged at height {height}")
        # What the driver does after a commit: pace the next height, apply a held proof.
        delay = node.pacer.after_commit(self.now, pending=len(node.mempool) > 0)
        actions = node.core.on_committed(height, delay)
        proof = node.sync.committed(height)
        if proof is not None:
            actions.extend(node.core.on_message(None, proof))
        self._apply(node, actions)

    def _serve_sync(self, node: SimNode, peer: int, first: int) -> None:
        if first < 1:
            return
        for height in node.sync.to_serve(peer, first, node.height, self.now):
            block, certificate = node.app.block(height), node.app.certificate(height)
            if block is None or certificate is None:
                break
            self._send(node, peer, CommitProof(block, certificate))

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

    def _send(self, node: SimNode, peer: int, message: NetworkMessage) -> None:
        for variant in self._byzantine_variants(node, peer, message):
            self._transmit(node.index, peer, variant)

    def _transmit(self, sender: int, peer: int, message: NetworkMessage) -> None:
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

    def _byzantine_variants(
        self, node: SimNode, peer: int, message: NetworkMessage
    ) -> list[NetworkMessage]:
        """What a Byzantine sender sends `peer` in place of `message`."""
        if not node.byzantine:
            return [message]
        own = (isinstance(message, Proposal) and message.proposer == node.index) or (
            isinstance(message, Vote) and message.validator == node.index
        )
        strategy = node.strategy
        if not own or not isinstance(message, Proposal | Vote):
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
        # Another block for the same height: the same transactions at another time (valid),
        # or with a state hash its transactions do not produce (invalid).
        tip = node.app.tip()
        request = ExecuteBlockRequest(
            height=proposal.height,
            time_ms=max(self.now, tip.time_ms) + 1 + peer,
            txs=tuple(node.mempool.take(8, 1 << 20)),
        )
        execution = node.app.execute_block(request)
        header = node.app.make_header(
            request, execution, round_number=proposal.round, proposer=node.index
        )
        if not valid:
            header = BlockHeader(**{**header.__dict__, "state_hash": _h(b"wrong" + bytes([peer]))})
        block = Block(header, tuple(checked.raw for checked in request.txs))
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

    def _lock_attack(
        self, node: SimNode, message: Proposal | Vote, peer: int
    ) -> list[NetworkMessage]:
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


def _state_of(node: SimNode) -> str:
    """A hash of a node's whole state table: what equal state is checked by."""
    digest = hashlib.sha256()
    for key, value in node.store.scan_prefix(Table.STATE, b""):
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.hexdigest()


def message_position(message: NetworkMessage) -> tuple[int | None, int]:
    if isinstance(message, Proposal | Vote):
        return message.height, message.round
    return None, 0


def run_seed(seed: int, config: SimConfig | None = None) -> Simulation:
    """Run one seed; raises `Violation` naming the broken invariant."""
    simulation = Simulation(seed, config)
    simulation.run()
    return simulation


__all__ = ["SimConfig", "Simulation", "TimeoutKey", "Violation", "run_seed"]
