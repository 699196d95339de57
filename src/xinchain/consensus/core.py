"""The consensus core: Tendermint (Buchman, Kwon, Milosevic 2018, Algorithm 1) as a sans-IO
state machine (STYLE.md §1).

Inputs are events — `start()`, `on_message()`, `on_timeout()`, `on_committed()` — and the output
of each is a list of actions — broadcast, send to one peer, schedule a timeout, decide a block,
note a peer that is behind. The core never touches sockets, clocks or disks: the node (real
network) and the simulator (seeded fake network) drive the same code. Every signature goes
through `SafetyRules` (safety.py); the lock lives there, not here.

The rules below carry the line numbers of Algorithm 1 in the paper; docs/consensus.md states the
protocol, its safety and liveness argument, and the invariants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

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
from xinchain.consensus.safety import LockEvidence, SafetyRules, SafetyViolation
from xinchain.errors import CertificateInvalid, ensure
from xinchain.types import (
    Block,
    BlockHeader,
    CommitCertificate,
    ValidatorSignature,
    check_certificate,
    quorum_size,
)

_log = logging.getLogger(__name__)

# Messages for the next height are kept until we get there; more than this is a flood.
future_messages_max = 1_000
# Votes more than this many rounds ahead of ours are dropped: honest rounds advance one at a
# time, and it bounds the per-round state a Byzantine validator can make us keep.
rounds_ahead_max = 100
# Distinct votes kept per validator, kind and round. An honest validator signs one; an
# equivocator's conflicting votes are kept (a few) so that any polka it joined can be seen.
votes_per_validator_max = 4


@dataclass(frozen=True)
class Timeouts:
    """Milliseconds; each grows by its delta every round, so that rounds eventually last long
    enough for any finite network delay (partial synchrony)."""

    propose_ms: int = 1_000
    propose_delta_ms: int = 500
    prevote_ms: int = 500
    prevote_delta_ms: int = 250
    precommit_ms: int = 500
    precommit_delta_ms: int = 250
    gossip_ms: int = 1_000
    round_growth_max: int = 60  # rounds after which timeouts stop growing


@dataclass(frozen=True)
class TimeoutKey:
    height: int
    round: int
    step: Step | Literal["gossip"]  # the step whose timeout this is, or the gossip timer


@dataclass(frozen=True)
class Broadcast:
    message: Message


@dataclass(frozen=True)
class SendTo:
    peer: int
    message: Message


@dataclass(frozen=True)
class ScheduleTimeout:
    key: TimeoutKey
    delay_ms: int


@dataclass(frozen=True)
class Decide:
    block: Block
    block_hash: str
    certificate: CommitCertificate


@dataclass(frozen=True)
class PeerBehind:
    peer: int
    height: int


Action = Broadcast | SendTo | ScheduleTimeout | Decide | PeerBehind


class BlockSource(Protocol):
    """What the core asks of the application side; implementations cache by block hash."""

    def propose_block(self, height: int, round_number: int, proposer: int) -> Block: ...

    def validate_block(self, block: Block, block_hash: str, certified: bool = False) -> bool:
        """Whether the block may be voted for (`certified` False) or followed: `certified`
        means 2f+1 validators precommitted it, so only the deterministic rules apply (not,
        e.g., how its time compares with this node's clock)."""
        ...

    def block_hash(self, header: BlockHeader) -> str: ...


VerifySignature = Callable[[int, bytes, bytes], bool]  # (validator, message, signature)


class ConsensusCore:
    def __init__(
        self,
        *,
        chain_id: str,
        validator_count: int,
        self_index: int | None,
        safety: SafetyRules | None,
        source: BlockSource,
        verify: VerifySignature,
        height: int,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        ensure((self_index is None) == (safety is None), "a validator has SafetyRules")
        self.chain_id = chain_id
        self.n = validator_count
        self.quorum = quorum_size(validator_count)
        self._labels = tuple(f"validator {index}" for index in range(validator_count))
        self.f_plus_one = validator_count - self.quorum + 1
        self.self_index = self_index
        self.safety = safety
        self.source = source
        self.verify = verify
        self.timeouts = timeouts
        self.height = height
        self._future: list[tuple[int | None, Message]] = []
        self._reset_height()

    def _reset_height(self) -> None:
        self.round = 0
        self.step: Step = Step.NEW_HEIGHT
        self.valid_block: Block | None = None
        self.valid_hash: str | None = None
        self.valid_round = NO_ROUND
        self.proposals: dict[int, Proposal] = {}
        # (kind, round) → validator → block hash → vote. An equivocating validator may have
        # several; each counts towards its own block, and a validator counts once in totals.
        self.votes: dict[tuple[str, int], dict[int, dict[str | None, Vote]]] = {}
        self._fired: set[tuple[str, int]] = set()  # "for the first time" guards per round

    # --- events --------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Begin (or, after a restart, resume) the current height.

        A validator that restarts resumes the round it last signed in, and restores the
        proposal and polka of its lock, so that it can prove the lock and re-propose the block.
        """
        first_round = 0
        if self.safety is not None and self.safety.state.height == self.height:
            first_round = max(self.safety.state.round, 0)
            evidence = self.safety.lock_evidence(self.height)
            if evidence is not None:
                proposal = evidence.proposal
                self.proposals[proposal.round] = proposal
                for vote in evidence.polka:
                    self._accept_vote(vote)
                self.valid_block, self.valid_hash = proposal.block, proposal.block_hash
                self.valid_round = self.safety.state.locked_round
        actions = self._start_round(first_round)
        actions.extend(self._resend_last_vote())
        actions.append(
            ScheduleTimeout(TimeoutKey(self.height, self.round, "gossip"), self.timeouts.gossip_ms)
        )
        return actions + self._evaluate()

    def on_message(self, sender: int | None, message: Message) -> list[Action]:
        if isinstance(message, CommitProof):
            return self._on_commit_proof(message)
        height = message.height
        if height < self.height:
            return [] if sender is None else [PeerBehind(sender, height)]
        if height > self.height:
            if height == self.height + 1 and len(self._future) < future_messages_max:
                self._future.append((sender, message))
            return []
        if message.round > self.round + rounds_ahead_max:
            return []
        accepted = (
            self._accept_proposal(message)
            if isinstance(message, Proposal)
            else self._accept_vote(message)
        )
        return self._evaluate() if accepted else []

    def on_timeout(self, key: TimeoutKey) -> list[Action]:
        if key.step == "gossip":
            return self._gossip(stalled=(key.height, key.round) == (self.height, self.round))
        if key.height != self.height:
            return []
        if key.step == Step.NEW_HEIGHT and self.step == Step.NEW_HEIGHT:
            return self._start_round(0) + self._evaluate()
        if key.round != self.round:
            return []
        actions: list[Action] = []
        if key.step == Step.PROPOSE and self.step == Step.PROPOSE:  # line 57
            actions = self._vote(PREVOTE, None)
            self.step = Step.PREVOTE
        elif key.step == Step.PREVOTE and self.step == Step.PREVOTE:  # line 61
            actions = self._vote(PRECOMMIT, None)
            self.step = Step.PRECOMMIT
        elif key.step == Step.PRECOMMIT and self.step != Step.DECIDED:  # line 65
            actions = self._start_round(self.round + 1)
        return actions + self._evaluate()

    def on_committed(self, height: int, delay_ms: int) -> list[Action]:
        """The node applied the decided block of `height`; move on to the next height."""
        ensure(height == self.height and self.step == Step.DECIDED, "commit follows decide")
        self.height += 1
        self._reset_height()
        actions: list[Action] = [
            ScheduleTimeout(TimeoutKey(self.height, 0, Step.NEW_HEIGHT), delay_ms)
        ]
        pending, self._future = self._future, []
        for sender, message in pending:
            actions.extend(self.on_message(sender, message))
        return actions

    # --- accepting messages --------------------------------------------------------------------

    def proposer(self, height: int, round_number: int) -> int:
        return (height + round_number) % self.n

    def _accept_proposal(self, proposal: Proposal) -> bool:
        if proposal.round in self.proposals:
            return False  # the first valid proposal of a round counts; an equivocator's second not
        if proposal.proposer != self.proposer(proposal.height, proposal.round):
            return False
        if proposal.valid_round >= proposal.round:
            return False
        if proposal.block.header.height != proposal.height:
            return False
        if self.source.block_hash(proposal.block.header) != proposal.block_hash:
            return False
        message = proposal_signing_bytes(
            self.chain_id,
            proposal.height,
            proposal.round,
            proposal.valid_round,
            proposal.block_hash,
        )
        if not self.verify(proposal.proposer, message, proposal.signature):
            return False
        self.proposals[proposal.round] = proposal
        return True

    def _accept_vote(self, vote: Vote) -> bool:
        if vote.validator >= self.n:
            return False
        known = self.votes.get((vote.kind, vote.round), {}).get(vote.validator, {})
        if vote.block_hash in known or len(known) >= votes_per_validator_max:
            return False  # a duplicate, or an equivocator past what we keep of it
        if not self.verify(vote.validator, self._vote_bytes(vote), vote.signature):
            return False  # nothing is recorded for a vote that does not verify
        by_round = self.votes.setdefault((vote.kind, vote.round), {})
        by_round.setdefault(vote.validator, {})[vote.block_hash] = vote
        return True

    def _vote_bytes(self, vote: Vote) -> bytes:
        return vote_signing_bytes(
            self.chain_id, vote.kind, vote.height, vote.round, vote.block_hash
        )

    def _on_commit_proof(self, proof: CommitProof) -> list[Action]:
        header = proof.block.header
        certificate = proof.certificate
        if header.height != self.height or self.step == Step.DECIDED:
            return []
        block_hash = self.source.block_hash(header)
        if certificate.block_hash != block_hash or certificate.height != header.height:
            return []
        try:
            check_certificate(certificate, self.chain_id, self._labels, self.verify)
        except CertificateInvalid:
            return []
        if not self.source.validate_block(proof.block, block_hash, certified=True):
            return []
        self.step = Step.DECIDED
        return [Decide(proof.block, block_hash, certificate)]

    # --- the rules of Algorithm 1 --------------------------------------------------------------

    def _evaluate(self) -> list[Action]:
        """Apply rules until none fires; each fires at most once per state change."""
        actions: list[Action] = []
        while self.step != Step.DECIDED:
            fired = self._apply_one_rule()
            if fired is None:
                break
            actions.extend(fired)
        return actions

    def _apply_one_rule(self) -> list[Action] | None:
        for rule in (
            self._rule_decide,
            self._rule_skip_round,
            self._rule_prevote_proposal,
            self._rule_polka_for_proposal,
            self._rule_polka_for_nil,
            self._rule_timeout_prevote,
            self._rule_timeout_precommit,
        ):
            fired = rule()
            if fired is not None:
                return fired
        return None

    def _rule_decide(self) -> list[Action] | None:
        """Line 49: a proposal of any round with 2f+1 precommits for it is decided."""
        for round_number, proposal in self.proposals.items():
            precommits = self._votes_for(PRECOMMIT, round_number, proposal.block_hash)
            if len(precommits) < self.quorum:
                continue
            if not self.source.validate_block(proposal.block, proposal.block_hash, certified=True):
                continue
            signatures = tuple(
                ValidatorSignature(vote.validator, vote.signature.hex())
                for vote in sorted(precommits, key=lambda vote: vote.validator)
            )
            certificate = CommitCertificate(
                self.height, round_number, proposal.block_hash, signatures
            )
            self.step = Step.DECIDED
            return [Decide(proposal.block, proposal.block_hash, certificate)]
        return None

    def _rule_skip_round(self) -> list[Action] | None:
        """Line 55: f+1 validators are in a later round, so at least one honest one is."""
        later = [r for r in self._rounds_seen() if r > self.round]
        for round_number in sorted(later, reverse=True):
            if len(self._senders_at(round_number)) >= self.f_plus_one:
                return self._start_round(round_number)
        return None

    def _rule_prevote_proposal(self) -> list[Action] | None:
        """Lines 22 and 28: prevote the round's proposal, if valid and SafetyRules agree."""
        proposal = self.proposals.get(self.round)
        if self.step != Step.PROPOSE or proposal is None:
            return None
        polka: list[Vote] = []
        if proposal.valid_round != NO_ROUND:
            polka = self._votes_for(PREVOTE, proposal.valid_round, proposal.block_hash)
            if len(polka) < self.quorum:
                return None  # wait for the polka, or for the propose timeout
        target = None
        if self.source.validate_block(proposal.block, proposal.block_hash):
            target = proposal.block_hash
        self.step = Step.PREVOTE
        return self._vote(PREVOTE, target, polka)

    def _rule_polka_for_proposal(self) -> list[Action] | None:
        """Line 36: 2f+1 prevotes for the round's valid proposal: lock (precommit) and record."""
        proposal = self.proposals.get(self.round)
        if proposal is None or self.step < Step.PREVOTE or ("polka", self.round) in self._fired:
            return None
        if len(self._votes_for(PREVOTE, self.round, proposal.block_hash)) < self.quorum:
            return None
        if not self.source.validate_block(proposal.block, proposal.block_hash):
            return None
        self._fired.add(("polka", self.round))
        actions: list[Action] = []
        if self.step == Step.PREVOTE:
            polka = self._votes_for(PREVOTE, self.round, proposal.block_hash)
            evidence = LockEvidence(proposal, tuple(polka))
            actions = self._vote(PRECOMMIT, proposal.block_hash, evidence=evidence)
            self.step = Step.PRECOMMIT
        self.valid_block, self.valid_hash, self.valid_round = (
            proposal.block,
            proposal.block_hash,
            self.round,
        )
        return actions

    def _rule_polka_for_nil(self) -> list[Action] | None:
        """Line 44: 2f+1 prevotes for nil: precommit nil."""
        if self.step != Step.PREVOTE:
            return None
        if len(self._votes_for(PREVOTE, self.round, None)) < self.quorum:
            return None
        self.step = Step.PRECOMMIT
        return self._vote(PRECOMMIT, None)

    def _rule_timeout_prevote(self) -> list[Action] | None:
        """Line 34: 2f+1 prevotes of any kind: start the prevote timeout, once."""
        if self.step != Step.PREVOTE or ("prevote_timer", self.round) in self._fired:
            return None
        if len(self.votes.get((PREVOTE, self.round), {})) < self.quorum:
            return None
        self._fired.add(("prevote_timer", self.round))
        delay = self._grow(self.timeouts.prevote_ms, self.timeouts.prevote_delta_ms)
        return [ScheduleTimeout(TimeoutKey(self.height, self.round, Step.PREVOTE), delay)]

    def _rule_timeout_precommit(self) -> list[Action] | None:
        """Line 47: 2f+1 precommits of any kind: start the precommit timeout, once."""
        if ("precommit_timer", self.round) in self._fired:
            return None
        if len(self.votes.get((PRECOMMIT, self.round), {})) < self.quorum:
            return None
        self._fired.add(("precommit_timer", self.round))
        delay = self._grow(self.timeouts.precommit_ms, self.timeouts.precommit_delta_ms)
        return [ScheduleTimeout(TimeoutKey(self.height, self.round, Step.PRECOMMIT), delay)]

    # --- helpers -------------------------------------------------------------------------------

    def _start_round(self, round_number: int) -> list[Action]:
        """Line 11: StartRound. The proposer re-proposes its valid block if it has one."""
        self.round = round_number
        self.step = Step.PROPOSE
        delay = self._grow(self.timeouts.propose_ms, self.timeouts.propose_delta_ms)
        actions: list[Action] = [
            ScheduleTimeout(TimeoutKey(self.height, round_number, Step.PROPOSE), delay)
        ]
        if (
            self.self_index is not None
            and self.proposer(self.height, round_number) == self.self_index
        ):
            actions.extend(self._propose())
        return actions

    def _resend_last_vote(self) -> list[Action]:
        """After a restart in the middle of a round: vote again exactly as before the crash."""
        if self.safety is None or self.self_index is None:
            return []
        vote = self.safety.last_vote(self.self_index)
        if vote is None or (vote.height, vote.round) != (self.height, self.round):
            return []
        self.votes.setdefault((vote.kind, vote.round), {}).setdefault(vote.validator, {})[
            vote.block_hash
        ] = vote
        self.step = Step.PREVOTE if vote.kind == PREVOTE else Step.PRECOMMIT
        return [Broadcast(vote)]

    def _propose(self) -> list[Action]:
        assert self.safety is not None and self.self_index is not None
        if self.valid_block is not None and self.valid_hash is not None:
            block, block_hash = self.valid_block, self.valid_hash
        else:
            block = self.source.propose_block(self.height, self.round, self.self_index)
            block_hash = self.source.block_hash(block.header)
        try:
            signature = self.safety.sign_proposal(
                self.height, self.round, self.valid_round, block_hash
            )
        except SafetyViolation as exc:
            _log.warning("not proposing: %s", exc)
            return []
        proposal = Proposal(
            self.height, self.round, self.valid_round, block, block_hash, self.self_index, signature
        )
        self.proposals[self.round] = proposal
        return [Broadcast(proposal)]

    def _vote(
        self,
        kind: str,
        block_hash: str | None,
        polka: list[Vote] | None = None,
        *,
        evidence: LockEvidence | None = None,
    ) -> list[Action]:
        if self.safety is None or self.self_index is None:
            return []  # an observer follows, it does not vote
        try:
            if kind == PREVOTE:
                signature = self.safety.sign_prevote(
                    self.height, self.round, block_hash, polka or []
                )
            else:
                signature = self.safety.sign_precommit(
                    self.height, self.round, block_hash, evidence
                )
        except SafetyViolation as exc:
            if block_hash is None:
                _log.warning("not voting: %s", exc)
                return []
            _log.info("voting nil instead: %s", exc)
            return self._vote(kind, None)
        vote = Vote(kind, self.height, self.round, block_hash, self.self_index, signature)
        mine = self.votes.setdefault((kind, self.round), {}).setdefault(self.self_index, {})
        mine.setdefault(block_hash, vote)
        return [Broadcast(vote)]

    def _votes_for(self, kind: str, round_number: int, block_hash: str | None) -> list[Vote]:
        votes = self.votes.get((kind, round_number), {})
        return [by_block[block_hash] for by_block in votes.values() if block_hash in by_block]

    def _rounds_seen(self) -> set[int]:
        return {round_number for _, round_number in self.votes} | set(self.proposals)

    def _senders_at(self, round_number: int) -> set[int]:
        senders = {
            validator
            for kind in (PREVOTE, PRECOMMIT)
            for validator in self.votes.get((kind, round_number), {})
        }
        proposal = self.proposals.get(round_number)
        if proposal is not None:
            senders.add(proposal.proposer)
        return senders

    def _grow(self, base_ms: int, delta_ms: int) -> int:
        return base_ms + delta_ms * min(self.round, self.timeouts.round_growth_max)

    def _gossip(self, *, stalled: bool) -> list[Action]:
        """Re-send what this round needs, so that dropped messages are not lost for good (the
        paper assumes gossip delivers every message a correct process has to all others).

        Only when stalled — still in the height and round the timer was set in, a whole gossip
        interval later: a chain that makes progress never re-sends its (large) proposals. Sent:
        the proposals of this round and of the valid round, and every vote held for this round,
        the previous one and the valid round."""
        actions: list[Action] = [
            ScheduleTimeout(TimeoutKey(self.height, self.round, "gossip"), self.timeouts.gossip_ms)
        ]
        if self.step == Step.DECIDED or not stalled:
            return actions
        proposal = self.proposals.get(self.round)
        if proposal is not None:
            actions.append(Broadcast(proposal))
        if self.valid_round != NO_ROUND and self.valid_round in self.proposals:
            actions.append(Broadcast(self.proposals[self.valid_round]))
        # The previous round too: a validator that moved on by its precommit timeout may hold
        # the last precommit the others need to start theirs.
        rounds = {self.round, self.round - 1, self.valid_round}
        for (_, round_number), votes in sorted(self.votes.items()):
            if round_number in rounds:
                for by_block in votes.values():
                    actions.extend(Broadcast(vote) for vote in by_block.values())
        return actions
