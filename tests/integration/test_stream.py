"""The transaction stream (/v1/stream) on a real node.

Scenarios:

* 3,000 notary anchors in messages of 500 on one connection: every message is answered in
  order with each transaction's id, and every transaction's commit is reported once, with its
  height and index, matching GET /v1/transactions/{id}; the chain holds them all.
* In one message: a transaction with a forged signature, a malformed one, one that is not
  bytes and a good one: each answered in its place with its own error (naming the field), the
  good one admitted and committed.
* The same transaction twice: the second copy is refused as a replay once the first committed.
* A message that is not an array of transactions, and a text message: answered with an
  error; the connection stays usable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
import websockets

from xinchain import codec
from xinchain.client.sdk import sign_transaction
from xinchain.node.home import Home
from xinchain.types import Transaction

pytestmark = pytest.mark.slow  # runs real processes (a node, a browser) or a large set

if TYPE_CHECKING:
    from conftest import RunningNode

_T = TypeVar("_T")


def signed(node: RunningNode, count: int) -> list[bytes]:
    home = Home(node.home)
    genesis = home.genesis()
    key = home.org_key(genesis.suite, "platform")
    height = int(httpx.get(f"{node.api}/v1/status").json()["height"])
    return [
        sign_transaction(
            genesis.suite,
            key,
            chain_id=genesis.chain_id,
            sender="platform",
            contract="notary",
            method="anchor",
            args={"hash": hashlib.sha256(os.urandom(16)).digest()},
            valid_until=height + 1_000,
        ).encode()
        for _ in range(count)
    ]


def stream_url(node: RunningNode) -> str:
    return node.api.replace("http://", "ws://") + "/v1/stream"


async def exchange(
    node: RunningNode, messages: list[bytes | str], expect_commits: int
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Send `messages`; collect the admission answers and `expect_commits` commit entries."""
    admitted: list[dict[str, Any]] = []
    commits: list[list[Any]] = []
    async with websockets.connect(stream_url(node), max_size=1 << 24) as connection:
        for message in messages:
            await connection.send(message)
        while len(admitted) < len(messages) or len(commits) < expect_commits:
            value = codec.decode(await asyncio.wait_for(connection.recv(), 60))
            if value["type"] == "admitted":
                admitted.append(value)
            else:
                commits.extend([value["height"], *entry] for entry in value["txs"])
    return admitted, commits


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run `coroutine` on a loop of its own in a thread: another test's library (Playwright's
    sync API) may have left a loop running in this thread, where asyncio.run refuses."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def tx_id(raw: bytes) -> bytes:
    return hashlib.sha256(Transaction.decode(raw).body.encode()).digest()


def test_thousands_of_transactions_are_admitted_in_order_and_each_commit_reported(
    node: RunningNode,
) -> None:
    txs = signed(node, 3_000)
    messages: list[bytes | str] = [codec.encode(txs[i : i + 500]) for i in range(0, 3_000, 500)]

    admitted, commits = run(exchange(node, messages, 3_000))

    assert [answer["results"] for answer in admitted] == [
        [tx_id(raw) for raw in txs[i : i + 500]] for i in range(0, 3_000, 500)
    ]
    assert sorted(entry[1] for entry in commits) == sorted(tx_id(raw) for raw in txs)
    for height, identifier, index, ok, error in commits[::300]:
        assert (ok, error) == (True, "")
        answer = httpx.get(f"{node.api}/v1/transactions/{identifier.hex()}").json()
        assert (answer["status"], answer["height"], answer["index"]) == (
            "committed",
            height,
            index,
        )


def test_each_transaction_of_a_message_is_answered_in_its_place(node: RunningNode) -> None:
    good, forged_source = signed(node, 2)
    forged_tx = Transaction.decode(forged_source)
    forged = Transaction(body=forged_tx.body, signature=bytes(64)).encode()
    message = codec.encode([forged, b"\x01\x02", 7, good])

    admitted, commits = run(exchange(node, [message], 1))

    first, malformed, not_bytes, accepted = admitted[0]["results"]
    assert first["field"] == "signature"
    assert first["code"] == "invalid_transaction"
    assert "malformed" in malformed["reason"] or "expected" in malformed["reason"]
    assert not_bytes == {"code": "invalid", "field": "[2]", "reason": "expected bytes"}
    assert accepted == tx_id(good)
    assert [entry[1:4] for entry in commits] == [[tx_id(good), commits[0][2], True]]


def test_a_committed_transaction_sent_again_is_refused_as_a_replay(node: RunningNode) -> None:
    (raw,) = signed(node, 1)
    run(exchange(node, [codec.encode([raw])], 1))

    admitted, _ = run(exchange(node, [codec.encode([raw])], 0))

    (answer,) = admitted[0]["results"]
    assert answer["field"] == "tx_id"
    assert "already accepted" in answer["reason"]


def test_malformed_messages_get_an_error_and_the_connection_stays(node: RunningNode) -> None:
    (raw,) = signed(node, 1)
    messages: list[bytes | str] = [codec.encode({"not": "an array"}), "text", codec.encode([raw])]

    admitted, commits = run(exchange(node, messages, 1))

    assert "expected an array" in admitted[0]["error"]["reason"]
    assert admitted[1]["error"]["reason"] == "expected a binary message"
    assert admitted[2]["results"] == [tx_id(raw)]
    assert commits[0][1] == tx_id(raw)
