"""What the throughput bench compares xinchain with, and how it drives every system alike.

    from baselines import EtcdSystem, PostgresSystem, sweep

The reusable parts of `bench/throughput.py` (bench/README.md has the details):

    ensure_debian_packages   apt-get installs Debian's etcd-server and postgresql if missing
    EtcdCluster              a 3-member etcd cluster on loopback, default durability (fsync)
    Postgres                 a PostgreSQL server on loopback, synchronous_commit=on, fsync=on
    EtcdSystem               drives etcd: PUT through its HTTP/JSON gateway, keep-alive HTTP/1.1
    PostgresSystem           drives PostgreSQL: one autocommit INSERT per op, through asyncpg
    open_loop                one rate step: ops on a fixed schedule, at most `clients` in flight
    sweep                    rising rate steps until saturation, and the sustained rate
    CpuMeter                 CPU seconds of the servers, of this process and of the machine

Every system has the same shape (the `System` protocol): a context manager that starts and
stops its servers, `prepare(count)` to build the ops' payloads untimed, `op(i)` that returns once
op i is committed, `close()`, `server_pids()` and `data_bytes()`. The workload is one 200-byte
notary record per op (`notary_record(i)`), stored under its SHA-256.

The load generator runs in this process and shares the machine's cores with the servers, so the
drivers keep their per-op work small: payloads are built in `prepare`, etcd's requests are sent
as ready-made bytes over plain asyncio streams, and PostgreSQL's through asyncpg's C protocol.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import hashlib
import json
import math
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import asyncpg  # type: ignore[import-untyped]

T = TypeVar("T")

# --- the workload ------------------------------------------------------------------------------

record_bytes = 200
# Every run stores records no earlier run stored: a fresh 8-byte nonce leads each record.
_RUN_NONCE = os.urandom(8)
# The rest of a record is fixed filler from a seeded generator (the servers do not compress).
_FILLER = random.Random(20261127).randbytes(record_bytes - 16)


def notary_record(index: int) -> bytes:
    """The 200-byte record of op `index`: run nonce, index, filler. Every system stores these."""
    return _RUN_NONCE + index.to_bytes(8, "big") + _FILLER


# --- Debian packages ---------------------------------------------------------------------------

ETCD_BINARY = Path("/usr/bin/etcd")
POSTGRES_BINARIES = "/usr/lib/postgresql/*/bin"
apt_timeout_s = 900.0


def postgres_bin_dir() -> Path | None:
    """Debian's newest installed PostgreSQL's bin directory, or None."""
    found = [Path(path) for path in glob.glob(POSTGRES_BINARIES) if Path(path, "postgres").exists()]
    if not found:
        return None
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def _package_present(package: str) -> bool:
    if package == "etcd-server":
        return ETCD_BINARY.exists()
    if package == "postgresql":
        return postgres_bin_dir() is not None
    raise ValueError(f"expected etcd-server or postgresql, got {package!r}")


def ensure_debian_packages(packages: Sequence[str] = ("etcd-server", "postgresql")) -> None:
    """Installs those of `packages` that are missing with apt-get (as root), saying so."""
    missing = [package for package in packages if not _package_present(package)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise PermissionError(
            f"Debian packages {', '.join(missing)} are missing and installing them needs root: "
            "run `apt-get install -y --no-install-recommends "
            f"{' '.join(missing)}` as root, or this bench as root"
        )
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    print(f"installing Debian packages: {' '.join(install)}", file=sys.stderr, flush=True)
    done = subprocess.run(install, env=environment, timeout=apt_timeout_s, check=False)
    if done.returncode != 0:
        # An image without package lists: fetch them once and try again.
        print("apt-get install failed; running apt-get update", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "update"], env=environment, timeout=apt_timeout_s, check=True)
        subprocess.run(install, env=environment, timeout=apt_timeout_s, check=True)
    still_missing = [package for package in missing if not _package_present(package)]
    if still_missing:
        raise RuntimeError(f"apt-get ran but {', '.join(still_missing)} is still not installed")


# --- processes, ports, disk --------------------------------------------------------------------

ready_timeout_s = 60.0
stop_timeout_s = 30.0
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def directory_bytes(path: Path) -> int:
    """Sum of the file sizes under `path` (etcd's WAL files count at their preallocated 64 MB)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], stop_signal: int) -> None:
    """`stop_signal` to each process still running, then SIGKILL what has not exited in time.
    A Ctrl-C while stopping is ignored: it would leave servers running."""
    numbers = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in numbers}
    try:
        _stop_processes(processes, stop_signal)
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def _stop_processes(processes: Sequence[subprocess.Popen[bytes]], stop_signal: int) -> None:
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(stop_signal)
    deadline = time.monotonic() + stop_timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- CPU accounting ----------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks of the process and of its reaped children)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may hold spaces: fields start after the last ")".
        fields = text[text.rindex(b")") + 2 :].split()
        # state ppid ... utime(11) stime(12) cutime(13) cstime(14), counted from state as 0
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        table[int(entry.name)] = (int(fields[1]), ticks)
    return table


