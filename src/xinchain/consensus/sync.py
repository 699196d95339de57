"""The decisions around consensus that depend on time, sans-IO: when to start the next height,
when a node is behind and asks a peer for blocks, what it serves a peer that asks, which
commit proofs it keeps for later, and when gossiped transactions go out.

Every method is given the time (`now_ms`, milliseconds on any monotonic clock) and returns
what to do; nothing here reads a clock, sleeps or sends. The consensus driver
(node/consensus_driver.py) feeds it the wall clock and carries the answers out over the
network; the simulator (sim/) feeds it simulated time, so the simulator runs the very rules the
nodes run.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Peer = TypeVar("Peer", bound=Hashable)
Proof = TypeVar("Proof")


@dataclass(frozen=True)
class SyncConfig:
    # Height announcements (each node says its committed height this often).
    status_interval_ms: int = 1_000
    # How often a lagging node may ask one peer for blocks, and be served by one peer.
    request_interval_ms: int = 500
    # Blocks sent per sync request, and proofs kept for heights not reached yet.
    blocks_per_request: int = 32
    proofs_buffered_max: int = 256


@dataclass(frozen=True)
class Status:
    """A node's committed height, announced to its peers."""

    height: int


@dataclass(frozen=True)
class SyncRequest:
    """Send me the committed blocks from `first` on, with their certificates."""

    first: int


@dataclass
class BlockSync(Generic[Peer, Proof]):
    """Which peers are ahead, when to ask them, what to serve, which proofs to hold."""

    config: SyncConfig = field(default_factory=SyncConfig)
    _peer_heights: dict[Peer, int] = field(default_factory=dict)
    _last_request_ms: dict[Peer, int] = field(default_factory=dict)
    _last_served_ms: dict[Peer, int] = field(default_factory=dict)
    _held: dict[int, Proof] = field(default_factory=dict)

    def on_status(self, peer: Peer, height: int, tip: int, now_ms: int) -> SyncRequest | None:
        """`peer` says it committed `height`; this node's tip is `tip`. The request to send it,
        if this node is behind and has not asked that peer lately."""
        # One block behind is normal for a moment (that block is being decided here too);
        # behind by two, or by one across two announcements, means consensus moved on.
        behind_before = self._peer_heights.get(peer, 0) > tip
        self._peer_heights[peer] = height
        if not self.lagging(tip, height, behind_before):
            return None
        last = self._last_request_ms.get(peer)
        if last is not None and now_ms - last < self.config.request_interval_ms:
            return None
        self._last_request_ms[peer] = now_ms
        return SyncRequest(tip + 1)

    def lagging(self, tip: int, peer_height: int, behind_before: bool) -> bool:
        return peer_height >= tip + 2 or (peer_height > tip and behind_before)

    def to_serve(self, peer: Peer, first: int, tip: int, now_ms: int) -> range:
        """The heights to send `peer`, which asked for blocks from `first`: none when it asked
        again too soon, at most `blocks_per_request`, none beyond this node's tip."""
        last = self._last_served_ms.get(peer)
        if last is not None and now_ms - last < self.config.request_interval_ms // 2:
            return range(0)
        self._last_served_ms[peer] = now_ms
        return range(first, min(tip, first + self.config.blocks_per_request - 1) + 1)

    def hold(self, height: int, proof: Proof, current: int) -> bool:
        """Keep a proof for a height after the one being decided (`current`); False when it is
        too far ahead to keep (the peer will be asked again)."""
        if current < height < current + self.config.proofs_buffered_max:
            self._held.setdefault(height, proof)
            return True
        return False

    def committed(self, height: int) -> Proof | None:
        """`height` was committed: drop what is held for it and below, and hand back the proof
        held for the next height, if any."""
        self._held = {h: proof for h, proof in self._held.items() if h > height}
        return self._held.pop(height + 1, None)


@dataclass
class Pacer:
    """When the next height starts. After a commit, the next height starts `busy_ms` later if
    transactions are waiting (they make one larger block instead of many small ones) and
    `idle_ms` later if none are (a heartbeat of empty blocks). A transaction arriving during an
    idle wait cuts it short, to no less than `busy_ms` after the commit."""

    busy_ms: int
    idle_ms: int
    _committed_at_ms: int | None = None
    _early_start_for: int = 0  # the height whose start a transaction already asked for

    def after_commit(self, now_ms: int, pending: bool) -> int:
        """The wait before the next height, given whether transactions are pending."""
        self._committed_at_ms = now_ms
        return self.busy_ms if pending else self.idle_ms

    def on_transaction(self, height: int, waiting: bool, now_ms: int) -> int | None:
        """A transaction was admitted while the core is at `height` (`waiting`: before the
        height started). The wait before starting it now, or None to leave the timer be."""
        if not waiting or self._early_start_for == height:
            return None
        self._early_start_for = height
        if self._committed_at_ms is None:
            return 0
        return max(0, self.busy_ms - (now_ms - self._committed_at_ms))


@dataclass
class TxGossip:
    """Admitted transactions sent to peers in frames of up to `per_frame`, each frame going
    out when full or `flush_ms` after its first transaction."""

    per_frame: int
    flush_ms: int
    _pending: list[bytes] = field(default_factory=list)
    _flush_at_ms: int | None = None

    def add(self, raw: bytes, now_ms: int) -> int | None:
        """Queue a transaction. Returns the time to flush at if a flush must now be scheduled
        (the frame's first transaction), else None; `due` says when a full frame is ready."""
        self._pending.append(raw)
        if self._flush_at_ms is None:
            self._flush_at_ms = now_ms + self.flush_ms
            return self._flush_at_ms
        return None

    def full(self) -> bool:
        return len(self._pending) >= self.per_frame

    def take(self) -> list[bytes]:
        """The frame to send now (possibly empty); the next transaction starts a new one."""
        frame, self._pending, self._flush_at_ms = self._pending, [], None
        return frame
