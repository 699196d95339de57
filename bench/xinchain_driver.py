"""The xinchain systems of the throughput bench (bench/throughput.py).

`XinchainSystem(validators, workdir)` runs `xinchain up --validators N` in `workdir` (plus
the regulator's observer when N > 1) and drives it through the transaction stream
(`/v1/stream`, src/xinchain/api/stream.py):

* `prepare(count)` signs the notary transactions of ops 0..count-1 ahead, untimed: op i
  anchors the SHA-256 of the same 200-byte record etcd and PostgreSQL store (one
  `notary.anchor` transaction, Ed25519-signed by the platform org, about 270 bytes).
* `op(i)` hands transaction i to one of the stream connections, spread over the validators'
  APIs, and returns when the node reports it committed (or raises if it was refused). Ops
  handed over within `linger_s` of each other travel in one stream message, as a client
  library batches its sends; each op's latency still runs from its own scheduled time to
  its own commit notification.

`SYSTEMS` adds the batched-notarization case: `batched` anchors `batch_size` records per
`notary.anchor_batch` transaction on 4 validators, each record with its own receipt; one op
is then one document, and the bench's rate is documents per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websockets
from baselines import CommitRefused, ServersLifecycle, directory_bytes, notary_record
from consortium import Consortium

from xinchain import codec
from xinchain.client.sdk import sign_transaction
from xinchain.node.home import Home

# Stream connections per validator API; how long an op waits for company in a message, and
# the most a message carries (it leaves at once when full).
connections_per_validator = 1
linger_s = 0.010
message_txs_max = 512
# Transactions signed ahead are valid this many blocks past the height when signed.
validity_blocks = 90_000
# Documents in one batched-notarization transaction.
batch_size = 1_000
SIGNER = "platform"


class _Stream:
    """One WebSocket to a node's /v1/stream, with the ops it has in flight."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.buffer: list[bytes] = []
        self.buffered_futures: list[tuple[bytes, asyncio.Future[None]]] = []
        self.sent: list[list[tuple[bytes, asyncio.Future[None]]]] = []
        self.waiting: dict[bytes, asyncio.Future[None]] = {}
        self.flush_scheduled = False
        self.sending: set[asyncio.Future[None]] = set()
        self.reader = asyncio.create_task(self._read())

    def submit(self, raw: bytes, tx_id: bytes, future: asyncio.Future[None]) -> None:
        if self.reader.done():
            _fail(future, "closed", "the stream connection closed")
            return
        self.buffer.append(raw)
        self.buffered_futures.append((tx_id, future))
        if len(self.buffer) >= message_txs_max:
            self._flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_later(linger_s, self._flush_later)

    def _flush_later(self) -> None:
        self.flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        message = codec.encode(self.buffer)
        self.sent.append(self.buffered_futures)
        self.buffer, self.buffered_futures = [], []
        sending = asyncio.ensure_future(self.connection.send(message))
        self.sending.add(sending)
        sending.add_done_callback(self._sent)

    def _sent(self, sending: asyncio.Future[None]) -> None:
        self.sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            self.reader.cancel()  # its cleanup fails every op still waiting

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                value = codec.decode(message)
                if value["type"] == "admitted":
                    batch = self.sent.pop(0)
                    if "error" in value:
                        for _, future in batch:
                            _fail(future, "message", str(value["error"]))
                        continue
                    for (tx_id, future), answer in zip(batch, value["results"], strict=True):
                        if isinstance(answer, bytes):
                            self.waiting[tx_id] = future
                        else:
                            _fail(future, answer.get("code"), answer.get("reason", ""))
                else:
                    for tx_id, _index, ok, error in value["txs"]:
                        future = self.waiting.pop(tx_id, None)
                        if future is None or future.done():
                            continue
                        if ok:
                            future.set_result(None)
                        else:
                            _fail(future, "failed", error)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            pending = [f for batch in self.sent for _, f in batch] + list(self.waiting.values())
            for future in pending:
                _fail(future, "closed", "the stream connection closed")

    async def close(self) -> None:
        await self.connection.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


def _fail(future: asyncio.Future[None], status: object, detail: str) -> None:
    if not future.done():
        future.set_exception(CommitRefused("xinchain", status, detail))


