"""SafetyRules: the only state that could make this validator equivocate, and its rules.

Every signature this validator makes as a consensus participant goes through here. The state
is persisted (fsync) *before* a signature is returned, so a validator that crashes and restarts
— losing everything else — still never signs two conflicting messages. Rules (docs/consensus.md
§Safety, after the Tendermint paper's Algorithm 1 and CometBFT's privval double-sign guard):

* first rule, monotonic steps: (height, round, step) of a signature never goes backwards;
  propose < prevote < precommit within a round.
* second rule, no double vote: at the same (height, round, step) only the same block may be
  signed again, and the stored signature is returned (SM2 signatures are randomized).
* third rule, the lock: once this validator precommits block B in round r of height h, it is
  locked on B; in a later round of h it prevotes another block only if that block carries a
  polka (2f+1 prevotes) from a round ≥ r, which the caller must show and this object verifies.
* fourth rule, precommit on a polka: a block is precommitted only with 2f+1 prevotes for it in
  that round, shown and verified. The proposal and the polka are persisted with the lock, so
  that a validator that restarts locked can still prove its lock to others and re-propose the
  block (without that a restart could leave locks that no polka can ever release).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from xinchain import codec
from xinchain.consensus.messages import (
    NO_ROUND,
    PRECOMMIT,
    PREVOTE,
    VOTE_STEPS,
    Proposal,
    Step,
    Vote,
    proposal_signing_bytes,
    vote_signing_bytes,
)
from xinchain.errors import XinchainError
from xinchain.types import quorum_size


class SafetyViolation(XinchainError):
    """Signing this would break a safety rule; the caller must not send it."""

    code = "safety_violation"


@dataclass(frozen=True)
class SafetyState:
    height: int = 0
    round: int = NO_ROUND
    step: int = 0  # a Step, stored as its number
    block_hash: str | None = None  # what was signed at (height, round, step)
    signature: str = ""  # hex of that signature, returned again on an identical request
    signed_digest: str = ""  # SHA-256 of the exact bytes signed: "identical" means these
    locked_round: int = NO_ROUND
    locked_hash: str | None = None

    def encode(self) -> bytes:
        """JSON, as `safety.json` has always held it."""
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> SafetyState:
        return cls(**json.loads(data))


@dataclass(frozen=True)
class LockEvidence:
    """The proposal this validator locked on and the polka that justified the lock."""

    proposal: Proposal
    polka: tuple[Vote, ...]

    def encode(self) -> bytes:
        return codec.encode(
            {"proposal": self.proposal.to_value(), "polka": [v.to_value() for v in self.polka]}
        )

    @classmethod
    def decode(cls, data: bytes) -> LockEvidence:
        value = codec.decode(data)
        return cls(
            Proposal.from_value(value["proposal"]),
            tuple(Vote.from_value(vote) for vote in value["polka"]),
        )


class SafetyStore(Protocol):
    """Keeps the encoded state and lock evidence (storage/safety.py has the file and memory
    stores). `save` must be durable when it returns: the signature leaves only after it."""

    def load(self) -> bytes | None: ...

    def save(self, data: bytes) -> None: ...

    def load_lock(self) -> bytes | None: ...

    def save_lock(self, data: bytes) -> None: ...


Sign = Callable[[bytes], bytes]
VerifyVote = Callable[[Vote], bool]


class SafetyRules:
    def __init__(
        self,
        chain_id: str,
        validator_count: int,
        store: SafetyStore,
        sign: Sign,
        verify_vote: VerifyVote,
    ) -> None:
        self._chain_id = chain_id
        self._quorum = quorum_size(validator_count)
        self._store = store
        self._sign = sign
        self._verify_vote = verify_vote
        saved = store.load()
        self.state = SafetyState() if saved is None else SafetyState.decode(saved)

    def sign_proposal(
        self, height: int, round_number: int, valid_round: int, block_hash: str
    ) -> bytes:
        self._check_order(height, round_number, Step.PROPOSE, block_hash)
        message = proposal_signing_bytes(
            self._chain_id, height, round_number, valid_round, block_hash
        )
        return self._sign_and_persist(height, round_number, Step.PROPOSE, block_hash, message)

    def sign_prevote(
        self,
        height: int,
        round_number: int,
        block_hash: str | None,
        polka: Sequence[Vote] = (),
    ) -> bytes:
        self._check_order(height, round_number, Step.PREVOTE, block_hash)
        if block_hash is not None:
            self._check_lock(height, block_hash, polka)
        message = vote_signing_bytes(self._chain_id, PREVOTE, height, round_number, block_hash)
        return self._sign_and_persist(height, round_number, Step.PREVOTE, block_hash, message)

    def sign_precommit(
        self,
        height: int,
        round_number: int,
        block_hash: str | None,
        evidence: LockEvidence | None = None,
    ) -> bytes:
        self._check_order(height, round_number, Step.PRECOMMIT, block_hash)
        if block_hash is not None:
            self._check_polka_for_precommit(height, round_number, block_hash, evidence)
        message = vote_signing_bytes(self._chain_id, PRECOMMIT, height, round_number, block_hash)
        return self._sign_and_persist(
            height, round_number, Step.PRECOMMIT, block_hash, message, evidence=evidence
        )

    def last_vote(self, validator: int) -> Vote | None:
        """The last vote this validator signed, rebuilt from the persisted state: a restarted
        validator sends it again rather than stay silent in the round it was voting in."""
        state = self.state
        kind = next((kind for kind, step in VOTE_STEPS.items() if step == state.step), None)
        if kind is None:
            return None
        return Vote(
            kind,
            state.height,
            state.round,
            state.block_hash,
            validator,
            bytes.fromhex(state.signature),
        )

    def lock_evidence(self, height: int) -> LockEvidence | None:
        """What this validator is locked on at `height`, kept across restarts."""
        state = self.state
        if state.height != height or state.locked_hash is None:
            return None
        saved = self._store.load_lock()
        evidence = None if saved is None else LockEvidence.decode(saved)
        if evidence is None or evidence.proposal.block_hash != state.locked_hash:
            return None
        return evidence

    # --- rules ---------------------------------------------------------------------------------

    def _check_order(
        self, height: int, round_number: int, step: int, block_hash: str | None
    ) -> None:
        """First and second rules: never go back; at the same step, only the same block."""
        last = self.state
        position, last_position = (height, round_number, step), (last.height, last.round, last.step)
        if position < last_position:
            raise SafetyViolation(
                f"already signed at height {last.height} round {last.round} step {last.step}; "
                f"refusing height {height} round {round_number} step {step}"
            )
        if position == last_position and block_hash != last.block_hash:
            raise SafetyViolation(
                f"already signed {last.block_hash} at height {height} round {round_number} step "
                f"{step}; refusing {block_hash}"
            )

    def _check_lock(self, height: int, block_hash: str, polka: Sequence[Vote]) -> None:
        """Third rule: locked on another block, prevote only with a polka from round ≥ lock."""
        state = self.state
        if state.height != height or state.locked_round == NO_ROUND:
            return
        if state.locked_hash == block_hash:
            return
        if self._is_polka(height, block_hash, polka, state.locked_round):
            return
        raise SafetyViolation(
            f"locked on {state.locked_hash} since round {state.locked_round}; refusing to prevote "
            f"{block_hash} without a polka from round {state.locked_round} or later"
        )

    def _check_polka_for_precommit(
        self, height: int, round_number: int, block_hash: str, evidence: LockEvidence | None
    ) -> None:
        """Fourth rule: precommit a block only on a verified polka for it in this round."""
        if (
            evidence is None
            or evidence.proposal.block_hash != block_hash
            or evidence.proposal.height != height
            or not self._is_polka(height, block_hash, evidence.polka, round_number)
            or {vote.round for vote in evidence.polka} != {round_number}
        ):
            raise SafetyViolation(
                f"refusing to precommit {block_hash} at height {height} round {round_number} "
                "without its proposal and a polka of that round"
            )

    def _is_polka(
        self, height: int, block_hash: str, polka: Sequence[Vote], from_round: int
    ) -> bool:
        rounds = {vote.round for vote in polka}
        if len(rounds) != 1 or next(iter(rounds)) < from_round:
            return False
        signers = {
            vote.validator
            for vote in polka
            if vote.kind == PREVOTE
            and vote.height == height
            and vote.block_hash == block_hash
            and self._verify_vote(vote)
        }
        return len(signers) >= self._quorum

    # --- persistence ---------------------------------------------------------------------------

    def _sign_and_persist(
        self,
        height: int,
        round_number: int,
        step: int,
        block_hash: str | None,
        message: bytes,
        *,
        evidence: LockEvidence | None = None,
    ) -> bytes:
        last = self.state
        digest = hashlib.sha256(message).hexdigest()
        if (height, round_number, step) == (last.height, last.round, last.step):
            if digest != last.signed_digest:  # e.g. the same block under another valid_round
                raise SafetyViolation(
                    f"already signed other bytes at height {height} round {round_number} "
                    f"step {step}"
                )
            return bytes.fromhex(last.signature)  # the identical request, signed before
        signature = self._sign(message)
        new_state = replace(
            last,
            height=height,
            round=round_number,
            step=step,
            block_hash=block_hash,
            signature=signature.hex(),
            signed_digest=digest,
        )
        if height != last.height:
            new_state = replace(new_state, locked_round=NO_ROUND, locked_hash=None)
        if step == Step.PRECOMMIT and block_hash is not None:
            assert evidence is not None  # the fourth rule demanded it
            self._store.save_lock(evidence.encode())
            new_state = replace(new_state, locked_round=round_number, locked_hash=block_hash)
        self._store.save(new_state.encode())  # persisted before the signature can leave this object
        self.state = new_state
        return signature
