"""One node: storage, application, mempool, consensus, and what the API asks of them.

A node whose home holds a validator key is a validator; one without is an observer that keeps a
full copy of the chain and votes on nothing (the regulator's node). Consensus runs in the
driver's single writer task (node/consensus_driver.py); with one validator the node is its own
quorum and the same code commits every block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xinchain.appspec import AppSpec, check_apps
from xinchain.client.member import Member, outcome, validity_blocks
from xinchain.consensus.messages import Vote, vote_signing_bytes
from xinchain.consensus.safety import SafetyRules
from xinchain.crypto.parallel import ParallelVerifier
from xinchain.errors import ConfigError, NotFound, ReplayedTransaction, XinchainError
from xinchain.execution.app import Application
from xinchain.genesis import Genesis
from xinchain.mempool import Mempool
from xinchain.merkle import MerkleTree
from xinchain.node.consensus_driver import ConsensusDriver
from xinchain.node.home import Home
from xinchain.node.limits import ConnectionBudget
from xinchain.private.service import PrivateData
from xinchain.receipt import TxProof
from xinchain.storage import LmdbStore, Store
from xinchain.storage.safety import FileSafetyStore
from xinchain.types import Block, CommitCertificate, Transaction, TxResult

_log = logging.getLogger(__name__)
# Transactions admitted together whose signatures go to worker processes (fewer are verified
# in place: a round trip to a worker costs about as much as a few signatures).
verify_offload_min = 32


def verify_workers(validators: int) -> int:
    """Worker processes verifying signatures: XINCHAIN_VERIFY_WORKERS when set; otherwise all
    cores but one for a chain of one validator, and none when several validators may share
    this machine's cores (a local consortium), where offloading only adds copying."""
    configured = os.environ.get("XINCHAIN_VERIFY_WORKERS")
    if configured is not None:
        try:
            return max(0, int(configured))
        except ValueError:
            raise ConfigError(
                f"XINCHAIN_VERIFY_WORKERS is {configured!r}; expected a number of processes"
            ) from None
    return max(0, (os.cpu_count() or 1) - 1) if validators == 1 else 0


@dataclass(frozen=True)
class TxStatus:
    tx_id: str
    status: str  # "pending" or "committed"
    height: int | None = None
    index: int | None = None