class XinchainSystem(ServersLifecycle):
    def __init__(self, validators: int, workdir: Path, clients: int = 64, batch: int = 1) -> None:
        del clients  # ops share the stream connections, however many are in flight
        self.validators = validators
        self.batch = batch
        self.name = f"xinchain{validators}" if batch == 1 else f"xinchain{validators}-batched"
        self.home = workdir / "xinchain-home"
        shutil.rmtree(self.home, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        # The validators alone: the regulator's observer `up` adds by default would be a fifth
        # replica verifying and executing everything on the same two cores.
        self.consortium = Consortium(self.home, validators, observer=False)
        self._raw: list[bytes] = []
        self._ids: list[bytes] = []
        self._streams: list[_Stream] = []
        self._next = 0
        self._sticky: _Stream | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._batch_futures: dict[int, asyncio.Future[None]] = {}

    def start_servers(self) -> None:
        self.consortium.start()
        home = Home(self.home)
        self.genesis = home.genesis()
        self.key = home.org_key(self.genesis.suite, SIGNER)

    def stop_servers(self) -> None:
        self.consortium.stop()

    def server_pids(self) -> list[int]:
        process = self.consortium.process
        return [] if process is None or process.poll() is not None else [process.pid]

    def data_bytes(self) -> int:
        return directory_bytes(self.home / "nodes" / "validator-0" / "data")

    def _height(self) -> int:
        import httpx

        return int(httpx.get(f"{self.consortium.validator_apis[0]}/v1/status").json()["height"])

    async def prepare(self, count: int) -> None:
        transactions = -(-count // self.batch)
        valid_until = self._height() + validity_blocks
        suite = self.genesis.suite
        for index in range(len(self._raw), transactions):
            records = range(index * self.batch, (index + 1) * self.batch)
            digests = [hashlib.sha256(notary_record(i)).digest() for i in records]
            method, args = (
                ("anchor", {"hash": digests[0]})
                if self.batch == 1
                else ("anchor_batch", {"hashes": digests})
            )
            tx = sign_transaction(
                suite,
                self.key,
                chain_id=self.genesis.chain_id,
                sender=SIGNER,
                contract="notary",
                method=method,
                args=args,
                valid_until=valid_until,
            )
            self._raw.append(tx.encode())
            self._ids.append(suite.hash(tx.body.encode()))
            if index % 2000 == 1999:
                await asyncio.sleep(0)
        # What was built so far lives to the end of the run: keep the collector from scanning
        # it again in every collection during the timed steps.
        gc.collect()
        gc.freeze()

    async def _connect(self) -> None:
        for api in self.consortium.validator_apis:
            url = api.replace("http://", "ws://") + "/v1/stream"
            for _ in range(connections_per_validator):
                connection = await websockets.connect(url, max_size=1 << 26, compression=None)
                self._streams.append(_Stream(connection))

    async def op(self, i: int) -> None:
        if not self._streams:
            if self._connecting is None:  # the first op connects; the others wait for it
                self._connecting = asyncio.ensure_future(self._connect())
            await asyncio.shield(self._connecting)
        if self.batch == 1:
            await self._submit(i)
            return
        # Batched: op i is document i; the first op of a batch sends its transaction, and
        # every document of the batch completes when that transaction commits.
        index = i // self.batch
        future = self._batch_futures.get(index)
        if future is None:
            future = asyncio.ensure_future(self._submit(index))
            self._batch_futures[index] = future
        await asyncio.shield(future)

    async def _submit(self, index: int) -> None:
        raw, self._raw[index] = self._raw[index], b""
        # Ops fill one stream's message until it leaves, then the next stream's: larger
        # messages, and still every validator's API takes its share.
        stream = self._streams[self._next % len(self._streams)]
        if stream.flush_scheduled is False and stream.buffer == [] and self._sticky is stream:
            self._next += 1
            stream = self._streams[self._next % len(self._streams)]
        self._sticky = stream
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stream.submit(raw, self._ids[index], future)
        await future

    async def close(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.close()


def _batched(workdir: Path, clients: int) -> XinchainSystem:
    return XinchainSystem(4, workdir, clients, batch=batch_size)


SYSTEMS: dict[str, Callable[[Path, int], XinchainSystem]] = {}
