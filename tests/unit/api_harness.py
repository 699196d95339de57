"""A one-validator node with real LMDB storage, served through FastAPI's TestClient.

Shared by test_api.py and test_receipt_spec.py. The block producer task does not run under
TestClient, so a test commits what is pending by calling `commit()` (the node's
`drive_until_idle`, below) itself: nothing here depends on timing.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from xinchain.api.app import create_api
from xinchain.apps.registry import APPS
from xinchain.client.sdk import sign_transaction
from xinchain.consensus.messages import Step
from xinchain.crypto import PrivateKey, Suite
from xinchain.genesis import Genesis
from xinchain.mempool import Mempool
from xinchain.node.consensus_driver import ConsensusDriver
from xinchain.node.home import Home, create_demo_home
from xinchain.node.node import Node
from xinchain.types import Transaction

SUITE_NAMES = ("ed25519-sha256", "sm2-sm3")
# The org that anchors documents in these tests; the demo genesis gives it the platform role.
ANCHORING_ORG = "platform"
# Far enough ahead of every height a test reaches, well inside `tx_validity_blocks_max`.
valid_until_default = 1_000


def _test_client_class() -> Any:
    # Starlette warns that its TestClient will move from httpx to httpx2; nothing to act on here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*install `httpx2`")
        from fastapi.testclient import TestClient
    return TestClient


@dataclass
class Harness:
    home: Home
    node: Node
    client: Any  # fastapi.testclient.TestClient (an httpx.Client)

    @property
    def suite(self) -> Suite:
        return self.node.suite

    @property
    def genesis(self) -> Genesis:
        return self.node.genesis

    def org_key(self, org: str = ANCHORING_ORG) -> PrivateKey:
        return self.home.org_key(self.suite, org)

    def digest(self, document: bytes) -> bytes:
        return self.suite.hash(document)

    # --- transactions ------------------------------------------------------------------------

    def sign(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        sender: str = ANCHORING_ORG,
        key: PrivateKey | None = None,
        chain_id: str | None = None,
        valid_until: int = valid_until_default,
        nonce: int | None = None,
    ) -> Transaction:
        return sign_transaction(
            self.suite,
            key or self.org_key(sender),
            chain_id=chain_id or self.genesis.chain_id,
            sender=sender,
            contract=contract,
            method=method,
            args=args,
            valid_until=valid_until,
            nonce=nonce,
        )

    def anchor_tx(self, documents: list[bytes], **options: Any) -> Transaction:
        """`notary.anchor` for one document, `notary.anchor_batch` for several."""
        digests = [self.digest(document) for document in documents]
        if len(digests) == 1:
            return self.sign("notary", "anchor", {"hash": digests[0]}, **options)
        return self.sign("notary", "anchor_batch", {"hashes": digests}, **options)

    def tx_id(self, tx: Transaction) -> str:
        return self.suite.hash(tx.body.encode()).hex()

    def post_tx(self, tx: Transaction) -> httpx.Response:
        return self.post_hex(tx.encode().hex())

    def post_hex(self, text: str) -> httpx.Response:
        response: httpx.Response = self.client.post("/v1/transactions", json={"tx": text})
        return response

    def submit(self, tx: Transaction) -> str:
        """Submit and insist it was admitted; returns the transaction id."""
        response = self.post_tx(tx)
        assert response.status_code == 202, response.text
        return str(response.json()["tx_id"])

    def move_clock(self, ahead_ms: int) -> None:
        """Date the blocks from now on `ahead_ms` later than the wall clock, as if that much
        time had passed (a promotion's grace period, without waiting it out)."""
        self.node.driver.source.clock_ms = lambda: int(time.time() * 1000) + ahead_ms

    def commit(self) -> None:
        """Commit every pending transaction in one block (what the producer task would do)."""
        drive_until_idle(self.node.driver)

    def anchor(self, documents: list[bytes]) -> str:
        """Anchor `documents` in a block of their own; returns the transaction id."""
        tx_id = self.submit(self.anchor_tx(documents))
        self.commit()
        return tx_id

    # --- reads -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, params=params or None)
        return response

    def receipt(self, document: bytes, record: int = 0) -> dict[str, Any]:
        response = self.get(f"/v1/notary/{self.digest(document).hex()}/receipt", record=record)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def genesis_hash(self) -> str:
        return str(self.get("/v1/status").json()["genesis_hash"])


@contextmanager
def open_harness(
    path: Path, suite_name: str, *, mempool_txs_max: int | None = None
) -> Iterator[Harness]:
    """A fresh demo consortium in `path` with one validator node behind the REST API."""
    home = Home(path)
    create_demo_home(home, validators=1, suite_name=suite_name)
    node = Node(home, "validator-0", APPS)
    if mempool_txs_max is not None:
        node.mempool = Mempool(txs_max=mempool_txs_max)
    # raise_server_exceptions=False: a crash must show up as the 500 a real client would get.
    # Entered as a context manager so that every request runs on one event loop, as under
    # uvicorn (without it each request gets a loop of its own, and the node's asyncio events,
    # bound to the first loop, fail on the second).
    with _test_client_class()(create_api(node), raise_server_exceptions=False) as client:
        try:
            yield Harness(home, node, client)
        finally:
            node.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of a 4xx answer, after checking it has the documented shape."""
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("reason"), str) and error["reason"], body
    assert set(error) <= {"code", "reason", "field"}, body
    return dict(error)


def drive_until_idle(driver: ConsensusDriver) -> None:
    """Drive a single validator's consensus without an event loop: start it if need be, then
    handle its queued events until no transaction is pending and the core waits for the next
    height. Without a loop the driver queues timers at once and gossip has no peer, so nothing
    here depends on time."""
    if not driver._started:
        driver._started = True
        driver._execute(driver.core.start())
    while not driver._queue.empty():
        if not len(driver.mempool) and driver.core.step == Step.NEW_HEIGHT:
            return
        event = driver._queue.get_nowait()
        if event[0] == "timeout" and event[1].step == "gossip":
            continue
        driver._execute(driver._handle(event))
