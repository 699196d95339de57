"""Signature verification spread over worker processes.

A node verifies every transaction's signature once, at admission. With a core to spare (one
validator on a multi-core machine) that work can leave the event loop's process: a batch of
signatures goes to a worker process and the loop carries on with consensus meanwhile.
Verification is pure (a key, a message, a signature), so a worker needs nothing but the suite.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from xinchain.crypto.suites import suite_named

# Signatures a worker checks in one call: large enough that the call's overhead (pickling,
# a pipe round trip) stays small against ~40 µs a signature.
chunk_signatures = 256

Item = tuple[bytes, bytes, bytes]  # (public key, message, signature)


def verify_chunk(suite_name: str, items: list[Item]) -> list[bool]:
    suite = suite_named(suite_name)
    return [suite.verify(key, message, signature) for key, message, signature in items]


class ParallelVerifier:
    """`workers` processes verifying signatures of one suite, started on first use."""

    def __init__(self, suite_name: str, workers: int) -> None:
        self.suite_name = suite_name
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def verify(self, items: list[Item]) -> list[bool]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        loop = asyncio.get_running_loop()
        chunks = [items[i : i + chunk_signatures] for i in range(0, len(items), chunk_signatures)]
        answers = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, verify_chunk, self.suite_name, chunk)
                for chunk in chunks
            )
        )
        return [ok for answer in answers for ok in answer]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