class Node:
    def __init__(
        self, home: Home, name: str, apps: Sequence[AppSpec], store: Store | None = None
    ) -> None:
        check_apps(apps)
        self.home = home
        self.name = name
        self.apps = tuple(apps)
        self.genesis: Genesis = home.genesis()
        self.suite = self.genesis.suite
        self.store = store or LmdbStore(home.node_dir(name) / "data")
        self.app = Application(self.store, self.genesis, [app.contract() for app in self.apps])
        self.chain = self.app.chain  # the query side: what the API and the apps' views read
        self.mempool = Mempool()
        self.validator_index = self._validator_index(home, name)
        safety = None
        if self.validator_index is not None:
            key = home.validator_key(self.suite, name)
            safety = SafetyRules(
                self.genesis.chain_id,
                len(self.genesis.validators),
                FileSafetyStore(home.node_dir(name) / "safety.json"),
                key.sign,
                self._verify_vote,
            )
        self.verifier = (
            ParallelVerifier(self.genesis.suite_name, workers)
            if (workers := verify_workers(len(self.genesis.validators)))
            else None
        )
        self._committed = asyncio.Event()
        self.driver = ConsensusDriver(
            app=self.app,
            mempool=self.mempool,
            validator_index=self.validator_index,
            safety=safety,
            on_commit=self._committed.set,
            on_block=self._block_committed,
        )
        # Called with (height, tx ids and results in block order) after each commit.
        self.block_listeners: list[
            Callable[[int, tuple[str, ...], tuple[TxResult, ...]], None]
        ] = []
        # The caps on the node's ports and their counters, set by run_node (None in tests
        # that serve no port); /v1/status shows them.
        self.connections: ConnectionBudget | None = None
        # Private data sealed to this node's org (xinchain/private/service.py).
        self.private = PrivateData(self)

    def disk_status(self) -> dict[str, Any] | None:
        """Free space under the ledger against the node's marks (None: not on disk)."""
        return self.store.space.status() if isinstance(self.store, LmdbStore) else None

    def _validator_index(self, home: Home, name: str) -> int | None:
        """This node's place in the validator set, or None for an observer (no key)."""
        if not (home.node_dir(name) / "validator.pem").exists():
            return None
        public = home.validator_key(self.suite, name).public_bytes().hex()
        for index, validator in enumerate(self.genesis.validators):
            if validator.public_key == public:
                if validator.name != name:
                    raise ConfigError(
                        f"node {name!r} holds the key genesis lists for {validator.name!r}"
                    )
                return index
        raise ConfigError(f"node {name!r} holds a key that genesis lists as no validator")

    def _verify_vote(self, vote: Vote) -> bool:
        if vote.validator >= len(self.genesis.validators):
            return False
        public_key = bytes.fromhex(self.genesis.validators[vote.validator].public_key)
        message = vote_signing_bytes(
            self.genesis.chain_id, vote.kind, vote.height, vote.round, vote.block_hash
        )
        return self.suite.verify(public_key, message, vote.signature)

    def _block_committed(
        self, height: int, tx_ids: tuple[str, ...], results: tuple[TxResult, ...]
    ) -> None:
        for listener in list(self.block_listeners):
            try:
                listener(height, tx_ids, results)
            except Exception:  # a listener's failure must not stop consensus
                _log.exception("block listener failed at height %d", height)

    # --- transactions in -----------------------------------------------------------------------

    async def submit_many(self, raws: list[bytes]) -> list[str | XinchainError]:
        """Admit transactions in bulk: each one's id, or the error that refused it. Their
        signatures are verified together, in worker processes when the node has them."""
        answers: list[str | XinchainError] = [""] * len(raws)
        pending: list[tuple[int, bytes, Transaction, str]] = []
        for position, raw in enumerate(raws):
            try:  # the replay guard is read below, for all of them at once
                tx, tx_id = self.app.check_tx_unsigned(raw, replay=False)
            except XinchainError as exc:
                answers[position] = exc
                continue
            pending.append((position, raw, tx, tx_id))
        items = [
            (tx.body.public_key, tx.body.signing_message(), tx.signature) for *_, tx, _ in pending
        ]
        offload = self.verifier is not None and len(items) >= verify_offload_min
        if offload and self.verifier is not None:
            valid = await self.verifier.verify(items)
        else:
            valid = [self.suite.verify(*item) for item in items]
        # After the await: a transaction may have committed meanwhile.
        committed = self.app.committed_ids([tx_id for *_, tx_id in pending])
        for (position, raw, tx, tx_id), ok in zip(pending, valid, strict=True):
            try:
                checked = self.app.signature_checked(tx, tx_id, ok)
                if tx_id in committed:
                    raise ReplayedTransaction(
                        f"transaction {tx_id} was already accepted", field="tx_id"
                    )
                if self.mempool.add(checked):
                    self.driver.transaction_admitted(raw, gossip=True)
                answers[position] = tx_id
            except XinchainError as exc:
                answers[position] = exc
        return answers

    def submit(self, raw: bytes) -> tuple[str, bool]:
        """Admit a transaction; returns its id and whether it was new to the mempool."""
        checked = self.app.check_tx(raw)
        added = self.mempool.add(checked)
        if added:
            self.driver.transaction_admitted(raw, gossip=True)
        return checked.tx_id, added

    def tx_status(self, tx_id: str) -> TxStatus:
        location = self.app.tx_location(tx_id)
        if location is not None:
            return TxStatus(tx_id, "committed", location[0], location[1])
        if tx_id in self.mempool:
            return TxStatus(tx_id, "pending")
        raise NotFound(f"no transaction {tx_id} is pending or committed", field="tx_id")

    def member(self, org: str) -> Member:
        """This node's org `org` as a signer, with the key in the node's home."""
        return Member(self.genesis, org, self.home.org_key(self.suite, org))

    def submit_call(
        self,
        member: Member,
        contract: str,
        method: str,
        args: dict[str, Any],
        validity: int = validity_blocks,
    ) -> str:
        """Sign a call as `member` and admit it here (gossiped like any other); its id."""
        tip = self.app.tip().height
        tx = member.transaction(contract, method, args, tip=tip, validity=validity)
        tx_id, _ = self.submit(tx.encode())
        return tx_id

    async def call(
        self,
        member: Member,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        wait_s: float,
        validity: int = validity_blocks,
    ) -> dict[str, Any]:
        """`submit_call`, then wait for the commit: the result's data with its height and id,
        `CallRefused` if the contract refused it, or an error if not committed in `wait_s`."""
        tx_id = self.submit_call(member, contract, method, args, validity)
        status = await self.wait_committed(tx_id, wait_s)
        if status.height is None or status.index is None:
            raise XinchainError(
                f"transaction {tx_id} not committed within {wait_s:.0f} s", field="tx"
            )
        result = self.app.results(status.height)[status.index]
        return outcome(tx_id, status.height, result.ok, result.error, result.data)

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

    def committed_tx(self, tx_id: str) -> Transaction:
        """A committed transaction, decoded (apps read their own transactions' arguments)."""
        location = self.app.tx_location(tx_id)
        block = None if location is None else self.app.block(location[0])
        if location is None or block is None:
            raise NotFound(f"transaction {tx_id} is not committed", field="tx_id")
        return Transaction.decode(block.txs[location[1]])

    def block_with_hash(self, height: int) -> tuple[Block, str, CommitCertificate | None]:
        block = self.app.block(height)
        if block is None:
            raise NotFound(f"no block at height {height}", field="height")
        return block, self.app.block_hash(block.header), self.app.certificate(height)

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
        self.store.close()
