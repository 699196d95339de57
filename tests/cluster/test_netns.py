"""Four validators in their own network namespaces, 50 ms apart, still commit.

Topology, all in namespaces this test creates (named xinchain-test-<pid>-<random>-*) and
deletes afterwards: one namespace holds a bridge; each validator's namespace has `lo` up and
an `eth0` (10.213.0.10+i/24) whose veth peer is a port of that bridge; `tc qdisc add dev eth0
root netem delay 50ms` delays everything each node sends (100 ms round trips). Each validator
runs `ip netns exec NS xinchain node --home DIR --name validator-i --port API_PORT` with a
node.json that binds P2P to its namespace address and names the others' addresses. Heights
and blocks are read through `ip netns exec NS python` against 127.0.0.1 inside that namespace.

Scenario:

* All 4 validators reach height 5 or more with identical block hashes at every height; the
  observed block interval is measured and printed.

Where the kernel has no netem (`tc qdisc ... netem` fails), the 50 ms come from a relay in
the bridge namespace (tests/support/delay_relay.py) that every link between validators passes
through, holding each byte for 50 ms; the test says which it used. Skipped, saying why, when
namespaces cannot be made: not root, or `ip netns add` fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import XINCHAIN

from xinchain.node.home import Home, NodeConfig, create_demo_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

VALIDATOR_COUNT = 4
SUBNET_PREFIX = "10.213.0."
ADDRESS_OFFSET = 10  # validator i listens on 10.213.0.(10 + i)
# Each namespace has its own ports, so every node can use the same two.
API_PORT = 7700
P2P_PORT = 7800
DELAY_MS = 50
DELAY = f"{DELAY_MS}ms"
BRIDGE_ADDRESS = f"{SUBNET_PREFIX}1"
RELAY_PORT_BASE = 9000
RELAY_SCRIPT = str(Path(__file__).parent.parent / "support" / "delay_relay.py")
target_height = 5
# Four nodes start on a 2-core box, then commit 5 blocks about a second apart: 60 s is ample.
commit_timeout_s = 60.0
command_timeout_s = 20.0
stop_timeout_s = 15.0
poll_interval_s = 0.3

# Run inside a namespace: prints /v1/status, or the blocks 1..N, as JSON; exit 1 if unreachable.
_FETCH = """
import json, sys, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
def get(path):
    with urllib.request.urlopen(base + path, timeout=3) as response:
        return json.load(response)
try:
    if sys.argv[2] == "status":
        print(json.dumps(get("/v1/status")))
    else:
        print(json.dumps([get("/v1/blocks/%d" % h) for h in range(1, int(sys.argv[2]) + 1)]))
except OSError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=command_timeout_s, check=False
    )


def must(*command: str) -> None:
    done = run(*command)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr}")


def add_delay(namespace: str, device: str) -> subprocess.CompletedProcess[str]:
    return run(
        "ip", "netns", "exec", namespace,
        "tc", "qdisc", "add", "dev", device, "root", "netem", "delay", DELAY,
    )  # fmt: skip


