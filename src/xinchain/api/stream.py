"""The transaction stream: submit many transactions on one connection, hear when each commits.

`GET /v1/stream` upgrades to a WebSocket. Messages are binary, canonical CBOR:

* client → node: an array of 1 to `stream_txs_per_message_max` signed transactions, each its
  canonical CBOR bytes (what `POST /v1/transactions` takes as hex).
* node → client, once per client message, in order: ``{"type": "admitted", "results": [...]}``
  with, for each transaction, its 32-byte id, or ``{"code", "field", "reason"}`` when it was
  refused (``code`` "mempool_full" asks the client to slow down).
* node → client, after each block that commits any of this connection's admitted
  transactions: ``{"type": "committed", "height": h, "txs": [[id, index, ok, error], ...]}``.

It is the same admission as the REST route (signature checked once, mempool bounds apply);
what it saves is a request, a JSON body and a poll per transaction: a client that keeps one
connection per worker submits thousands of transactions a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from xinchain import codec
from xinchain.errors import DecodeError, MempoolFull, XinchainError
from xinchain.node.node import Node
from xinchain.types import TxResult

_log = logging.getLogger(__name__)

# Transactions in one client message, and messages the node queues for a slow client before
# it drops the connection (the client then re-reads the chain for what it missed).
stream_txs_per_message_max = 4_096
stream_outbox_max = 16_384
# Messages of one connection in admission at once (their signatures verified together); the
# connection is not read further until one of them is answered.
stream_messages_admitting_max = 8


class _Connection:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(stream_outbox_max)
        self.waiting = 0
        self.admitting = asyncio.Semaphore(stream_messages_admitting_max)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(codec.encode(message))
        except asyncio.QueueFull:
            _log.warning("stream client too slow; closing its connection")
            self.close()

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)


class CommitFanout:
    """Which connection waits for which transaction; one pass over each committed block."""

    def __init__(self, node: Node) -> None:
        self.waiting: dict[str, _Connection] = {}
        node.block_listeners.append(self.on_block)

    def on_block(self, height: int, tx_ids: tuple[str, ...], results: tuple[TxResult, ...]) -> None:
        if not self.waiting:
            return
        grouped: dict[_Connection, list[list[Any]]] = {}
        for index, tx_id in enumerate(tx_ids):
            connection = self.waiting.pop(tx_id, None)
            if connection is not None:
                result = results[index]
                entry = [bytes.fromhex(tx_id), index, result.ok, result.error]
                grouped.setdefault(connection, []).append(entry)
        for connection, entries in grouped.items():
            connection.waiting -= len(entries)
            connection.send({"type": "committed", "height": height, "txs": entries})

    def forget(self, connection: _Connection) -> None:
        for tx_id in [t for t, c in self.waiting.items() if c is connection]:
            del self.waiting[tx_id]


def stream_routes(api: FastAPI, node: Node) -> None:
    fanout = CommitFanout(node)

    async def admit(
        connection: _Connection, data: bytes | None, previous: asyncio.Task[None] | None
    ) -> None:
        """Admit one message's transactions; answer after the previous message's answer, so
        that answers keep the order of messages while their signatures are verified at once."""
        try:
            await _admit(connection, data, previous)
        except Exception:  # a bug here must not take the connection's other messages with it
            _log.exception("stream admission failed")
            connection.close()
        finally:
            connection.admitting.release()

    async def _admit(
        connection: _Connection, data: bytes | None, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            if data is None:
                raise DecodeError("expected a binary message", field="message")
            txs = codec.decode(data)
            if not isinstance(txs, list) or not 1 <= len(txs) <= stream_txs_per_message_max:
                raise DecodeError(
                    f"expected an array of 1 to {stream_txs_per_message_max} transactions",
                    field="message",
                )
        except XinchainError as exc:
            if previous is not None:
                await previous
            connection.send({"type": "admitted", "error": exc.as_dict()})
            return
        raws = [raw for raw in txs if isinstance(raw, bytes)]
        outcomes = await node.submit_many(raws)
        admitted = iter(outcomes)
        if previous is not None:
            await previous  # answers go out in the order of messages
        answers: list[Any] = []
        # Transactions that committed while this message waited for the previous one's answer
        # (their block's notification found no one waiting): reported right after the answer.
        late: dict[int, list[tuple[str, int]]] = {}
        ids = [outcome for outcome in outcomes if isinstance(outcome, str)]
        locations = node.app.tx_locations(ids) if ids else {}
        for position, raw in enumerate(txs):
            if not isinstance(raw, bytes):
                answers.append(
                    {"code": "invalid", "field": f"[{position}]", "reason": "expected bytes"}
                )
                continue
            answer = next(admitted)
            if isinstance(answer, MempoolFull):
                answers.append({**answer.as_dict(), "code": "mempool_full"})
            elif isinstance(answer, XinchainError):
                answers.append(answer.as_dict())
            else:
                location = locations.get(answer)
                if location is None:
                    fanout.waiting[answer] = connection
                    connection.waiting += 1
                else:
                    late.setdefault(location[0], []).append((answer, location[1]))
                answers.append(bytes.fromhex(answer))
        connection.send({"type": "admitted", "results": answers})
        for height, committed in sorted(late.items()):
            results = node.app.results(height)
            entries = [
                [bytes.fromhex(tx_id), index, results[index].ok, results[index].error]
                for tx_id, index in committed
            ]
            connection.send({"type": "committed", "height": height, "txs": entries})

    @api.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = _Connection(websocket)

        async def sender() -> None:
            while True:
                message = await connection.outbox.get()
                if message is None:
                    await websocket.close()
                    return
                await websocket.send_bytes(message)

        sending = asyncio.create_task(sender())
        previous: asyncio.Task[None] | None = None
        try:
            while not sending.done():
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                data = received.get("bytes")
                await connection.admitting.acquire()
                previous = asyncio.create_task(admit(connection, data, previous))
        except WebSocketDisconnect:
            pass
        finally:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            fanout.forget(connection)
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending
