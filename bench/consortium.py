"""`xinchain up` run by a bench: a local consortium on free loopback ports, stopped with its
nodes. Imports no app, so that bench/compare_commits.py can run it against older commits."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from xinchain.node.home import p2p_port_offset

# `xinchain up` prints its ready line within this long (first start: keys, genesis, certs).
ready_timeout_s = 120.0
# ... and its demo line: the bench waits so that the demo does not run during the measurement.
demo_timeout_s = 120.0
# SIGTERM to `up`, then this long before SIGKILL.
stop_timeout_s = 30.0


def free_base_port(nodes: int) -> int:
    """A base port with BASE..BASE+nodes-1 and their P2P ports free on loopback."""
    chooser = random.Random()
    for _ in range(200):
        base = chooser.randrange(20_000, 50_000)
        ports = [base + i for i in range(nodes)] + [
            base + p2p_port_offset + i for i in range(nodes)
        ]
        if all(_port_free(port) for port in ports):
            return base
    raise RuntimeError("no free block of loopback ports found")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Consortium:
    """`xinchain up` in its own session; stopped (its nodes too) by `stop`."""

    def __init__(self, home: Path, validators: int, observer: bool = True) -> None:
        self.home = home
        self.validators = validators
        self.observer = observer and validators > 1  # the regulator's observer node
        self.nodes = validators + (1 if self.observer else 0)
        self.base_port = free_base_port(self.nodes)
        self.log_path = home.parent / "up.log"
        self.process: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.demo = threading.Event()
        self.lines: list[str] = []

    @property
    def validator_apis(self) -> list[str]:
        return [f"http://127.0.0.1:{self.base_port + i}" for i in range(self.validators)]

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "xinchain",
            "up",
            "--home",
            str(self.home),
            "--port",
            str(self.base_port),
            "--validators",
            str(self.validators),
            *([] if self.observer or self.validators == 1 else ["--no-observer"]),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops the consortium
        )
        threading.Thread(target=self._read, name="up-output", daemon=True).start()
        deadline = time.monotonic() + ready_timeout_s
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"xinchain up did not get ready:\n{self.tail()}")
        # Let `up` record its demo journey first, so that it does not run during the import.
        if not self.demo.wait(demo_timeout_s):
            print("warning: no demo: line from xinchain up; going on", file=sys.stderr)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.lines.append(line)
                if line.startswith("ready"):
                    self.ready.set()
                elif line.startswith("demo:") or line.startswith("demo journey not recorded"):
                    self.demo.set()

    def tail(self, lines: int = 40) -> str:
        return "".join(self.lines[-lines:])

    def stop(self) -> None:
        """SIGTERM to `up` (which stops its nodes in order), then anything left of this home.
        A second Ctrl-C while stopping is ignored: it would leave nodes running."""
        numbers = (signal.SIGINT, signal.SIGTERM)
        previous = {number: signal.signal(number, signal.SIG_IGN) for number in numbers}
        try:
            self._stop()
        finally:
            for number, action in previous.items():
                signal.signal(number, action)

    def _stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Nodes of this home that outlived their supervisor (a killed `up`): stop them by pid.
        for pid_path in (self.home / "nodes").glob("*/node.pid"):
            pid = _running_pid(pid_path)
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + stop_timeout_s
            while _running_pid(pid_path) == pid and time.monotonic() < deadline:
                time.sleep(0.2)
            if _running_pid(pid_path) == pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def data_bytes(self, node: str = "validator-0") -> int:
        data = self.home / "nodes" / node / "data"
        return sum(path.stat().st_size for path in data.rglob("*") if path.is_file())


def _running_pid(pid_path: Path) -> int | None:
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid
