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

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_harness import XINCHAIN
from delay_relay import DelayRelays
from ports import free_ports

from xinchain.node.home import Home, NodeConfig, create_demo_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

VALIDATORS = [f"validator-{i}" for i in range(4)]
DELAY_S = 0.050
target_height = 5
commit_timeout_s = 60.0
chunk_bytes = 65536


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
    routes = {("127.0.0.1", relay[name]): ("127.0.0.1", p2p[name]) for name in VALIDATORS}
    with DelayRelays(routes, DELAY_S):
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
