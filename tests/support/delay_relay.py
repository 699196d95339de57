"""A TCP relay that delays every byte by a fixed time: netem's delay, in user space.

Each relay listens on one address and forwards each connection to one target, holding every
chunk for `delay_s` before passing it on, in both directions and in order.

In-process (a thread of its own): `with DelayRelays({listen: target}, delay_s): ...`.
As a process (for example inside a network namespace):
`python delay_relay.py DELAY_MS LISTEN_HOST:PORT=TARGET_HOST:PORT ...`, until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time

Address = tuple[str, int]
chunk_bytes = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
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
            await queue.put((time.monotonic() + delay_s, chunk))
    await queue.put((0.0, b""))
    with contextlib.suppress(OSError, ConnectionError):
        await releaser


async def serve_relays(routes: dict[Address, Address], delay_s: float) -> list[asyncio.Server]:
    servers = []
    for (host, port), (target_host, target_port) in routes.items():

        async def connected(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            target: Address = (target_host, target_port),
        ) -> None:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(
                _pipe(reader, upstream_writer, delay_s), _pipe(upstream_reader, writer, delay_s)
            )

        servers.append(await asyncio.start_server(connected, host, port))
    return servers


class DelayRelays:
    def __init__(self, routes: dict[Address, Address], delay_s: float) -> None:
        self.routes = routes
        self.delay_s = delay_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> DelayRelays:
        self.thread.start()
        started = serve_relays(self.routes, self.delay_s)
        asyncio.run_coroutine_threadsafe(started, self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _address(text: str) -> Address:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main(arguments: list[str]) -> None:
    delay_s = int(arguments[0]) / 1000
    routes = dict(
        (_address(listen), _address(target))
        for listen, target in (route.split("=") for route in arguments[1:])
    )

    async def forever() -> None:
        await serve_relays(routes, delay_s)
        print("relaying", flush=True)
        await asyncio.Event().wait()

    asyncio.run(forever())


if __name__ == "__main__":
    main(sys.argv[1:])
