"""Wires the sans-IO consensus core to asyncio, the P2P transport and the ledger.

One writer (STYLE.md §2): a single task drains one bounded queue of events — peer messages,
timeouts, sync proofs — into the core, and carries out the actions it returns in order. The
node's own votes take the same path as a peer's. Commits happen here, in that task.

Besides consensus the driver gossips transactions (each node sends what it admitted to its
peers, who admit it into their own mempools) and keeps lagging nodes in step: every node
announces its height, and a node that hears of a greater one asks that peer for the missing
blocks with their commit certificates (block sync), which the core verifies before applying.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable
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
    CommitProof,
    Message,
    Step,
    decode_message,
    encode_message,
)
from xinchain.consensus.safety import SafetyRules
from xinchain.consensus.sync import BlockSync, Pacer, SyncConfig, TxGossip
from xinchain.errors import DecodeError, XinchainError
from xinchain.execution.app import Application
from xinchain.mempool import Mempool
from xinchain.node.ledger_source import LedgerSource
from xinchain.p2p.transport import Transport
from xinchain.types import TxResult

_log = logging.getLogger(__name__)

# Events waiting for the consensus task; a flood beyond this is dropped (gossip repeats).
events_queued_max = 10_000
# With nothing to include, wait this long before the next (empty) block: a heartbeat that
# keeps heights moving without a flood of empty blocks. A transaction arriving cuts it short.
idle_block_interval_ms = 1_000
# Under load a height starts at least this long after the previous commit: the transactions
# arriving meanwhile make one larger block instead of many small ones, whose fixed costs (a
# proposal, two signed and fsynced votes a validator, an fsynced commit) would otherwise eat
# the throughput. A transaction after a quiet spell still starts its block at once.
busy_block_interval_ms = int(os.environ.get("XINCHAIN_BUSY_BLOCK_INTERVAL_MS", "100"))
# Height announcements, sync requests and what is served: consensus/sync.py (SyncConfig).
# Transactions gossiped in one frame, and how long admitted ones wait to be batched.
gossip_txs_per_frame = 512
gossip_flush_ms = 20


def _now_ms() -> int:
    """The clock the sans-IO pacing and sync rules are given (monotonic: never steps back)."""
    return int(time.monotonic() * 1000)


class ConsensusDriver:
    def __init__(
        self,
        *,
        app: Application,
        mempool: Mempool,
        validator_index: int | None,
        safety: SafetyRules | None,
        timeouts: Timeouts = Timeouts(),
        on_commit: Callable[[], None] = lambda: None,
        on_block: Callable[[int, tuple[str, ...], tuple[TxResult, ...]], None] = (
            lambda height, tx_ids, results: None
        ),
    ) -> None:
        self.app = app
        self.mempool = mempool
        self.genesis = app.genesis
        self.suite = app.suite
        self.on_commit = on_commit
        self.on_block = on_block
        self._validator_names = [v.name for v in self.genesis.validators]
        self._validator_keys = [bytes.fromhex(v.public_key) for v in self.genesis.validators]
        self.source = LedgerSource(app, mempool, lambda: int(time.time() * 1000))
        self.core = ConsensusCore(
            chain_id=self.genesis.chain_id,
            validator_count=len(self.genesis.validators),
            self_index=validator_index,
            safety=safety,
            source=self.source,
            verify=self._verify,
            height=app.tip().height + 1,
            timeouts=timeouts,
        )
        self.transport: Transport | None = None
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(events_queued_max)
        self.sync: BlockSync[str, CommitProof] = BlockSync(SyncConfig())
        self.pacer = Pacer(busy_ms=busy_block_interval_ms, idle_ms=idle_block_interval_ms)
        self.gossip = TxGossip(per_frame=gossip_txs_per_frame, flush_ms=gossip_flush_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        # Frames of the node's own protocols by their "type" (private data): (peer, frame).
        self.handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {}

    def _verify(self, validator: int, message: bytes, signature: bytes) -> bool:
        if validator >= len(self._validator_keys):
            return False
        return self.suite.verify(self._validator_keys[validator], message, signature)

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._execute(self.core.start())
        announcer = asyncio.create_task(self._announce_forever())
        try:
            while True:
                event = await self._queue.get()
                self._execute(self._handle(event))
        finally:
            announcer.cancel()

    def _enqueue(self, event: tuple[Any, ...]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            _log.warning("consensus queue full; dropping %s", event[0])

    def _handle(self, event: tuple[Any, ...]) -> list[Action]:
        kind = event[0]
        if kind == "timeout":
            return self.core.on_timeout(event[1])
        if kind == "message":
            _, sender, message = event
            if isinstance(message, CommitProof):
                return self._on_proof(message)
            return self.core.on_message(sender, message)
        return []

    def _execute(self, actions: list[Action]) -> None:
        pending = collections.deque(actions)
        while pending:
            action = pending.popleft()
            if isinstance(action, Broadcast):
                self._broadcast(encode_message(action.message))
            elif isinstance(action, SendTo):
                self._send(self._validator_names[action.peer], encode_message(action.message))
            elif isinstance(action, ScheduleTimeout):
                self._schedule(action.key, action.delay_ms)
            elif isinstance(action, Decide):
                pending.extend(self._commit(action))
            elif isinstance(action, PeerBehind):
                self._serve_sync(self._validator_names[action.peer], action.height)

    def _schedule(self, key: TimeoutKey, delay_ms: int) -> None:
        if self._loop is None:
            self._enqueue(("timeout", key))
        else:
            self._loop.call_later(delay_ms / 1000, self._enqueue, ("timeout", key))

    def _commit(self, decide: Decide) -> list[Action]:
        prepared = self.source.commit(decide.block, decide.block_hash, decide.certificate)
        self.on_commit()
        height = decide.block.header.height
        self.on_block(height, prepared.tx_ids, prepared.execution.results)
        delay = self.pacer.after_commit(_now_ms(), pending=len(self.mempool) > 0)
        actions = self.core.on_committed(height, delay)
        proof = self.sync.committed(height)
        if proof is not None:
            actions.extend(self.core.on_message(None, proof))
        return actions

    # --- transactions --------------------------------------------------------------------------

    def transaction_admitted(self, raw: bytes, *, gossip: bool) -> None:
        """A new transaction entered the mempool: cut an idle wait short (to no less than the
        busy interval after the last commit), and tell peers."""
        height, now = self.core.height, _now_ms()
        wait_ms = self.pacer.on_transaction(height, self.core.step == Step.NEW_HEIGHT, now)
        if wait_ms is not None:
            key = TimeoutKey(height, 0, Step.NEW_HEIGHT)
            if wait_ms <= 0 or self._loop is None:
                self._enqueue(("timeout", key))
            else:
                self._loop.call_later(wait_ms / 1000, self._enqueue, ("timeout", key))
        if gossip and self.transport is not None:
            flush_at = self.gossip.add(raw, now)
            if self.gossip.full():
                self._flush_gossip()
            elif flush_at is not None and self._loop is not None:
                self._loop.call_later((flush_at - now) / 1000, self._flush_gossip)

    def _flush_gossip(self) -> None:
        frame = self.gossip.take()
        if frame:
            self._broadcast(codec.encode({"type": "txs", "txs": frame}))

    def _admit_gossiped(self, txs: object) -> None:
        if not isinstance(txs, list):
            raise DecodeError("expected a list of transactions", field="txs")
        for raw in txs[:gossip_txs_per_frame]:
            if not isinstance(raw, bytes):
                continue
            try:
                checked = self.app.check_tx(raw)
                if self.mempool.add(checked):
                    self.transaction_admitted(raw, gossip=False)
            except XinchainError as exc:
                _log.debug("gossiped transaction refused: %s", exc)

    # --- the network ---------------------------------------------------------------------------

    def _broadcast(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.broadcast(data)

    def _send(self, peer: str, data: bytes) -> None:
        if self.transport is not None:
            self.transport.send(peer, data)

    def send(self, peer: str, data: bytes) -> None:
        """A frame to one connected peer (for the node's own protocols, `handlers`)."""
        self._send(peer, data)

    def connected_peers(self) -> list[str]:
        return [] if self.transport is None else list(self.transport.connected)

    def on_frame(self, peer: str, data: bytes) -> None:
        """A frame from a connected, authenticated peer. Bad data is logged and dropped."""
        try:
            value = codec.decode(data)
            kind = value.get("type") if isinstance(value, dict) else None
            if kind in ("proposal", "vote", "commit"):
                message: Message = decode_message(data)
                sender = self._validator_index(peer)
                self._enqueue(("message", sender, message))
            elif kind == "txs":
                self._admit_gossiped(value.get("txs"))
            elif kind == "status":
                self._on_status(peer, value.get("height"))
            elif kind == "sync_request":
                self._serve_sync(peer, value.get("from"))
            elif kind in self.handlers:
                self.handlers[kind](peer, value)
            else:
                raise DecodeError(f"unknown message type {kind!r}", field="type")
        except XinchainError as exc:
            _log.warning("dropping a message from %s: %s", peer, exc)

    def on_connect(self, peer: str) -> None:
        self._send(peer, self._status())

    def _validator_index(self, peer: str) -> int | None:
        try:
            return self._validator_names.index(peer)
        except ValueError:
            return None

    def _status(self) -> bytes:
        return codec.encode({"type": "status", "height": self.app.tip().height})

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync.config.status_interval_ms / 1000)
            self._broadcast(self._status())

    def _on_status(self, peer: str, height: object) -> None:
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise DecodeError("expected a height", field="height")
        request = self.sync.on_status(peer, height, self.app.tip().height, _now_ms())
        if request is not None:
            self._send(peer, codec.encode({"type": "sync_request", "from": request.first}))

    def _serve_sync(self, peer: str, first: object) -> None:
        if not isinstance(first, int) or isinstance(first, bool) or first < 1:
            raise DecodeError("expected a height of 1 or more", field="from")
        for height in self.sync.to_serve(peer, first, self.app.tip().height, _now_ms()):
            block, certificate = self.app.block(height), self.app.certificate(height)
            if block is None or certificate is None:
                break
            self._send(peer, encode_message(CommitProof(block, certificate)))

    def _on_proof(self, proof: CommitProof) -> list[Action]:
        height = proof.block.header.height
        if height == self.core.height:
            return self.core.on_message(None, proof)
        self.sync.hold(height, proof, self.core.height)
        return []
