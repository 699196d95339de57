"""Real `xinchain up` processes for integration tests: real LMDB, real sockets, real CLI.

Fixtures:

* `node`: a fresh consortium in a tmp home, function-scoped; `module_node` shares one across a
  module where tests only add independent anchors. Both run `xinchain up` as a subprocess on a
  free loopback port and wait for its `ready` line. Parametrize the suite indirectly:
  `@pytest.mark.parametrize("node", ["sm2-sm3"], indirect=True)`.
* `cli`: runs the `xinchain` entry point and returns the completed process;
  `xinchain_executable` is its path, for commands run in the background.
* `tripwire`: a TCP proxy that signals when a client sends a given request, so that a kill can
  land while that request is served.
* `interrupted_put`: a `notary put` whose node is SIGKILLed a chosen moment after the command
  starts sending its transaction, then restarted; says which hashes the chain kept.
* `tamper`: every single-leaf mutation of a receipt (each hex digit, each character, integer
  ±1, negated bool) and `unrefused(mutations, document)`, the ones verification lets through.

A test that fails gets the output of every node alive at the time appended to its report.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_clock import clock_ahead_env
from ports import free_ports
from receipts import verify_receipt

from xinchain.crypto import suite_named
from xinchain.errors import ReceiptInvalid

# The console script installed next to this interpreter: the same entry point users run.
XINCHAIN = Path(sys.executable).parent / "xinchain"
DEFAULT_SUITE = "ed25519-sha256"
VALIDATOR_NAME = "validator-0"
# Starting a node takes about a second; a loaded 2-core CI box may take many times that.
ready_timeout_s = 60.0
# A node asked to stop with SIGTERM gets this long before it is killed.
stop_timeout_s = 15.0
# CLI commands in these tests anchor at most ~10,000 files: a few seconds, with a wide margin.
cli_timeout_s = 180.0
# Receipt mutations a failing tamper test names one by one (a broken check can open thousands).
gaps_listed_max = 100
# Lines of node output attached to a failing test's report.
report_lines_max = 400

_live_nodes: list[RunningNode] = []


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    return free_ports(1)[0]


class NodeStartError(RuntimeError):
    pass


class RunningNode:
    """One consortium home served by `xinchain up`, restartable on the same home and port."""

    def __init__(self, home: Path, suite: str, port: int) -> None:
        self.home = home
        self.suite = suite
        self.port = port
        self.api = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None
        self.ready_line = ""
        self.starts = 0
        # Seconds the node's clock runs ahead of the machine's (libfaketime), from its next
        # start: a test moves a node past a wait (a promotion's grace) by restarting it later
        # in time. Only ever raised: block times never go back.
        self.clock_ahead_s = 0
        self._output: list[str] = []
        self._output_lock = threading.Lock()

    @property
    def pid_path(self) -> Path:
        return self.home / "nodes" / VALIDATOR_NAME / "node.pid"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        with self._output_lock:
            return "".join(self._output[-report_lines_max:])

    def start(self) -> None:
        assert not self.running, "start() on a node that is already running"
        self.starts += 1
        command = [
            str(XINCHAIN),
            "up",
            "--home",
            str(self.home),
            "--port",
            str(self.port),
            "--suite",
            self.suite,
            "--validators",
            "1",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
        if self.clock_ahead_s:
            env.update(clock_ahead_env(self.clock_ahead_s))
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        self.process = process
        ready = threading.Event()
        found: list[str] = []
        reader = threading.Thread(
            target=self._read_output, args=(process, ready, found), daemon=True
        )
        reader.start()
        ready.wait(ready_timeout_s)
        if not found:
            code = process.poll()
            if code is None:
                self._kill(process)
            raise NodeStartError(
                f"`{' '.join(command)}` printed no ready line within {ready_timeout_s} s "
                f"(exit code {code}); output:\n{self.output()}"
            )
        self.ready_line = found[0]

    def _read_output(
        self, process: subprocess.Popen[str], ready: threading.Event, found: list[str]
    ) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._output_lock:
                self._output.append(f"[start {self.starts}] {line}")
            if not found and line.startswith("ready"):
                found.append(line.strip())
                ready.set()
        ready.set()  # the process closed its output: it will not become ready

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout_s`; the exit code (None if not running)."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            return self._kill(process)

    def kill9(self) -> None:
        """SIGKILL the node: no cleanup runs, as in a power cut of the process."""
        assert self.process is not None and self.running, "kill9() on a node that is not running"
        self._kill(self.process)

    def now_ms(self) -> int:
        """The node's clock: the machine's plus `clock_ahead_s`."""
        return int(time.time() * 1000) + self.clock_ahead_s * 1000

    def move_clock_past(self, moment_ms: int) -> None:
        """Restart the node with its clock past `moment_ms` (plus a second), if it is not yet:
        what waiting that long would do, without the wait."""
        behind_ms = moment_ms + 1_000 - self.now_ms()
        if behind_ms <= 0:
            return
        self.clock_ahead_s += -(-behind_ms // 1000)
        self.restart()

    def restart(self) -> None:
        """Stop the node if it runs (gracefully) and start it again on the same home and port."""
        self.stop()
        self.start()

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> int:
        process.send_signal(signal.SIGKILL)
        return process.wait(stop_timeout_s)


@contextmanager
def running_node(home: Path, suite: str) -> Iterator[RunningNode]:
    node = RunningNode(home, suite, free_port())
    _live_nodes.append(node)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        _live_nodes.remove(node)


@pytest.fixture
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningNode]:
    suite = getattr(request, "param", DEFAULT_SUITE)
    with running_node(tmp_path / "home", suite) as running:
        yield running


@pytest.fixture(scope="module")
def module_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    suite = getattr(request, "param", DEFAULT_SUITE)
    with running_node(tmp_path_factory.mktemp("node") / "home", suite) as running:
        yield running


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for live in _live_nodes:
            report.sections.append((f"xinchain node output ({live.home})", live.output()))


# --- the command line ------------------------------------------------------------------------


def run_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XINCHAIN), *(str(arg) for arg in args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=cli_timeout_s,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture(scope="session")
def xinchain_executable() -> Path:
    """For tests that run a command in the background (`cli` waits for it to finish)."""
    return XINCHAIN


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


# --- a tripwire between a client and a node ---------------------------------------------------


class TripwireProxy:
    """A loopback TCP forwarder that notes when a client sends `trigger` (e.g. a request line).

    A test points a client at `url` and kills the node a chosen moment after `tripped` is set:
    that is how a kill lands while one particular request is being served.
    """

    def __init__(self, target_port: int, trigger: bytes) -> None:
        self.target_port = target_port
        self.trigger = trigger
        self.tripped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for source, sink, watch in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, watch), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, watch: bool) -> None:
        tail = b""
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                if watch and self.trigger in tail + data:
                    self.tripped.set()
                tail = (tail + data)[-len(self.trigger) :]
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for end in self._sockets:
            end.close()


@pytest.fixture
def tripwire() -> Iterator[Callable[[int, bytes], TripwireProxy]]:
    """Makes `TripwireProxy`s to a port; closes them after the test."""
    made: list[TripwireProxy] = []

    def make(target_port: int, trigger: bytes) -> TripwireProxy:
        made.append(TripwireProxy(target_port, trigger))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


@dataclass(frozen=True)
class InterruptedPut:
    returncode: int
    output: str
    recorded: list[bool]  # per file, after the restart: does the node hold a record of it?
    receipts_written: int

    def __str__(self) -> str:
        return (
            f"put exit {self.returncode}, {sum(self.recorded)} of {len(self.recorded)} hashes "
            f"recorded, {self.receipts_written} receipts written; output: {self.output[-600:]}"
        )


@pytest.fixture
def interrupted_put(
    tripwire: Callable[[int, bytes], TripwireProxy],
) -> Callable[[RunningNode, list[Path], Path, float], InterruptedPut]:
    """Runs `notary put` of `paths` through a tripwire and SIGKILLs the node `delay_s` after
    the command starts sending its transaction; restarts the node and reads back the records."""

    def run(node: RunningNode, paths: list[Path], out: Path, delay_s: float) -> InterruptedPut:
        proxy = tripwire(node.port, b"POST /v1/transactions")
        command = [str(XINCHAIN), "notary", "put", *(path.name for path in paths)]
        command += ["--home", str(node.home), "--api", proxy.url, "--out", str(out)]
        putting = subprocess.Popen(
            command,
            cwd=paths[0].parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + cli_timeout_s
            while not proxy.tripped.wait(0.01):
                if putting.poll() is not None:
                    raise AssertionError(f"put ended unsent: {putting.communicate()[0]}")
                assert time.monotonic() < deadline, "put did not submit in time"
            time.sleep(delay_s)
            node.kill9()
            output, _ = putting.communicate(timeout=cli_timeout_s)
        finally:
            if putting.poll() is None:
                putting.kill()
                putting.wait()
        node.start()
        hasher = suite_named(node.suite).hash
        with httpx.Client(base_url=node.api, timeout=30) as http:
            statuses = [
                http.get(f"/v1/notary/{hasher(path.read_bytes()).hex()}").status_code
                for path in paths
            ]
        assert set(statuses) <= {200, 404}, statuses
        written = len(list(out.iterdir())) if out.exists() else 0
        return InterruptedPut(
            putting.returncode, output, [status == 200 for status in statuses], written
        )

    return run


# --- receipt mutations ---------------------------------------------------------------------

_HEX_TEXT = re.compile(r"^[0-9a-f]{8,}$")
_HEX_DIGITS = "0123456789abcdef"
LeafPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutation:
    where: str  # the leaf and what was done to it, e.g. "header.height +1"
    receipt: dict[str, Any]


def leaf_paths(value: Any, path: LeafPath = ()) -> Iterator[tuple[LeafPath, Any]]:
    """Every string, integer and bool of a JSON value, with the keys and indexes leading to it."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))
    else:
        yield path, value


