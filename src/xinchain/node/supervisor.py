"""`xinchain up` with several validators: one OS process per node, on loopback.

Every node of the home (validators in genesis order, then the observer) gets API port
BASE+i and P2P port BASE+100+i, is started as `python -m xinchain node`, and logs to
HOME/nodes/<name>/node.log. The supervisor reports `ready` once every API answers. A node
that exits is logged (its exit code or signal, how long it ran) and started again after a
backoff that doubles from 1 s to 30 s and starts over once a node has run a minute; with
`--no-restart` it stays down, for an operator (or a test) to start it by hand with
`xinchain node --home DIR --name NAME`. A node of the home found running outside the
supervisor is left to run, never doubled. On Ctrl-C or SIGTERM every node is stopped, those
started by hand included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from xinchain.errors import ConfigError
from xinchain.node.home import Home

# How long every node has to answer on its API after being started.
start_timeout_s = 60.0
# How long stopped nodes have to exit after SIGTERM before they are killed.
stop_timeout_s = 10.0
# Restart backoff: doubling from the first to the last value; a node that ran this long
# before exiting starts again from the first.
restart_delay_s_first = 1.0
restart_delay_s_max = 30.0
stable_after_s = 60.0
poll_interval_s = 0.5


def node_command(home: Home, name: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "xinchain",
        "node",
        "--home",
        str(home.path),
        "--name",
        name,
        "--port",
        str(port),
    ]


def start_node_process(home: Home, name: str, port: int) -> subprocess.Popen[bytes]:
    log = (home.node_dir(name) / "node.log").open("ab")
    return subprocess.Popen(
        node_command(home, name, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the supervisor, which stops nodes in order
    )


@dataclass
class _Supervised:
    """One node of the consortium and what the supervisor knows of it."""

    name: str
    port: int
    process: subprocess.Popen[bytes] | None
    started_at: float
    delay_s: float = restart_delay_s_first
    restart_at: float | None = None
    restarts: int = 0


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


async def run_consortium(
    home: Home,
    base_port: int,
    on_ready: Callable[[list[tuple[str, int]]], None],
    *,
    restart: bool = True,
) -> None:
    for name in home.node_names():
        pid = home.running_node_pid(name)
        if pid is not None:
            raise ConfigError(f"node {name} of {home.path} is already running (pid {pid})")
    nodes = home.configure_local_ports(base_port)
    now = time.monotonic()
    supervised = [
        _Supervised(name, port, start_node_process(home, name, port), now) for name, port in nodes
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await _wait_until_serving(
            nodes, {node.name: node.process for node in supervised if node.process}
        )
        on_ready(nodes)
        while not stop.is_set():
            for node in supervised:
                _look_after(home, node, restart)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_interval_s)
    finally:
        _stop_all(home, [node.process for node in supervised if node.process is not None])


def _look_after(home: Home, node: _Supervised, restart: bool) -> None:
    """Notice that a node exited and log it; restart it when its backoff has passed."""
    now = time.monotonic()
    if node.process is not None:
        code = node.process.poll()
        if code is None:
            return
        node.process = None
        ran_s = now - node.started_at
        if ran_s >= stable_after_s:
            node.delay_s = restart_delay_s_first
        if not restart:
            print(f"node {node.name} exited with {_exit_text(code)}; not restarted", flush=True)
            return
        node.restart_at = now + node.delay_s
        print(
            f"node {node.name} exited with {_exit_text(code)} after {ran_s:.1f} s; "
            f"restarting in {node.delay_s:.0f} s",
            flush=True,
        )
        node.delay_s = min(node.delay_s * 2, restart_delay_s_max)
        return
    if node.restart_at is None or now < node.restart_at:
        return
    node.restart_at = None
    outside = home.running_node_pid(node.name)
    if outside is not None:
        print(
            f"node {node.name} is running outside the supervisor (pid {outside}): "
            "not started again; it is stopped with the others",
            flush=True,
        )
        return
    node.process = start_node_process(home, node.name, node.port)
    node.started_at = now
    node.restarts += 1
    print(
        f"node {node.name} restarted (pid {node.process.pid}, restart {node.restarts})",
        flush=True,
    )


async def _wait_until_serving(
    nodes: list[tuple[str, int]], processes: dict[str, subprocess.Popen[bytes]]
) -> None:
    deadline = time.monotonic() + start_timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        for name, port in nodes:
            while True:
                if processes[name].poll() is not None:
                    raise ConfigError(f"node {name} exited while starting; see its node.log")
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/v1/status")
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ConfigError(f"node {name} did not answer on port {port}")
                await asyncio.sleep(0.1)


def _stop_all(home: Home, processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every node the supervisor started and every node of its home started by hand
    while it ran; SIGKILL what outlives the grace."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    children = {process.pid for process in processes}
    by_hand = [
        pid
        for pid in (home.running_node_pid(name) for name in home.node_names())
        if pid is not None and pid not in children
    ]
    for pid in by_hand:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in by_hand:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A stopped child of someone else lingers as a zombie until reaped: that is not alive.
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