class NetnsConsortium:
    def __init__(self, home: Path) -> None:
        self.home = Home(home)
        self.prefix = f"xinchain-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.bridge_namespace = f"{self.prefix}-br"
        self.names = [f"validator-{i}" for i in range(VALIDATOR_COUNT)]
        self.namespaces = {name: f"{self.prefix}-v{i}" for i, name in enumerate(self.names)}
        self.addresses = {
            name: f"{SUBNET_PREFIX}{ADDRESS_OFFSET + i}" for i, name in enumerate(self.names)
        }
        self.created: list[str] = []
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.netem_refused = ""  # why `tc ... netem` failed, when it did
        self.relay: subprocess.Popen[str] | None = None

    # --- the network ---------------------------------------------------------------------------

    def create_namespace(self, namespace: str) -> subprocess.CompletedProcess[str]:
        done = run("ip", "netns", "add", namespace)
        if done.returncode == 0:
            self.created.append(namespace)
            must("ip", "-n", namespace, "link", "set", "lo", "up")
        return done

    def build(self) -> None:
        """Bridge namespace, one namespace per validator, veth pairs; skips if impossible."""
        done = self.create_namespace(self.bridge_namespace)
        if done.returncode != 0:
            pytest.skip(f"network namespaces unavailable: `ip netns add` failed: {done.stderr}")
        must("ip", "-n", self.bridge_namespace, "link", "add", "br0", "type", "bridge")
        must("ip", "-n", self.bridge_namespace, "link", "set", "br0", "up")
        for index, name in enumerate(self.names):
            namespace = self.namespaces[name]
            done = self.create_namespace(namespace)
            if done.returncode != 0:
                raise RuntimeError(f"`ip netns add {namespace}` failed: {done.stderr}")
            port = f"port{index}"
            must(
                "ip", "-n", namespace, "link", "add", "eth0", "type", "veth",
                "peer", "name", port, "netns", self.bridge_namespace,
            )  # fmt: skip
            must("ip", "-n", self.bridge_namespace, "link", "set", port, "master", "br0")
            must("ip", "-n", self.bridge_namespace, "link", "set", port, "up")
            must("ip", "-n", namespace, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
            must("ip", "-n", namespace, "link", "set", "eth0", "up")
            delayed = add_delay(namespace, "eth0")
            if delayed.returncode != 0:
                self.netem_refused = delayed.stderr.strip()
        if self.netem_refused:
            # The kernel has no netem: delay in user space instead, with a relay in the bridge
            # namespace that every link between validators passes through.
            must(
                "ip",
                "-n",
                self.bridge_namespace,
                "addr",
                "add",
                f"{BRIDGE_ADDRESS}/24",
                "dev",
                "br0",
            )

    def destroy(self) -> None:
        for namespace in reversed(self.created):
            run("ip", "netns", "del", namespace)
        self.created.clear()

    # --- the nodes -----------------------------------------------------------------------------

    def configure(self) -> None:
        create_demo_home(self.home, validators=VALIDATOR_COUNT, suite_name="ed25519-sha256")
        for name in self.names:
            peers = tuple(self.peer_address(other) for other in self.names if other != name)
            config = NodeConfig(API_PORT, P2P_PORT, peers, p2p_host=self.addresses[name])
            self.home.save_node_config(name, config)

    def peer_address(self, name: str) -> tuple[str, str, int]:
        if self.netem_refused:
            return name, BRIDGE_ADDRESS, RELAY_PORT_BASE + self.names.index(name)
        return name, self.addresses[name], P2P_PORT

    def start_relay(self) -> None:
        routes = [
            f"{BRIDGE_ADDRESS}:{RELAY_PORT_BASE + i}={self.addresses[name]}:{P2P_PORT}"
            for i, name in enumerate(self.names)
        ]
        command = ["ip", "netns", "exec", self.bridge_namespace, sys.executable, RELAY_SCRIPT]
        self.relay = subprocess.Popen(
            [*command, str(DELAY_MS), *routes], stdout=subprocess.PIPE, text=True
        )
        assert self.relay.stdout is not None
        assert self.relay.stdout.readline().strip() == "relaying"

    def start(self) -> None:
        if self.netem_refused:
            self.start_relay()
        for name in self.names:
            command = ["ip", "netns", "exec", self.namespaces[name], str(XINCHAIN), "node"]
            command += ["--home", str(self.home.path), "--name", name, "--port", str(API_PORT)]
            with (self.home.node_dir(name) / "node.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
                )

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.kill()
            self.relay.wait()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def fetch(self, name: str, what: str) -> Any:
        """`status`, or the number of blocks to list from 1, asked inside `name`'s namespace."""
        done = run(
            "ip", "netns", "exec", self.namespaces[name], sys.executable, "-c", _FETCH,
            str(API_PORT), what,
        )  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None

    def height(self, name: str) -> int | None:
        status = self.fetch(name, "status")
        return None if status is None else int(status["height"])

    def qdisc(self, name: str) -> str:
        return run(
            "ip", "netns", "exec", self.namespaces[name], "tc", "qdisc", "show", "dev", "eth0"
        ).stdout

    def logs(self) -> str:
        sections = []
        for name in self.names:
            path = self.home.node_dir(name) / "node.log"
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            sections.append(f"--- {name} node.log ---\n" + "\n".join(text.splitlines()[-60:]))
        return "\n".join(sections)


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[NetnsConsortium]:
    if os.geteuid() != 0:
        pytest.skip(f"network namespaces need root; running as uid {os.geteuid()}")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("network namespaces need the `ip` and `tc` commands (iproute2)")
    network = NetnsConsortium(tmp_path / "home")
    try:
        network.build()
        network.configure()
        network.start()
        yield network
    finally:
        network.stop()
        network.destroy()


def test_validators_50ms_apart_commit_identical_blocks(
    consortium: NetnsConsortium, capsys: pytest.CaptureFixture[str]
) -> None:
    if consortium.netem_refused:
        mode = (
            f"a user-space relay delaying {DELAY_MS} ms (netem refused: {consortium.netem_refused})"
        )
    else:
        mode = f"netem delay {DELAY}"
        for name in consortium.names:
            assert "netem" in consortium.qdisc(name), f"{name}: {consortium.qdisc(name)}"
    deadline = time.monotonic() + commit_timeout_s
    first_seen: tuple[float, int] | None = None
    heights: dict[str, int | None] = {}
    while True:
        heights = {name: consortium.height(name) for name in consortium.names}
        now = time.monotonic()
        known = [h for h in heights.values() if h is not None]
        if first_seen is None and len(known) == len(heights) and min(known) >= 1:
            first_seen = (now, heights["validator-0"] or 0)
        if len(known) == len(heights) and min(known) >= target_height:
            reached_at = now
            break
        for name, process in consortium.processes.items():
            code = process.poll()
            assert code is None, f"{name} exited with {code}\n{consortium.logs()}"
        assert now < deadline, (
            f"not all validators reached height {target_height} in {commit_timeout_s} s: "
            f"{heights}\n{consortium.logs()}"
        )
        time.sleep(poll_interval_s)
    common = min(h for h in heights.values() if h is not None)

    blocks = {name: consortium.fetch(name, str(common)) for name in consortium.names}
    hashes = {name: [block["hash"] for block in listed] for name, listed in blocks.items()}
    assert all(listed == hashes["validator-0"] for listed in hashes.values()), hashes

    times_ms = [block["header"]["time_ms"] for block in blocks["validator-0"]]
    header_interval_ms = (times_ms[-1] - times_ms[0]) / max(1, len(times_ms) - 1)
    assert first_seen is not None
    seen_at, seen_height = first_seen
    polled = (reached_at - seen_at) * 1000 / max(1, (heights["validator-0"] or 0) - seen_height)
    with capsys.disabled():
        print(
            f"\nnetns with {mode}: heights {heights}; block interval "
            f"{header_interval_ms:.0f} ms by header times over blocks 1..{common}, "
            f"{polled:.0f} ms as polled"
        )
