"""Floods of idle and slow connections leave a validator alive, committing and serving (issue 13).

A 4-validator `xinchain up` consortium commits blocks. Validator-3 is started again (for the
floods under `ulimit -n 1024`, soft and hard: the node cannot raise it) and attacked from
loopback addresses other than 127.0.0.1, the address the honest client and the peers use:

* 5,000 idle TCP connections to its API port, then 5,000 to its P2P port (no TLS, no bytes):
  the node stays up, keeps committing with the others, answers another client, and counts
  what it refused or evicted in /v1/status;
* slowloris: 1,000 connections that trickle a request head (or, after a whole head, a body)
  one byte a second: each is closed at its read deadline (node.json "limits"), not before and
  not much after, and another client's p99 latency stays under 100 ms meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cluster_harness import VALIDATORS, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TARGET = "validator-3"
OTHERS = [name for name in VALIDATORS if name != TARGET]
UNDER_ULIMIT = ("sh", "-c", 'ulimit -n 1024 && exec "$@"', "sh")
p2p_port_offset = 100
flood_size = 5000
slowloris_size = 1000
# Attackers' source addresses: all of 127.0.0.0/8 is loopback on Linux.
ATTACKERS = [f"127.0.{block}.{host}" for block in (1, 2) for host in range(1, 51)]
honest_p99_ms_max = 100.0
head_timeout_s = 4.0
body_timeout_s = 6.0
deadline_slack_s = 3.0


@dataclass
class Flood:
    """Connections held open from many source addresses by a loop in its own thread."""

    port: int
    count: int
    # Bytes sent at once, then one byte of `trickle` every `trickle_every_s` (None: idle).
    opening: bytes = b""
    trickle: bytes | None = None
    trickle_every_s: float = 1.0
    opened: int = 0
    failed: int = 0
    lifetimes: list[float] = field(default_factory=list)  # open → closed by the server, in s
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def start(self) -> None:
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        assert ready.wait(120), "the flood did not finish opening its connections"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open_all())
        ready.set()
        self._loop.run_forever()

    async def _open_all(self) -> None:
        gate = asyncio.Semaphore(200)

        async def one(index: int) -> None:
            async with gate:
                source = ATTACKERS[index % len(ATTACKERS)]
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0)),
                        5,
                    )
                except (OSError, TimeoutError):
                    self.failed += 1
                    return
                self.opened += 1
                self._writers.append(writer)
                if self.opening:
                    writer.write(self.opening)
                asyncio.get_running_loop().create_task(self._hold(reader, writer))

        await asyncio.gather(*(one(index) for index in range(self.count)))

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        trickling = asyncio.get_running_loop().create_task(self._trickle(writer))
        try:
            while await reader.read(4096):
                pass
        except OSError:
            pass
        self.lifetimes.append(time.monotonic() - started)
        trickling.cancel()

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        if self.trickle is None:
            return
        for index in range(10_000):
            await asyncio.sleep(self.trickle_every_s)
            if writer.is_closing():
                return
            try:
                writer.write(self.trickle[index % len(self.trickle) :][:1])
            except OSError:
                return

    def stop(self) -> None:
        async def close_all() -> None:
            for writer in self._writers:
                writer.transport.abort()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(close_all(), self._loop)


@pytest.fixture(scope="module", autouse=True)
def enough_open_files() -> None:
    """The attacking side holds thousands of sockets: raise this process's soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = flood_size + 1000
    assert hard == resource.RLIM_INFINITY or hard >= wanted, (
        f"this machine's hard open-file limit is {hard}; the flood needs {wanted}"
    )
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def restart_target(
    cluster: Cluster, limits: dict[str, float] | None = None, *, low_ulimit: bool = True
) -> None:
    cluster.wait_for_height(OTHERS, 2, 60)
    cluster.kill9(TARGET)
    path = cluster.node_dir(TARGET) / "node.json"
    config = json.loads(path.read_text())
    config.pop("limits", None)
    if limits:
        config["limits"] = limits
    path.write_text(json.dumps(config, indent=2))
    cluster.restart(TARGET, prefix=UNDER_ULIMIT if low_ulimit else ())
    if not low_ulimit:
        return
    pid = cluster.pid(TARGET)
    assert pid is not None
    limit_line = next(
        line
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
        if line.startswith("Max open files")
    )
    assert limit_line.split()[3:5] == ["1024", "1024"], limit_line


