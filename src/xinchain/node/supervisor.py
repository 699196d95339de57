"""`xinchain up` with several validators: one OS process per node, on loopback.

Every node of the home (validators in genesis order, then the observer) gets API port
BASE+i and P2P port BASE+100+i, is started as `python -m xinchain node`, and logs to
HOME/nodes/<name>/node.log. The supervisor reports `ready` once every API answers, reports
nodes that exit, and stops them all on Ctrl-C or SIGTERM. It does not restart a node that
dies: an operator (or a test) decides that, with `xinchain node --home DIR --name NAME`.
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
from pathlib import Path

import httpx

from xinchain.errors import ConfigError
from xinchain.node.home import Home

# How long every node has to answer on its API after being started.
start_timeout_s = 60.0
# How long stopped nodes have to exit after SIGTERM before they are killed.
stop_timeout_s = 10.0


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


def running_pid(pid_path: Path) -> int | None:
    try:
        pid = int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


async def run_consortium(
    home: Home, base_port: int, on_ready: Callable[[list[tuple[str, int]]], None]
) -> None:
    for name in home.node_names():
        pid = running_pid(home.node_dir(name) / "node.pid")
        if pid is not None:
            raise ConfigError(f"node {name} of {home.path} is already running (pid {pid})")
    nodes = home.configure_local_ports(base_port)
    processes = {name: start_node_process(home, name, port) for name, port in nodes}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await _wait_until_serving(nodes, processes)
        on_ready(nodes)
        reported: set[str] = set()
        while not stop.is_set():
            for name, process in processes.items():
                code = process.poll()
                if code is not None and name not in reported:
                    reported.add(name)
                    print(f"node {name} exited with code {code}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        _stop_all(processes)


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


def _stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + stop_timeout_s
    for process in processes.values():
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
