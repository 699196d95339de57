"""A block source for unit tests of the consensus core: a block's state hash chains its
transactions' hashes, so blocks are cheap, deterministic and checkable without an application.

The simulator runs the real ledger source and application (sim/); these tests look at the core
alone, one message at a time.
"""

from __future__ import annotations

import hashlib

from xinchain import codec
from xinchain.types import Block, BlockHeader, CommitCertificate

CHAIN_ID = "sim"
ZERO = "0" * 64


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HashChainSource:
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

    def validate_block(self, block: Block, block_hash: str, certified: bool = False) -> bool:
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
