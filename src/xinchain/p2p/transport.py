"""Peer-to-peer transport: asyncio TCP, mutual TLS 1.3, length-prefixed frames.

* A frame is a 4-byte big-endian length and that many bytes of canonical CBOR; a frame over
  `frame_bytes_max` closes the connection (a peer that sends one is broken or hostile).
* Both sides present certificates issued by member org CAs listed in genesis; a validator's
  certificate must come from its own org's CA. Anything else is refused during the handshake.
* Between a pair of nodes there is one connection: the node whose name sorts first dials, the
  other accepts. A lost connection is redialled with capped backoff.
* Inbound connections are admitted by a `ConnectionGuard` (per address and in total) before
  any TLS work, so idle or garbage connections cannot use up the node's file descriptors.
* Each peer has a bounded send queue; when it is full new frames to that peer are dropped —
  consensus re-gossips what matters, and a slow peer must not stall the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xinchain import codec
from xinchain.crypto.tls import PeerIdentity, peer_identity
from xinchain.errors import DecodeError, PeerRefused
from xinchain.p2p.guard import ConnectionGuard
from xinchain.types import frame_bytes_max

_log = logging.getLogger(__name__)

# Frames waiting for one peer; beyond it new frames to that peer are dropped.
send_queue_frames_max = 4096
# Redial backoff, doubling from the first to the last value.
redial_delay_s_first = 0.2
redial_delay_s_max = 5.0
# A handshake (TLS plus hello) that takes longer than this is abandoned.
handshake_timeout_s = 10.0
# Failed inbound TLS handshakes are logged at most this often (with their count).
tls_failure_log_every_s = 60.0
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
# The verified certificate's (name, issuer CN, key pin) → the peer's identity, under which its
# connection is kept; raises PeerRefused. Identities must not collide between orgs: a
# validator's is its genesis name (checked against its org), any other node's is qualified by
# the org that issued it.
AcceptPeer = Callable[[PeerIdentity], str]


class Capture:
    """Every frame a node sends and receives, after TLS, appended to a file: what a traffic
    capture would show an operator who holds the node's TLS key. Off unless the node is started
    with XINCHAIN_P2P_CAPTURE=<directory>: node N then appends to <directory>/N.frames (tests
    use it to show what a node's peers sent it). Each frame: `<in|out> <peer> <bytes>` and a
    newline, the frame, a newline."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "ab")  # noqa: SIM115 - open while the transport runs

    def frame(self, direction: str, peer: str, data: bytes) -> None:
        self._file.write(f"{direction} {peer} {len(data)}\n".encode() + data + b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _Peer:
    def __init__(
        self, name: str, writer: asyncio.StreamWriter, capture: Capture | None = None
    ) -> None:
        self.name = name
        self.writer = writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(send_queue_frames_max)
        self.task: asyncio.Task[None] | None = None
        self.capture = capture

    async def pump(self) -> None:
        while True:
            data = await self.queue.get()
            if self.capture is not None:
                self.capture.frame("out", self.name, data)
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
        guard: ConnectionGuard | None = None,
        backlog: int = 64,
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
        self.guard = guard or ConnectionGuard("p2p", per_address=32, total=256)
        self.backlog = backlog  # also how many connections asyncio accepts in one go
        self._tls_failures = 0
        self._tls_failure_logged_at = 0.0
        self._refusals: dict[tuple[str, str], tuple[int, float]] = {}
        capture_directory = os.environ.get("XINCHAIN_P2P_CAPTURE")
        self.capture = (
            Capture(os.path.join(capture_directory, f"{name}.frames"))
            if capture_directory
            else None
        )

    async def start(self) -> None:
        # Plain TCP: the guard admits a connection before its TLS handshake starts.
        self._server = await asyncio.start_server(
            self._accepted, self.listen_host, self.listen_port, backlog=self.backlog
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
        if self.capture is not None:
            self.capture.close()

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
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if peername else "unknown"
        slot = self.guard.admit(address, writer.transport.abort)
        if slot is None:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connection_tasks.add(task)
        try:
            try:
                await writer.start_tls(
                    self._server_context, ssl_handshake_timeout=handshake_timeout_s
                )
            except (OSError, TimeoutError, ssl.SSLError, AttributeError) as exc:
                # AttributeError: Python 3.11's start_tls when the connection is lost (or
                # evicted by the guard) during the handshake.
                self._tls_failed(address, exc)
                writer.transport.abort()
                return
            slot.busy()  # an authenticated TLS peer: not evicted for an idle newcomer
            await self._run_connection(reader, writer, expected=None)
        except asyncio.CancelledError:
            # Shutting down. asyncio's server callback would log a cancelled handler task as
            # an error; this is the top of the connection's task, so end it quietly.
            return
        finally:
            slot.release()
            if task is not None:
                self._connection_tasks.discard(task)

    def _refused(self, identity: PeerIdentity, why: str) -> None:
        """A certified peer refused: logged at once the first time for its (name, issuer),
        then at most once a minute with a count, so a flood of refusals stays readable."""
        key = (identity.name, identity.issuer)
        now = time.monotonic()
        count, logged_at = self._refusals.get(key, (0, -tls_failure_log_every_s))
        count += 1
        if now - logged_at >= tls_failure_log_every_s:
            _log.warning(
                "refusing peer %r certified by %r (%d time(s) since the last such line): %s",
                identity.name,
                identity.issuer,
                count,
                why,
            )
            count, logged_at = 0, now
        self._refusals[key] = (count, logged_at)
        if len(self._refusals) > 4096:  # names an attacker mints: forget the oldest
            self._refusals.pop(next(iter(self._refusals)))

    def _tls_failed(self, address: str, exc: BaseException) -> None:
        """An inbound TLS handshake failed: an outsider, a misconfigured member, or a scan.
        Logged at most once a minute, with the count since the last line."""
        self._tls_failures += 1
        now = time.monotonic()
        if now - self._tls_failure_logged_at >= tls_failure_log_every_s:
            _log.warning(
                "P2P port: %d TLS handshake(s) failed since the last such line; latest from %s: %s",
                self._tls_failures,
                address,
                exc or type(exc).__name__,
            )
            self._tls_failures = 0
            self._tls_failure_logged_at = now

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
            peer = _Peer(name, writer, self.capture)
            peer.task = asyncio.create_task(peer.pump())
            self.connected[name] = peer
            self._on_connect(name)
            while True:
                data = await read_frame(reader)
                if self.capture is not None:
                    self.capture.frame("in", name, data)
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
        try:
            peer_id = self._accept_peer(identity)
        except PeerRefused as exc:
            self._refused(identity, str(exc))
            return None
        if expected is not None and identity.name != expected:
            self._refused(identity, f"dialled {expected!r}")
            return None
        writer.write(frame(codec.encode(self._hello)))
        await writer.drain()
        hello = codec.decode(await read_frame(reader))
        mine = {key: self._hello[key] for key in ("chain_id", "genesis_hash")}
        theirs = {key: hello.get(key) for key in mine} if isinstance(hello, dict) else {}
        if theirs != mine:
            self._refused(identity, f"it is on another chain: {theirs}")
            return None
        return peer_id
