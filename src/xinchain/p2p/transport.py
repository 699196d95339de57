"""Peer-to-peer transport: asyncio TCP, mutual TLS 1.3, length-prefixed frames.

* A frame is a 4-byte big-endian length and that many bytes of canonical CBOR; a frame over
  `frame_bytes_max` closes the connection (a peer that sends one is broken or hostile).
* Both sides present certificates issued by member org CAs listed in genesis; a validator's
  certificate must come from its own org's CA. Anything else is refused during the handshake.
* Between a pair of nodes there is one connection: the node whose name sorts first dials, the
  other accepts. A lost connection is redialled with capped backoff.
* Each peer has a bounded send queue; when it is full new frames to that peer are dropped —
  consensus re-gossips what matters, and a slow peer must not stall the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xinchain import codec
from xinchain.crypto.tls import peer_identity
from xinchain.errors import DecodeError, PeerRefused
from xinchain.types import frame_bytes_max

_log = logging.getLogger(__name__)

# Frames waiting for one peer; beyond it new frames to that peer are dropped.
send_queue_frames_max = 4096
# Redial backoff, doubling from the first to the last value.
redial_delay_s_first = 0.2
redial_delay_s_max = 5.0
# A handshake (TLS plus hello) that takes longer than this is abandoned.
handshake_timeout_s = 10.0
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class PeerAddress:
    name: str
    host: str
    port: int


class FrameTooLarge(DecodeError):
    pass


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(_LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > frame_bytes_max:
        raise FrameTooLarge(f"frame of {length} bytes; at most {frame_bytes_max} are accepted")
    return await reader.readexactly(length)


def frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


OnFrame = Callable[[str, bytes], None]
# (node name, issuer CN) → the peer's identity, under which its connection is kept; raises
# PeerRefused. Identities must not collide between orgs: a validator's is its genesis name
# (checked against its org), any other node's is qualified by the org that issued it.
AcceptPeer = Callable[[str, str], str]


class _Peer:
    def __init__(self, name: str, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.writer = writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(send_queue_frames_max)
        self.task: asyncio.Task[None] | None = None

    async def pump(self) -> None:
        while True:
            data = await self.queue.get()
            self.writer.write(data)
            await self.writer.drain()


class Transport:
    def __init__(
        self,
        *,
        name: str,
        listen_port: int,
        peers: list[PeerAddress],
        server_context: ssl.SSLContext,
        client_context: ssl.SSLContext,
        hello: dict[str, object],
        accept_peer: AcceptPeer,
        on_frame: OnFrame,
        on_connect: Callable[[str], None],
        listen_host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.peers = peers
        self._server_context = server_context
        self._client_context = client_context
        self._hello = hello
        self._accept_peer = accept_peer
        self._on_frame = on_frame
        self._on_connect = on_connect
        self.connected: dict[str, _Peer] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._connection_tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accepted,
            self.listen_host,
            self.listen_port,
            ssl=self._server_context,
            ssl_handshake_timeout=handshake_timeout_s,
        )
        for peer in self.peers:
            if self.name < peer.name:
                self._tasks.append(asyncio.create_task(self._dial_forever(peer)))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [*self._tasks, *self._connection_tasks]
        for task in tasks:
            task.cancel()
        for peer in list(self.connected.values()):
            peer.writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    def send(self, peer_name: str, data: bytes) -> None:
        peer = self.connected.get(peer_name)
        if peer is None:
            return
        try:
            peer.queue.put_nowait(frame(data))
        except asyncio.QueueFull:
            _log.warning("send queue to %s is full; dropping a frame", peer_name)

    def broadcast(self, data: bytes) -> None:
        framed = frame(data)
        for peer in self.connected.values():
            with contextlib.suppress(asyncio.QueueFull):
                peer.queue.put_nowait(framed)

    # --- connections ---------------------------------------------------------------------------

    async def _dial_forever(self, address: PeerAddress) -> None:
        delay = redial_delay_s_first
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        address.host,
                        address.port,
                        ssl=self._client_context,
                        ssl_handshake_timeout=handshake_timeout_s,
                    ),
                    handshake_timeout_s,
                )
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                _log.debug("dialling %s: %s", address.name, exc)
            else:
                delay = redial_delay_s_first
                await self._run_connection(reader, writer, expected=address.name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, redial_delay_s_max)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connection_tasks.add(task)
        try:
            await self._run_connection(reader, writer, expected=None)
        except asyncio.CancelledError:
            # Shutting down. asyncio's server callback would log a cancelled handler task as
            # an error; this is the top of the connection's task, so end it quietly.
            return
        finally:
            if task is not None:
                self._connection_tasks.discard(task)

    async def _run_connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        expected: str | None,
    ) -> None:
        peer: _Peer | None = None
        try:
            name = await asyncio.wait_for(
                self._handshake(reader, writer, expected), handshake_timeout_s
            )
            if name is None or name in self.connected:
                return
            peer = _Peer(name, writer)
            peer.task = asyncio.create_task(peer.pump())
            self.connected[name] = peer
            self._on_connect(name)
            while True:
                data = await read_frame(reader)
                self._on_frame(name, data)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError) as exc:
            _log.debug("connection closed: %s", exc)
        except DecodeError as exc:
            _log.warning("closing a connection that sent bad data: %s", exc)
        finally:
            if peer is not None:
                self.connected.pop(peer.name, None)
                if peer.task is not None:
                    peer.task.cancel()
            writer.close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, expected: str | None
    ) -> str | None:
        identity = peer_identity(writer.get_extra_info("ssl_object"))
        if identity is None:
            return None
        name, issuer = identity
        try:
            peer_id = self._accept_peer(name, issuer)
        except PeerRefused as exc:
            _log.warning("refusing peer %r issued by %r: %s", name, issuer, exc)
            return None
        if expected is not None and name != expected:
            _log.warning("refusing peer %r: dialled %r", name, expected)
            return None
        writer.write(frame(codec.encode(self._hello)))
        await writer.drain()
        hello = codec.decode(await read_frame(reader))
        mine = {key: self._hello[key] for key in ("chain_id", "genesis_hash")}
        theirs = {key: hello.get(key) for key in mine} if isinstance(hello, dict) else {}
        if theirs != mine:
            _log.warning("refusing peer %r on another chain: %s", name, theirs)
            return None
        return peer_id
