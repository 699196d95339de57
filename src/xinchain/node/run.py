"""Run one node in the foreground: REST API and block producer in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Generator

import uvicorn

from xinchain.api.app import create_api
from xinchain.node.home import Home
from xinchain.node.node import Node

# How long to wait for the HTTP server to bind before giving up.
server_start_timeout_s = 30


class _QuietServer(uvicorn.Server):
    """Leaves signals to `run_node`, which stops the producer and the server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def run_node(
    home: Home, name: str, port: int, *, on_ready: Callable[[Node], None] | None = None
) -> None:
    node = Node(home, name)
    pid_path = home.node_dir(name) / "node.pid"
    config = uvicorn.Config(
        create_api(node),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = _QuietServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    producer = asyncio.create_task(node.produce_forever(), name="producer")
    serving = asyncio.create_task(server.serve(), name="api")
    try:
        for _ in range(server_start_timeout_s * 20):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            if serving.done():
                serving.result()
            raise RuntimeError(f"the API did not start on 127.0.0.1:{port}")
        pid_path.write_text(f"{os.getpid()}\n")
        if on_ready is not None:
            on_ready(node)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({producer, serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (producer, serving):
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        server.should_exit = True
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(serving, 5)
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        pid_path.unlink(missing_ok=True)
        node.close()
