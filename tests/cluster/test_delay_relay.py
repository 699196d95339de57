"""Four validators whose every P2P link carries 50 ms of delay each way still commit.

This is the user-space stand-in for `tc ... netem delay 50ms` (test_netns.py), which needs a
kernel with netem; this one runs everywhere. Each validator is reached through a relay on
loopback that holds every chunk of bytes for 50 ms before passing it on, in both directions
and in order, so TLS handshakes, proposals and votes all see a 100 ms round trip.

Scenario:

* all 4 validators reach height 5 with identical block hashes; the observed block interval
  is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_harness import XINCHAIN
from ports import free_ports

from xinchain.node.home import Home, NodeConfig, create_demo_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

VALIDATORS = [f"validator-{i}" for i in range(4)]
DELAY_S = 0.050
target_height = 5
commit_timeout_s = 60.0
chunk_bytes = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes, each chunk released DELAY_S after it arrived, order kept."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
        writer.close()

    releaser = asyncio.create_task(release())
    with contextlib.suppress(OSError, ConnectionError):
        while chunk := await reader.read(chunk_bytes):
            await queue.put((time.monotonic() + DELAY_S, chunk))
    await queue.put((0.0, b""))
    with contextlib.suppress(OSError, ConnectionError):
        await releaser


class DelayRelays:
    """One relay per validator, in a thread of its own: relay port → the validator's port."""

    def __init__(self, targets: dict[int, int]) -> None:
        self.targets = targets
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> DelayRelays:
        self.thread.start()
        for relay_port, target_port in self.targets.items():
            asyncio.run_coroutine_threadsafe(
                self._serve(relay_port, target_port), self.loop
            ).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _serve(self, relay_port: int, target_port: int) -> None:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", target_port
                )
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

        await asyncio.start_server(connected, "127.0.0.1", relay_port)


@pytest.fixture
def delayed_validators(tmp_path: Path) -> Iterator[dict[str, int]]:
    home = Home(tmp_path / "home")
    create_demo_home(home, validators=len(VALIDATORS), suite_name="ed25519-sha256")
    ports = free_ports(3 * len(VALIDATORS))
    api = dict(zip(VALIDATORS, ports[0:4], strict=True))
    p2p = dict(zip(VALIDATORS, ports[4:8], strict=True))
    relay = dict(zip(VALIDATORS, ports[8:12], strict=True))
    for name in VALIDATORS:
        peers = tuple((other, "127.0.0.1", relay[other]) for other in VALIDATORS if other != name)
        home.save_node_config(name, NodeConfig(api[name], p2p[name], peers))
    processes: list[subprocess.Popen[bytes]] = []
    with DelayRelays({relay[name]: p2p[name] for name in VALIDATORS}):
        try:
            for name in VALIDATORS:
                command = [str(XINCHAIN), "node", "--home", str(home.path), "--name", name]
                processes.append(
                    subprocess.Popen(
                        [*command, "--port", str(api[name])],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            yield api
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _status(port: int) -> dict[str, object]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=3).json())


def test_validators_fifty_milliseconds_apart_commit(delayed_validators: dict[str, int]) -> None:
    deadline = time.monotonic() + commit_timeout_s
    first_seen: dict[int, float] = {}
    heights: list[int] = []
    while True:
        try:
            heights = [int(_status(port)["height"]) for port in delayed_validators.values()]
        except httpx.HTTPError:
            heights = []
        if heights:
            first_seen.setdefault(min(heights), time.monotonic())
            if min(heights) >= target_height:
                break
        assert time.monotonic() < deadline, f"heights {heights} after {commit_timeout_s} s"
        time.sleep(0.2)
    hashes = {
        httpx.get(f"http://127.0.0.1:{port}/v1/blocks/{target_height}", timeout=3).json()["hash"]
        for port in delayed_validators.values()
    }
    assert len(hashes) == 1
    seen = sorted(first_seen.items())
    if len(seen) > 1:
        (low, t_low), (high, t_high) = seen[0], seen[-1]
        print(f"block interval with 50 ms links: {(t_high - t_low) / (high - low):.2f} s")