def tree_cpu_seconds(
    roots: Sequence[int], table: dict[int, tuple[int, int]] | None = None
) -> float:
    """CPU seconds (user + system) of `roots` and all their live descendants, plus the children
    each has reaped: so a PostgreSQL backend that exits still counts, in its postmaster."""
    table = _process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    pending = [pid for pid in roots if pid in table]
    while pending:
        pid = pending.pop()
        if pid not in seen:
            seen.add(pid)
            pending.extend(children.get(pid, ()))
    return sum(table[pid][1] for pid in seen) / _CLOCK_TICKS_PER_S


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all cores, all processes). Sampled at
    each tick, so short bursts between ticks go partly unseen (per-process times are exact)."""
    with open("/proc/stat", "rb") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class CpuSample:
    at_s: float
    servers_s: float
    driver_s: float  # this process, every thread
    everyone_s: float  # every process, each with the children it reaped
    self_s: float  # this process as `everyone_s` counts it
    machine_s: float

    def others_s(self, before: CpuSample) -> float:
        """CPU seconds of every other process between `before` and this sample: another
        benchmark on the same machine, kernel threads. A process that started and ended in
        between counts only once its parent has reaped it."""
        everyone = self.everyone_s - before.everyone_s
        return everyone - (self.servers_s - before.servers_s) - (self.self_s - before.self_s)


class CpuMeter:
    """CPU seconds of the servers (their process trees), of this process (the load generator:
    `time.process_time`, every thread), of every other process and of the whole machine,
    between two samples."""

    def __init__(self, server_pids: Callable[[], Sequence[int]]) -> None:
        self._server_pids = server_pids

    def sample(self) -> CpuSample:
        table = _process_table()
        me = table.get(os.getpid(), (0, 0))[1]
        return CpuSample(
            at_s=time.perf_counter(),
            servers_s=tree_cpu_seconds(self._server_pids(), table),
            driver_s=time.process_time(),
            everyone_s=sum(ticks for _, ticks in table.values()) / _CLOCK_TICKS_PER_S,
            self_s=me / _CLOCK_TICKS_PER_S,
            machine_s=machine_busy_seconds(),
        )


# --- the systems -------------------------------------------------------------------------------


class System(Protocol):
    """What the bench drives. `prepare(count)` makes ops 0..count-1 ready (payloads built and,
    for xinchain, signed), untimed; the sweep calls it before each step with the running total,
    so it only builds the new ones. `op(i)` submits op i and returns once it is committed (raises
    if it was refused); ops are called at most once each, in rising order of scheduled time, up
    to `clients` at a time. `close()` closes the connections; `__exit__` stops the servers."""

    name: str

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def server_pids(self) -> list[int]: ...

    def data_bytes(self) -> int: ...

    async def prepare(self, count: int) -> None: ...

    async def op(self, i: int) -> None: ...

    async def close(self) -> None: ...


class ServersLifecycle:
    """A system's `with` block: its servers start on entry (stopped again if starting fails
    half-way) and stop on exit. Subclasses say how, in `start_servers` and `stop_servers`."""

    def start_servers(self) -> None:
        raise NotImplementedError

    def stop_servers(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start_servers()
        except BaseException:
            self.stop_servers()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_servers()


class CommitRefused(Exception):
    """A server answered an op with an error instead of a commit."""

    def __init__(self, system: str, status: object, detail: str) -> None:
        super().__init__(f"{system} refused the op: {status}: {detail[:200]}")
        self.system = system
        self.status = status


# --- etcd --------------------------------------------------------------------------------------


class EtcdCluster:
    """A `members`-member etcd cluster on loopback free ports, data in a temporary directory,
    etcd's default durability (every raft entry fsynced to the WAL before it is acknowledged)."""

    def __init__(self, members: int = 3) -> None:
        self.members = members
        self.base = Path(tempfile.mkdtemp(prefix="xinchain-bench-etcd-"))
        ports = free_ports(2 * members)
        self.client_ports = ports[:members]
        self.peer_ports = ports[members:]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def client_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.client_ports]

    def _command(self, member: int, cluster: str) -> list[str]:
        name = f"member-{member}"
        peer = f"http://127.0.0.1:{self.peer_ports[member]}"
        client = self.client_urls[member]
        return [
            str(ETCD_BINARY),
            f"--name={name}",
            f"--data-dir={self.base / name}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--initial-cluster={cluster}",
            f"--initial-cluster-token=xinchain-bench-{self.base.name}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-level=warn",
        ]

    def start(self) -> None:
        cluster = ",".join(
            f"member-{member}=http://127.0.0.1:{port}"
            for member, port in enumerate(self.peer_ports)
        )
        for member in range(self.members):
            log = open(self.base / f"member-{member}.log", "wb")  # noqa: SIM115 (the child's)
            self.processes.append(
                subprocess.Popen(
                    self._command(member, cluster),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # Its own session: a Ctrl-C meant for the bench does not reach it first.
                    start_new_session=True,
                )
            )
            log.close()
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + ready_timeout_s
        for member, url in enumerate(self.client_urls):
            while not _etcd_healthy(url):
                if self.processes[member].poll() is not None:
                    log = _log_tail(self.base / f"member-{member}.log")
                    raise RuntimeError(f"etcd member-{member} exited while starting:\n{log}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"etcd member-{member} not healthy in {ready_timeout_s} s")
                time.sleep(0.1)

    def stop(self) -> None:
        # One member at a time: a leader told to stop hands its leadership to a live member
        # first, which takes a round trip; with every member stopping at once it waits 7 s.
        for process in self.processes:
            stop_processes([process], signal.SIGTERM)
        shutil.rmtree(self.base, ignore_errors=True)

    def server_pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.poll() is None]

    def member_data_bytes(self) -> list[int]:
        return [directory_bytes(self.base / f"member-{member}") for member in range(self.members)]


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1.0) as answer:
            return bool(json.loads(answer.read()).get("health") == "true")
    except (OSError, ValueError, urllib.error.URLError):
        return False


