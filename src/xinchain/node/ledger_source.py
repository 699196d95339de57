"""The consensus core's view of the ledger: build proposals, validate proposals, remember both.

A proposal is executed when it is built (the proposer) or first validated (everyone else), and
the execution is kept by block hash so that commit reuses it: a block executes once per node.
Validation re-derives every header field a validator can check; a block that fails any check
is remembered as invalid and prevoted nil.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from xinchain.contracts.governance import param
from xinchain.errors import XinchainError, ensure
from xinchain.execution.app import Application
from xinchain.mempool import Mempool
from xinchain.types import (
    Block,
    BlockHeader,
    CheckedTx,
    CommitCertificate,
    CommitRequest,
    ExecuteBlockRequest,
    ExecuteBlockResponse,
)

_log = logging.getLogger(__name__)

# How far ahead of this node's clock a proposer's block time may be. Clocks of consortium
# machines are NTP-synchronised to well under a second; 30 s tolerates a bad one without
# letting a proposer date blocks far into the future.
clock_drift_ms_max = 30_000
# A clock found off by more than clock_drift_ms_max is logged at most this often.
clock_warning_interval_s = 60.0
# Prepared blocks kept per height: a few rounds' proposals, plus an equivocator's extras.
prepared_blocks_max = 64


@dataclass(frozen=True)
class PreparedBlock:
    block: Block
    execution: ExecuteBlockResponse
    tx_ids: tuple[str, ...]


class LedgerSource:
    def __init__(self, app: Application, mempool: Mempool, clock_ms: Callable[[], int]) -> None:
        self.app = app
        self.mempool = mempool
        self.clock_ms = clock_ms
        self._prepared: dict[str, PreparedBlock] = {}
        self._invalid: set[str] = set()
        self.clock_offset_ms = 0  # this node's clock less the last committed block's time
        self._clock_warned_at = -clock_warning_interval_s

    def block_hash(self, header: BlockHeader) -> str:
        return self.app.block_hash(header)

    def propose_block(self, height: int, round_number: int, proposer: int) -> Block:
        tip = self.app.tip()
        self.mempool.drop_expired(height)
        txs = self.mempool.take(
            param(self.app.state, "block_txs_max"), param(self.app.state, "block_bytes_max")
        )
        time_ms = max(self.clock_ms(), tip.time_ms)
        request = ExecuteBlockRequest(height=height, time_ms=time_ms, txs=tuple(txs))
        execution = self.app.execute_block(request)
        header = self.app.make_header(
            request, execution, round_number=round_number, proposer=proposer
        )
        block = Block(header, tuple(checked.raw for checked in txs))
        self._remember(self.block_hash(header), block, execution, txs)
        return block

    def validate_block(self, block: Block, block_hash: str, certified: bool = False) -> bool:
        """Deterministic rules (cached by block hash), and, to vote for it, a time no further
        ahead of this node's clock than `clock_drift_ms_max`. A certified block (2f+1
        precommits) is followed whatever this node's clock says."""
        if not certified and not self._timely(block.header, block_hash):
            return False
        if block_hash in self._prepared:
            return True
        if block_hash in self._invalid:
            return False
        reason = self._invalid_because(block)
        if reason is not None:
            _log.warning("block %s is invalid: %s", block_hash[:16], reason)
            self._invalid.add(block_hash)
            return False
        return True

    def _timely(self, header: BlockHeader, block_hash: str) -> bool:
        ahead = header.time_ms - self.clock_ms()
        if ahead <= clock_drift_ms_max:
            return True
        self._warn_clock(
            f"block {block_hash[:16]} is dated {ahead} ms ahead of this node's clock (more than "
            f"{clock_drift_ms_max} ms): not voting for it; certified blocks are still followed. "
            "Check this machine's clock (NTP)"
        )
        return False

    def _warn_clock(self, message: str) -> None:
        now = time.monotonic()
        if now - self._clock_warned_at >= clock_warning_interval_s:
            self._clock_warned_at = now
            _log.warning("%s", message)

    def prepared(self, block_hash: str) -> PreparedBlock | None:
        return self._prepared.get(block_hash)

    def commit(
        self, block: Block, block_hash: str, certificate: CommitCertificate
    ) -> PreparedBlock:
        """Commit a decided block with the execution kept when it was built or validated, drop
        its transactions from the mempool and everything prepared for its height."""
        prepared = self._prepared.get(block_hash)
        ensure(prepared is not None, "a decided block was validated, so it is prepared")
        assert prepared is not None
        self.app.commit(
            CommitRequest(
                block=block,
                block_hash=block_hash,
                execution=prepared.execution,
                tx_ids=prepared.tx_ids,
                certificate=certificate,
            )
        )
        self.mempool.remove(list(prepared.tx_ids))
        self.forget()
        # How far this node's clock is from the time its peers agreed for the block: a little
        # ahead normally (the block was decided a moment ago); far off either way, a bad clock.
        self.clock_offset_ms = self.clock_ms() - block.header.time_ms
        if abs(self.clock_offset_ms) > clock_drift_ms_max:
            self._warn_clock(
                f"this node's clock is {self.clock_offset_ms} ms off the time of block "
                f"{block.header.height} that the validators certified: check the clock (NTP)"
            )
        return prepared

    def forget(self) -> None:
        """Drop everything prepared for the height just committed."""
        self._prepared.clear()
        self._invalid.clear()

    def _invalid_because(self, block: Block) -> str | None:
        header = block.header
        tip = self.app.tip()
        expected = {
            "chain_id": self.app.genesis.chain_id,
            "genesis_hash": self.app.genesis_hash,
            "height": tip.height + 1,
            "parent_hash": tip.block_hash,
            "validators_hash": self.app.validators_hash,
            "tx_count": len(block.txs),
        }
        for name, value in expected.items():
            if getattr(header, name) != value:
                return f"{name} is {getattr(header, name)!r}, expected {value!r}"
        if header.time_ms < tip.time_ms:
            return f"time {header.time_ms} is before the parent's {tip.time_ms}"
        if len(block.txs) > param(self.app.state, "block_txs_max"):
            return f"{len(block.txs)} transactions, more than block_txs_max"
        if sum(len(raw) for raw in block.txs) > param(self.app.state, "block_bytes_max"):
            return "more transaction bytes than block_bytes_max"
        try:
            txs = [self._checked(raw) for raw in block.txs]
        except XinchainError as exc:
            return f"a transaction is invalid: {exc}"
        request = ExecuteBlockRequest(height=header.height, time_ms=header.time_ms, txs=tuple(txs))
        execution = self.app.execute_block(request)
        derived = self.app.make_header(
            request, execution, round_number=header.round, proposer=header.proposer
        )
        if derived != header:
            return "its roots or state hash differ from executing its transactions"
        self._remember(self.block_hash(header), block, execution, txs)
        return None

    def _checked(self, raw: bytes) -> CheckedTx:
        """Signature checked once per node: reuse the mempool's admission when it has the tx."""
        pending = self.mempool.get_raw(raw)
        if pending is not None:
            return pending
        return self.app.verify_tx(raw)

    def _remember(
        self, block_hash: str, block: Block, execution: ExecuteBlockResponse, txs: list[CheckedTx]
    ) -> None:
        if len(self._prepared) >= prepared_blocks_max:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[block_hash] = PreparedBlock(
            block, execution, tuple(checked.tx_id for checked in txs)
        )
