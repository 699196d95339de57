"""A real `xinchain up --validators 4` consortium, driven from tests (see conftest.py).

`Cluster` starts the supervisor on a free port base, kills nodes with SIGKILL through their
node.pid, restarts them with `xinchain node`, and reads heights and blocks over REST. Every
wait polls against a deadline; none sleeps a fixed time and then asserts.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from ports import ports_free

# The console script installed next to this interpreter: the same entry point users run.
XINCHAIN = Path(sys.executable).parent / "xinchain"
VALIDATORS = ("validator-0", "validator-1", "validator-2", "validator-3")
OBSERVER = "observer"
NODES = (*VALIDATORS, OBSERVER)
# `xinchain up` puts node i's P2P port this far above its API port.
p2p_port_offset = 100
# Five nodes start in a few seconds; a loaded 2-core box may take many times that.
ready_timeout_s = 60.0
# A restarted node answers on its API within a second or two; the same margin.
restart_timeout_s = 30.0
# Processes asked to stop with SIGTERM get this long before they are killed.
stop_timeout_s = 15.0
# How often the wait helpers ask the nodes again.
poll_interval_s = 0.2
# Port bases tried before giving up on finding ten free loopback ports.
port_base_attempts_max = 50
# Lines of each node.log attached to a failing test's report.
log_lines_reported_max = 120


def free_port_base(node_count: int = len(NODES)) -> int:
    """A base whose API ports base..base+n-1 and P2P ports base+100.. are all free."""
    generator = random.Random()
    for _ in range(port_base_attempts_max):
        base = generator.randrange(20_000, 60_000)
        api_ports = range(base, base + node_count)
        p2p_ports = range(base + p2p_port_offset, base + p2p_port_offset + node_count)
        if ports_free([*api_ports, *p2p_ports]):
            return base
    raise RuntimeError(f"no free port base found in {port_base_attempts_max} attempts")


def tail(path: Path, lines: int = log_lines_reported_max) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no {path})"
    return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """`xinchain up --validators 4` on one home, plus nodes the tests restarted by hand."""

    def __init__(self, home: Path, base_port: int, *, restart: bool = False) -> None:
        self.home = home
        self.restart_exited = restart  # the supervisor starts exited nodes again
        self.base_port = base_port
        self.ports = {name: base_port + index for index, name in enumerate(NODES)}
        self.supervisor: subprocess.Popen[str] | None = None
        self.restarted: dict[str, subprocess.Popen[bytes]] = {}
        self._output: list[str] = []
        self._output_lock = threading.Lock()
        self._http = httpx.Client(timeout=5.0)

    # --- the processes -------------------------------------------------------------------------

    def start(self) -> None:
        command = [str(XINCHAIN), "up", "--home", str(self.home), "--port", str(self.base_port)]
        command += ["--validators", str(len(VALIDATORS))]
        # Most tests kill and restart nodes themselves (under faketime, a low ulimit, ...).
        command += ["--restart" if self.restart_exited else "--no-restart"]
        self.supervisor = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        )
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(ready,), daemon=True).start()
        ready.wait(ready_timeout_s)
        if not any(line.startswith("ready") for line in self.output_lines()):
            raise RuntimeError(
                f"`{' '.join(command)}` printed no ready line within {ready_timeout_s} s "
                f"(exit code {self.supervisor.poll()});\n{self.report()}"
            )

    def _read_output(self, ready: threading.Event) -> None:
        assert self.supervisor is not None and self.supervisor.stdout is not None
        for line in self.supervisor.stdout:
            with self._output_lock:
                self._output.append(line)
            if line.startswith("ready"):
                ready.set()
        ready.set()  # the supervisor closed its output: it will not become ready

    def output_lines(self) -> list[str]:
        with self._output_lock:
            return list(self._output)

    def node_dir(self, name: str) -> Path:
        return self.home / "nodes" / name

    def pid(self, name: str) -> int | None:
        """The pid in the node's node.pid if that process is this home's node `name`.

        node.pid outlives a SIGKILL, and its number may since belong to another process: the
        command line is checked so that nothing but our own node is ever signalled.
        """
        try:
            pid = int((self.node_dir(name) / "node.pid").read_text().strip())
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        ours = str(self.home).encode() in arguments and name.encode() in arguments
        return pid if ours else None

    def kill9(self, name: str) -> None:
        """SIGKILL the node named in its node.pid, and wait until its API is gone."""
        pid = self.pid(name)
        assert pid is not None, f"{name} has no node.pid: it is not running"
        os.kill(pid, signal.SIGKILL)
        process = self.restarted.get(name)
        if process is not None and process.pid == pid:
            process.wait(stop_timeout_s)
            del self.restarted[name]
        deadline = time.monotonic() + stop_timeout_s
        while self.height(name) is not None:
            assert time.monotonic() < deadline, f"{name} still answers after SIGKILL"
            time.sleep(poll_interval_s / 4)

    def restart(self, name: str, prefix: tuple[str, ...] = ()) -> None:
        """`xinchain node` for `name` on its home and port; returns once its API answers.
        `prefix` runs it under another command (e.g. faketime, for a skewed clock)."""
        assert self.height(name) is None, f"restart of {name}, which is running"
        command = [*prefix, str(XINCHAIN), "node", "--home", str(self.home), "--name", name]
        command += ["--port", str(self.ports[name])]
        with (self.node_dir(name) / "node.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
            )
        self.restarted[name] = process
        deadline = time.monotonic() + restart_timeout_s
        while self.height(name) is None:
            code = process.poll()
            assert code is None, f"restarted {name} exited with {code}:\n{self.log_tail(name)}"
            assert time.monotonic() < deadline, f"restarted {name} did not answer in time"
            time.sleep(poll_interval_s)

    def stop(self) -> None:
        """SIGTERM the supervisor and every restarted node; SIGKILL what outlives the grace."""
        processes: list[subprocess.Popen[Any]] = [*self.restarted.values()]
        if self.supervisor is not None:
            processes.append(self.supervisor)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout_s
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # A supervisor killed before it stopped its children leaves them running: end them too.
        for name in NODES:
            pid = self.pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._http.close()

    # --- the API -------------------------------------------------------------------------------

    def api(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def get(self, name: str, path: str) -> httpx.Response:
        return self._http.get(self.api(name) + path)

    def status(self, name: str) -> dict[str, Any]:
        response = self.get(name, "/v1/status")
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def height(self, name: str) -> int | None:
        """The node's height, or None when its API does not answer."""
        try:
            return int(self.status(name)["height"])
        except httpx.HTTPError:
            return None

    def heights(self, names: Iterable[str]) -> dict[str, int | None]:
        return {name: self.height(name) for name in names}

    def wait_for_height(
        self, names: Iterable[str], height: int, timeout_s: float
    ) -> dict[str, int]:
        """Poll until every named node is at `height` or above; their heights then."""
        names = list(names)
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.heights(names)
            if all(h is not None and h >= height for h in seen.values()):
                return {name: h for name, h in seen.items() if h is not None}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not all of {names} reached height {height} in {timeout_s} s: {seen}"
                )
            time.sleep(poll_interval_s)

    def block_hashes(self, name: str, upto: int) -> list[str]:
        """The hashes of blocks 1..upto on `name`; each must carry a certificate for itself."""
        hashes = []
        for height in range(1, upto + 1):
            response = self.get(name, f"/v1/blocks/{height}")
            assert response.status_code == 200, f"{name} block {height}: {response.text}"
            block = response.json()
            certificate = block["certificate"]
            assert certificate is not None, f"{name} block {height} has no certificate"
            assert certificate["block_hash"] == block["hash"], f"{name} block {height}"
            hashes.append(block["hash"])
        return hashes

    # --- reports -------------------------------------------------------------------------------

    def log_tail(self, name: str) -> str:
        return tail(self.node_dir(name) / "node.log")

    def report(self) -> str:
        sections = [f"--- supervisor output ---\n{''.join(self.output_lines())}"]
        for name in NODES:
            sections.append(f"--- {name} node.log ---\n{self.log_tail(name)}")
        return "\n".join(sections)
