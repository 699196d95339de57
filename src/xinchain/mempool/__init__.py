"""Bounded pool of admitted transactions waiting for a block."""

from xinchain.mempool.pool import Mempool

__all__ = ["Mempool"]
