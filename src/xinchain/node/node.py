"""One node: storage, application, mempool, the block producer, and what the API asks of them.

With one validator the node is its own quorum: it proposes, executes, signs the commit
certificate and commits, in one writer task (STYLE.md §2). The BFT core (next issue) replaces
`_produce_block` with proposals and votes through the same `Application` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from xinchain.contracts.governance import param
from xinchain.errors import ConfigError, NotFound
from xinchain.execution.app import (
    Application,
    Block,
    CommitRequest,
    ExecuteBlockRequest,
)
from xinchain.genesis import Genesis
from xinchain.mempool import Mempool
from xinchain.merkle import MerkleTree
from xinchain.node.home import Home
from xinchain.receipt import TxProof
from xinchain.storage import LmdbStore, Store
from xinchain.types import CommitCertificate, Transaction, ValidatorSignature, commit_statement


@dataclass(frozen=True)
class TxStatus:
    tx_id: str
    status: str  # "pending" or "committed"
    height: int | None = None
    index: int | None = None


class Node:
    def __init__(self, home: Home, name: str, store: Store | None = None) -> None:
        self.home = home
        self.name = name
        self.genesis: Genesis = home.genesis()
        self.suite = self.genesis.suite
        self.store = store or LmdbStore(home.node_dir(name) / "data")
        self.app = Application(self.store, self.genesis)
        self.mempool = Mempool()
        self.validator_key = home.validator_key(self.suite, name)
        public = self.validator_key.public_bytes().hex()
        indexes = [i for i, v in enumerate(self.genesis.validators) if v.public_key == public]
        if not indexes:
            raise ConfigError(f"node {name!r} holds a key that genesis lists as no validator")
        self.validator_index = indexes[0]
        if len(self.genesis.validators) != 1:
            raise ConfigError(
                f"genesis lists {len(self.genesis.validators)} validators; this build runs a "
                "single-validator chain"
            )
        self._work = asyncio.Event()
        self._committed = asyncio.Event()

    # --- transactions in -----------------------------------------------------------------------

    def submit(self, raw: bytes) -> tuple[str, bool]:
        """Admit a transaction; returns its id and whether it was new to the mempool."""
        checked = self.app.check_tx(raw)
        added = self.mempool.add(checked)
        self._work.set()
        return checked.tx_id, added

    def tx_status(self, tx_id: str) -> TxStatus:
        location = self.app.tx_location(tx_id)
        if location is not None:
            return TxStatus(tx_id, "committed", location[0], location[1])
        if tx_id in self.mempool:
            return TxStatus(tx_id, "pending")
        raise NotFound(f"no transaction {tx_id} is pending or committed", field="tx_id")

    async def wait_committed(self, tx_id: str, timeout_s: float) -> TxStatus:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.tx_status(tx_id)
            remaining = deadline - time.monotonic()
            if status.status == "committed" or remaining <= 0:
                return status
            self._committed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._committed.wait(), remaining)

    # --- block production ----------------------------------------------------------------------

    async def produce_forever(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while len(self.mempool):
                self._produce_block()
                self._committed.set()
                await asyncio.sleep(0)  # let the API serve between blocks

    def _produce_block(self) -> None:
        tip = self.app.tip()
        height = tip.height + 1
        self.mempool.drop_expired(height)
        txs = self.mempool.take(
            param(self.app.state, "block_txs_max"), param(self.app.state, "block_bytes_max")
        )
        if not txs:
            return
        time_ms = max(int(time.time() * 1000), tip.time_ms)
        request = ExecuteBlockRequest(height=height, time_ms=time_ms, txs=tuple(txs))
        execution = self.app.execute_block(request)
        header = self.app.make_header(
            request, execution, round_number=0, proposer=self.validator_index
        )
        block_hash = self.app.block_hash(header)
        signature = self.validator_key.sign(
            commit_statement(self.genesis.chain_id, height, block_hash)
        )
        certificate = CommitCertificate(
            height, block_hash, (ValidatorSignature(self.validator_index, signature.hex()),)
        )
        tx_ids = tuple(checked.tx_id for checked in txs)
        self.app.commit(
            CommitRequest(
                block=Block(header, tuple(checked.raw for checked in txs)),
                block_hash=block_hash,
                execution=execution,
                tx_ids=tx_ids,
                certificate=certificate,
            )
        )
        self.mempool.remove(list(tx_ids))

    # --- proofs --------------------------------------------------------------------------------

    def tx_proof(self, tx_id: str) -> TxProof:
        location = self.app.tx_location(tx_id)
        if location is None:
            raise NotFound(f"transaction {tx_id} is not committed", field="tx_id")
        height, index = location
        block = self.app.block(height)
        certificate = self.app.certificate(height)
        if block is None or certificate is None:
            raise NotFound(f"block {height} is not stored on this node", field="height")
        results = self.app.results(height)
        tree = MerkleTree(self.suite.hash, [result.encode() for result in results])
        return TxProof(
            result=results[index],
            result_proof=tree.inclusion_proof(index),
            header=block.header,
            certificate=certificate,
            genesis=self.genesis,
        )

    def anchored_digests(self, tx_id: str) -> list[bytes]:
        """The document digests a committed notary transaction anchored, in batch order."""
        location = self.app.tx_location(tx_id)
        block = None if location is None else self.app.block(location[0])
        if location is None or block is None:
            raise NotFound(f"transaction {tx_id} is not committed", field="tx_id")
        body = Transaction.decode(block.txs[location[1]]).body
        if body.contract != "notary":
            raise NotFound(f"transaction {tx_id} is no notary transaction", field="tx_id")
        return [body.args["hash"]] if body.method == "anchor" else list(body.args["hashes"])

    def block_with_hash(self, height: int) -> tuple[Block, str, CommitCertificate | None]:
        block = self.app.block(height)
        if block is None:
            raise NotFound(f"no block at height {height}", field="height")
        return block, self.app.block_hash(block.header), self.app.certificate(height)

    def close(self) -> None:
        self.store.close()