def path_text(path: LeafPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def leaf_variants(leaf: object) -> list[tuple[str, object]]:
    """Each way to change one leaf a little: every digit or character, ±1, negation."""
    if isinstance(leaf, bool):
        return [("negated", not leaf)]
    if isinstance(leaf, int):
        return [("+1", leaf + 1)] + ([("-1", leaf - 1)] if leaf > 0 else [])
    if isinstance(leaf, str):
        if not leaf:
            return [("empty text given a character", "x")]
        if _HEX_TEXT.match(leaf):
            return [
                (f"hex digit {i} changed", leaf[:i] + _next_hex_digit(leaf[i]) + leaf[i + 1 :])
                for i in range(len(leaf))
            ]
        return [
            (f"character {i} changed", leaf[:i] + ("y" if leaf[i] == "x" else "x") + leaf[i + 1 :])
            for i in range(len(leaf))
        ]
    raise AssertionError(f"a receipt leaf of unexpected type {type(leaf).__name__}: {leaf!r}")


def _next_hex_digit(digit: str) -> str:
    return _HEX_DIGITS[(_HEX_DIGITS.index(digit) + 1) % len(_HEX_DIGITS)]


def replaced(value: dict[str, Any], path: LeafPath, leaf: object) -> dict[str, Any]:
    """A deep copy of `value` with the leaf at `path` replaced."""
    copied = copy.deepcopy(value)
    parent: Any = copied
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = leaf
    return copied


def all_leaf_mutations(receipt: dict[str, Any]) -> Iterator[Mutation]:
    for path, leaf in leaf_paths(receipt):
        for label, changed in leaf_variants(leaf):
            yield Mutation(f"{path_text(path)} {label}", replaced(receipt, path, changed))


def unrefused(mutations: Iterable[Mutation], document: bytes) -> list[str]:
    """The mutations `verify_receipt` does not refuse with `ReceiptInvalid`, each with why."""
    gaps = []
    for mutation in mutations:
        try:
            verify_receipt(mutation.receipt, document)
        except ReceiptInvalid:
            continue
        except Exception as exc:
            gaps.append(f"{mutation.where}: raised {exc!r} instead of ReceiptInvalid")
        else:
            gaps.append(f"{mutation.where}: still verifies")
    return gaps


def gap_report(gaps: list[str], tried: int) -> str:
    """Names the gaps (the first `gaps_listed_max`) for an assertion message."""
    listed = "\n".join(gaps[:gaps_listed_max])
    more = f"\n... and {len(gaps) - gaps_listed_max} more" if len(gaps) > gaps_listed_max else ""
    return f"{len(gaps)} of {tried} mutations not refused:\n{listed}{more}"


class Tamper:
    """The receipt-mutation helpers, handed to tests as the `tamper` fixture."""

    Mutation = Mutation
    leaf_paths = staticmethod(leaf_paths)
    leaf_mutations = staticmethod(all_leaf_mutations)
    replaced = staticmethod(replaced)
    path_text = staticmethod(path_text)
    unrefused = staticmethod(unrefused)
    gap_report = staticmethod(gap_report)


@pytest.fixture(scope="session")
def tamper() -> type[Tamper]:
    return Tamper