def honest_latencies_ms(cluster: Cluster, requests: int) -> list[float]:
    """GET /v1/status on the target from 127.0.0.1, one new connection per request."""
    latencies = []
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=5.0, limits=fresh) as client:
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(cluster.api(TARGET) + "/v1/status")
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def assert_alive_and_committing(cluster: Cluster) -> None:
    pid = cluster.pid(TARGET)
    assert pid is not None, f"{TARGET} is gone:\n{cluster.log_tail(TARGET)}"
    target = max(h for h in cluster.heights(OTHERS).values() if h is not None) + 3
    cluster.wait_for_height([*OTHERS, TARGET], target, 60)
    assert cluster.block_hashes(TARGET, target) == cluster.block_hashes(OTHERS[0], target)


@pytest.fixture
def floods() -> Iterator[list[Flood]]:
    started: list[Flood] = []
    yield started
    for flood in started:
        flood.stop()


@pytest.mark.parametrize("port_kind", ["api", "p2p"])
def test_idle_connection_floods_leave_the_node_serving(
    cluster: Cluster, floods: list[Flood], port_kind: str
) -> None:
    restart_target(cluster)
    api_port = cluster.ports[TARGET]
    port = api_port if port_kind == "api" else api_port + p2p_port_offset
    flood = Flood(port, flood_size)
    floods.append(flood)
    flood.start()
    assert flood.opened + flood.failed == flood_size

    latencies = honest_latencies_ms(cluster, 100)
    assert_alive_and_committing(cluster)
    connections = cluster.status(TARGET)["connections"]
    assert connections["open_files_max"] == 1024, connections
    guard = connections[port_kind]
    assert guard["open"] <= guard["total_max"] < 1024 - 128, guard
    assert guard["refused"] + guard["evicted"] > 0, guard
    assert p99(latencies) < 1000, f"p99 {p99(latencies):.0f} ms under the flood"
    assert "Too many open files" not in cluster.log_tail(TARGET)


def test_slowloris_connections_are_closed_and_others_served(
    cluster: Cluster, floods: list[Flood]
) -> None:
    # With the machine's own open-file limit the node holds all of them until its deadlines
    # (under 1,024 it would evict the oldest to make room, as the flood test shows).
    restart_target(
        cluster,
        {"head_timeout_s": head_timeout_s, "body_timeout_s": body_timeout_s},
        low_ulimit=False,
    )
    port = cluster.ports[TARGET]
    head = b"GET /v1/status HTTP/1.1\r\nHost: node\r\nUser-Agent: slow\r\n"
    body = (
        b"POST /v1/transactions HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    heads = Flood(port, slowloris_size // 2, opening=head, trickle=b"X-Slow: 1\r\n")
    bodies = Flood(port, slowloris_size // 2, opening=body, trickle=b' "a": 1,')
    floods.extend([heads, bodies])
    started = time.monotonic()
    heads.start()
    bodies.start()
    assert heads.opened == heads.count and bodies.opened == bodies.count, (
        heads.failed,
        bodies.failed,
    )

    # Another client, served throughout: until the node has closed every slow connection.
    bound_s = body_timeout_s + deadline_slack_s
    latencies: list[float] = []
    while len(heads.lifetimes) + len(bodies.lifetimes) < slowloris_size:
        assert time.monotonic() - started < bound_s + 30, (
            f"{slowloris_size - len(heads.lifetimes) - len(bodies.lifetimes)} slow "
            f"connections still open after {time.monotonic() - started:.0f} s"
        )
        latencies += honest_latencies_ms(cluster, 10)
        time.sleep(0.05)
    assert len(latencies) >= 100, len(latencies)
    assert max(heads.lifetimes) <= head_timeout_s + deadline_slack_s, max(heads.lifetimes)
    assert min(heads.lifetimes) >= head_timeout_s - 0.5, min(heads.lifetimes)
    assert max(bodies.lifetimes) <= body_timeout_s + deadline_slack_s, max(bodies.lifetimes)
    assert min(bodies.lifetimes) >= body_timeout_s - 0.5, min(bodies.lifetimes)
    print(f"slowloris: another client's p99 {p99(latencies):.1f} ms over {len(latencies)} requests")
    assert p99(latencies) < honest_p99_ms_max, f"p99 {p99(latencies):.1f} ms"
    guard = cluster.status(TARGET)["connections"]["api"]
    assert guard["timed_out"] >= slowloris_size, guard
    assert_alive_and_committing(cluster)
