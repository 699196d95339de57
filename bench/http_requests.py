"""Plain HTTP request rate of a node's REST API, and the cost of its connection guard.

    .venv/bin/python bench/http_requests.py [--requests 4000] [--clients 8]
    PYTHONPATH=<worktree>/src .venv/bin/python bench/http_requests.py   # another commit's node

Starts `xinchain up` with one validator and measures GET `--path` (block 1) from `--clients`
concurrent clients: once over kept-alive connections, once with a new connection per request
(each one admitted by the connection guard, read deadlines armed and disarmed). Prints the
rates and a JSON summary. The baseline is the same run against the commit before a change
(bench/compare_commits.py does it for the stream bench; here run it twice with PYTHONPATH).
Never part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from consortium import Consortium


async def rate(url: str, requests: int, clients: int, keep_alive: bool) -> float:
    limits = httpx.Limits(max_keepalive_connections=clients if keep_alive else 0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker(count: int) -> None:
            for _ in range(count):
                response = await client.get(url)
                response.raise_for_status()

        await asyncio.gather(*(worker(10) for _ in range(clients)))  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker(requests // clients) for _ in range(clients)))
        return (requests // clients) * clients / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--path", default="/v1/blocks/1", help="the route to request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xinchain-http-") as workdir:
        consortium = Consortium(Path(workdir) / "home", 1, observer=False)
        consortium.start()
        try:
            url = consortium.validator_apis[0] + args.path
            kept = asyncio.run(rate(url, args.requests, args.clients, keep_alive=True))
            fresh = asyncio.run(rate(url, args.requests, args.clients, keep_alive=False))
        finally:
            consortium.stop()
    print(f"kept-alive connections: {kept:.0f} requests/s")
    print(f"a new connection each:  {fresh:.0f} requests/s")
    summary = {
        "bench": "http_requests",
        "path": args.path,
        "kept_alive_per_s": round(kept),
        "new_connection_per_s": round(fresh),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