# A response head longer than this is not the gateway's (it sends a few short headers).
http_head_bytes_max = 16 * 1024
http_body_bytes_max = 1024 * 1024


class HttpConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams, one request at a time: a few
    microseconds a request, where httpx spends a few hundred."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port, limit=http_head_bytes_max)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Sends a whole request (head and body, ready-made) and reads its response."""
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lowered.index(b"\r\n", at + 2)
            length = int(lowered[at + 17 : end])
            if length > http_body_bytes_max:
                raise ValueError(f"expected a body of at most {http_body_bytes_max}, got {length}")
            return status, await self._reader.readexactly(length)
        if b"\r\ntransfer-encoding: chunked" in lowered:
            return status, await self._read_chunked()
        raise ValueError(f"expected a Content-Length or chunked response, got {head[:200]!r}")

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers from the gateway
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def etcd_put_request(host_port: str, key: bytes, value: bytes) -> bytes:
    """The whole HTTP request of an etcd v3 Put through its gRPC gateway (JSON, base64)."""
    body = json.dumps(
        {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()},
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /v3/kv/put HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class EtcdSystem(ServersLifecycle):
    """A 3-member etcd cluster; op i PUTs key SHA-256(record i), value record i, through the
    member's HTTP/JSON gateway (POST /v3/kv/put). A put returns once the cluster committed it
    (a majority fsynced its WAL) and the member applied it. The clients share at most
    `connections_max` connections, opened when first needed (an op waiting for one waits on
    its latency clock); the k-th connection goes to member k mod 3."""

    name = "etcd"

    def __init__(self, workdir: Path | None = None, clients: int = 64, members: int = 3) -> None:
        del workdir  # the cluster keeps its own temporary directory
        self.cluster = EtcdCluster(members)
        self._slots = asyncio.Semaphore(min(clients, connections_max))
        self._requests: list[bytes] = []
        self._idle: list[tuple[int, HttpConnection]] = []
        self._connections = 0

    def start_servers(self) -> None:
        self.cluster.start()

    def stop_servers(self) -> None:
        self.cluster.stop()

    def server_pids(self) -> list[int]:
        return self.cluster.server_pids()

    def data_bytes(self) -> int:
        return sum(self.cluster.member_data_bytes())

    async def prepare(self, count: int) -> None:
        ports = self.cluster.client_ports
        for index in range(len(self._requests), count):
            record = notary_record(index)
            # The Host header is not checked by etcd: one member's address serves for all.
            self._requests.append(
                etcd_put_request(f"127.0.0.1:{ports[0]}", hashlib.sha256(record).digest(), record)
            )

    async def op(self, i: int) -> None:
        async with self._slots:
            await self._op(i)

    async def _op(self, i: int) -> None:
        request, self._requests[i] = self._requests[i], b""  # each op once: free its bytes
        if self._idle:
            member, connection = self._idle.pop()
        else:
            member = self._connections % self.cluster.members
            self._connections += 1
            connection = await HttpConnection.open("127.0.0.1", self.cluster.client_ports[member])
        try:
            status, body = await connection.exchange(request)
        except BaseException:
            await connection.close()
            raise
        self._idle.append((member, connection))
        if status != 200:
            raise CommitRefused(self.name, status, body.decode(errors="replace"))

    async def stored(self) -> int:
        """Keys in the cluster (a linearizable count): every acknowledged put should be one."""
        connection = await HttpConnection.open("127.0.0.1", self.cluster.client_ports[0])
        try:
            everything = base64.b64encode(b"\0").decode()  # from the first key, no end
            body = json.dumps({"key": everything, "range_end": everything, "count_only": True})
            request = (
                f"POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
            status, answer = await connection.exchange(request)
        finally:
            await connection.close()
        if status != 200:
            raise CommitRefused(self.name, status, answer.decode(errors="replace"))
        return int(json.loads(answer).get("count", 0))  # int64 comes as a JSON string

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, connection in idle:
            await connection.close()


# --- PostgreSQL --------------------------------------------------------------------------------

NOTARY_TABLE = (
    "CREATE TABLE notary ("
    "id bigserial PRIMARY KEY, digest bytea UNIQUE, record bytea, at timestamptz DEFAULT now())"
)
NOTARY_INSERT = "INSERT INTO notary (digest, record) VALUES ($1, $2)"
# Connections a baseline's clients share at most (a connection pool): more clients than this
# wait for a free connection, on their latency clock.
connections_max = 64
# Room above the bench's clients for psql, pg_isready and a margin.
postgres_connections_spare = 10


class Postgres:
    """A PostgreSQL server in a temporary directory: TCP on 127.0.0.1 at a free port only (its
    unix socket in that directory), synchronous_commit=on and fsync=on (a commit returns once
    its WAL is flushed to disk), other settings Debian's defaults. As root it runs as the
    `postgres` system user (the server refuses root), which owns the directory."""

    def __init__(self, max_connections: int = 100) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError(f"no PostgreSQL in {POSTGRES_BINARIES}: apt-get install it")
        self.bin_dir = bin_dir
        self.max_connections = max_connections
        self.port = free_ports(1)[0]
        # In the system's temporary directory, which the `postgres` user can reach (a bench's
        # own 0700 directory it could not).
        self.base = Path(tempfile.mkdtemp(prefix="xinchain-bench-postgres-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log_path = self.base / "postgres.log"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            account = pwd.getpwnam(self.user)
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    def _run_as_owner(self, command: list[str]) -> None:
        done = subprocess.run(
            command,
            user=self.user,
            cwd=self.base,
            capture_output=True,
            timeout=ready_timeout_s,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{command[0]} exited with {done.returncode}:\n{output[-2000:]}")

    def start(self) -> None:
        self.socket_dir.mkdir()
        if self.user is not None:
            shutil.chown(self.socket_dir, self.user, self.user)
        self._run_as_owner(
            [
                str(self.bin_dir / "initdb"),
                f"--pgdata={self.data}",
                "--username=postgres",
                "--auth=trust",  # loopback and a private socket only
                "--encoding=UTF8",
                "--no-locale",
                # Skips only initdb's own final fsync of the fresh cluster; the bench's
                # commits are fsynced as always.
                "--no-sync",
            ]
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.socket_dir,
            "synchronous_commit": "on",
            "fsync": "on",
            "max_connections": self.max_connections,
        }
        options = [part for name, value in settings.items() for part in ("-c", f"{name}={value}")]
        log = open(self.log_path, "wb")  # noqa: SIM115 (the child's)
        self.process = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.data), *options],
            user=self.user,
            cwd=self.base,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()
        self.psql(NOTARY_TABLE)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + ready_timeout_s
        while True:
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited while starting:\n{_log_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres not ready in {ready_timeout_s} s")
            time.sleep(0.1)

    def psql(self, statement: str) -> str:
        address = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        done = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-XqtA",
                "-v",
                "ON_ERROR_STOP=1",
                *address,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=ready_timeout_s,
            check=True,
        )
        return done.stdout.strip()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's fast shutdown: clients are disconnected, not waited for.
            stop_processes([self.process], signal.SIGINT)
        shutil.rmtree(self.base, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, WAL writer, checkpointer, ...)."""
        if self.process is None or self.process.poll() is not None:
            return []
        postmaster = self.process.pid
        return [postmaster, *_children(postmaster)]

    def data_bytes(self) -> int:
        return directory_bytes(self.data)


def _children(parent: int) -> list[int]:
    try:
        text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


class PostgresSystem(ServersLifecycle):
    """A PostgreSQL server; op i INSERTs record i and its SHA-256 into `notary` on a connection
    of its own in autocommit, so every op is one transaction, committed (WAL flushed) when the
    INSERT returns. The clients share at most `connections_max` asyncpg connections (opened
    when first needed), as an application's pool does; an op waiting for a connection waits
    on its latency clock."""

    name = "postgres"

    def __init__(self, workdir: Path | None = None, clients: int = 64) -> None:
        del workdir  # the server keeps its own temporary directory
        connections = min(clients, connections_max)
        self.server = Postgres(max_connections=max(100, connections + postgres_connections_spare))
        self._payloads: list[tuple[bytes, bytes] | None] = []
        self._idle: list[Any] = []  # asyncpg.Connection
        self._slots = asyncio.Semaphore(connections)

    def start_servers(self) -> None:
        self.server.start()

    def stop_servers(self) -> None:
        self.server.stop()

    def server_pids(self) -> list[int]:
        return self.server.server_pids()

    def data_bytes(self) -> int:
        return self.server.data_bytes()

    async def prepare(self, count: int) -> None:
        for index in range(len(self._payloads), count):
            record = notary_record(index)
            self._payloads.append((hashlib.sha256(record).digest(), record))

    async def op(self, i: int) -> None:
        async with self._slots:
            await self._op(i)

    async def _op(self, i: int) -> None:
        payload, self._payloads[i] = self._payloads[i], None
        assert payload is not None, f"op {i} ran twice"
        if self._idle:
            connection = self._idle.pop()
        else:
            connection = await asyncpg.connect(self.server.dsn)
        try:
            await connection.execute(NOTARY_INSERT, *payload)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if connection.is_closed():
                raise
            self._idle.append(connection)
            raise CommitRefused(self.name, type(error).__name__, str(error)) from error
        except BaseException:
            connection.terminate()
            raise
        self._idle.append(connection)

    async def stored(self) -> int:
        """Rows in `notary`: every acknowledged INSERT should be one."""
        connection = await asyncpg.connect(self.server.dsn)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM notary"))
        finally:
            await connection.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


# --- the open loop -----------------------------------------------------------------------------

# A rate step is saturated when it achieves less than this share of its offered rate ...
achieved_share_min = 0.90
# ... or its p99 commit latency passes this (a latency no one would call interactive) ...
latency_p99_s_max = 2.0
# ... or more than this share of its ops fail.
error_share_max = 0.001
# Throughput counts commits in the step's window after this share of it: by then the system
# has reached its steady state (for xinchain, a few blocks), and the count is not thinned by
# the first ops' latency.
warm_share = 0.2
# Until the first op of a step, after its workers are started.
start_delay_s = 0.02
# Between steps: background work of the last (fsyncs, compaction, block production) settles.
settle_s = 1.0
error_examples_max = 5


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of `values` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class RateResult:
    """One rate step. Latencies in ms, to an op's commit from its scheduled time (late ops) or
    its send (ops sent on time); CPU seconds over the step (its ops and the drain of the last
    ones in flight)."""

    offered_per_s: float
    duration_s: float
    clients: int
    scheduled: int  # ops on the step's schedule: offered rate * duration
    issued: int
    committed: int
    errors: int
    late: int  # issued after their scheduled time: all `clients` were in flight at that time
    unissued: int  # still waiting for a free client when the step's window ended
    achieved_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_mean_ms: float
    # Ops sent on time only: how late the load generator sent them (timer, busy event loop).
    issue_lag_p99_ms: float
    elapsed_s: float  # first scheduled op to the last op's end
    server_cpu_s: float
    driver_cpu_s: float
    other_cpu_s: float  # every other process on the machine: another benchmark, the kernel
    machine_cpu_s: float  # the machine's busy time (/proc/stat, tick-sampled), all of the above
    server_cpu_s_per_1000: float
    driver_cpu_s_per_1000: float
    driver_cores: float  # driver CPU seconds per second: 1.0 is its event loop saturated
    other_cores: float  # well above 0: the step's figures are not the system's alone
    machine_cores: float  # of os.cpu_count(): near it means the machine is the bottleneck
    saturated: bool
    error_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {key: _rounded(value) for key, value in asdict(self).items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def is_saturated(offered: float, achieved: float, p99_s: float, errors: int, issued: int) -> bool:
    return (
        achieved < achieved_share_min * offered
        or not p99_s <= latency_p99_s_max  # nan (nothing committed) is saturated too
        or errors > error_share_max * max(1, issued)
    )


@dataclass
class _Tally:
    """What a rate step's clients record, as they go."""

    count: int  # ops on the schedule
    next_offset: int = 0  # the next op a free client takes
    late: int = 0
    unissued: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    commit_times: list[float] = field(default_factory=list)  # perf_counter at each commit
    issue_lags_s: list[float] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)


async def open_loop(
    op: Callable[[int], Awaitable[None]],
    rate: float,
    duration_s: float,
    clients: int,
    *,
    first_index: int = 0,
    cpu: CpuMeter | None = None,
) -> RateResult:
    """One rate step: op `first_index + k` is scheduled at `k / rate` seconds after the start,
    for k = 0 .. rate * duration - 1, whether or not earlier ops have finished (open loop).

    Open loop with a concurrency cap: at most `clients` ops are in flight (each client is one
    connection, as a real deployment has a bounded number). An op whose time comes while all
    `clients` are busy waits for the first free one and is counted as late; its latency is
    measured from its scheduled time, so queueing in front of a saturated system shows up as
    latency (no coordinated omission). An op sent on time is timed from its send: the event
    loop's timers fire within about a millisecond of the schedule, and that grain is the load
    generator's, not the system's (`issue_lag_p99_ms` reports it; it grows when the generator's
    own event loop falls behind). Ops still waiting when the window (`duration_s`) has ended are
    not issued (counted as unissued), so a step lasts its duration plus the time the last
    `clients` ops in flight take.

    Achieved throughput: commits per second within the steady part of the window, from
    `warm_share` of the duration after the start to its end. Below saturation that is the
    offered rate; above it, the rate at which the system commits with `clients` in flight.
    """
    assert rate > 0 and duration_s > 0 and clients > 0, (rate, duration_s, clients)
    tally = _Tally(count=max(1, round(rate * duration_s)))
    interval_s = 1.0 / rate
    before = cpu.sample() if cpu is not None else None
    start = time.perf_counter() + start_delay_s
    end = start + duration_s
    clock = time.perf_counter

    async def client() -> None:
        while tally.next_offset < tally.count:
            offset = tally.next_offset
            tally.next_offset += 1
            scheduled = timed_from = start + offset * interval_s
            now = clock()
            if now < scheduled:
                await asyncio.sleep(scheduled - now)
                # On time: timed from its send, so the timer's grain (a millisecond on uvloop,
                # early or late) does not count as the system's latency.
                timed_from = clock()
                tally.issue_lags_s.append(timed_from - scheduled)
            elif now >= end:
                tally.unissued += tally.count - offset
                tally.next_offset = tally.count
                return
            else:
                tally.late += 1  # timed from its schedule: its wait for a client counts
            try:
                await op(first_index + offset)
            except Exception as error:
                tally.errors += 1
                if len(tally.error_examples) < error_examples_max:
                    tally.error_examples.append(f"op {first_index + offset}: {error!r}"[:300])
                continue
            done = clock()
            tally.latencies_s.append(done - timed_from)
            tally.commit_times.append(done)

    await asyncio.gather(*(client() for _ in range(clients)))
    finished = clock()
    after = cpu.sample() if cpu is not None else None
    return _step_result(tally, rate, duration_s, clients, start, finished, before, after)


def _step_result(
    tally: _Tally,
    rate: float,
    duration_s: float,
    clients: int,
    start: float,
    finished: float,
    before: CpuSample | None,
    after: CpuSample | None,
) -> RateResult:
    window_start = start + warm_share * duration_s
    end = start + duration_s
    in_window = sum(1 for moment in tally.commit_times if window_start <= moment <= end)
    achieved = in_window / (end - window_start)
    latencies_s = tally.latencies_s
    committed = len(latencies_s)
    issued = tally.count - tally.unissued
    p99_s = percentile(latencies_s, 99)
    server_s = driver_s = other_s = machine_s = wall_s = math.nan
    if before is not None and after is not None:
        server_s = after.servers_s - before.servers_s
        driver_s = after.driver_s - before.driver_s
        other_s = after.others_s(before)
        machine_s = after.machine_s - before.machine_s
        wall_s = after.at_s - before.at_s
    per_1000 = 1000 / committed if committed else math.nan
    return RateResult(
        offered_per_s=rate,
        duration_s=duration_s,
        clients=clients,
        scheduled=tally.count,
        issued=issued,
        committed=committed,
        errors=tally.errors,
        late=tally.late,
        unissued=tally.unissued,
        achieved_per_s=achieved,
        latency_p50_ms=percentile(latencies_s, 50) * 1000,
        latency_p99_ms=p99_s * 1000,
        latency_max_ms=max(latencies_s, default=math.nan) * 1000,
        latency_mean_ms=(sum(latencies_s) / committed * 1000) if committed else math.nan,
        issue_lag_p99_ms=percentile(tally.issue_lags_s, 99) * 1000,
        elapsed_s=finished - start,
        server_cpu_s=server_s,
        driver_cpu_s=driver_s,
        other_cpu_s=other_s,
        machine_cpu_s=machine_s,
        server_cpu_s_per_1000=server_s * per_1000,
        driver_cpu_s_per_1000=driver_s * per_1000,
        driver_cores=driver_s / wall_s,
        other_cores=other_s / wall_s,
        machine_cores=machine_s / wall_s,
        saturated=is_saturated(rate, achieved, p99_s, tally.errors, issued),
        error_examples=tally.error_examples,
    )


# --- the sweep ---------------------------------------------------------------------------------

RATES_DEFAULT = (250, 500, 1000, 2000, 3000, 3500, 4000, 5000, 7500, 10000, 12500, 15000, 20000)
# A system still unsaturated after the last rate gets rates this much higher, one after another,
# up to `rate_per_s_max`: about what the load generator itself can offer on one core.
rate_growth = 1.5
rate_per_s_max = 400_000


@dataclass(frozen=True)
class SweepResult:
    """A system's rate steps, and its sustained rate: the highest achieved throughput of a step
    whose p99 commit latency was at most `latency_p99_s_max` (2 s) and whose ops failed at most
    `error_share_max` (0.1 %) of the time; None if no step qualified. The step it came from
    (`sustained_step`) gives the system's p50/p99 latency and CPU cost at that rate."""

    system: str
    steps: list[RateResult]
    sustained_per_s: float | None
    sustained_step: RateResult | None
    # The highest achieved throughput of an unsaturated step: the rate served without a queue
    # (at most `sustained_per_s`, which may come from a step just past the knee).
    unsaturated_max_per_s: float | None
    stopped: str  # why the sweep ended
    acknowledged: int  # ops committed, the warm-up's included
    saturated: bool  # False: the sustained rate is a lower bound (no step saturated the system)

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "acknowledged": self.acknowledged,
            "sustained_per_s": _rounded(self.sustained_per_s),
            "unsaturated_max_per_s": _rounded(self.unsaturated_max_per_s),
            "sustained_offered_per_s": (
                self.sustained_step.offered_per_s if self.sustained_step else None
            ),
            "stopped": self.stopped,
            "saturated": self.saturated,
            "steps": [step.as_dict() for step in self.steps],
        }


def sustained(steps: Sequence[RateResult]) -> RateResult | None:
    qualifying = [
        step
        for step in steps
        if step.latency_p99_ms <= latency_p99_s_max * 1000
        and step.errors <= error_share_max * max(1, step.issued)
    ]
    return max(qualifying, key=lambda step: step.achieved_per_s, default=None)


async def warm_up(system: System, clients: int) -> int:
    """Every client's connection opened and used once (all at once), untimed. Returns the ops
    it used."""
    await system.prepare(clients)
    await asyncio.gather(*(system.op(index) for index in range(clients)))
    return clients


def _rising(rates: Sequence[float]) -> Iterator[float]:
    """`rates`, then rates `rate_growth` times the last, up to `rate_per_s_max`."""
    yield from rates
    rate = rates[-1] * rate_growth
    while rate <= rate_per_s_max:
        yield rate
        rate *= rate_growth


async def sweep(
    system: System,
    rates: Sequence[float],
    duration_s: float,
    clients: int,
    on_step: Callable[[RateResult], None] | None = None,
) -> SweepResult:
    """Runs `rates` in order, `duration_s` each, until a step is saturated (see `is_saturated`),
    and then one more step (the curve past the knee), after a warm-up; past the last rate while
    unsaturated, rising by `rate_growth` up to `rate_per_s_max`. Op indices continue over the
    steps; `system.prepare` builds each step's ops before it starts."""
    cpu = CpuMeter(system.server_pids)
    warmed = done = await warm_up(system, clients)
    steps: list[RateResult] = []
    saturated_at: float | None = None
    for rate in _rising(rates):
        count = max(1, round(rate * duration_s))
        await system.prepare(done + count)
        await asyncio.sleep(settle_s)
        step = await open_loop(system.op, rate, duration_s, clients, first_index=done, cpu=cpu)
        done += count
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if saturated_at is not None:
            break
        if step.saturated:
            saturated_at = rate
    if saturated_at is None:
        stopped = f"none saturated, up to {steps[-1].offered_per_s:g}/s"
    else:
        stopped = f"saturated at {saturated_at:g}/s, up to {steps[-1].offered_per_s:g}/s"
    best = sustained(steps)
    return SweepResult(
        system=system.name,
        steps=steps,
        sustained_per_s=best.achieved_per_s if best is not None else None,
        sustained_step=best,
        unsaturated_max_per_s=max(
            (step.achieved_per_s for step in steps if not step.saturated), default=None
        ),
        stopped=stopped,
        acknowledged=warmed + sum(step.committed for step in steps),
        saturated=saturated_at is not None,
    )


# --- the event loop ----------------------------------------------------------------------------


def event_loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_async(coroutine: Awaitable[T]) -> T:
    """Runs `coroutine` on uvloop when it is installed (less CPU an op), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    else:
        factory = uvloop.new_event_loop

    async def main() -> T:
        return await coroutine

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
